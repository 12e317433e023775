// runCommand: a helper that exits without reading its input is a failed command, not a crash.
import { describe, expect, it } from "vitest";
import { CommandError, runCommand } from "../../shared/command.js";

describe("runCommand", () => {
  it("rejects with the exit code when the child exits before reading its input (no EPIPE crash)", async () => {
    // More than a pipe buffer, so the write is still going when the child is gone.
    const input = "x".repeat(4 * 1024 * 1024);
    const err = await runCommand("sh", ["-c", "exit 3"], { input }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).exitCode).toBe(3);
  });

  it("passes input to a child that reads it", async () => {
    const r = await runCommand("sh", ["-c", "wc -c"], { input: "hello" });
    expect(r.stdout.trim()).toBe("5");
  });
});
