#!/usr/bin/env node
// `lab`: bring the many-hosts-on-one-machine lab up and down, and break it on purpose.
import { Command } from "commander";
import { Lab } from "./lab.js";
import { formCluster } from "./cluster.js";

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 20) throw new Error(`invalid count "${value}": use 0 to 20`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command("lab").description("shoal's lab: hosts in network namespaces on one machine");
  program.enablePositionalOptions();
  program.option("--name <name>", "which lab", "lab");
  const name = (): string => program.opts<{ name: string }>().name;

  program
    .command("up")
    .description("make the switch and the hosts, start a shoald on each")
    .option("--managers <n>", "manager hosts", count, 3)
    .option("--workers <n>", "worker hosts", count, 2)
    .option("--registry", "run a registry on the switch (10.99.0.1:5000), usable by every host")
    .option("--cluster", "make the hosts a cluster: init on m1, the others join")
    .action(async (o: { managers: number; workers: number; registry?: boolean; cluster?: boolean }) => {
      const lab = await Lab.up({
        name: name(),
        managers: o.managers,
        workers: o.workers,
        registry: o.registry,
      });
      if (o.cluster) {
        try {
          await formCluster(lab);
        } catch (e) {
          await lab.down().catch(() => undefined);
          throw e;
        }
      }
      for (const h of lab.state.hosts)
        process.stdout.write(`${h.name}\t${h.role}\t${h.address}\tunix://${h.socket}\n`);
    });
  program
    .command("down")
    .description("stop everything and remove every namespace, mount, cgroup and file of the lab")
    .action(async () => (await Lab.load(name())).down());
  program
    .command("ls")
    .description("list the hosts")
    .action(async () => {
      const lab = await Lab.load(name());
      for (const h of lab.state.hosts)
        process.stdout.write(`${h.name}\t${h.role}\t${h.address}\tunix://${h.socket}\tpid ${h.pid ?? "-"}\n`);
    });
  program
    .command("exec")
    .description("run a command in a host's network namespace")
    .argument("<host>")
    .argument("<cmd...>")
    .passThroughOptions()
    .action(async (host: string, cmd: string[]) => {
      const r = await (await Lab.load(name())).exec(host, cmd);
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
    });
  for (const [verb, what] of [
    ["kill", "kill a host: its daemon and containers die at once"],
    ["stop", "stop a host's daemon (containers keep running)"],
    ["start", "start a host's daemon again"],
    ["cut", "cut a host off the switch"],
    ["heal", "join a cut host again"],
  ] as const) {
    program
      .command(verb)
      .description(what)
      .argument("<host>")
      .action(async (host: string) => {
        const lab = await Lab.load(name());
        await lab[verb](host);
      });
  }
  await program.parseAsync(argv, { from: "user" });
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`lab: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
