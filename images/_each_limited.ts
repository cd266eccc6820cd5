/** Bounded concurrency that waits for every task before reporting the first failure. @module */

/**
 * Runs `fn` over `items`, `limit` at a time. The first failure aborts the others (through the
 * signal each gets) and is thrown once every call has settled, so nothing is still writing.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const sig = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i, sig);
      } catch (e) {
        failure ??= { error: e };
        stop.abort(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
