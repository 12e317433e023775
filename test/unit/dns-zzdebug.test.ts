import { it } from "vitest";
import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";
import { UpstreamResolver } from "../../agent/engine/dns/upstream.js";
it("dbg", async () => {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  const resolver = new UpstreamResolver(() => [{ address: "127.0.0.1", port }], { timeoutMs: 30_000 });
  const q = dnsPacket.encode({ type: "query", id: 5, questions: [{ type: "A", name: "x" }] });
  const udp = resolver.forward(q, "udp");
  await new Promise((r) => setTimeout(r, 50));
  console.log("inflight", (resolver as unknown as { inFlight: Set<unknown> }).inFlight.size);
  resolver.close();
  console.log("closed");
  console.log(await udp);
  s.close();
}, 5000);
