// What every governance report is computed from and what it returns: typed rows plus a summary,
// over the store (indexed SQL aggregates, never the whole log in memory) and in-memory registries.
import type { Config } from '../config/load.js';
import type { LoadedPolicySet } from '../policy/engine.js';
import type { SqlExecutor } from '../store/types.js';
import type { CatalogEntry } from '../upstreams/catalog.js';

export const DAY_MS = 86_400_000;

/** Everything a report or live check may read. Built by the broker (HTTP) or by the CLI (store opened directly). */
export interface ReportContext {
  readonly db: SqlExecutor;
  readonly config: Config;
  /** Epoch milliseconds the report is computed at. */
  readonly now: number;
  /** The tool catalog (action classes and sensitivities after overrides). */
  readonly catalog: readonly CatalogEntry[];
  /** The active org policy set; undefined when none is loaded. */
  readonly policySet: LoadedPolicySet | undefined;
  /**
   * Salted HMACs of each value of an upstream's static credential (never the values), so credentials
   * shared between upstreams can be found; undefined when the upstream has none or it cannot be opened.
   */
  readonly credentialFingerprints?: (upstreamId: string) => readonly string[] | undefined;
}

/** Parameters every report accepts. */
export interface ReportParams {
  /** Start of the activity window (epoch ms). Default: 30 days before `now`. */
  readonly since?: number;
  /** Agents without activity for this many days are dormant. Default 30. */
  readonly dormantDays?: number;
  /** Restrict per-agent reports to one agent. */
  readonly agentId?: string;
}

export interface Column {
  readonly key: string;
  readonly label: string;
}

/** A computed report. Rows are plain JSON; cells that are objects are rendered as JSON text. */
export interface Report<R extends object = Record<string, unknown>> {
  readonly name: string;
  readonly title: string;
  readonly generatedAt: string;
  readonly window: { readonly since: string; readonly until: string };
  readonly columns: readonly Column[];
  readonly rows: readonly R[];
  readonly summary: Readonly<Record<string, string | number | boolean | null>>;
  /** How to read it, and what was approximated. */
  readonly notes: readonly string[];
}

export function windowOf(ctx: ReportContext, params: ReportParams): { since: number; until: number } {
  return { since: params.since ?? ctx.now - 30 * DAY_MS, until: ctx.now };
}

export function makeReport<R extends object>(
  ctx: ReportContext,
  params: ReportParams,
  parts: Omit<Report<R>, 'generatedAt' | 'window'>,
): Report<R> {
  const w = windowOf(ctx, params);
  return {
    ...parts,
    generatedAt: new Date(ctx.now).toISOString(),
    window: { since: new Date(w.since).toISOString(), until: new Date(w.until).toISOString() },
  };
}
