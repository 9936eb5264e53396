// Latency statistics shared by the benchmarks.

/** The q-quantile (0..1) of samples, nearest-rank; `sorted` skips the copy and sort of samples already in order. */
export function percentile(samples: readonly number[], q: number, sorted = false): number {
  if (samples.length === 0) return Number.NaN;
  const s = sorted ? samples : [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

export function summarize(samples: readonly number[]): { p50: number; p99: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 0.5, true), p99: percentile(s, 0.99, true), max: s[s.length - 1] ?? Number.NaN, n: s.length };
}
