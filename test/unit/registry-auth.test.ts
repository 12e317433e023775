import { describe, expect, it } from "vitest";
import {
  mergeScopes,
  parseChallenges,
  pickChallenge,
  repositoryScope,
  scopesCover,
} from "../../agent/engine/registry/auth.js";
import {
  authKeyFor,
  decodeRegistryAuth,
  dockerHubAuthKey,
  encodeRegistryAuth,
  registryHostOf,
} from "../../shared/registry-auth.js";

describe("WWW-Authenticate challenges", () => {
  it("parses a distribution Bearer challenge", () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
    ).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/busybox:pull",
        },
      },
    ]);
  });

  it("parses Basic, several challenges in one header, spaces and unquoted values", () => {
    const got = parseChallenges(
      'Basic realm="shoal test", Bearer realm=https://t.example/token , service = reg',
    );
    expect(got).toEqual([
      { scheme: "basic", params: { realm: "shoal test" } },
      { scheme: "bearer", params: { realm: "https://t.example/token", service: "reg" } },
    ]);
    expect(pickChallenge(got)?.scheme).toBe("bearer");
  });

  it("keeps commas and escaped quotes inside quoted values; names are case-insensitive", () => {
    const [c] = parseChallenges(
      'BEARER Realm="https://a/t", Scope="repository:a/b:pull,push", Error="say \\"no\\""',
    );
    expect(c.scheme).toBe("bearer");
    expect(c.params).toEqual({ realm: "https://a/t", scope: "repository:a/b:pull,push", error: 'say "no"' });
  });

  it("reads several header values and tolerates junk", () => {
    expect(parseChallenges(["Basic realm=x", "Negotiate"]).map((c) => c.scheme)).toEqual([
      "basic",
      "negotiate",
    ]);
    expect(parseChallenges("")).toEqual([]);
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('Bearer realm="unterminated').map((c) => c.params.realm)).toEqual([
      "unterminated",
    ]);
    expect(pickChallenge(parseChallenges("Negotiate abc"))).toBeUndefined();
  });
});

describe("token scopes", () => {
  it("merges actions per resource, sorted, so they can key a token cache", () => {
    expect(
      mergeScopes([
        repositoryScope("team/app", ["push"]),
        "repository:team/app:pull",
        "repository:base/img:pull registry:catalog:*",
      ]),
    ).toEqual(["registry:catalog:*", "repository:base/img:pull", "repository:team/app:pull,push"]);
    expect(scopesCover(["repository:a:pull,push"], ["repository:a:pull"])).toBe(true);
    expect(scopesCover(["repository:a:pull"], ["repository:a:push"])).toBe(false);
  });
});

describe("X-Registry-Auth and registry names", () => {
  it("round-trips the docker CLI's base64url JSON", () => {
    const header = encodeRegistryAuth({
      username: "alice",
      password: "p+/=?",
      serveraddress: "127.0.0.1:5000",
    });
    expect(header).not.toMatch(/[+/]/);
    expect(decodeRegistryAuth(header)).toEqual({
      username: "alice",
      password: "p+/=?",
      serveraddress: "127.0.0.1:5000",
    });
  });

  it("accepts standard base64, padding, an auth field, and treats {} as anonymous", () => {
    const std = Buffer.from(JSON.stringify({ auth: Buffer.from("bob:pw").toString("base64") })).toString(
      "base64",
    );
    expect(decodeRegistryAuth(std)).toMatchObject({ username: "bob", password: "pw" });
    expect(decodeRegistryAuth(Buffer.from("{}").toString("base64"))).toBeUndefined();
    expect(decodeRegistryAuth("")).toBeUndefined();
    expect(decodeRegistryAuth(undefined)).toBeUndefined();
    expect(() => decodeRegistryAuth("not base64!")).toThrow(/invalid X-Registry-Auth header/);
    expect(() => decodeRegistryAuth(Buffer.from("[1]").toString("base64"))).toThrow(/expected a JSON object/);
  });

  it("normalises server addresses as the docker CLI's keys spell them", () => {
    expect(registryHostOf("https://index.docker.io/v1/")).toBe("docker.io");
    expect(registryHostOf(undefined)).toBe("docker.io");
    expect(registryHostOf("registry-1.docker.io")).toBe("docker.io");
    expect(registryHostOf("http://127.0.0.1:5000/v2/")).toBe("127.0.0.1:5000");
    expect(registryHostOf("Registry.Example.com")).toBe("registry.example.com");
    expect(authKeyFor("docker.io")).toBe(dockerHubAuthKey);
    expect(authKeyFor("127.0.0.1:5000")).toBe("127.0.0.1:5000");
  });
});
