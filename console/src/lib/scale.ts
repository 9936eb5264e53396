// Chart scales and labels, pure so they are tested outside the browser
// (test/console/console-lib.test.ts).

export interface Scale {
  /** The top of the axis: the highest tick, never below the largest value. */
  readonly top: number;
  /** Tick values from 0 to `top`, evenly spaced. */
  readonly ticks: readonly number[];
}

/**
 * A "nice" axis for values up to `max`: steps of 1, 2, 2.5 or 5 times a power of ten (about four
 * of them), and the top tick at or above `max`, so every point lies inside the plotted area.
 * With `integer` (counts), every tick is a whole number.
 */
export function niceScale(max: number, { integer = false }: { integer?: boolean } = {}): Scale {
  // Below 1e-9 (or not a number) the axis is 0..1: every such value still lies under the top.
  const m = Number.isFinite(max) && max > 1e-9 ? max : 1;
  const raw = m / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const factors = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = (factors.find((f) => norm <= f) ?? 10) * mag;
  if (integer) step = Math.max(1, Math.ceil(step));
  const at = (i: number) => Number((i * step).toPrecision(12));
  let count = Math.max(1, Math.ceil(m / step));
  // Rounding a tick to 12 digits must never put the top under the largest value.
  while (at(count) < m) count++;
  const ticks = Array.from({ length: count + 1 }, (_, i) => at(i));
  return { top: ticks[ticks.length - 1] ?? m, ticks };
}

/** A bucket width in human units: 300 → "5 min", 3600 → "1 h", 21600 → "6 h", 86400 → "1 day". */
export function humanDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s % 86_400 === 0) return s === 86_400 ? '1 day' : `${s / 86_400} days`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s >= 3600) return `${Math.round((s / 3600) * 10) / 10} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  if (s >= 60) return `${Math.round((s / 60) * 10) / 10} min`;
  return `${s} s`;
}
