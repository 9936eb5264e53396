// The leases service (`broker.leases`): builds one provider per configured upstream
// (`leases.upstreams`), the LeaseService that obtains, injects, revokes and reaps, and the verifier
// of Mandate-minted upstream tokens (used by the introspection endpoint).
import type { AuditLog } from '../audit/types.js';
import type { Config } from '../config/load.js';
import type { Clock } from '../lib/clock.js';
import type { MandateService } from '../mandates/service.js';
import type { SigningKeys } from '../oauth/signing-keys.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { ChangeFeed } from '../store/changes.js';
import type { Store } from '../store/types.js';
import type { UpstreamRegistry } from '../upstreams/registry.js';
import type { LeaseConfig } from './lease.js';
import type { LeaseProvider } from './provider.js';
import { MandateTokenProvider, UpstreamTokenVerifier } from './providers/mandate-token.js';
import { OAuthClientCredentialsProvider } from './providers/oauth-client-credentials.js';
import { PostgresRoleProvider } from './providers/postgres-role.js';
import { type LeaseBinding, LeaseService } from './service.js';

export type { CredentialInjector, CredentialRequest, InjectedCredential } from './injection.js';
export { leaseFailureCode, mergeCredentials } from './injection.js';
export type { Lease, LeaseConfig, LeaseProviderType, LeaseStatus } from './lease.js';
export type { LeaseProvider, LeaseRequest, ObtainedLease, RevokeRequest } from './provider.js';
export { UpstreamTokenVerifier } from './providers/mandate-token.js';
export { LeaseService } from './service.js';

export interface Leases {
  /** Obtains, injects (the CredentialInjector seam), lists, revokes and reaps leases. */
  readonly service: LeaseService;
  /** Verifies Mandate-minted upstream tokens (introspection answers `active` only when this passes). */
  readonly upstreamTokens: UpstreamTokenVerifier;
  close(): Promise<void>;
}

export interface LeasesOptions {
  readonly config: Config;
  readonly store: Store;
  readonly clock: Clock;
  readonly secrets: SecretBox;
  readonly changes: ChangeFeed;
  readonly audit: AuditLog;
  readonly mandates: MandateService;
  readonly registry: Pick<UpstreamRegistry, 'connection'>;
  readonly keys: SigningKeys;
  /** Our issuer URL (`iss` of minted upstream tokens). */
  readonly issuer: string;
}

/** One provider per configured upstream. */
export function createProvider(
  config: LeaseConfig,
  o: Omit<LeasesOptions, 'config' | 'registry'> & { obtainTimeoutMs: number },
): LeaseProvider {
  switch (config.type) {
    case 'postgres-role':
      return new PostgresRoleProvider(config);
    case 'mandate-token':
      return new MandateTokenProvider(config, { keys: o.keys, clock: o.clock, issuer: o.issuer, mandates: o.mandates });
    case 'oauth-client-credentials':
      return new OAuthClientCredentialsProvider(config, o.clock, o.obtainTimeoutMs);
  }
}

export function createLeases(o: LeasesOptions): Leases {
  const lc = o.config.leases;
  const bindings = new Map<string, LeaseBinding>();
  for (const [upstreamId, config] of Object.entries(lc.upstreams)) {
    bindings.set(upstreamId, { config, provider: createProvider(config, { ...o, obtainTimeoutMs: lc.obtainTimeoutMs }) });
  }
  const service = new LeaseService({
    store: o.store,
    clock: o.clock,
    secrets: o.secrets,
    changes: o.changes,
    audit: o.audit,
    mandates: o.mandates,
    registry: o.registry,
    bindings,
    obtainTimeoutMs: lc.obtainTimeoutMs,
    reapIntervalMs: lc.reapIntervalMs,
  });
  const upstreamTokens = new UpstreamTokenVerifier({
    keys: o.keys,
    clock: o.clock,
    issuer: o.issuer,
    mandates: o.mandates,
    audiences: Object.values(lc.upstreams).flatMap((c) => (c.type === 'mandate-token' ? [c.audience] : [])),
    leewaySeconds: o.config.identity.leewaySeconds,
  });
  service.start();
  const offOpened = o.mandates.onOpened((m) => void service.obtainEager(m).catch(() => {}));
  return {
    service,
    upstreamTokens,
    async close() {
      offOpened();
      await service.close();
    },
  };
}
