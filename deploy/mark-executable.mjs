// tsc drops the executable bit; the bin entries must be runnable straight from PATH.
import { chmod } from "node:fs/promises";

for (const file of ["dist/cli/main.js", "dist/daemon/main.js"]) {
  await chmod(file, 0o755).catch(() => undefined);
}
