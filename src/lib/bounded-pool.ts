// A bounded concurrent pool: work over a list with at most `limit` promises in flight.

/** Runs `fn` over `items` with at most `limit` in flight; how many returned true. Rejections propagate after all settle. */
export async function countTrue<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<boolean>): Promise<number> {
  let next = 0;
  let n = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        if (await fn(item)) n++;
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < Math.min(limit, items.length); i++) workers.push(worker());
  await Promise.all(workers);
  if (failure !== undefined) throw failure.err;
  return n;
}
