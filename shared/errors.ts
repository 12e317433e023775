// Errors a user can see. Each carries the HTTP status the Engine API answers with, so the
// API layer never has to guess, and a message that names the object and the fix.

export type ErrorKind =
  | "invalid"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "not_modified"
  | "internal"
  | "not_implemented"
  | "unavailable";

const statusOf: Record<ErrorKind, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  not_modified: 304,
  internal: 500,
  not_implemented: 501,
  unavailable: 503,
};

export class ShoalError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = "ShoalError";
  }
  get status(): number {
    return statusOf[this.kind];
  }
}

export const invalid = (message: string): ShoalError => new ShoalError("invalid", message);
export const notFound = (message: string): ShoalError => new ShoalError("not_found", message);
export const conflict = (message: string): ShoalError => new ShoalError("conflict", message);
export const forbidden = (message: string): ShoalError => new ShoalError("forbidden", message);
export const unauthorized = (message: string): ShoalError => new ShoalError("unauthorized", message);
/** 503: the node cannot do this in its current role (not a manager, no leader). */
export const unavailable = (message: string): ShoalError => new ShoalError("unavailable", message);
export const notModified = (message: string): ShoalError => new ShoalError("not_modified", message);
/** 501: the object exists but this operation does not apply to it (Docker's NotImplemented). */
export const notImplemented = (message: string): ShoalError => new ShoalError("not_implemented", message);
export const internal = (message: string, cause?: unknown): ShoalError =>
  new ShoalError("internal", message, { cause });

/**
 * 503 for a write that may or may not have been applied: it was proposed, then timed out or
 * the leadership changed before it committed. Retrying blindly may apply it twice (or get a 409
 * for a create that did go through): check the object first.
 */
export class OutcomeUnknownError extends ShoalError {
  constructor(reason: string) {
    super(
      "unavailable",
      `outcome unknown: check before retrying (e.g. \`shoal service ls\`): the change was proposed but its commit could not be confirmed (${reason})`,
    );
    this.name = "OutcomeUnknownError";
  }
}

export function isShoalError(e: unknown): e is ShoalError {
  return e instanceof ShoalError;
}

/** The errno code of a Node system error, or undefined. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e) {
    const code = (e as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
