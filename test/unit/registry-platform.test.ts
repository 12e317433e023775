import { describe, expect, it } from "vitest";
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
  type PlatformDescriptor,
} from "../../agent/engine/registry/platform.js";

const d = (digit: string, os: string, architecture: string, variant?: string): PlatformDescriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: `sha256:${digit.repeat(64)}`,
  size: 1,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});

describe("platforms", () => {
  it("parses and normalises as containerd does", () => {
    expect(parsePlatform("linux/arm64")).toEqual({ os: "linux", architecture: "arm64" });
    expect(parsePlatform("linux/arm64/v8")).toEqual({ os: "linux", architecture: "arm64" });
    expect(parsePlatform("linux/arm")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(parsePlatform("Linux/x86_64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(parsePlatform("aarch64")).toEqual({ os: "linux", architecture: "arm64" });
    expect(formatPlatform(parsePlatform("linux/arm/v6"))).toBe("linux/arm/v6");
    for (const bad of ["", "linux/", "/amd64", "a/b/c/d"])
      expect(() => parsePlatform(bad)).toThrow(/invalid platform/);
    expect(hostPlatform().os).toBe("linux");
    expect(normalizePlatform({ os: "linux", architecture: "amd64", variant: "v1" })).toEqual({
      os: "linux",
      architecture: "amd64",
    });
  });

  it("matches variants loosely unless both sides name one", () => {
    expect(
      platformMatches(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64", variant: "v8" }),
    ).toBe(true);
    expect(
      platformMatches(parsePlatform("linux/arm/v6"), { os: "linux", architecture: "arm", variant: "v7" }),
    ).toBe(false);
    expect(platformMatches(parsePlatform("linux/amd64"), { os: "windows", architecture: "amd64" })).toBe(
      false,
    );
  });
});

describe("choosing a manifest from an index", () => {
  const index = [
    { ...d("1", "unknown", "unknown"), annotations: { "vnd.docker.reference.type": "attestation-manifest" } },
    d("2", "linux", "arm", "v6"),
    d("3", "linux", "arm", "v7"),
    d("4", "linux", "amd64"),
    d("5", "linux", "arm64", "v8"),
    d("6", "windows", "amd64"),
  ];

  it("picks by os, architecture and variant; never an attestation", () => {
    expect(selectManifest(index, parsePlatform("linux/amd64")).digest).toBe(index[3].digest);
    expect(selectManifest(index, parsePlatform("linux/arm64")).digest).toBe(index[4].digest);
    expect(selectManifest(index, parsePlatform("linux/arm/v6")).digest).toBe(index[1].digest);
    expect(selectManifest(index, parsePlatform("linux/arm")).digest).toBe(index[2].digest);
    expect(selectManifest(index, parsePlatform("windows/amd64")).digest).toBe(index[5].digest);
    expect(
      selectManifest([d("7", "linux", "amd64"), d("8", "linux", "amd64")], parsePlatform("linux/amd64"))
        .digest,
    ).toBe(`sha256:${"7".repeat(64)}`);
  });

  it("says which platforms there are when none fits (404)", () => {
    let err: unknown;
    try {
      selectManifest(index, parsePlatform("linux/s390x"));
    } catch (e) {
      err = e;
    }
    expect((err as { status?: number }).status).toBe(404);
    expect((err as Error).message).toBe(
      "no matching manifest for linux/s390x in the manifest list entries (it has linux/arm/v6, linux/arm/v7, linux/amd64, linux/arm64/v8, windows/amd64)",
    );
  });
});
