import { notFound, type ShoalError } from "../shared/errors.js";

// The one answer for a request no route of shoal's serves: a 404 (dockerd's answer to a path it
// has no route for) whose message names the endpoint and says shoal does not implement it, so a
// user can tell "no such object" from "no such feature". docs/engine-api-compat.md lists them.

const GENERIC = "shoal does not implement";

export function unimplementedMessage(method: string, url: string): string {
  const path = url.split("?")[0];
  return `page not found: ${GENERIC} ${method} ${path} (it is not part of the shoal Engine API; see docs/engine-api-compat.md)`;
}

export const unimplemented = (method: string, url: string): ShoalError =>
  notFound(unimplementedMessage(method, url));

/** Whether an error message is this generic answer (the compatibility test tells routes apart by it). */
export const isUnimplementedMessage = (message: string): boolean => message.includes(GENERIC);
