// Credential hygiene: the static upstream credentials (age, last change, values shared between
// upstreams, whether a per-mandate lease could replace them), and token, mandate and lease lifetimes.
import { iso, num, percentiles } from './sql.js';
import { DAY_MS, makeReport, type Report, type ReportContext, type ReportParams, windowOf } from './types.js';

/** A static credential unchanged for longer than this is reported stale. */
export const MAX_CREDENTIAL_AGE_DAYS = 90;

export type CredentialFinding = 'stale' | 'shared' | 'static_no_lease';

export interface CredentialRow {
  readonly upstreamId: string;
  readonly transport: string;
  /** Header or environment names injected (never values). */
  readonly injects: readonly string[];
  readonly createdAt: string;
  readonly ageDays: number;
  readonly lastChangedAt: string;
  readonly daysSinceChange: number;
  readonly sharedWith: readonly string[];
  readonly leaseProvider: string | null;
  readonly findings: readonly CredentialFinding[];
}

export async function credentialsReport(ctx: ReportContext, params: ReportParams = {}): Promise<Report<CredentialRow>> {
  const { since } = windowOf(ctx, params);
  const upstreams = await ctx.db.query<{ id: string; transport: string; credential_names: string; created_at: number; updated_at: number }>(
    'SELECT id, transport, credential_names, created_at, updated_at FROM upstreams WHERE credential_sealed IS NOT NULL ORDER BY id',
  );
  // Values shared between upstreams, by salted HMAC (the values themselves are never compared in clear here).
  const owners = new Map<string, Set<string>>();
  const prints = new Map<string, readonly string[]>();
  for (const u of upstreams) {
    const p = ctx.credentialFingerprints?.(u.id) ?? [];
    prints.set(u.id, p);
    for (const f of p) {
      let s = owners.get(f);
      if (s === undefined) {
        s = new Set();
        owners.set(f, s);
      }
      s.add(u.id);
    }
  }
  const leases = ctx.config.leases.upstreams as Readonly<Record<string, { type: string }>>;
  const rows: CredentialRow[] = upstreams.map((u) => {
    const names = JSON.parse(u.credential_names) as { headers?: string[]; env?: string[] };
    const shared = new Set<string>();
    for (const f of prints.get(u.id) ?? []) for (const other of owners.get(f) ?? []) if (other !== u.id) shared.add(other);
    const changed = Number(u.updated_at);
    const daysSinceChange = Math.floor((ctx.now - changed) / DAY_MS);
    const lease = leases[u.id]?.type ?? null;
    const findings: CredentialFinding[] = [];
    if (daysSinceChange > MAX_CREDENTIAL_AGE_DAYS) findings.push('stale');
    if (shared.size > 0) findings.push('shared');
    if (lease === null) findings.push('static_no_lease');
    return {
      upstreamId: u.id,
      transport: transportType(u.transport),
      injects: [...(names.headers ?? []).map((h) => `header:${h}`), ...(names.env ?? []).map((e) => `env:${e}`)],
      createdAt: iso(Number(u.created_at)) as string,
      ageDays: Math.floor((ctx.now - Number(u.created_at)) / DAY_MS),
      lastChangedAt: iso(changed) as string,
      daysSinceChange,
      sharedWith: [...shared].sort(),
      leaseProvider: lease,
      findings,
    };
  });
  const ttl = await percentiles(ctx.db, '(expires_at - created_at)', 'FROM mandates WHERE created_at >= ?', [since], [0.5, 0.95, 1]);
  const [longAgents] = await ctx.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM agent_profiles WHERE max_ttl_seconds > 86400');
  const [leaseRow] = await ctx.db.query<{ issued: number; live: number }>(
    `SELECT COUNT(*) AS issued, SUM(CASE WHEN status IN ('obtaining', 'active') THEN 1 ELSE 0 END) AS live FROM leases WHERE created_at >= ?`,
    [since],
  );
  const sec = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : Math.round(ms / 1000));
  const id = ctx.config.identity;
  return makeReport(ctx, params, {
    name: 'credentials',
    title: 'Credential hygiene',
    columns: [
      { key: 'upstreamId', label: 'Upstream' },
      { key: 'transport', label: 'Transport' },
      { key: 'injects', label: 'Injects' },
      { key: 'ageDays', label: 'Age (days)' },
      { key: 'lastChangedAt', label: 'Last changed' },
      { key: 'daysSinceChange', label: 'Days since change' },
      { key: 'sharedWith', label: 'Shared with' },
      { key: 'leaseProvider', label: 'Lease provider' },
      { key: 'findings', label: 'Findings' },
    ],
    rows,
    summary: {
      staticCredentials: rows.length,
      stale: rows.filter((r) => r.findings.includes('stale')).length,
      shared: rows.filter((r) => r.findings.includes('shared')).length,
      staticWithoutLease: rows.filter((r) => r.findings.includes('static_no_lease')).length,
      leaseUpstreams: Object.keys(leases).length,
      leasesIssuedInWindow: num(leaseRow?.issued),
      leasesLive: num(leaseRow?.live),
      accessTokenTtlSeconds: id.tokenTtlSeconds,
      maxMandateTtlSeconds: id.maxMandateTtlSeconds,
      mandatesInWindow: ttl.count,
      mandateTtlP50Seconds: sec(ttl.values[0]),
      mandateTtlP95Seconds: sec(ttl.values[1]),
      mandateTtlMaxSeconds: sec(ttl.values[2]),
      agentsAllowedOverOneDay: num(longAgents?.n),
    },
    notes: [
      `stale: the upstream record (and so possibly its credential) has not changed for more than ${MAX_CREDENTIAL_AGE_DAYS} days; "last changed" is the last update of the upstream record, an upper bound of the credential's age since upstream updates are not audited separately.`,
      'shared: at least one injected value is equal (by salted HMAC) to a value of another upstream.',
      'static_no_lease: calls reach this upstream with the static credential only; a lease provider (leases.upstreams) would give each mandate its own short-lived credential.',
      'Access tokens live identity.tokenTtlSeconds at most and never beyond their mandate; mandate lifetimes are expires_at − created_at of mandates opened in the window.',
    ],
  });
}

function transportType(text: string): string {
  try {
    const t = JSON.parse(text) as { type?: unknown };
    return typeof t.type === 'string' ? t.type : 'unknown';
  } catch {
    return 'unknown';
  }
}
