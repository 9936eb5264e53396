// Latency statistics shared by the benchmarks.

/** The q-quantile (0..1) of samples, nearest-rank. */
export function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

export function summarize(samples: readonly number[]): { p50: number; p99: number; max: number; n: number } {
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), max: Math.max(...samples), n: samples.length };
}
