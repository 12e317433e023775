// A tiny TCP proxy for partitioning real processes: one per directed link (member i → member j),
// so a link can be cut in one direction only. Modes:
//   pass  — bytes flow both ways;
//   drop  — every connection is reset and new ones are accepted then reset at once (a host that
//           answers with RST: the sender notices quickly);
//   stall — connections stay open but no byte moves (a black hole: the sender notices only by its
//           own timeouts); on pass again the stalled bytes flow, late, as TCP would deliver them.
import net from "node:net";

export type LinkMode = "pass" | "drop" | "stall";

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private modeNow: LinkMode = "pass";

  constructor(
    readonly listenPort: number,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.listenPort, "127.0.0.1", () => resolve());
    });
  }

  get mode(): LinkMode {
    return this.modeNow;
  }

  setMode(mode: LinkMode): void {
    this.modeNow = mode;
    for (const p of this.pairs) {
      if (mode === "drop") this.destroy(p);
      else if (mode === "stall") {
        p.client.pause();
        p.upstream.pause();
      } else {
        p.client.resume();
        p.upstream.resume();
      }
    }
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) this.destroy(p);
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    client.on("error", () => {});
    if (this.modeNow === "drop") {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    upstream.on("error", () => {});
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    // pipe() would resume a paused socket on its own; forwarding by hand keeps stall in control.
    const forward = (from: net.Socket, to: net.Socket): void => {
      from.on("data", (chunk: Buffer) => {
        if (!to.write(chunk) && this.modeNow === "pass") {
          from.pause();
          to.once("drain", () => {
            if (this.modeNow === "pass") from.resume();
          });
        }
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => this.destroy(pair);
    client.on("close", close);
    upstream.on("close", close);
    if (this.modeNow === "stall") {
      client.pause();
      upstream.pause();
    }
  }

  private destroy(p: Pair): void {
    if (!this.pairs.delete(p)) return;
    p.client.resetAndDestroy();
    p.upstream.resetAndDestroy();
  }
}
