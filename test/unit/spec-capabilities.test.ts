import { describe, expect, it } from "vitest";
import {
  allCapabilities,
  applyCapAddDrop,
  capabilityEnvFrom,
  capabilityMask,
  DEFAULT_CAPABILITIES,
} from "../../agent/engine/runtime/capabilities.js";
import { ShoalError } from "../../shared/errors.js";

const env = capabilityEnvFrom(40, "000001ffffffffff");

describe("capabilities", () => {
  it("defaults to Docker's 14, whose mask is a80425fb", () => {
    expect([...DEFAULT_CAPABILITIES].sort()).toEqual(
      [
        "CAP_AUDIT_WRITE",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_MKNOD",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
      ].sort(),
    );
    expect(capabilityMask(DEFAULT_CAPABILITIES)).toBe("00000000a80425fb");
  });

  it("adds and drops with or without the CAP_ prefix, in any case", () => {
    const caps = applyCapAddDrop(
      DEFAULT_CAPABILITIES,
      ["net_admin", "CAP_SYS_PTRACE"],
      ["Cap_Chown", "mknod"],
      env,
    );
    expect(caps).toContain("CAP_NET_ADMIN");
    expect(caps).toContain("CAP_SYS_PTRACE");
    expect(caps).not.toContain("CAP_CHOWN");
    expect(caps).not.toContain("CAP_MKNOD");
    expect(caps).toHaveLength(14);
  });

  it("does not list a capability twice", () => {
    expect(applyCapAddDrop(DEFAULT_CAPABILITIES, ["CHOWN"], [], env)).toHaveLength(14);
  });

  it("--cap-drop ALL keeps only what is added", () => {
    expect(applyCapAddDrop(DEFAULT_CAPABILITIES, ["NET_BIND_SERVICE"], ["ALL"], env)).toEqual([
      "CAP_NET_BIND_SERVICE",
    ]);
    expect(applyCapAddDrop(DEFAULT_CAPABILITIES, null, ["all"], env)).toEqual([]);
  });

  it("--cap-add ALL gives everything available except what is dropped", () => {
    const caps = applyCapAddDrop(DEFAULT_CAPABILITIES, ["ALL"], ["SYS_ADMIN"], env);
    expect(caps).toHaveLength(40);
    expect(caps).not.toContain("CAP_SYS_ADMIN");
  });

  it("rejects an unknown capability naming the flag and the value", () => {
    expect(() => applyCapAddDrop(DEFAULT_CAPABILITIES, ["FOO"], [], env)).toThrow(
      /--cap-add.*"FOO".*unknown capability/,
    );
    expect(() => applyCapAddDrop(DEFAULT_CAPABILITIES, [], ["bar"], env)).toThrow(/--cap-drop.*"bar"/);
    try {
      applyCapAddDrop(DEFAULT_CAPABILITIES, ["FOO"], [], env);
    } catch (e) {
      expect(e).toBeInstanceOf(ShoalError);
      expect((e as ShoalError).status).toBe(400);
    }
  });

  it("knows only what the kernel knows, and offers only what the daemon holds", () => {
    const oldKernel = capabilityEnvFrom(37, undefined);
    expect(allCapabilities(oldKernel)).toHaveLength(38);
    expect(() => applyCapAddDrop([], ["BPF"], [], oldKernel)).toThrow(/not supported by your kernel/);
    // This lab machine: everything up to 40 except CAP_SYS_RESOURCE (bit 24).
    const noSysResource = capabilityEnvFrom(40, "000001fffeffffff");
    expect(allCapabilities(noSysResource)).not.toContain("CAP_SYS_RESOURCE");
    expect(allCapabilities(noSysResource)).toHaveLength(40);
  });
});
