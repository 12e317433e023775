// Test objects and assertions for manager-side unit tests (allocator, control API).
import { expect } from "vitest";
import type { NodeObject } from "../../manager/store/types.js";
import { ShoalError } from "../../shared/errors.js";

/** A worker node as the store holds it (no Meta: the store adds it). */
export function nodeObject(
  id: string,
  state: NodeObject["Status"]["State"] = "ready",
  hostname = id,
): Omit<NodeObject, "Meta"> {
  return {
    ID: id,
    Spec: { Role: "worker", Availability: "active" },
    Description: {
      Hostname: hostname,
      Platform: { Architecture: "x86_64", OS: "linux" },
      Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 32 },
    },
    Status: { State: state, Addr: `192.168.1.${id.length + 10}` },
  };
}

/** `p` fails with a ShoalError of `kind` whose message matches `message`. */
export async function expectError(p: Promise<unknown>, kind: string, message: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ShoalError);
  expect((e as ShoalError).kind).toBe(kind);
  expect((e as ShoalError).message).toMatch(message);
}
