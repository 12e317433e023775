// What shoald does with the runtime check's verdict: refuse to start on a runc with a known
// breakout unless the operator insists, and say so loudly either way.
import type { Logger } from "../shared/logging.js";
import type { RuntimeVerdict } from "../agent/engine/runtime/runc-version.js";

export function enforceRuntimeVerdict(verdict: RuntimeVerdict, allowVulnerable: boolean, log: Logger): void {
  const cves = verdict.unfixed.map((c) => c.id);
  if (verdict.action === "refuse") {
    if (!allowVulnerable) throw new Error(`refusing to start: ${verdict.message}`);
    log.error(
      { cves, allowVulnerableRuntime: true },
      `STARTING WITH A VULNERABLE RUNTIME because of --allow-vulnerable-runtime: ${verdict.message}`,
    );
    return;
  }
  if (verdict.action === "warn") log.warn({ cves }, verdict.message);
  else log.info(verdict.message);
}
