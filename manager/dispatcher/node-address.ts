// A node's underlay address, as the dispatcher records it (node.Status.Addr). Every node's
// overlay rules are written from it (`ip`/`bridge -batch` lines, nftables peer sets), so
// whatever is stored must be a plain IPv4 address: a worker that reports
// "10.0.0.1\nfdb add ..." for itself must not get a second command into every host's batch.
// Swarmkit takes the address from the connection; so do we, except where the connection cannot
// say (the manager's own agent on loopback), where the node's reported address is used once it
// has passed the same check.
import { isIP } from "node:net";
import { invalid } from "../../shared/errors.js";

/** The IP part of a gRPC peer string ("10.0.0.1:40000", "::ffff:10.0.0.1:40000", "[::1]:40000"). */
export function peerIp(peer: string): string | undefined {
  let host = peer.trim();
  if (host.startsWith("ipv4:") || host.startsWith("ipv6:")) host = host.slice(5);
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) host = bracketed[1];
  else if (isIP(host) === 0) {
    const colon = host.lastIndexOf(":");
    if (colon > 0 && /^\d+$/.test(host.slice(colon + 1))) host = host.slice(0, colon);
  }
  if (/^::ffff:/i.test(host) && isIP(host.slice(7)) === 4) host = host.slice(7);
  return isIP(host) === 0 ? undefined : host;
}

/** Loopback and unspecified addresses say where a connection came from on this host only. */
function isLocalOnly(ip: string): boolean {
  return ip.startsWith("127.") || ip === "0.0.0.0" || ip === "::1" || ip === "::";
}

/**
 * Check an address a node reported for itself; the error names the node and what to fix. Shoal's
 * overlays are IPv4 only, so an IPv6 address is refused too (the agents could not use it).
 */
export function checkReportedAddress(nodeId: string, reported: string): string {
  if (isIP(reported) === 4) return reported;
  const why =
    isIP(reported) === 6
      ? "is IPv6; shoal's overlay underlay is IPv4 only"
      : "is not an IPv4 address (a hostname, a port or any other text is not accepted)";
  throw invalid(
    `node ${nodeId}: its reported address ${JSON.stringify(reported)} ${why}: set the node's --advertise-addr to its IPv4 address`,
  );
}

/**
 * The address to record for a node: the connection's peer address when it is a usable IPv4
 * address from another host; otherwise the reported one, checked; otherwise undefined (keep what
 * is stored: a peer on loopback with nothing reported says nothing of the node's underlay). A reported address that fails the check is refused even when the peer would do:
 * a node that sends one is misconfigured or attacking, and either way must be told.
 */
export function nodeAddress(nodeId: string, peer: string, reported: string | undefined): string | undefined {
  const checked = reported ? checkReportedAddress(nodeId, reported) : undefined;
  const fromPeer = peerIp(peer);
  if (fromPeer && isIP(fromPeer) === 4 && !isLocalOnly(fromPeer)) return fromPeer;
  return checked;
}
