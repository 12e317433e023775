import { isShoalError } from "../../shared/errors.js";

/** A write that lost a version race is read again and retried: another writer changed the object. */
export async function retryConflicts<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !isShoalError(e) || e.kind !== "conflict") throw e;
    }
  }
}
