// Small SVG charts (no chart library): stacked bars (parts of one whole per time bucket), grouped
// bars (separate counts side by side) and a line with points. The y axis ends on its top tick,
// at or above the largest value, and counts get whole-number ticks (lib/scale.ts).
import { niceScale, type Scale } from '../lib/scale';

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly values: readonly (number | null)[];
}

const W = 560;
const H = 200;
const PAD = { l: 40, r: 10, t: 10, b: 28 };

function Axes({ labels, scale, unit }: { labels: readonly string[]; scale: Scale; unit?: string }) {
  const plotH = H - PAD.t - PAD.b;
  const every = Math.max(1, Math.ceil(labels.length / 8));
  return (
    <g fontSize={11} fill="#57606a">
      {scale.ticks.map((t) => {
        const y = PAD.t + plotH - (t / scale.top) * plotH;
        return (
          <g key={t} data-tick={t}>
            <line x1={PAD.l} x2={W - PAD.r} y1={y} y2={y} stroke="#eaeef2" />
            <text x={PAD.l - 6} y={y + 4} textAnchor="end">
              {t}
              {unit ?? ''}
            </text>
          </g>
        );
      })}
      {labels.map((l, i) =>
        i % every === 0 ? (
          // biome-ignore lint/suspicious/noArrayIndexKey: buckets are positional
          <text key={`${l}-${i}`} x={PAD.l + ((i + 0.5) * (W - PAD.l - PAD.r)) / labels.length} y={H - 8} textAnchor="middle">
            {l}
          </text>
        ) : null,
      )}
    </g>
  );
}

export function StackedBars({ title, labels, series }: { title: string; labels: readonly string[]; series: readonly Series[] }) {
  const totals = labels.map((_, i) => series.reduce((n, s) => n + (s.values[i] ?? 0), 0));
  const scale = niceScale(Math.max(0, ...totals), { integer: true });
  const max = scale.top;
  const plotW = W - PAD.l - PAD.r;
  const plotH = H - PAD.t - PAD.b;
  const bw = plotW / Math.max(1, labels.length);
  return (
    <figure>
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title}: ${series.map((s) => `${s.label} ${s.values.reduce<number>((a, b) => a + (b ?? 0), 0)}`).join(', ')}`}
        style={{ width: '100%', height: 'auto' }}
      >
        <Axes labels={labels} scale={scale} />
        {labels.map((l, i) => {
          let y = PAD.t + plotH;
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: buckets are positional
            <g key={`${l}-${i}`}>
              {series.map((s) => {
                const v = s.values[i] ?? 0;
                const h = (v / max) * plotH;
                y -= h;
                return v > 0 ? (
                  <rect key={s.label} x={PAD.l + i * bw + bw * 0.15} y={y} width={bw * 0.7} height={h} fill={s.color}>
                    <title>{`${l}: ${s.label} ${v}`}</title>
                  </rect>
                ) : null;
              })}
            </g>
          );
        })}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

/** One bar per series in each bucket, side by side: for counts that are not parts of one total. */
export function GroupedBars({ title, labels, series }: { title: string; labels: readonly string[]; series: readonly Series[] }) {
  const scale = niceScale(Math.max(0, ...series.flatMap((s) => s.values.map((v) => v ?? 0))), { integer: true });
  const plotW = W - PAD.l - PAD.r;
  const plotH = H - PAD.t - PAD.b;
  const bw = plotW / Math.max(1, labels.length);
  const inner = (bw * 0.8) / Math.max(1, series.length);
  return (
    <figure>
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title}: ${series.map((s) => `${s.label} ${s.values.reduce<number>((a, b) => a + (b ?? 0), 0)}`).join(', ')}`}
        style={{ width: '100%', height: 'auto' }}
      >
        <Axes labels={labels} scale={scale} />
        {labels.map((l, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: buckets are positional
          <g key={`${l}-${i}`}>
            {series.map((s, k) => {
              const v = s.values[i] ?? 0;
              const h = (v / scale.top) * plotH;
              return v > 0 ? (
                <rect
                  key={s.label}
                  data-series={s.label}
                  x={PAD.l + i * bw + bw * 0.1 + k * inner}
                  y={PAD.t + plotH - h}
                  width={inner * 0.9}
                  height={h}
                  fill={s.color}
                >
                  <title>{`${l}: ${s.label} ${v}`}</title>
                </rect>
              ) : null;
            })}
          </g>
        ))}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

export function LineChart({
  title,
  labels,
  series,
  unit,
}: {
  title: string;
  labels: readonly string[];
  series: readonly Series[];
  unit?: string;
}) {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const scale = niceScale(Math.max(0, ...all));
  const max = scale.top;
  const plotW = W - PAD.l - PAD.r;
  const plotH = H - PAD.t - PAD.b;
  const x = (i: number) => PAD.l + ((i + 0.5) * plotW) / Math.max(1, labels.length);
  const y = (v: number) => PAD.t + plotH - (v / max) * plotH;
  return (
    <figure>
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title}${all.length === 0 ? ': no data' : ''}`}
        style={{ width: '100%', height: 'auto' }}
      >
        <Axes labels={labels} scale={scale} {...(unit === undefined ? {} : { unit })} />
        {series.map((s) => {
          const pts = s.values.map((v, i) => (v === null ? null : ([x(i), y(v)] as const))).filter((p) => p !== null);
          return (
            <g key={s.label}>
              <polyline points={pts.map(([a, b]) => `${a},${b}`).join(' ')} fill="none" stroke={s.color} strokeWidth={2} />
              {pts.map(([a, b], i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: points are positional
                <circle key={i} cx={a} cy={b} r={3.5} fill={s.color} />
              ))}
            </g>
          );
        })}
        {all.length === 0 ? (
          <text x={W / 2} y={H / 2} textAnchor="middle" fill="#57606a" fontSize={13}>
            no decided approvals in this window
          </text>
        ) : null}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

function Legend({ series }: { series: readonly Series[] }) {
  return (
    <ul style={{ display: 'flex', gap: '1rem', listStyle: 'none', padding: 0, margin: '.25rem 0 0', fontSize: '.85rem' }}>
      {series.map((s) => (
        <li key={s.label}>
          <span
            aria-hidden="true"
            style={{ display: 'inline-block', width: 10, height: 10, background: s.color, marginRight: 4, borderRadius: 2 }}
          />
          {s.label}
        </li>
      ))}
    </ul>
  );
}
