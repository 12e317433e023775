// --mac-address: the MAC the container's interface gets on a bridge network. API 1.44 clients
// send it per endpoint (EndpointsConfig[net].MacAddress); older ones as Config.MacAddress,
// which dockerd moves onto the endpoint of the container's NetworkMode. Kept on the endpoint
// (DesiredMacAddress) so every start uses it again; unset, the MAC follows the address.
import { invalid } from "../../../shared/errors.js";
import type { EndpointSettings } from "../container/types.js";

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

export function checkMacAddress(mac: string, network: string): string {
  if (!MAC.test(mac))
    throw invalid(
      `invalid --mac-address ${mac}: use six hex pairs such as 02:42:ac:11:00:02 (network ${network})`,
    );
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1)
    throw invalid(`invalid --mac-address ${mac}: it is a multicast address; the first byte must be even`);
  return mac.toLowerCase();
}

type Endpoints = Record<string, Partial<EndpointSettings>>;

/**
 * The endpoints with Config.MacAddress moved onto the one for `mode` (dockerd's rule: both set
 * and different is a 400). Host, none and container modes have no interface of their own.
 */
export function withConfigMacAddress(
  mode: string,
  configMac: string | undefined,
  endpoints: Endpoints | null | undefined,
): Endpoints | null | undefined {
  if (!configMac) return endpoints;
  if (mode === "host" || mode === "none" || mode.startsWith("container:"))
    throw invalid(
      `conflicting options: --mac-address and --network ${mode}: the container has no interface of its own`,
    );
  // The docker CLI names the endpoint of a plain `run` "default", as NetworkMode does.
  const key = mode || "default";
  const ep = endpoints?.[key];
  if (ep?.MacAddress && ep.MacAddress.toLowerCase() !== configMac.toLowerCase())
    throw invalid(
      "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty",
    );
  return { ...(endpoints ?? {}), [key]: { ...(ep ?? {}), MacAddress: configMac } };
}
