// Whether this replica can serve right now, component by component: store, trust bundles, issuers,
// org policy and the audit log. /readyz renders it; details name components, never paths or secrets.
import type { AuditService } from './audit/log.js';
import type { ErrorCode } from './errors/index.js';
import type { TrustDomain, TrustStore } from './identity/trust.js';
import type { PolicyStore } from './policy/store.js';
import type { ChangeFeed } from './store/changes.js';
import type { Store } from './store/types.js';

export type ReadinessCheckName = 'store' | 'trust' | 'issuers' | 'policy' | 'audit';

export interface ReadinessCheck {
  readonly name: ReadinessCheckName;
  readonly ready: boolean;
  /** Why it is not ready (or what is degraded): names of components, never file paths or secrets. */
  readonly detail?: string;
  /** The registry code requests meet while this check fails. */
  readonly code?: ErrorCode;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: readonly ReadinessCheck[];
}

export interface ReadinessSources {
  readonly store: Store;
  readonly changes: ChangeFeed;
  readonly maxStalenessMs: number;
  readonly trust: TrustStore;
  readonly policies: PolicyStore;
  readonly audit: AuditService;
  /** A probe that takes longer counts as not ready (load balancers time out probes too). */
  readonly timeoutMs?: number;
}

const TIMEOUT = Symbol('timeout');

async function within<T>(ms: number, work: Promise<T>): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMEOUT), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An issuer as the probe may show it: no userinfo, query or fragment a URL could carry. */
function displayIssuer(issuer: string): string {
  try {
    const u = new URL(issuer);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'an issuer';
  }
}

/** Builds the readiness probe. Bundles that never loaded are retried by the probe itself, so a restored file turns ready without waiting for the refresh timer. */
export function createReadiness(s: ReadinessSources): () => Promise<Readiness> {
  const timeoutMs = s.timeoutMs ?? 2000;
  const retrying = new Map<TrustDomain, Promise<unknown>>();

  const retry = (d: TrustDomain): Promise<unknown> => {
    let p = retrying.get(d);
    if (p === undefined) {
      p = d.refresh().finally(() => retrying.delete(d));
      retrying.set(d, p);
    }
    return p;
  };

  const store = async (): Promise<ReadinessCheck> => {
    const pinged = await within(
      timeoutMs,
      s.store.ping().then(
        () => true,
        () => false,
      ),
    );
    if (pinged !== true)
      return { name: 'store', ready: false, code: 'ERR_STORE_UNAVAILABLE', detail: `the ${s.store.dialect} store is unreachable` };
    // A replica that cannot confirm it applied every change (revocations!) is not ready.
    const stalenessMs = s.changes.staleness();
    if (stalenessMs > s.maxStalenessMs)
      return { name: 'store', ready: false, code: 'ERR_REPLICA_STALE', detail: `changes are ${stalenessMs} ms stale` };
    return { name: 'store', ready: true };
  };

  const trust = async (): Promise<ReadinessCheck> => {
    const missing: string[] = [];
    const stale: string[] = [];
    for (const d of s.trust.domains.values()) {
      if (!d.loaded) await within(timeoutMs, retry(d));
      if (!d.loaded) missing.push(d.name);
      else if (d.lastError !== undefined) stale.push(d.name);
    }
    if (missing.length > 0)
      return {
        name: 'trust',
        ready: false,
        code: 'ERR_TRUST_UNAVAILABLE',
        detail: `no bundle loaded for trust domain ${missing.join(', ')}`,
      };
    // The last good bundle keeps verifying while refreshes fail: ready, but say so.
    if (stale.length > 0) return { name: 'trust', ready: true, detail: `serving the last good bundle of ${stale.join(', ')}` };
    return { name: 'trust', ready: true };
  };

  const issuers = async (): Promise<ReadinessCheck> => {
    const all = [...s.trust.workloadIssuers.values(), ...(s.trust.humanIssuer === undefined ? [] : [s.trust.humanIssuer])];
    const failed: string[] = [];
    for (const issuer of all) {
      const ok = await within(
        timeoutMs,
        issuer.keySet().then(
          () => true,
          () => false,
        ),
      );
      if (ok !== true) failed.push(displayIssuer(issuer.settings.issuer));
    }
    if (failed.length > 0)
      return { name: 'issuers', ready: false, code: 'ERR_TRUST_UNAVAILABLE', detail: `cannot discover issuer ${failed.join(', ')}` };
    return { name: 'issuers', ready: true };
  };

  const policy = async (): Promise<ReadinessCheck> =>
    s.policies.current === undefined
      ? { name: 'policy', ready: false, code: 'ERR_POLICY_UNAVAILABLE', detail: 'no valid org policy set is loaded' }
      : { name: 'policy', ready: true };

  const audit = async (): Promise<ReadinessCheck> => {
    const head = await within(
      timeoutMs,
      s.audit.head().then(
        () => true,
        () => false,
      ),
    );
    return head === true
      ? { name: 'audit', ready: true }
      : { name: 'audit', ready: false, code: 'ERR_AUDIT_UNAVAILABLE', detail: 'the audit log head cannot be read' };
  };

  return async () => {
    const checks = await Promise.all([store(), trust(), issuers(), policy(), audit()]);
    return { ready: checks.every((c) => c.ready), checks };
  };
}
