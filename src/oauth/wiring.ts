// Builds the identity, token and mandate services from the configuration (called by the broker's
// composition root): trust anchors, proof verification, signing keys, DPoP, the agent registry,
// mandates, the token verifier and the token exchange. Demo mode adds the development trust domain
// and two seeded agents.
import type { AgentInput } from '../agents/agent.js';
import { AgentRegistry } from '../agents/registry.js';
import type { RefusalRecorder } from '../audit/refusal-aggregator.js';
import type { AuditLog } from '../audit/types.js';
import type { Config } from '../config/load.js';
import { DEV_TRUST_DOMAIN, DevSpiffeAuthority } from '../identity/dev-spiffe.js';
import { OAuthClients } from '../identity/oauth-clients.js';
import { ProofVerifier } from '../identity/proofs.js';
import { bundleSource, OidcIssuer, TrustDomain, TrustStore } from '../identity/trust.js';
import type { Clock } from '../lib/clock.js';
import { MandateService } from '../mandates/service.js';
import type { PrincipalRepository } from '../principals/repository.js';
import type { SecretBox } from '../secrets/index.js';
import type { ChangeFeed } from '../store/changes.js';
import type { Store } from '../store/index.js';
import type { TemplateRegistry } from '../templates/registry.js';
import { AccessTokenIssuer } from './access-token.js';
import { AuthorizationRequests } from './authorization-code.js';
import { ClientAssertions, ClientGrants } from './client-credentials.js';
import { DpopVerifier } from './dpop.js';
import { OAUTH_PATHS } from './metadata.js';
import { RefreshTokens } from './refresh-tokens.js';
import { SigningKeys } from './signing-keys.js';
import { TokenExchange } from './token-exchange.js';
import { TokenVerifier } from './verify.js';

export interface IdentityServices {
  readonly trust: TrustStore;
  readonly proofs: ProofVerifier;
  readonly keys: SigningKeys;
  readonly dpop: DpopVerifier;
  readonly agents: AgentRegistry;
  readonly mandates: MandateService;
  readonly verifier: TokenVerifier;
  readonly exchange: TokenExchange;
  /** Interactive clients: registered and metadata-document clients, and their authorization requests. */
  readonly oauthClients: OAuthClients;
  readonly authorizationRequests: AuthorizationRequests;
  /** Refresh token families (RFC 7009 revocation reaches them here). */
  readonly refreshTokens: RefreshTokens;
  /** Our issuer URL (`iss` of access tokens, RFC 8414 `issuer`). */
  readonly issuer: string;
  /** Audience identity proofs must name. */
  readonly proofAudience: string;
  /** Development trust domain (demo mode only). */
  readonly devSpiffe: DevSpiffeAuthority | undefined;
  close(): Promise<void>;
}

export interface IdentityWiringInput {
  readonly config: Config;
  readonly publicUrl: string;
  readonly store: Store;
  readonly secrets: SecretBox;
  readonly clock: Clock;
  readonly changes: ChangeFeed;
  readonly audit: AuditLog | undefined;
  /** The task templates loaded with org policy (src/templates/), for mandates opened from one. */
  readonly templates?: () => TemplateRegistry | undefined;
  /** Counts refusals of unauthenticated token requests (one audit event per source and window). */
  readonly refusals?: RefusalRecorder;
  readonly principals: PrincipalRepository;
  /** The operator issuer, used for on-behalf-of human tokens unless identity.humanIssuer is set. */
  readonly operatorIssuer?: {
    issuer: string;
    audience: string;
    algorithms: readonly string[];
    jwks: URL | { keys: object[] } | 'discover';
  };
}

/**
 * How long a retired signing key stays in the JWKS: four times the longest lifetime of a token it
 * may have signed (plus leeway). That is the access-token TTL, or the lifetime of a per-mandate
 * upstream token (`leases.upstreams.*.maxTtlSeconds` of `mandate-token` leases, which never outlive
 * the longest mandate) when longer — otherwise an upstream verifying a still-valid lease token
 * against the JWKS after a rotation would find its key gone.
 */
export function retiredKeyPublishMs(config: Config): number {
  const ic = config.identity;
  let longest = ic.tokenTtlSeconds;
  for (const lease of Object.values(config.leases.upstreams)) {
    if (lease.type !== 'mandate-token') continue;
    const ttl = Math.min(lease.maxTtlSeconds, ic.maxMandateTtlSeconds);
    if (ttl > longest) longest = ttl;
  }
  return (longest + ic.leewaySeconds) * 1000 * 4;
}

export async function createIdentityServices(input: IdentityWiringInput): Promise<IdentityServices> {
  const { config, store, secrets, clock, changes, audit, principals } = input;
  const ic = config.identity;
  const issuer = input.publicUrl;
  const proofAudience = ic.audience ?? issuer;

  const trust = new TrustStore();
  for (const td of ic.trustDomains) {
    trust.addDomain(
      new TrustDomain({
        name: td.name,
        source: bundleSource(config.dataDir, td.bundleFile, td.bundleEndpointUrl),
        algorithms: td.algorithms,
        singleAudience: td.singleAudience,
        refreshSeconds: td.refreshSeconds,
      }),
    );
  }
  let devSpiffe: DevSpiffeAuthority | undefined;
  if (config.mode === 'demo' && !trust.domains.has(DEV_TRUST_DOMAIN)) {
    devSpiffe = await DevSpiffeAuthority.open(config.dataDir, clock);
    trust.addDomain(
      new TrustDomain({
        name: DEV_TRUST_DOMAIN,
        source: { kind: 'static', bundle: devSpiffe.bundle() },
        algorithms: ['ES256'],
        singleAudience: true,
        refreshSeconds: 300,
      }),
    );
  }
  for (const wi of ic.oidcIssuers) {
    trust.addWorkloadIssuer(
      new OidcIssuer({
        issuer: wi.issuer,
        audience: wi.audience ?? proofAudience,
        algorithms: wi.algorithms,
        jwks: wi.jwksUri ?? 'discover',
      }),
    );
  }
  const human = ic.humanIssuer;
  if (human !== undefined) {
    trust.humanIssuer = new OidcIssuer({
      issuer: human.issuer,
      audience: human.audience,
      algorithms: human.algorithms,
      jwks: human.jwksUri ?? 'discover',
    });
  } else if (input.operatorIssuer !== undefined) {
    const op = input.operatorIssuer;
    trust.humanIssuer = new OidcIssuer({
      issuer: op.issuer,
      audience: op.audience,
      algorithms: op.algorithms,
      jwks: op.jwks instanceof URL ? op.jwks.href : op.jwks,
    });
  }
  await trust.start();

  const keys = new SigningKeys({
    store,
    secrets,
    clock,
    rotateAfterMs: ic.keyRotationDays * 86_400_000,
    // Retired keys stay published well beyond the longest lifetime of a token they signed.
    publishRetiredMs: retiredKeyPublishMs(config),
  });
  await keys.ensureCurrent();
  // Nonces are bound to this replica (a random key per process), so DPoP replay is checked in memory.
  const dpop = new DpopVerifier({
    store,
    clock,
    maxAgeSeconds: ic.dpopMaxAgeSeconds,
    leewaySeconds: ic.leewaySeconds,
    requireNonce: ic.dpopNonce,
    requireResourceNonce: ic.dpopResourceNonce,
  });
  const agents = new AgentRegistry(store, principals, changes, clock);
  const mandates = new MandateService({
    store,
    changes,
    clock,
    audit,
    maxTtlSeconds: ic.maxMandateTtlSeconds,
    maxDelegationDepth: ic.maxDelegationDepth,
    ...(input.templates === undefined ? {} : { templates: input.templates }),
  });
  await mandates.start();
  // The resource audience of access tokens is the broker itself (its gateway endpoints).
  const verifier = new TokenVerifier({
    keys,
    mandates,
    agents,
    dpop,
    clock,
    issuer,
    audience: issuer,
    leewaySeconds: ic.leewaySeconds,
    assertCurrent: () => changes.assertCurrent(config.changes.maxStalenessMs),
  });
  const proofs = new ProofVerifier({ trust, clock, audience: proofAudience, leewaySeconds: ic.leewaySeconds });
  const refreshTokens = new RefreshTokens(store, clock);
  const interactive = config.interactiveClients;
  const oauthClients = new OAuthClients({
    store,
    clock,
    registration: interactive.registration,
    metadataDocuments: interactive.metadataDocuments,
  });
  const authorizationRequests = new AuthorizationRequests({
    store,
    clock,
    codeTtlSeconds: interactive.codeTtlSeconds,
    consentTtlSeconds: interactive.consentTtlSeconds,
  });
  const exchange = new TokenExchange({
    proofs,
    humanIssuer: trust.humanIssuer,
    agents,
    principals,
    mandates,
    tokens: new AccessTokenIssuer(keys, clock, issuer, issuer),
    verifier,
    dpop,
    refreshTokens,
    // RFC 7523 §3: a client assertion names the issuer or the token endpoint as its audience.
    clientAssertions: new ClientAssertions({
      proofs,
      store,
      clock,
      leewaySeconds: ic.leewaySeconds,
      audiences: [...new Set([proofAudience, issuer, `${issuer}${OAUTH_PATHS.token}`])],
    }),
    clientGrants: new ClientGrants(store, clock),
    ...(interactive.enabled ? { authorizationRequests } : {}),
    audit,
    ...(input.refusals === undefined ? {} : { refusals: input.refusals }),
    clock,
    tokenTtlSeconds: ic.tokenTtlSeconds,
    leewaySeconds: ic.leewaySeconds,
    dpopRequiredEnvironments: ic.dpopRequiredEnvironments,
    acceptedTargets: [issuer, `${issuer}/mcp`],
    maxGrantsPerMandate: ic.maxGrantsPerMandate,
    maxAuthorizationDetailsBytes: ic.maxAuthorizationDetailsBytes,
    maxAccessTokenBytes: ic.maxAccessTokenBytes,
  });
  if (config.mode === 'demo') await seedDemoAgents(agents);

  const sweep = setInterval(() => void mandates.sweepExpired().catch(() => {}), 30_000);
  sweep.unref();
  // Rotation is due by age; any replica may do it, the others pick the new key up here. The period
  // stays well below how long a retired key remains published, so no replica signs with a key
  // the others have already dropped.
  const rotation = setInterval(() => void keys.ensureCurrent().catch(() => {}), 60_000);
  rotation.unref();
  return {
    trust,
    proofs,
    keys,
    dpop,
    agents,
    mandates,
    verifier,
    exchange,
    oauthClients,
    authorizationRequests,
    refreshTokens,
    issuer,
    proofAudience,
    devSpiffe,
    close: async () => {
      clearInterval(sweep);
      clearInterval(rotation);
      trust.stop();
    },
  };
}

const helpdeskCeiling = {
  tools: [
    { tool: 'helpdesk.search_tickets' },
    { tool: 'helpdesk.get_customer' },
    { tool: 'helpdesk.propose_refund', args: { amountCents: { max: 50_000 } } },
    { tool: 'helpdesk.execute_refund', args: { amountCents: { max: 50_000 } } },
  ],
  delegable: true,
};

export const DEMO_AGENTS: readonly AgentInput[] = [
  {
    id: 'support-triage',
    displayName: 'Support triage agent',
    owner: 'bob',
    environment: 'production',
    identity: { spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/support-triage` },
    ceiling: helpdeskCeiling,
    taskTypes: ['support.refund', 'support.triage'],
    maxTtlSeconds: 3600,
  },
  {
    id: 'remediation',
    displayName: 'Remediation agent',
    owner: 'alice',
    environment: 'production',
    identity: { spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/remediation` },
    ceiling: helpdeskCeiling,
    taskTypes: ['support.refund', 'support.triage'],
    maxTtlSeconds: 3600,
    mayReceiveDelegation: true,
  },
];

async function seedDemoAgents(agents: AgentRegistry): Promise<void> {
  for (const a of DEMO_AGENTS) if ((await agents.get(a.id)) === undefined) await agents.register(a);
}
