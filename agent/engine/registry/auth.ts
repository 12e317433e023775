// Registry authentication: the `WWW-Authenticate` challenges of RFC 7235 (Bearer with
// realm/service/scope as the distribution token spec uses them, and Basic), and the scopes a
// token is asked for ("repository:team/app:pull,push").

export interface Challenge {
  /** Lower-case scheme: "bearer", "basic". */
  scheme: string;
  /** Parameters with lower-case names: realm, service, scope, error. */
  params: Record<string, string>;
}

/** Credentials for one registry, from the API's X-Registry-Auth. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (a login answered with an IdentityToken). */
  identityToken?: string;
  /** A bearer token to send as is. */
  registryToken?: string;
}

const tokenChar = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parse one or more `WWW-Authenticate` values. Several challenges may share one header
 * (`Basic realm="x", Bearer realm="y",service="z"`); quoted values may hold commas and escapes.
 * Malformed parts are skipped rather than failing the whole header.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  return values.flatMap(parseOne);
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && tokenChar.test(s[i])) i++;
    return s.slice(start, i);
  };
  // Unquoted values should be tokens; be lenient (URLs appear unquoted in the wild).
  const readBare = (): string => {
    const start = i;
    while (i < s.length && s[i] !== "," && s[i] !== " " && s[i] !== "\t") i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let v = "";
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      v += s[i++];
    }
    i++; // closing quote (or past the end)
    return v;
  };
  let current: Challenge | undefined;
  while (i < s.length) {
    skipSpace();
    if (i >= s.length) break;
    if (s[i] === ",") {
      i++;
      continue;
    }
    const name = readToken();
    if (name === "") {
      i++; // a character no grammar allows here: skip it
      continue;
    }
    skipSpace();
    if (current && s[i] === "=") {
      // name=value: a parameter of the current challenge
      i++;
      skipSpace();
      current.params[name.toLowerCase()] = s[i] === '"' ? readQuoted() : readBare();
      continue;
    }
    // A token not followed by "=" starts a new challenge (its scheme).
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}

/** The challenge shoal answers: Bearer preferred over Basic, as Docker does. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
}

/** "repository:team/app:pull,push" for a repository path and actions. */
export function repositoryScope(path: string, actions: string[]): string {
  return `repository:${path}:${actions.join(",")}`;
}

/**
 * Merge scopes naming the same resource ("repository:a:pull" + "repository:a:push" →
 * "repository:a:pull,push"); the result is sorted so it can key a token cache.
 */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes.flatMap((s) => s.split(" "))) {
    if (scope === "") continue;
    const cut = scope.lastIndexOf(":");
    if (cut <= 0) {
      byResource.set(scope, byResource.get(scope) ?? new Set());
      continue;
    }
    const resource = scope.slice(0, cut);
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const a of scope.slice(cut + 1).split(",")) if (a !== "") actions.add(a);
    byResource.set(resource, actions);
  }
  return [...byResource]
    .map(([resource, actions]) =>
      actions.size > 0 ? `${resource}:${[...actions].sort().join(",")}` : resource,
    )
    .sort();
}

/** Whether `have` grants everything `want` asks for. */
export function scopesCover(have: string[], want: string[]): boolean {
  const merged = mergeScopes([...have, ...want]);
  const before = mergeScopes(have);
  return merged.length === before.length && merged.every((s, i) => s === before[i]);
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
