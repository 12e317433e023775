// Run work on a list with at most `limit` at a time, stopping (starting nothing more) at the
// first failure. Results of the items that succeeded come back too, so the caller can undo them.
export interface Settled<R> {
  results: Array<R | undefined>;
  error?: unknown;
  failed: boolean;
}

export async function runLimited<T, R>(
  items: readonly T[],
  limit: number,
  worker: (item: T, index: number) => Promise<R>,
  onFirstError?: (e: unknown) => void,
): Promise<Settled<R>> {
  const results: Array<R | undefined> = new Array<R | undefined>(items.length);
  let next = 0;
  let failed = false;
  let error: unknown;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await worker(items[i], i);
      } catch (e) {
        if (!failed) {
          failed = true;
          error = e;
          onFirstError?.(e);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return { results, error, failed };
}
