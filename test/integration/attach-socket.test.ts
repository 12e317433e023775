// conmon's attach socket and control fifo as the engine uses them: stdin in, output out with its
// stream, a half-close ending the input, and a terminal resized through the ctl fifo.
import { afterAll, expect, it } from "vitest";
import { makeContainerEnv } from "../helpers/container-env.js";
import { connectAttachSocket, resizeTerminal } from "../../agent/engine/runtime/attach-socket.js";

const env = await makeContainerEnv();
afterAll(() => env.cleanup());

it("pipes stdin and stdout through conmon's attach socket", async () => {
  const engine = await env.open();
  const { Id } = await engine.create({
    config: { Image: "busybox", Cmd: ["cat"], OpenStdin: true, StdinOnce: true, AttachStdin: true },
    hostConfig: { NetworkMode: "none" },
  });
  await engine.start(Id);
  const sock = await connectAttachSocket(engine.attachSocket(Id));
  let out = "";
  sock.onOutput((o) => (out += o.stream + ":" + o.data.toString()));
  sock.write(Buffer.from("hello\n"));
  await new Promise((r) => setTimeout(r, 500));
  sock.endInput();
  const res = await engine.wait(Id, "not-running");
  await sock.ended;
  expect(out).toBe("stdout:hello\n");
  expect(res.StatusCode).toBe(0);
});

it("tty: output and resize", async () => {
  const engine = await env.open();
  const { Id } = await engine.create({
    config: { Image: "busybox", Cmd: ["sh"], OpenStdin: true, Tty: true },
    hostConfig: { NetworkMode: "none" },
  });
  await engine.start(Id);
  const rec = engine.get(Id);
  const sock = await connectAttachSocket(engine.attachSocket(Id));
  let out = "";
  sock.onOutput((o) => (out += o.data.toString()));
  await resizeTerminal(rec.BundlePath, 33, 77);
  sock.write(Buffer.from("stty size; exit 4\n"));
  const res = await engine.wait(Id, "not-running");
  expect(out).toContain("33 77");
  expect(res.StatusCode).toBe(4);
});
