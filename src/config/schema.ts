// The configuration schema: every key, its type, its default and why, in one place.
// docs/configuration.md is generated from this file (`npm run docs:config`) and a test fails when
// it is stale. Objects are strict: an unknown key is an error naming its path.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);

// Per-replica counters (in memory): N replicas behind a balancer let a source through N times.
const perWindow = (fallback: number, what: string) => z.number().int().min(1).max(10_000_000).default(fallback).describe(what);

const rateLimit = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Refuse floods with 429 (ERR_RATE_LIMITED / OAuth `slow_down`) and Retry-After.'),
    windowMs: z.number().int().min(1000).max(3_600_000).default(60_000).describe('Length of one rate-limit window.'),
    tokenEndpoint: perWindow(
      3000,
      'Token endpoint requests per client address and window (every request counts: none is authenticated yet).',
    ),
    authzen: perWindow(60_000, 'AuthZEN requests (/access/v1/*) per client address and window.'),
    unauthenticated: perWindow(
      1200,
      'Refused authentications (401) per client address and window; past it, every request from that address gets 429 until the window ends.',
    ),
  })
  .prefault({})
  .describe('Rate limits per client address (req.ip; set trustProxy behind a proxy). Health probes are never limited.');

const server = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').describe('Address to listen on. Loopback by default: expose deliberately.'),
    port: port.default(8080).describe('TCP port to listen on; 0 picks a free port.'),
    publicUrl: z.url().optional().describe('External base URL (issuer, metadata, console links). Defaults to http://HOST:PORT.'),
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024)
      .describe('Largest accepted request body; larger bodies get 413 ERR_BODY_TOO_LARGE.'),
    trustProxy: z.boolean().default(false).describe('Trust X-Forwarded-* headers (only behind your own proxy).'),
    tls: z
      .strictObject({
        certFile: z.string().min(1).describe('PEM certificate chain of the server (relative to the config file).'),
        keyFile: z.string().min(1).describe('PEM private key of the server (relative to the config file).'),
        requestClientCertificate: z
          .boolean()
          .default(true)
          .describe(
            'Ask clients for a certificate, so agents can authenticate with an X.509-SVID (verified against the trust bundles, not a CA store).',
          ),
      })
      .optional()
      .describe('Serve HTTPS (and mTLS for X.509-SVIDs) instead of plain HTTP.'),
    drainMs: z
      .number()
      .int()
      .min(0)
      .max(120_000)
      .default(0)
      .describe(
        'On SIGTERM, answer /readyz with 503 for this long before closing, so a load balancer stops routing here (use ~5000 behind one).',
      ),
    shutdownGraceMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('On SIGTERM, how long in-flight requests may take before the process exits.'),
    rateLimit,
  })
  .prefault({})
  .describe('The HTTP listener.');

const sqlite = z
  .strictObject({
    path: z.string().min(1).optional().describe('SQLite database file. Defaults to DATA_DIR/mandate.db. The folder is created if missing.'),
    busyTimeoutMs: z.number().int().min(0).default(5000).describe('How long a writer waits for the file lock.'),
    writerThread: z
      .boolean()
      .default(true)
      .describe(
        'Commit hot-path writes (audit events, new mandates) in a worker thread, off the event loop. Turn off when the broker has a single core, or shares its cores with busy neighbours: the thread then only adds hand-offs.',
      ),
  })
  .prefault({});

const postgres = z
  .strictObject({
    url: z.string().optional().describe('PostgreSQL connection URL. Secret: prefer the MANDATE_DATABASE_URL environment variable.'),
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lowercase SQL identifier')
      .default('public')
      .describe('Schema holding Mandate tables; created if missing.'),
    poolMax: z.number().int().min(1).max(200).default(10).describe('Largest number of pooled connections per replica.'),
    connectTimeoutMs: z.number().int().min(100).default(5000).describe('Give up connecting after this long.'),
  })
  .prefault({});

const store = z
  .strictObject({
    driver: z
      .enum(['sqlite', 'postgres'])
      .default('sqlite')
      .describe('sqlite: embedded, one process. postgres: shared by any number of replicas.'),
    sqlite,
    postgres,
  })
  .prefault({})
  .describe('Where state lives.');

const operatorIssuer = z.strictObject({
  issuer: z.url().describe('OIDC issuer of human operators (exact `iss`).'),
  audience: z.string().min(1).describe('Required `aud` of operator tokens.'),
  jwksUri: z.url().optional().describe('JWKS URL; defaults to discovery from the issuer.'),
  rolesClaim: z.string().min(1).default('roles').describe('Claim holding the operator roles (array or space-separated).'),
  algorithms: z
    .array(z.enum(['EdDSA', 'ES256', 'ES384', 'RS256', 'PS256']))
    .min(1)
    .default(['EdDSA', 'ES256', 'RS256'])
    .describe('Accepted signature algorithms; anything else is rejected before verification.'),
  clockToleranceSeconds: z.number().int().min(0).max(300).default(30).describe('Leeway for exp/nbf/iat.'),
});

const operators = z
  .strictObject({
    issuer: operatorIssuer.optional().describe('Human operator identity provider. Demo mode uses the development issuer.'),
    bootstrapTokenSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'hex SHA-256')
      .optional()
      .describe(
        'SHA-256 (hex) of a bootstrap admin token for first setup. Or set MANDATE_BOOTSTRAP_TOKEN; the token itself never goes in this file.',
      ),
  })
  .prefault({});

const changes = z
  .strictObject({
    pollIntervalMs: z
      .number()
      .int()
      .min(50)
      .max(60_000)
      .default(1000)
      .describe('Catch-up interval of the change feed: the longest a lost notification can delay a revocation on another replica.'),
    maxStalenessMs: z
      .number()
      .int()
      .min(100)
      .default(5000)
      .describe('A replica that has not confirmed it is current for this long reports not ready and fails closed.'),
  })
  .prefault({});

const jwsAlgorithm = z.enum(['EdDSA', 'ES256', 'ES384', 'RS256', 'PS256']);

const spiffeTrustDomain = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9._-]{1,255}$/, 'a SPIFFE trust domain name (lowercase letters, digits, . _ -)')
    .describe('Trust domain name, e.g. `prod.example.org`; a JWT-SVID is only checked against its own domain.'),
  bundleFile: z
    .string()
    .min(1)
    .optional()
    .describe('SPIFFE bundle (JWKS with `use`) on disk, relative to dataDir; re-read on every refresh.'),
  bundleEndpointUrl: z.url().optional().describe('SPIFFE bundle endpoint URL (https_web profile) serving the bundle JWKS.'),
  refreshSeconds: z
    .number()
    .int()
    .min(5)
    .max(86_400)
    .default(300)
    .describe('Refresh interval when the bundle has no `spiffe_refresh_hint` (the hint wins, bounded below by 5 s).'),
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512']))
    .min(1)
    .default(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'])
    .describe('JWT-SVID algorithms accepted from this domain (a subset of the JWT-SVID spec list); checked before any key lookup.'),
  singleAudience: z
    .boolean()
    .default(true)
    .describe('Reject JWT-SVIDs naming more than one audience (the SPIFFE spec recommends single-audience SVIDs).'),
});

const oidcWorkloadIssuer = z.strictObject({
  issuer: z.url().describe('Exact `iss` of workload tokens (Kubernetes service-account issuer, CI OIDC issuer, ...).'),
  jwksUri: z.url().optional().describe('JWKS URL; defaults to OpenID discovery from the issuer.'),
  audience: z.string().min(1).optional().describe('Required `aud`; defaults to identity.audience.'),
  algorithms: z.array(jwsAlgorithm).min(1).default(['RS256', 'ES256', 'EdDSA']).describe('Accepted signature algorithms.'),
});

const humanIssuer = z.strictObject({
  issuer: z.url().describe('Issuer of human tokens accepted as the on-behalf-of party of a mandate.'),
  audience: z.string().min(1).describe('Required `aud` of those tokens.'),
  jwksUri: z.url().optional().describe('JWKS URL; defaults to OpenID discovery.'),
  algorithms: z.array(jwsAlgorithm).min(1).default(['EdDSA', 'ES256', 'RS256']).describe('Accepted signature algorithms.'),
});

const identity = z
  .strictObject({
    audience: z
      .string()
      .min(1)
      .optional()
      .describe('Audience identity proofs must name (JWT-SVID `aud`, workload token `aud`). Defaults to the public URL.'),
    leewaySeconds: z.number().int().min(0).max(120).default(30).describe('Clock leeway for exp/nbf/iat of proofs, tokens and DPoP.'),
    trustDomains: z.array(spiffeTrustDomain).default([]).describe('SPIFFE trust domains whose JWT-SVIDs are accepted.'),
    oidcIssuers: z.array(oidcWorkloadIssuer).default([]).describe('OIDC workload token issuers; identity is the iss+sub pair.'),
    humanIssuer: humanIssuer
      .optional()
      .describe('Issuer of on-behalf-of human tokens. Defaults to the operator issuer (the development issuer in demo mode).'),
    tokenTtlSeconds: z
      .number()
      .int()
      .min(10)
      .max(3600)
      .default(300)
      .describe('Lifetime of access tokens; never beyond the mandate expiry.'),
    keyRotationDays: z.number().int().min(1).max(365).default(30).describe('Age after which a new signing key is created and published.'),
    maxMandateTtlSeconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 86_400)
      .default(86_400)
      .describe('Upper bound of any mandate TTL; an agent profile may set a lower one.'),
    maxDelegationDepth: z.number().int().min(0).max(10).default(3).describe('Deepest allowed delegation (a root mandate has depth 0).'),
    dpopRequiredEnvironments: z
      .array(z.string().min(1))
      .default([])
      .describe('Environments whose mandates always need DPoP-bound tokens (besides agents that require it).'),
    dpopNonce: z.boolean().default(false).describe('Require a server nonce in DPoP proofs at the token endpoint (RFC 9449 §8).'),
    dpopResourceNonce: z
      .boolean()
      .default(true)
      .describe(
        'Require a server nonce in DPoP proofs at resources (/mcp and the agent API, RFC 9449 §9). Nonces are bound to the replica that issued them, so replay is checked in the memory of that replica alone; false accepts proofs without a nonce and records each proof id in the store (a write per call).',
      ),
    dpopMaxAgeSeconds: z.number().int().min(5).max(600).default(60).describe('How old a DPoP proof `iat` may be.'),
    maxGrantsPerMandate: z
      .number()
      .int()
      .min(1)
      .max(500)
      .default(64)
      .describe('Most tool grants one requested mandate may hold; more is refused with invalid_authorization_details.'),
    maxAuthorizationDetailsBytes: z
      .number()
      .int()
      .min(512)
      .max(64 * 1024)
      .default(8192)
      .describe('Largest `authorization_details` parameter (UTF-8 bytes) a token request may carry; larger is refused before parsing.'),
    maxAccessTokenBytes: z
      .number()
      .int()
      .min(1024)
      .max(12 * 1024)
      .default(8192)
      .describe(
        'Largest access token the broker signs. Tokens travel in the Authorization header and Node refuses request headers over 16 KiB in total (431), so the bound leaves room for the DPoP proof and other headers.',
      ),
  })
  .prefault({});

const audit = z
  .strictObject({
    origin: z
      .string()
      .regex(/^[^\s+—]{1,255}$/, 'a schema-less URL without spaces or +')
      .optional()
      .describe('Checkpoint origin line and signing key name (C2SP signed-note). Defaults to HOST/audit from the public URL.'),
    checkpointIntervalMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('Sign a checkpoint this often when the log grew; 0 signs only on demand.'),
    maxBatch: z.number().int().min(1).max(10_000).default(1024).describe('Most events group-committed in one transaction (one fsync).'),
    publicEntries: z
      .boolean()
      .default(false)
      .describe('Serve /audit/log/tile/entries/* without authentication. Entries hold event bodies: leave off unless the log is public.'),
    refusalWindowMs: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(60_000)
      .describe('Refusals of unauthenticated requests are counted per source and written as one `refusal.aggregated` event per window.'),
    refusalMaxSources: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe('Sources counted separately per window; beyond it, further sources are counted together under `other`.'),
  })
  .prefault({});

const approvalWebhook = z.strictObject({
  url: z
    .url()
    .describe(
      'Where approval notifications are POSTed (JSON, signed per Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).',
    ),
  timeoutMs: z.number().int().min(100).max(60_000).default(5000).describe('Abandon one delivery attempt after this long.'),
  maxAttempts: z
    .number()
    .int()
    .min(1)
    .max(20)
    .default(5)
    .describe('Attempts per notification, the first included; after the last failure the delivery log says `failed`.'),
  initialBackoffMs: z
    .number()
    .int()
    .min(10)
    .max(3_600_000)
    .default(1000)
    .describe('Wait before the first retry; doubled before each further one.'),
  maxBackoffMs: z.number().int().min(10).max(86_400_000).default(60_000).describe('Longest wait between two attempts.'),
});

const gateway = z
  .strictObject({
    maxArgumentsBytes: z
      .number()
      .int()
      .min(256)
      .max(16 * 1024 * 1024)
      .default(64 * 1024)
      .describe('Largest tools/call arguments (canonical JSON bytes); larger calls are refused before any decision (RPC_ARGS_TOO_LARGE).'),
    maxResultBytes: z
      .number()
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(4 * 1024 * 1024)
      .describe('Largest upstream result returned to an agent; a larger one becomes a tool error (RPC_RESULT_TOO_LARGE), audited.'),
    upstreamTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .default(30_000)
      .describe('How long a forwarded call may take before it is cancelled (RPC_UPSTREAM_TIMEOUT); an upstream can override it.'),
    discoveryTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .default(15_000)
      .describe('Bound on connecting to an upstream and listing its tools.'),
    maxConcurrentCallsPerMandate: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(16)
      .describe('In-flight tools/call limit per mandate on one replica (RPC_CONCURRENCY_LIMIT beyond it).'),
    maxSessions: z.number().int().min(1).max(1_000_000).default(10_000).describe('Most agent MCP sessions held by one replica.'),
    sessionIdleMs: z
      .number()
      .int()
      .min(1000)
      .default(30 * 60_000)
      .describe('An agent MCP session unused this long is closed.'),
    upstreamIdleMs: z
      .number()
      .int()
      .min(1000)
      .default(5 * 60_000)
      .describe('A pooled upstream session (and stdio process) unused this long is closed.'),
    maxUpstreamSessions: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(256)
      .describe('Most pooled upstream sessions per replica; the least recently used is closed beyond it.'),
    allowedHosts: z
      .array(z.string().min(1).max(255))
      .max(100)
      .default([])
      .describe('Host headers /mcp accepts besides the public URL host (DNS-rebinding protection; others get 403).'),
    allowedOrigins: z
      .array(z.url())
      .max(100)
      .default([])
      .describe('Origin headers /mcp accepts besides the public URL origin; a request without Origin is not a browser and is accepted.'),
    demoUpstreams: z
      .boolean()
      .default(true)
      .describe('In demo mode, register the demo helpdesk and the MCP reference server (tools discovered on first use).'),
    approvals: z
      .strictObject({
        ttlSeconds: z
          .number()
          .int()
          .min(10)
          .max(7 * 86_400)
          .default(900)
          .describe('How long an approval may wait for a human and then be used; after it, it never allows anything.'),
        forbidOnBehalfOfApprover: z
          .boolean()
          .default(true)
          .describe('The human on whose behalf an agent acts may not approve its requests (separation of duties).'),
        webhook: approvalWebhook
          .optional()
          .describe(
            'Signed notifications to approvers (docs/approvals.md); the signing secret comes from MANDATE_APPROVAL_WEBHOOK_SECRET.',
          ),
      })
      .prefault({}),
    tasks: z
      .strictObject({
        ttlMs: z
          .number()
          .int()
          .min(60_000)
          .max(30 * 86_400_000)
          .default(3_600_000)
          .describe(
            'Least lifetime of an MCP task (extension io.modelcontextprotocol/tasks) that waits for an approval, from its creation; longer when its approval and forwarding need it. A task still waiting after it fails with RPC_TASK_EXPIRED.',
          ),
        pollIntervalMs: z
          .number()
          .int()
          .min(100)
          .max(600_000)
          .default(2000)
          .describe('Polling interval suggested to clients in every task (`pollIntervalMs`).'),
        retentionMs: z
          .number()
          .int()
          .min(0)
          .max(30 * 86_400_000)
          .default(3_600_000)
          .describe('How long an ended task can still be read after its TTL before the sweep deletes it.'),
      })
      .prefault({})
      .describe('Durable MCP tasks for calls that wait for a human approval (docs/approvals.md, Approvals as MCP tasks).'),
  })
  .prefault({});

const consoleSection = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Serve the web console under /console/ (static files built to console/dist).'),
    clientId: z
      .string()
      .min(1)
      .max(255)
      .default('mandate-console')
      .describe('OAuth client id of the console at the operator issuer (public client: authorization code + PKCE, no secret).'),
    scope: z.string().min(1).default('openid profile').describe('Scopes the console requests when an operator signs in.'),
    resource: z
      .url()
      .optional()
      .describe('RFC 8707 resource indicator sent at sign-in, for issuers that pick the access token audience from it.'),
  })
  .prefault({})
  .describe('The web console.');

const interactiveClients = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Serve authorization code + PKCE for interactive clients (/oauth/authorize, consent, /oauth/register).'),
    codeTtlSeconds: z.number().int().min(10).max(600).default(60).describe('Lifetime of an authorization code (single use).'),
    consentTtlSeconds: z
      .number()
      .int()
      .min(60)
      .max(3600)
      .default(600)
      .describe('How long a human has from the authorization request to sign in and decide on the consent page.'),
    authorizePerWindow: perWindow(
      120,
      'Authorization requests (/oauth/authorize, each may fetch a metadata document and stores a pending request) per client address and rate-limit window.',
    ),
    registration: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Accept RFC 7591 dynamic registration of public clients at /oauth/register.'),
        perWindow: perWindow(20, 'Registrations per client address and rate-limit window (server.rateLimit.windowMs).'),
        maxClients: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .default(100_000)
          .describe('Registered clients kept at most; beyond, registration is refused.'),
      })
      .prefault({}),
    metadataDocuments: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Accept Client ID Metadata Documents (a client_id that is an https URL).'),
        timeoutMs: z.number().int().min(100).max(30_000).default(3000).describe('Time limit for fetching one document.'),
        maxBytes: z.number().int().min(512).max(65_536).default(5120).describe('Largest metadata document accepted.'),
        cacheSeconds: z
          .number()
          .int()
          .min(0)
          .max(86_400)
          .default(300)
          .describe('Longest a fetched document is reused (less when its Cache-Control says so).'),
        allowPrivateNetworks: z
          .boolean()
          .default(false)
          .describe(
            'Fetch documents from loopback and private addresses (tests and labs only). Link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata services) are refused even then.',
          ),
        caFile: z
          .string()
          .min(1)
          .optional()
          .describe('PEM file of extra CAs trusted when fetching documents (relative to the config file).'),
      })
      .prefault({}),
  })
  .prefault({})
  .describe('Interactive clients (MCP Inspector, desktop assistants, IDEs): authorization code + PKCE with a human consent page.');

const policy = z
  .strictObject({
    dir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Directory of org policy `.cedar` files (read recursively). Default: none in production (every call is denied); the shipped demo policies in demo mode.',
      ),
    schema: z
      .string()
      .min(1)
      .optional()
      .describe('Cedar schema the policies are validated against. Default: the shipped policies/mandate.cedarschema.'),
    entities: z
      .string()
      .min(1)
      .optional()
      .describe('Cedar JSON entities file (subjects, resources) that AuthZEN requests may refer to by type and id.'),
    engine: z
      .enum(['compiled', 'wasm', 'authzen'])
      // compiled: it agrees with cedar-wasm on the Cedar corpus and 100,000 generated requests
      // (docs/policies.md §9), and the Node 20 V8 abort that kept it opt-in is worked around
      // (src/policy/cedar/v8-wasm-inlining.ts).
      .default('compiled')
      .describe(
        'Policy engine: `compiled` (Cedar compiled to JavaScript, differentially tested against cedar-wasm; a set or request it cannot evaluate exactly is served by cedar-wasm, with a notice), `wasm` (every decision through cedar-wasm) or `authzen` (org policy decided by the external AuthZEN PDP of policy.externalPdp; fails closed).',
      ),
    watch: z
      .boolean()
      .default(false)
      .describe('Reload org policy when a file under policy.dir changes (each replica watches its own copy; a bad edit is refused).'),
    approverRoles: z
      .array(z.string().min(1).max(64))
      .max(32)
      .default(['support-lead', 'finance', 'admin', 'approver'])
      .describe('Approver roles tried, in order, to tell which approvals would allow a denied call (approval_required).'),
    budgets: z
      .strictObject({
        leaseMaxCalls: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(32)
          .describe(
            'Most calls of a maxCalls budget one replica leases at once (a lease is also at most 1/8 of what is left, and 1 when nearly spent). Consumes are served from the lease in memory; a replica that crashes loses its unused lease (never an over-spend).',
          ),
        leaseIdleMs: z
          .number()
          .int()
          .min(100)
          .max(3_600_000)
          .default(10_000)
          .describe('A budget lease unused for this long is returned to the store, so other replicas can spend it.'),
        flushIntervalMs: z
          .number()
          .int()
          .min(50)
          .max(60_000)
          .default(1000)
          .describe('How often a replica reports the budget it consumed from its leases (what usage in the console and API lags by).'),
      })
      .prefault({})
      .describe('Budget counters of mandate grants, leased to replicas in chunks (docs/gateway.md, Hot-path state across replicas).'),
    authzen: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Serve the OpenID AuthZEN 1.0 PDP endpoints (/access/v1/*).'),
        auth: z
          .enum(['bearer', 'mtls', 'off'])
          .default('bearer')
          .describe(
            'bearer: callers present an operator or service token holding the `pdp` or `admin` role. mtls: callers present an X.509-SVID (needs server.tls) listed in mtlsClients. off: no authentication (loopback interop only).',
          ),
        mtlsClients: z
          .array(z.string().startsWith('spiffe://'))
          .max(1000)
          .default([])
          .describe('SPIFFE IDs of enforcement points allowed to ask for decisions when auth is mtls.'),
        namespace: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/, 'a Cedar namespace')
          .default('Mandate')
          .describe('Cedar namespace AuthZEN types and actions are mapped into: type `t` → `NS::t`, action `a` → `NS::Action::"a"`.'),
        types: z
          .record(z.string(), z.string())
          .default({ agent: 'Agent', human: 'Human', tool: 'Tool', mandate: 'Mandate' })
          .describe('AuthZEN subject/resource type → Cedar entity type (without namespace); types not listed map to themselves.'),
        audit: z
          .boolean()
          .default(true)
          .describe('Write a `decision` audit event for every AuthZEN evaluation before answering (fail closed when the log cannot).'),
        maxBatch: z.number().int().min(1).max(1000).default(100).describe('Largest `evaluations` array accepted in one request.'),
        pageSize: z.number().int().min(1).max(1000).default(50).describe('Default and largest page of a search response.'),
      })
      .prefault({}),
    externalPdp: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/ })
          .refine(
            (u) => !/^https?:\/\/[^/?#]*@/i.test(u),
            'must not carry credentials (user:password@); use tokenFile or MANDATE_PDP_TOKEN',
          )
          .optional()
          .describe(
            "The external PDP's AuthZEN access evaluation endpoint (e.g. https://pdp.example.org/access/v1/evaluation); used when policy.engine is authzen.",
          ),
        timeoutMs: z
          .number()
          .int()
          .min(10)
          .max(30_000)
          .default(500)
          .describe('Whole exchange with the PDP (connect, send, answer); past it the decision is a deny (ERR_PDP_TIMEOUT).'),
        cacheTtlMs: z
          .number()
          .int()
          .min(0)
          .max(60_000)
          .default(0)
          .describe('Reuse the PDP decision for an identical request this long (per replica; failures are never cached). 0: off.'),
        cacheMaxEntries: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(10_000)
          .describe('Most cached decisions per replica; the oldest goes first.'),
        namespace: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/, 'a Cedar namespace')
          .default('Mandate')
          .describe('Cedar namespace stripped from entity types and actions before they are sent (`Mandate::Agent` → `Agent`).'),
        types: z
          .record(z.string(), z.string())
          .default({ Agent: 'agent', Human: 'human', Tool: 'tool', Mandate: 'mandate' })
          .describe('Cedar entity type (without namespace) → AuthZEN subject/resource type; types not listed are sent as they are.'),
        tokenFile: z
          .string()
          .min(1)
          .optional()
          .describe('File holding the bearer token sent to the PDP; MANDATE_PDP_TOKEN overrides it. Neither: no Authorization header.'),
        tls: z
          .strictObject({
            caFile: z
              .string()
              .min(1)
              .optional()
              .describe('PEM bundle of the CAs trusted for the PDP (replaces the system CAs for this connection).'),
            certFile: z.string().min(1).optional().describe('PEM client certificate for mTLS to the PDP.'),
            keyFile: z.string().min(1).optional().describe('PEM private key of certFile.'),
          })
          .optional()
          .describe('TLS to an https PDP: extra trusted CAs and an optional client certificate (mTLS).'),
      })
      .prefault({})
      .describe('An external AuthZEN 1.0 PDP deciding org policy (policy.engine: authzen); see docs/policies.md "External PDPs".'),
  })
  .prefault({});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);
/** Name of an environment variable holding a secret (read once at load; never printed). */
const secretEnvName = z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}$/, 'an environment variable name (A-Z, 0-9, _)');

const upstreams = z
  .strictObject({
    stdio: z
      .strictObject({
        allowedCommands: z
          .array(
            z.union([
              z.string().min(1).max(1024),
              z.strictObject({
                command: z.string().min(1).max(1024).describe('the executable, compared exactly'),
                args: z
                  .array(z.string().max(4096))
                  .max(64)
                  .optional()
                  .describe('when set, the upstream arguments must begin with exactly these'),
                env: z.array(envName).max(64).default([]).describe('environment variable names the upstream and its credential may set'),
                cwd: z.string().max(1024).optional().describe('when set, the only working directory allowed; otherwise none may be given'),
              }),
            ]),
          )
          .max(256)
          .default([])
          .describe(
            'Command lines a stdio upstream may run on the broker host. A string allows that executable with any arguments and no environment variables; an object narrows arguments (a required prefix), environment variable names and working directory. Empty by default: no stdio upstream can be registered over the admin API. Demo mode adds the demo upstreams.',
          ),
      })
      .prefault({}),
    httpApi: z
      .strictObject({
        descriptionDirs: z
          .array(z.string().min(1).max(1024))
          .max(64)
          .default([])
          .describe(
            'Directories an openapi upstream may read its description file from (symlinks and .. resolved first). Empty by default: descriptions come from URLs only.',
          ),
        maxDescriptionBytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(4 * 1024 * 1024)
          .describe('Largest OpenAPI description fetched or read; a larger one is refused (ERR_HTTP_API_DESCRIPTION).'),
        maxOperations: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(1000)
          .describe('Most operations (tools) one description may have; a description with more is refused.'),
        maxResponseBytes: z
          .number()
          .int()
          .min(1024)
          .max(256 * 1024 * 1024)
          .default(4 * 1024 * 1024)
          .describe('Largest HTTP response body read from an HTTP API; a larger one fails the call (RPC_UPSTREAM_ERROR), audited.'),
      })
      .prefault({})
      .describe('HTTP API upstreams described by OpenAPI 3.0/3.1 (docs/http-api-upstreams.md).'),
  })
  .prefault({});

const leaseHeader = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'an HTTP header name');
/** Where a lease's secret goes: an environment variable (stdio upstreams, started per mandate) or an HTTP header. */
const leaseInject = z.union([
  z.strictObject({ env: envName.describe('environment variable of a stdio upstream (started per mandate)') }),
  z.strictObject({
    header: leaseHeader.describe('HTTP header sent to the upstream'),
    prefix: z.string().max(64).default('').describe('text before the secret, e.g. "Bearer "'),
  }),
]);
const leaseCommon = {
  obtain: z
    .enum(['lazy', 'eager'])
    .default('lazy')
    .describe("lazy: on the mandate's first call to the upstream; eager: as soon as a mandate that grants one of its tools is opened."),
};
const leaseProvider = z.discriminatedUnion('type', [
  z
    .strictObject({
      type: z.literal('postgres-role'),
      ...leaseCommon,
      adminUrl: z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
        .optional()
        .describe(
          'Connection of the role that creates and drops lease roles (CREATEROLE, and pg_signal_backend to end sessions). Exactly one of adminUrl, adminUrlEnv, adminUrlFile; prefer the latter two (the file then holds no secret).',
        ),
      adminUrlEnv: secretEnvName.optional().describe('Environment variable holding adminUrl.'),
      adminUrlFile: z.string().min(1).optional().describe('File holding adminUrl (relative to the configuration file; trimmed).'),
      grants: z
        .array(z.string().min(1).max(4096))
        .max(64)
        .default([])
        .describe('SQL run after CREATE ROLE, in the same transaction; `{{role}}` becomes the quoted role name (the only substitution).'),
      connectionUrl: z
        .string()
        .min(1)
        .max(2048)
        .describe('What the upstream gets, e.g. postgresql://{{role}}:{{password}}@db:5432/app (both URL-encoded when substituted).'),
      inject: leaseInject.default({ env: 'DATABASE_URL' }),
      rolePrefix: z
        .string()
        .regex(/^[a-z][a-z0-9_]{0,23}$/, 'lowercase letters, digits or _, starting with a letter')
        .default('mandate_lease_')
        .describe('Prefix of generated role names (the rest is random); the reaper only ever drops roles it recorded.'),
      connectionLimit: z.number().int().min(1).max(1000).default(10).describe('CONNECTION LIMIT of each lease role.'),
      ownedObjects: z
        .enum(['drop', 'reassign'])
        .default('drop')
        .describe('At revocation: DROP OWNED BY the role, or REASSIGN OWNED BY it to reassignTo (then drop its privileges).'),
      reassignTo: z.string().min(1).max(63).optional().describe('Role that receives owned objects when ownedObjects is reassign.'),
    })
    // Reassigning to nobody would silently drop what the operator meant to keep.
    .refine((c) => c.ownedObjects !== 'reassign' || c.reassignTo !== undefined, {
      message: 'ownedObjects reassign needs reassignTo',
      path: ['reassignTo'],
    }),
  z.strictObject({
    type: z.literal('mandate-token'),
    ...leaseCommon,
    audience: z.string().min(1).max(2048).describe("The upstream's resource identifier: the token's `aud` (RFC 9068)."),
    maxTtlSeconds: z
      .number()
      .int()
      .min(10)
      .max(86_400)
      .default(300)
      .describe(
        "Longest token lifetime; never longer than the mandate's. Bounds how long an upstream that checks only the signature accepts it.",
      ),
    inject: leaseInject.default({ header: 'Authorization', prefix: 'Bearer ' }),
  }),
  z.strictObject({
    type: z.literal('oauth-client-credentials'),
    ...leaseCommon,
    issuer: z.url().describe('The external authorization server (RFC 8414 metadata is discovered from it).'),
    clientId: z.string().min(1).max(512),
    clientSecret: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe('client_secret_basic secret. Exactly one of clientSecret, clientSecretEnv, clientSecretFile; prefer the latter two.'),
    clientSecretEnv: secretEnvName.optional().describe('Environment variable holding clientSecret.'),
    clientSecretFile: z.string().min(1).optional().describe('File holding clientSecret (relative to the configuration file; trimmed).'),
    scopes: z
      .record(z.string().min(1).max(128), z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope token')).max(32))
      .default({})
      .describe('Scopes per upstream tool (name without the upstream prefix); a mandate asks only for the scopes of the tools it grants.'),
    baseScopes: z
      .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/))
      .max(32)
      .default([])
      .describe('Scopes every lease asks for.'),
    resource: z.url().optional().describe('RFC 8707 resource indicator sent with the token request.'),
    allowInsecureHttp: z.boolean().default(false).describe('Allow an http:// issuer (tests and loopback only).'),
    inject: leaseInject.default({ header: 'Authorization', prefix: 'Bearer ' }),
  }),
]);

const leases = z
  .strictObject({
    upstreams: z
      .record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'an upstream id'), leaseProvider)
      .default({})
      .describe(
        'Per-upstream credentials obtained per mandate (see docs/leases.md). An upstream not listed uses its static sealed credential only.',
      ),
    reapIntervalMs: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(30_000)
      .describe('How often each replica revokes leases of ended or expired mandates and retries failed revocations (also once at start).'),
    obtainTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(120_000)
      .default(10_000)
      .describe('Bound on obtaining one lease; past it the call fails closed (ERR_LEASE_UNAVAILABLE).'),
  })
  .prefault({});

const telemetry = z
  .strictObject({
    metrics: z
      .strictObject({
        tokenSha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/, 'hex SHA-256')
          .optional()
          .describe(
            'SHA-256 (hex) of a bearer token that GET /metrics then requires. Or set MANDATE_METRICS_TOKEN. Unset: /metrics is public (it carries no identifiers); set it when anything beyond your scraper can reach the listener.',
          ),
      })
      .prefault({})
      .describe('Prometheus metrics at GET /metrics.'),
    tracing: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Export OpenTelemetry spans (token exchange, decide, audit append, upstream call) over OTLP/HTTP. Off: no tracer is created.',
          ),
        endpoint: z.url().default('http://127.0.0.1:4318/v1/traces').describe('OTLP/HTTP traces endpoint (JSON encoding).'),
        serviceName: z.string().min(1).max(128).default('mandate').describe('`service.name` of the exported spans.'),
        sampleRatio: z
          .number()
          .min(0)
          .max(1)
          .default(1)
          .describe("Share of traces started here that are sampled; a caller's `traceparent` sampled flag is always followed."),
        exportTimeoutMs: z.number().int().min(100).max(60_000).default(10_000).describe('Bound on one export request.'),
      })
      .prefault({})
      .describe('OpenTelemetry tracing with W3C trace context from the agent through the gateway to the upstream.'),
  })
  .prefault({})
  .describe('Metrics and tracing (docs/operations.md lists every metric and span).');

/** The risk engine's signals (docs/risk.md); src/risk/settings.ts holds their defaults. */
export const RISK_SIGNALS = [
  'call_rate',
  'deny_rate',
  'scope_probe',
  'approval_denied',
  'first_tool_use',
  'read_then_send',
  'result_volume',
  'new_client',
  'delegation_fanout',
  'delegation_depth',
] as const;

const riskSignal = z
  .strictObject({
    enabled: z.boolean().optional().describe('false: the signal contributes nothing.'),
    warn: z.number().min(0).optional().describe('Measured value at or below which the signal adds no points.'),
    max: z.number().min(0).optional().describe('Measured value at or above which the signal adds all its points.'),
    points: z.number().min(0).max(100).optional().describe('The most the signal adds to a score (linear between warn and max).'),
  })
  .refine((s) => s.warn === undefined || s.max === undefined || s.max > s.warn, 'max must be above warn');

const riskResponse = z.strictObject({
  action: z.enum(['require_approval', 'notify_owner', 'revoke', 'quarantine']).describe('What happens when the score is reached.'),
  subject: z.enum(['mandate', 'tree', 'agent']).describe('Whose score: one mandate, its whole delegation tree, or the agent.'),
  at: z.number().min(1).max(100).describe('Fires when the score reaches this.'),
  clearBelow: z
    .number()
    .min(0)
    .max(100)
    .default(0)
    .describe('Lifts when the score falls below this (0: never; revoke and quarantine stay).'),
  holdSeconds: z.number().int().min(0).max(86_400).default(60).describe('Lifts no earlier than this after it fired (no flapping).'),
});

const risk = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Risk signals, scores (context.risk) and automatic responses (docs/risk.md).'),
    windowSeconds: z.number().int().min(5).max(3600).default(60).describe('Sliding window of every per-subject signal.'),
    baselineSeconds: z.number().int().min(60).max(604_800).default(3600).describe("Span of an agent's own call-rate baseline."),
    baselineFloor: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(120)
      .describe('Calls per window the baseline never counts as lower than.'),
    denyRateMinCalls: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(5)
      .describe('deny_rate is not measured before this many calls in the window.'),
    firstToolUseAfterCalls: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(200)
      .describe('first_tool_use counts only for agents with at least this many calls (new agents try tools).'),
    signals: z
      .partialRecord(z.enum(RISK_SIGNALS), riskSignal)
      .default({})
      .describe('Per-signal overrides of the defaults in docs/risk.md.'),
    responses: z
      .array(riskResponse)
      .max(32)
      .optional()
      .describe('Automatic responses; omitted: the defaults in docs/risk.md; [] turns them all off (scores still reach policy).'),
    approverRoles: z
      .array(z.string().min(1).max(64))
      .min(1)
      .max(16)
      .default(['approver'])
      .describe('Roles that may approve a call a require_approval risk response holds (any one of them).'),
    shareIntervalMs: z
      .number()
      .int()
      .min(50)
      .max(10_000)
      .default(250)
      .describe('How often a replica shares its counts with the others (PostgreSQL store only).'),
    webhook: approvalWebhook
      .optional()
      .describe('Where notify_owner responses are POSTed (Standard Webhooks; secret from MANDATE_RISK_WEBHOOK_SECRET).'),
  })
  .prefault({});

export const configSchema = z.strictObject({
  mode: z
    .enum(['production', 'demo'])
    .default('production')
    .describe('demo: generates a master key, seeds humans and a development issuer. Never use demo for real agents.'),
  dataDir: z.string().min(1).default('./data').describe('Folder for the SQLite file and development keys.'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level.'),
    })
    .prefault({}),
  server,
  store,
  operators,
  changes,
  identity,
  audit,
  gateway,
  upstreams,
  leases,
  console: consoleSection,
  interactiveClients,
  policy,
  risk,
  telemetry,
});

/** Configuration as written in the file (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;

/** Environment variables that may override secrets. Nothing else is read from the environment. */
export const secretEnv = {
  MANDATE_MASTER_KEY: 'Master key(s) for secrets at rest: `kid:base64(32 bytes)`, comma-separated; the first encrypts.',
  MANDATE_DATABASE_URL: 'PostgreSQL URL; overrides store.postgres.url.',
  MANDATE_BOOTSTRAP_TOKEN: 'Bootstrap admin bearer token (at least 32 characters); overrides operators.bootstrapTokenSha256.',
  MANDATE_APPROVAL_WEBHOOK_SECRET:
    'Standard Webhooks signing secret of approval webhooks (`whsec_` + base64 of 24 to 64 random bytes); required when gateway.approvals.webhook is set.',
  MANDATE_RISK_WEBHOOK_SECRET:
    'Standard Webhooks signing secret of risk notifications (`whsec_` + base64 of 24 to 64 random bytes); required when risk.webhook is set.',
  MANDATE_PDP_TOKEN: 'Bearer token sent to the external AuthZEN PDP (policy.externalPdp); overrides policy.externalPdp.tokenFile.',
  MANDATE_METRICS_TOKEN: 'Bearer token GET /metrics requires (at least 32 characters); overrides telemetry.metrics.tokenSha256.',
} as const;
