// What `swarm init` and `swarm join` may ask for. The docker CLI sends every field of its
// request, most at their zero value; a field given a value shoal does not act on is refused
// with the flag that set it, never dropped: a user who passed --default-addr-pool or
// --data-path-port must not believe the cluster uses it.
import { invalid } from "../../shared/errors.js";

type Body = Record<string, unknown>;

/** Zero values as the docker CLI sends them for flags not given. */
export function isZeroValue(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.values(v as Body).every(isZeroValue);
  return false;
}

/** A copy without the zero-valued fields, so "not given" and "given as 0" read alike. */
export function withoutZeroValues(v: unknown): unknown {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return isZeroValue(v) ? undefined : v;
  const out: Body = {};
  for (const [k, x] of Object.entries(v as Body)) {
    const kept = withoutZeroValues(x);
    if (kept !== undefined) out[k] = kept;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function asBody(body: unknown, what: string): Body {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body))
    throw invalid(`the ${what} request must be a JSON object`);
  return body as Body;
}

function refuseUnknownFields(b: Body, known: readonly string[], what: string): void {
  for (const key of Object.keys(b))
    if (!known.includes(key))
      throw invalid(
        `${what}: unknown field ${key}: shoal does not know it, so it would be ignored; leave it out`,
      );
}

/** The VXLAN port shoal's overlay networks use (agent/engine/network/overlay/names.ts). */
const DATA_PATH_PORT = 4789;

/** Refusals both init and join share. */
function refuseCommon(b: Body, what: string): void {
  if (!isZeroValue(b.DataPathAddr))
    throw invalid(
      `${what}: --data-path-addr is not supported by shoal: overlay traffic goes over the advertise address; leave it out`,
    );
  const availability = b.Availability;
  if (!isZeroValue(availability) && availability !== "active")
    throw invalid(
      `${what}: --availability ${String(availability)} is not supported at ${what}: the node starts active; run \`node update --availability ${String(availability)} NODE\` once it is in the cluster`,
    );
}

const INIT_FIELDS = [
  "ListenAddr",
  "AdvertiseAddr",
  "DataPathAddr",
  "DataPathPort",
  "ForceNewCluster",
  "Spec",
  "AutoLockManagers",
  "Availability",
  "DefaultAddrPool",
  "SubnetSize",
] as const;

export interface InitRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  /** The cluster spec as given, zero values left out (Labels, --task-history-limit, --dispatcher-heartbeat, --cert-expiry). */
  Spec?: unknown;
}

/** Check a `swarm init` body; the result holds only what shoal acts on. */
export function checkInitRequest(body: unknown): InitRequest {
  const b = asBody(body, "swarm init");
  refuseUnknownFields(b, INIT_FIELDS, "swarm init");
  refuseCommon(b, "swarm init");
  const spec = b.Spec as { EncryptionConfig?: { AutoLockManagers?: unknown } } | undefined;
  if (b.AutoLockManagers === true || spec?.EncryptionConfig?.AutoLockManagers === true)
    throw invalid(
      "--autolock is not supported by shoal yet (there is no swarm unlock): the Raft log is encrypted with a key kept on the manager; init without --autolock",
    );
  if (!isZeroValue(b.DataPathPort) && b.DataPathPort !== DATA_PATH_PORT)
    throw invalid(
      `swarm init: --data-path-port ${String(b.DataPathPort)} is not supported by shoal: overlay networks use UDP port ${DATA_PATH_PORT}; leave it out`,
    );
  if (b.ForceNewCluster === true)
    throw invalid(
      "swarm init: --force-new-cluster is not supported by shoal: a manager cannot yet be recovered alone from its Raft log; leave it out",
    );
  if (!isZeroValue(b.DefaultAddrPool))
    throw invalid(
      "swarm init: --default-addr-pool is not supported by shoal: overlay networks get their subnets from shoal's own pool (or --subnet at network create); leave it out",
    );
  if (!isZeroValue(b.SubnetSize) && b.SubnetSize !== 24)
    throw invalid(
      `swarm init: --default-addr-pool-mask-length ${String(b.SubnetSize)} is not supported by shoal: overlay subnets are /24 unless --subnet is given; leave it out`,
    );
  for (const key of ["ListenAddr", "AdvertiseAddr"] as const)
    if (b[key] !== undefined && b[key] !== null && typeof b[key] !== "string")
      throw invalid(`swarm init: ${key} must be a string (host:port)`);
  return {
    ListenAddr: (b.ListenAddr as string | undefined) || undefined,
    AdvertiseAddr: (b.AdvertiseAddr as string | undefined) || undefined,
    Spec: withoutZeroValues(b.Spec),
  };
}

const JOIN_FIELDS = [
  "ListenAddr",
  "AdvertiseAddr",
  "DataPathAddr",
  "RemoteAddrs",
  "JoinToken",
  "Availability",
] as const;

/** Check a `swarm join` body; the fields shoal acts on are returned unchanged. */
export function checkJoinRequest<T>(body: unknown): T {
  const b = asBody(body, "swarm join");
  refuseUnknownFields(b, JOIN_FIELDS, "swarm join");
  refuseCommon(b, "swarm join");
  return b as T;
}
