// What another node may have this node run on its own Engine API socket through the Node
// service's Forward call. Only two uses exist: a follower manager sends a cluster write to the
// leader (api/forward.ts), and a manager reads a task's container logs on the node that runs it
// (api/logs/remote.ts). Anything else — membership (`/swarm/init|join|leave|unlock`), a container
// create, an exec, a network or volume or image of this node's own engine — is this node's
// operator's business and is never taken from the network.

/** The cluster API as api/cluster.ts registers it (the leader answers these for a follower). */
const CLUSTER_WRITE_OR_READ = /^\/(?:nodes|services|tasks|secrets|configs)(?:\/[^/]+)*$/;

/** A task's container logs (a manager reading them where the task runs). */
const CONTAINER_LOGS = /^\/containers\/[^/]+\/logs$/;

/** Characters a request line may carry as is; anything else is refused rather than escaped. */
const URL_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+$/;

/** `path` without an optional `/v1.NN` prefix, as the engine's router sees it. */
function unversioned(path: string): string {
  return path.replace(/^\/v\d+\.\d+(?=\/)/, "");
}

/** Whether a segment is one a router or a proxy could read as something else (`..`, `%2e`, empty). */
function oddSegment(segment: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return true;
  }
  return decoded === "" || decoded === "." || decoded === ".." || /[/\\]/.test(decoded);
}

/** Whether a Forward call may run `method url` on this node's socket. */
export function forwardablePath(method: string, url: string): boolean {
  if (!URL_CHARS.test(url) || !url.startsWith("/")) return false;
  // fastify ignores one trailing slash; so does this.
  const raw = url.split("?", 1)[0].replace(/(?<=.)\/$/, "");
  if (raw.slice(1).split("/").some(oddSegment)) return false;
  const path = unversioned(raw);
  switch (method) {
    case "GET":
      return path === "/swarm" || CLUSTER_WRITE_OR_READ.test(path) || CONTAINER_LOGS.test(path);
    case "POST":
      return path === "/swarm/update" || CLUSTER_WRITE_OR_READ.test(path);
    case "DELETE":
      return CLUSTER_WRITE_OR_READ.test(path);
    default:
      return false;
  }
}

/** Why a Forward call was refused, for its caller. */
export function forwardRefusal(method: string, url: string): string {
  const shown = JSON.stringify(`${method} ${url}`.slice(0, 120));
  return `a Forward call runs only a manager's cluster API request or task log read on another node; ${shown} is refused`;
}
