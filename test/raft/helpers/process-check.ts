// The checks run after every real-process scenario: the cluster recovers and converges, every
// acknowledged write-once key still holds its value, the whole history is linearizable, and no
// two members ever claimed leadership of the same term.
import { expect } from "vitest";
import { checkLinearizable } from "../lin/checker.js";
import type { ProcessCluster } from "./process-cluster.js";
import type { Workload } from "./process-client.js";

export async function verifyCluster(
  cluster: ProcessCluster,
  workload: Workload,
  label: string,
): Promise<void> {
  await workload.stop();
  await cluster.waitForLeader();
  await cluster.waitConverged();
  const keys = [...workload.o.keys, ...workload.acked.map((a) => a.key)];
  const got = await workload.readAll(keys);
  const lost = workload.acked.filter((a) => got.get(a.key) !== a.value);
  expect(lost, `${label}: acknowledged writes lost`).toEqual([]);
  const h = workload.history;
  const unknown = h.filter((op) => op.return === Infinity).length;
  process.stderr.write(
    `[${label}] ${h.length} ops (${unknown} with unknown outcome), ${workload.acked.length} write-once keys checked, ` +
      `terms seen ${[...cluster.leadersByTerm.keys()].join(",")}\n`,
  );
  const result = checkLinearizable(h);
  expect(result, `${label}: history is not linearizable`).toEqual({ ok: true });
  expect(cluster.splitBrains(), `${label}: two leaders in one term`).toEqual([]);
}
