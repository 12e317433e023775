// The overlay's underlay, attacked: two "hosts" (network namespaces joined by a veth) run the
// built OverlayDriver and the engine's firewall (test/fixtures/overlay-apply.mjs) on a hand-made
// NetworkState; a third namespace, routed to host A but not a cluster node, is the attacker.
// - A VXLAN packet carrying a frame for a container on A is accepted from node B and dropped
//   from the attacker, who needs no more than a UDP socket to forge one.
// - A node address with a newline in it (a worker reporting its own address) is refused by the
//   renderer: the fdb command after the newline never runs on A.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { deleteNetns, inNetns, makeNetns, repoRoot, runFixtureIn } from "../helpers/daemon.js";
import type { NetworkState } from "../../shared/network-state.js";
import { macForAddress } from "../../agent/engine/network/host-links.js";
import { overlayBridgeName, overlayVxlanName } from "../../agent/engine/network/overlay/names.js";

const run = promisify(execFile);
const tag = randomBytes(3).toString("hex");
const hostA = `shoal-uaA-${tag}`;
const hostB = `shoal-uaB-${tag}`;
const attacker = `shoal-uaX-${tag}`;
const victim = `shoal-uaV-${tag}`;
const A = { nodeId: "nodeA", hostAddr: "192.168.79.1" };
const B = { nodeId: "nodeB", hostAddr: "192.168.79.2" };
const ATTACKER = "192.168.80.2";
const NET = `4444444444${tag}dddd`;
const VNI = 6001;
const VICTIM_IP = "10.79.1.10";
const PEER_IP = "10.79.1.20";
const fixture = join(repoRoot, "test/fixtures/overlay-apply.mjs");
const children: ChildProcess[] = [];

function state(version: number, bHostAddr = B.hostAddr): NetworkState {
  const on = (node: typeof A, hostAddr: string) => ({ nodeId: node.nodeId, hostAddr });
  return {
    version,
    networks: [{ id: NET, name: "app", vni: VNI, subnet: "10.79.1.0/24", ingress: false, attachable: false }],
    nodes: [
      { networkId: NET, ...on(A, A.hostAddr), address: "10.79.1.2" },
      { networkId: NET, ...on(B, bHostAddr), address: "10.79.1.3" },
    ],
    tasks: [
      {
        networkId: NET,
        taskId: "victim",
        serviceId: "v",
        ...on(A, A.hostAddr),
        address: VICTIM_IP,
        names: [],
        running: true,
      },
      {
        networkId: NET,
        taskId: "peer",
        serviceId: "p",
        ...on(B, bHostAddr),
        address: PEER_IP,
        names: [],
        running: true,
      },
    ],
    services: [],
  };
}

interface ApplyOutput {
  changes: { ip: string[]; bridge: string[] };
  refused: Array<{ nodeId: string; reason: string }>;
}

function apply(host: string, self: typeof A, s: NetworkState): Promise<ApplyOutput> {
  return runFixtureIn<ApplyOutput>(host, fixture, { state: s, self, firewall: true });
}

async function ip(netns: string, cmd: string): Promise<void> {
  await run("ip", ["-n", netns, ...cmd.split(" ")]);
}

/**
 * A node script that sends, over plain UDP to A's VXLAN port, a VXLAN packet holding an
 * Ethernet frame from the peer task to the victim with a UDP datagram carrying `payload`.
 */
function forge(payload: string): string {
  const mac = (m: string) => `Buffer.from('${m.replace(/:/g, "")}','hex')`;
  return `
const dgram=require('dgram');
const ip=a=>Buffer.from(a.split('.').map(Number));
const data=Buffer.from(${JSON.stringify(payload)});
const udp=Buffer.alloc(8);udp.writeUInt16BE(40000,0);udp.writeUInt16BE(9999,2);udp.writeUInt16BE(8+data.length,4);
const h=Buffer.alloc(20);h[0]=0x45;h.writeUInt16BE(20+8+data.length,2);h[8]=64;h[9]=17;
ip('${PEER_IP}').copy(h,12);ip('${VICTIM_IP}').copy(h,16);
let sum=0;for(let i=0;i<20;i+=2)sum+=h.readUInt16BE(i);while(sum>0xffff)sum=(sum&0xffff)+(sum>>>16);h.writeUInt16BE(~sum&0xffff,10);
const eth=Buffer.concat([${mac(macForAddress(VICTIM_IP))},${mac(macForAddress(PEER_IP))},Buffer.from([8,0])]);
const vx=Buffer.alloc(8);vx[0]=8;vx.writeUIntBE(${VNI},4,3);
const s=dgram.createSocket('udp4');
const pkt=Buffer.concat([vx,eth,h,udp,data]);
let n=0;const go=()=>s.send(pkt,4789,'${A.hostAddr}',()=>{if(++n===5)s.close();else setTimeout(go,100)});go();`;
}

/** What the victim's UDP port 9999 received so far. */
let received = "";

beforeAll(async () => {
  for (const ns of [hostA, hostB, attacker, victim]) await makeNetns(ns);
  // The underlay: A and B on one link; the attacker on another link to A, routed to A's address.
  await ip(hostA, `link add eth0 type veth peer name eth0 netns ${hostB}`);
  await ip(hostA, `link add eth1 type veth peer name eth0 netns ${attacker}`);
  await ip(hostA, `addr add ${A.hostAddr}/24 dev eth0`);
  await ip(hostB, `addr add ${B.hostAddr}/24 dev eth0`);
  await ip(hostA, "addr add 192.168.80.1/24 dev eth1");
  await ip(attacker, `addr add ${ATTACKER}/24 dev eth0`);
  for (const [ns, dev] of [
    [hostA, "eth0"],
    [hostA, "eth1"],
    [hostB, "eth0"],
    [attacker, "eth0"],
  ])
    await ip(ns, `link set ${dev} up`);
  await ip(attacker, "route add 192.168.79.0/24 via 192.168.80.1");
  await apply(hostA, A, state(1));
  await apply(hostB, B, state(1));
  // The victim container on A, listening on UDP 9999.
  const mac = macForAddress(VICTIM_IP);
  await ip(
    hostA,
    `link add shvua${tag} mtu 1450 type veth peer name eth0 mtu 1450 address ${mac} netns ${victim}`,
  );
  await ip(hostA, `link set shvua${tag} master ${overlayBridgeName(NET)}`);
  await ip(hostA, `link set shvua${tag} up`);
  await ip(victim, `addr add ${VICTIM_IP}/24 dev eth0`);
  await ip(victim, "link set eth0 up");
  const listener = spawn(
    "nsenter",
    [
      `--net=/run/netns/${victim}`,
      process.execPath,
      "-e",
      "const s=require('dgram').createSocket('udp4');s.on('message',m=>console.log(String(m)));s.bind(9999,()=>console.log('ready'))",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(listener);
  await new Promise<void>((resolve, reject) => {
    listener.stdout.on("data", (c: Buffer) => {
      received += c.toString();
      if (received.includes("ready")) resolve();
    });
    listener.once("exit", (c) => reject(new Error(`victim listener exited ${c}`)));
  });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const ns of [victim, attacker, hostB, hostA]) await deleteNetns(ns);
});

async function sendFrom(netns: string, payload: string): Promise<void> {
  const r = await inNetns(netns, process.execPath, ["-e", forge(payload)]);
  expect(r.code, r.stderr).toBe(0);
}

describe("VXLAN on the underlay", () => {
  it("is accepted from a cluster node and dropped from any other sender", async () => {
    await sendFrom(attacker, "forged-by-attacker");
    await sendFrom(hostB, "sent-by-peer");
    for (let i = 0; i < 50 && !received.includes("sent-by-peer"); i++) await sleep(100);
    // The peer's packet, forged the same way, arrives: the attacker's was not lost by accident.
    expect(received).toContain("sent-by-peer");
    expect(received).not.toContain("forged-by-attacker");
    const rules = (await inNetns(hostA, "nft", ["list", "table", "ip", "shoal"])).stdout;
    // nft lists the VNI in hex.
    const vni = `(${VNI}|0x${VNI.toString(16)})`;
    expect(rules).toMatch(new RegExp(`udp dport 4789 @th,96,24 ${vni} ip saddr != @overlay_peers drop`));
    expect(rules).toMatch(/set overlay_peers \{[^}]*elements = \{ 192\.168\.79\.2 \}/);
  });
});

describe("a node address with a command in it", () => {
  const planted = "00:11:22:33:44:55";
  const hostile = `${B.hostAddr}\nfdb add ${planted} dev ${overlayVxlanName(NET)} dst 192.168.79.66`;
  const fdb = async () => (await inNetns(hostA, "bridge", ["fdb", "show"])).stdout;

  it("would run that command if it reached bridge -batch as it is", async () => {
    // The attack is real: iproute2 runs the second line of a batch.
    const naive = `fdb replace ${macForAddress(PEER_IP)} dev ${overlayVxlanName(NET)} dst ${hostile} self permanent\n`;
    await inNetns(hostA, "sh", ["-c", `printf '%s' '${naive}' | bridge -batch -`]);
    expect(await fdb()).toContain(planted);
    await inNetns(hostA, "bridge", ["fdb", "del", planted, "dev", overlayVxlanName(NET)]);
    expect(await fdb()).not.toContain(planted);
  });

  it("is refused, naming the node, and no entry of it appears", async () => {
    const out = await apply(hostA, A, state(2, hostile));
    expect(out.refused.length).toBeGreaterThan(0);
    expect(out.refused.every((r) => r.nodeId === "nodeB" && /not an IPv4 address/.test(r.reason))).toBe(true);
    expect(out.changes.bridge.join("\n")).not.toContain(planted);
    const entries = await fdb();
    expect(entries).not.toContain(planted);
    expect(entries).not.toContain("192.168.79.66");
    // Nothing else of that line was kept either: no VXLAN entry points at B any more (what the
    // bridge itself learnt from frames is not ours), and A's own devices stay.
    expect(entries).not.toMatch(/ dst /);
    expect((await inNetns(hostA, "ip", ["link", "show", overlayBridgeName(NET)])).code).toBe(0);
  });
});
