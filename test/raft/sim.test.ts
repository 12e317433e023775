// The deterministic simulation: many seeds, each a run of a 3- or 5-member cluster under lost,
// delayed, duplicated and reordered messages, partitions, crashes with torn writes, and
// membership changes; invariants on every step, linearizability of the client history at the end.
// Reproduce a failure: SHOAL_SIM_SEED=<seed> npx vitest run test/raft/sim.test.ts
// Soak: SHOAL_SIM_SEEDS=20000 npx vitest run test/raft/sim.test.ts (or npm run raft:soak)
import { describe, expect, it } from "vitest";
import { SimCluster, type SimOptions } from "./sim/cluster.js";
import { checkLinearizable } from "./lin/checker.js";

const single = process.env.SHOAL_SIM_SEED;
const count = Number(process.env.SHOAL_SIM_SEEDS ?? 500);
const first = Number(process.env.SHOAL_SIM_FIRST ?? 1);
const seeds = single ? [Number(single)] : Array.from({ length: count }, (_, i) => first + i);

function optionsFor(seed: number): SimOptions {
  return {
    seed,
    nodes: seed % 5 === 0 ? 5 : 3,
    steps: 600,
    clients: 4,
    keys: ["a", "b", "c"],
    crashRate: 0.004,
    partitionRate: 0.006,
    membershipRate: seed % 3 === 0 ? 0.004 : 0,
    network: {
      lossRate: (seed % 4) * 0.02,
      duplicateRate: (seed % 3) * 0.02,
      minDelay: 1,
      maxDelay: 1 + (seed % 5),
    },
    snapshotEntries: 20 + (seed % 7) * 10,
    // Half the seeds run with the WAL and snapshots sealed, as managers run them.
    encryptAtRest: seed % 2 === 0,
  };
}

export async function runSeed(seed: number): Promise<ReturnType<SimCluster["report"]>> {
  const sim = new SimCluster(optionsFor(seed));
  try {
    await sim.start();
    for (let i = 0; i < sim.o.steps; i++) await sim.runStep();
    await sim.quiesce();
    const report = sim.report();
    const lin = checkLinearizable(report.history);
    if (!lin.ok)
      throw new Error(
        `seed ${seed}: history not linearizable on key ${lin.key}\n${lin.minimalCounterexample ?? ""}`,
      );
    return report;
  } finally {
    await sim.stop();
  }
}

describe("raft simulation", () => {
  it(`holds every invariant over ${seeds.length} seeds`, { timeout: 60 * 60 * 1000 }, async () => {
    const totals = { committed: 0, crashes: 0, partitions: 0, membershipChanges: 0, ops: 0, leaders: 0 };
    for (const seed of seeds) {
      let report;
      try {
        report = await runSeed(seed);
      } catch (e) {
        throw new Error(
          `raft simulation failed; reproduce with SHOAL_SIM_SEED=${seed}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      totals.committed += report.committed;
      totals.crashes += report.crashes;
      totals.partitions += report.partitions;
      totals.membershipChanges += report.membershipChanges;
      totals.leaders += report.leaders;
      totals.ops += report.history.filter((o) => o.return !== Infinity).length;
    }
    console.log(`raft simulation: ${seeds.length} seeds`, totals);
    // The runs must have exercised what they claim to (a simulation that commits nothing proves nothing).
    expect(totals.committed).toBeGreaterThan(seeds.length * 20);
    expect(totals.ops).toBeGreaterThan(seeds.length * 10);
    if (seeds.length >= 50) {
      expect(totals.crashes).toBeGreaterThan(0);
      expect(totals.partitions).toBeGreaterThan(0);
      expect(totals.membershipChanges).toBeGreaterThan(0);
    }
  });
});
