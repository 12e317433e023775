// Names and constants of shoal's overlay devices. Every device this driver makes or removes
// carries one of these prefixes, so nothing else on the host (eth0, other programs' bridges or
// VXLANs, shoal's own bridge networks) can ever be touched by an apply.
import { createHash } from "node:crypto";

/** The per-network Linux bridge: the local containers' gateway, where DNS answers for them. */
const OVERLAY_BRIDGE_PREFIX = "shov";
/** The per-network VXLAN device, a port of the bridge. */
const OVERLAY_VXLAN_PREFIX = "shox";
/** IANA's VXLAN port, as Docker uses. */
export const VXLAN_PORT = 4789;
/** 1500 less the 50 bytes of VXLAN encapsulation: bridges, VXLANs and container veths alike. */
export const OVERLAY_MTU = 1450;

/** Ten hex digits naming a network: its id's own when it starts with them, else a hash of it. */
export function networkTag(networkId: string): string {
  const lower = networkId.toLowerCase();
  if (/^[0-9a-f]{10}/.test(lower)) return lower.slice(0, 10);
  return createHash("sha256").update(networkId).digest("hex").slice(0, 10);
}

/** `shov` + 10 hex: 14 characters, under Linux's 15. */
export function overlayBridgeName(networkId: string): string {
  return `${OVERLAY_BRIDGE_PREFIX}${networkTag(networkId)}`;
}

export function overlayVxlanName(networkId: string): string {
  return `${OVERLAY_VXLAN_PREFIX}${networkTag(networkId)}`;
}

export function isOverlayBridgeName(name: string): boolean {
  return name.startsWith(OVERLAY_BRIDGE_PREFIX) && name.length === OVERLAY_BRIDGE_PREFIX.length + 10;
}

export function isOverlayVxlanName(name: string): boolean {
  return name.startsWith(OVERLAY_VXLAN_PREFIX) && name.length === OVERLAY_VXLAN_PREFIX.length + 10;
}

/** The routing mesh's table, beside the engine's own (`shoal` → `shoal_mesh`). */
export function meshTableName(firewallTable: string): string {
  return `${firewallTable}_mesh`;
}

/** The table in each container's namespace that balances connections to service VIPs. */
export const LB_TABLE = "shoal_lb";
