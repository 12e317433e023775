import type { FastifyReply } from "fastify";

/** Start a Docker-style JSON-lines progress response and return a writer for its messages. */
export function jsonLinesResponse(reply: FastifyReply): {
  write: (message: object) => void;
  end: () => void;
} {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "Content-Type": "application/json" });
  return {
    write: (message) => {
      res.write(JSON.stringify(message) + "\r\n");
    },
    end: () => {
      res.end();
    },
  };
}
