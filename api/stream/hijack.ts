import type { FastifyReply, FastifyRequest } from "fastify";
import type { Socket } from "node:net";

/** The bits of Node's HTTP parser a hijack has to take off the socket (node:_http_server). */
interface NodeHttpParser {
  _consumed?: boolean;
  unconsume?: () => void;
}

/**
 * Take the raw connection over for attach, the way dockerd does: answer
 * `101 UPGRADED` when the client asked to upgrade (the docker CLI does), or a plain 200
 * raw-stream response otherwise, then hand the socket to the caller.
 */
export function hijack(request: FastifyRequest, reply: FastifyReply): Socket {
  reply.hijack();
  const socket = request.raw.socket as Socket;
  const upgrade = (request.headers.upgrade ?? "").length > 0;
  const head = upgrade
    ? "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    : "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n";
  socket.write(head);
  // The docker CLI half-closes its side at once when it has no stdin to send. Node's HTTP
  // server would answer that by ending the connection, so its 'end' handling is taken away:
  // the stream lives until the output ends or the client closes for good.
  socket.removeAllListeners("end");
  // The client's stdin follows on the same connection. Without an Upgrade header Node's HTTP
  // parser still reads the socket (straight from its handle) and would answer those bytes with
  // a 400; take it off, as Node itself does for an upgrade.
  const withParser = socket as Socket & { parser?: NodeHttpParser | null };
  const parser = withParser.parser;
  if (parser?._consumed) {
    parser.unconsume?.();
    parser._consumed = false;
  }
  socket.removeAllListeners("data");
  withParser.parser = null;
  // Held until the caller listens: bytes (and the half-close) the client sends meanwhile, while
  // an attach waits for the container to start, would otherwise be dropped. The caller resumes.
  socket.pause();
  socket.setTimeout(0);
  socket.on("error", () => undefined);
  return socket;
}
