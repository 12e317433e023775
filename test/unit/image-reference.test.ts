import { describe, expect, it } from "vitest";
import {
  familiarString,
  fullString,
  parseReference,
  parseTagReference,
  withDefaultTag,
} from "../../shared/reference.js";

describe("image references", () => {
  it.each([
    ["busybox", "docker.io", "library/busybox", "busybox:latest", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io", "library/busybox", "busybox:1.36", "docker.io/library/busybox:1.36"],
    [
      "docker.io/library/busybox",
      "docker.io",
      "library/busybox",
      "busybox:latest",
      "docker.io/library/busybox:latest",
    ],
    ["index.docker.io/user/app:v1", "docker.io", "user/app", "user/app:v1", "docker.io/user/app:v1"],
    ["user/app", "docker.io", "user/app", "user/app:latest", "docker.io/user/app:latest"],
    ["localhost:5000/a/b:tag", "localhost:5000", "a/b", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"],
    ["localhost/app", "localhost", "app", "localhost/app:latest", "localhost/app:latest"],
    [
      "registry.example.com/x_y/z-1.2",
      "registry.example.com",
      "x_y/z-1.2",
      "registry.example.com/x_y/z-1.2:latest",
      "registry.example.com/x_y/z-1.2:latest",
    ],
  ])("%s", (input, domain, path, familiar, full) => {
    const r = withDefaultTag(parseReference(input));
    expect(r.domain).toBe(domain);
    expect(r.path).toBe(path);
    expect(familiarString(r)).toBe(familiar);
    expect(fullString(r)).toBe(full);
  });

  it("parses digests and keeps tag and digest together", () => {
    const d = "sha256:" + "ab".repeat(32);
    expect(familiarString(parseReference(`busybox@${d}`))).toBe(`busybox@${d}`);
    expect(parseReference(`busybox:1@${d}`)).toEqual({
      domain: "docker.io",
      path: "library/busybox",
      tag: "1",
      digest: d,
    });
    expect(withDefaultTag(parseReference(`busybox@${d}`)).tag).toBeUndefined();
  });

  it.each([
    ["", "empty"],
    ["Busybox", "must be lowercase"],
    ["busybox:", "tag"],
    ["busybox:-x", "tag"],
    ["a//b", "empty path component"],
    ["a/b/", "empty path component"],
    ["bad name", "may only contain"],
    ["a__-b", "may only contain"],
    ["busybox@sha256:abc", "not a digest"],
    ["busybox@md5:" + "a".repeat(32), "only sha256"],
    ["a".repeat(64), "64-character hexadecimal"],
    ["x".repeat(256), "longer than 255"],
    ["exa_mple.com:5000/app", "not a valid host"],
  ])("refuses %j, saying %s", (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ status: 400 });
    expect((err as Error).message).toContain(why);
  });

  it("refuses a digest where a tag is needed", () => {
    expect(() => parseTagReference("x@sha256:" + "a".repeat(64))).toThrow(/cannot contain a digest/);
  });
});
