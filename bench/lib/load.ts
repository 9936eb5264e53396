// Load loops shared by the benchmarks.
import { summarize } from './stats.js';

/** Closed loop: `concurrency` callers, `total` calls. */
export async function saturate(call: (id: number) => Promise<void>, total: number, concurrency: number) {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const id = next++;
        const s = performance.now();
        await call(id);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { rate: total / secs, ...summarize(lat) };
}
