// Docker multiplexes stdout and stderr of a non-TTY container on one stream with an 8-byte
// header per frame: [stream, 0, 0, 0, size as uint32 big-endian]. The docker CLI demultiplexes it.

export const STDOUT = 1;
export const STDERR = 2;

export function stdcopyFrame(stream: "stdout" | "stderr", data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream === "stdout" ? STDOUT : STDERR;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}
