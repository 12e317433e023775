export interface Endpoint {
  method: string;
  path: string;
  operationId?: string;
}
export interface EndpointStatus {
  status: "supported" | "partly" | "refused";
  note?: string;
  /** How the compatibility test probes it when the plain request would do harm or never end. */
  probe?: { body?: unknown; query?: string; why?: string };
}
export const repoRoot: string;
export const endpointsFile: string;
export const statusFile: string;
export const docFile: string;
export function keyOf(e: Endpoint): string;
export function checkStatuses(endpoints: Endpoint[], statuses: Record<string, EndpointStatus>): string[];
export function renderCompatTable(endpoints: Endpoint[], statuses: Record<string, EndpointStatus>): string;
export function loadInputs(): Promise<{ endpoints: Endpoint[]; statuses: Record<string, EndpointStatus> }>;
