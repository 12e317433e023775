// For bench/cluster's dns_drop_s. Runs inside one container's network namespace
// (`nsenter --net=/proc/<pid>/ns/net node bench/overlay-watch.mjs ...`, the machine's mounts)
// and reports, as JSON lines, what that container is told about a service from two sides:
//   {"k":"dns","t":<ns>,"ips":[...]}  the A records of NAME from the host's DNS server (the
//                                     container's own resolver), asked from the container's
//                                     address, so the answer is scoped as the container's is;
//   {"k":"lb","t":<ns>,"ips":[...]}   the backends VIP is DNAT'ed to in the namespace's shoal_lb
//                                     table (`nft list table ip shoal_lb`; [] when it rejects).
// Each side polls on its own every INTERVAL_MS. t is process.hrtime.bigint() when the answer
// came back: CLOCK_MONOTONIC, one clock for every process on the machine, so the bench compares
// it with its own. A failed or unanswered probe prints {"k":..., "t":..., "err":"..."}.
// Usage: node overlay-watch.mjs DNS_SERVER NAME VIP INTERVAL_MS
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { setTimeout as timer } from "node:timers";
import { setTimeout as sleep } from "node:timers/promises";
import dnsPacket from "dns-packet";

const [server, name, vip, everyArg] = process.argv.slice(2);
const every = Number(everyArg ?? 50);
if (!server || !name || !vip || !(every > 0))
  throw new Error("usage: overlay-watch.mjs DNS_SERVER NAME VIP INTERVAL_MS");

const now = () => process.hrtime.bigint().toString();
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const byNumber = (a, b) =>
  a.split(".").reduce((n, o) => n * 256 + Number(o), 0) -
  b.split(".").reduce((n, o) => n * 256 + Number(o), 0);

const sock = createSocket("udp4");
let id = 0;
const waiting = new Map();
sock.on("message", (msg) => {
  let p;
  try {
    p = dnsPacket.decode(msg);
  } catch {
    return;
  }
  const w = waiting.get(p.id);
  if (!w) return;
  waiting.delete(p.id);
  w(p);
});
sock.on("error", (e) => out({ k: "dns", t: now(), err: e.message }));

async function askDns() {
  id = (id + 1) % 65536;
  const q = id;
  const answer = new Promise((ok) => {
    waiting.set(q, ok);
    timer(() => waiting.delete(q) && ok(undefined), 1000).unref();
  });
  sock.send(
    dnsPacket.encode({
      type: "query",
      id: q,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name }],
    }),
    53,
    server,
  );
  const p = await answer;
  if (!p) return out({ k: "dns", t: now(), err: "no answer within 1 s" });
  out({
    k: "dns",
    t: now(),
    rcode: p.rcode,
    ips: p.answers
      .filter((a) => a.type === "A")
      .map((a) => a.data)
      .sort(byNumber),
  });
}

const vipLine = new RegExp(`ip daddr ${vip.replaceAll(".", "\\.")} dnat to (.*)$`);
function askLb() {
  return new Promise((ok) => {
    execFile("nft", ["list", "table", "ip", "shoal_lb"], { timeout: 2000 }, (err, stdout, stderr) => {
      if (err) {
        out({ k: "lb", t: now(), err: (stderr || err.message).trim().split("\n")[0] });
        return ok();
      }
      const ips = [];
      for (const line of stdout.split("\n")) {
        const m = vipLine.exec(line.trim());
        if (!m) continue;
        // "10.0.0.3", or "numgen inc mod 3 map { 0 : 10.0.0.3, 1 : ... }": every address but the VIP's.
        for (const a of m[1].matchAll(/\d+\.\d+\.\d+\.\d+/g)) ips.push(a[0]);
      }
      out({ k: "lb", t: now(), ips: ips.sort(byNumber) });
      ok();
    });
  });
}

async function loop(fn) {
  for (;;) {
    const t0 = Date.now();
    await fn().catch((e) => out({ k: "?", t: now(), err: e.message }));
    await sleep(Math.max(0, every - (Date.now() - t0)));
  }
}

sock.bind(0, () => {
  void loop(askDns);
  void loop(askLb);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.once(sig, () => process.exit(0));
