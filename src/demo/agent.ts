// DEVELOPMENT ONLY: the scripted demo agent behind `npm run demo:agent`. It behaves like a real
// agent: it proves its identity with a JWT-SVID (minted from the demo trust domain's key in the
// data folder, as `spire-server jwt mint` would), opens a mandate on behalf of a human through the
// token exchange (oauth4webapi), and calls tools through the gateway with the official MCP SDK
// client. Each step is printed, so a newcomer can follow it in the console at the same time.
// The mandate outlives its access tokens: before a token expires the agent refreshes it (a rotated
// refresh token, authenticated by a fresh SVID), so a long approval wait keeps the same mandate.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, McpError } from '@modelcontextprotocol/sdk/types.js';
import * as oauth from 'oauth4webapi';
import { DEV_ISSUER_PATH, DevIssuer } from '../identity/dev-issuer.js';
import { DEV_TRUST_DOMAIN, DevSpiffeAuthority } from '../identity/dev-spiffe.js';
import { type Clock, systemClock } from '../lib/clock.js';

const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export const TRIAGE_AGENT = `spiffe://${DEV_TRUST_DOMAIN}/agent/support-triage`;
export const REMEDIATION_AGENT = `spiffe://${DEV_TRUST_DOMAIN}/agent/remediation`;

/** The task of the demo (DESIGN §7): ticket T-4821, customer C-1009 charged 249.00 twice. */
export const DEMO_TASK = {
  type: 'mandate',
  purpose: 'Resolve ticket T-4821: customer reports a double charge',
  taskType: 'support.refund',
  environment: 'production',
  ttlSeconds: 900,
  tools: [
    { tool: 'helpdesk.search_tickets' },
    { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
    { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } }, maxCalls: 3 },
    {
      tool: 'helpdesk.execute_refund',
      args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } },
      sum: { arg: 'amountCents', max: 25_000 },
    },
  ],
  delegable: true,
} as const;

/** What the triage agent hands to the remediation agent: strictly narrower (no execute, lower amounts, one call). */
export const DELEGATED_TASK = {
  type: 'mandate',
  purpose: 'Check the refund for C-1009 and propose a goodwill credit',
  taskType: 'support.refund',
  environment: 'production',
  ttlSeconds: 600,
  tools: [
    { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
    { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 2_000 } }, maxCalls: 1 },
  ],
  delegable: false,
} as const;

export const REFUND = { customerId: 'C-1009', amountCents: 24_900 } as const;

export interface DemoAgentOptions {
  /** Base URL of the broker (its public URL: the SVID audience and the issuer of tokens). */
  readonly url: string;
  /** The broker's data folder (holds the development trust domain and issuer keys). */
  readonly dataDir: string;
  /** On whose behalf the task runs (a seeded human). */
  readonly onBehalfOf: string;
  /** How often to retry the call that waits for approval. */
  readonly pollMs: number;
  /** Give up waiting for the approval after this long. */
  readonly approvalTimeoutMs: number;
  /** Leave the mandates open at the end (to revoke them from the console) instead of completing. */
  readonly keepOpen: boolean;
  readonly log: (line: string) => void;
  /** Time source (tests move it to cross token expiries without waiting); the system clock by default. */
  readonly clock?: Clock;
}

export interface DemoAgentResult {
  readonly mandateId: string;
  readonly childMandateId: string;
  readonly approvalId: string;
  readonly approved: boolean;
  readonly completed: boolean;
  /** How many times the root mandate's access token was renewed (refresh grant) during the run. */
  readonly renewals: number;
}

type Meta = { code?: string; approvalId?: string; url?: string; decisionId?: string; expiresAt?: number };

interface CallOutcome {
  readonly ok: boolean;
  readonly text: string;
  readonly meta: Meta;
}

const textOf = (r: CallToolResult): string =>
  r.content
    .map((c) => (c.type === 'text' ? c.text : ''))
    .join('\n')
    .trim();

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallOutcome> {
  try {
    const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
    return { ok: r.isError !== true, text: textOf(r), meta: (r._meta?.['mandate/error'] ?? {}) as Meta };
  } catch (err) {
    // Refusals are isError results (above); protocol errors (an unknown tool) are JSON-RPC errors with the code in `data.code`.
    if (err instanceof McpError) return { ok: false, text: err.message, meta: (err.data ?? {}) as Meta };
    throw err;
  }
}

function short(text: string, max = 160): string {
  const one = text.replace(/(MCP error -?\d+: )+/g, '').replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A mandate's current access token. Shortly before it expires it is refreshed with the refresh
 * token (rotated: each is good once), authenticated by `authenticate`. One refresh at a time: two
 * concurrent uses of one refresh token are reuse, which ends the mandate.
 */
class TokenKeeper {
  #access: string;
  #refresh: string | undefined;
  #expiresAt: number;
  #ttlMs: number;
  #inflight: Promise<void> | undefined;
  /** How many times the token was renewed. */
  renewals = 0;

  constructor(
    res: oauth.TokenEndpointResponse,
    private readonly clock: Clock,
    private readonly renew: (refreshToken: string) => Promise<oauth.TokenEndpointResponse>,
  ) {
    this.#access = res.access_token;
    this.#refresh = res.refresh_token;
    this.#ttlMs = (res.expires_in ?? 300) * 1000;
    this.#expiresAt = clock.now() + this.#ttlMs;
  }

  async current(): Promise<string> {
    // Renew with a third of the lifetime (at most a minute) left: in time for a request in flight.
    if (this.clock.now() < this.#expiresAt - Math.min(60_000, this.#ttlMs / 3)) return this.#access;
    const refresh = this.#refresh;
    if (refresh === undefined) return this.#access; // nothing to renew with: the broker will say when it has expired
    this.#inflight ??= this.renew(refresh)
      .then((res) => {
        this.#access = res.access_token;
        this.#refresh = res.refresh_token ?? refresh;
        this.#ttlMs = (res.expires_in ?? 300) * 1000;
        this.#expiresAt = this.clock.now() + this.#ttlMs;
        this.renewals++;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    await this.#inflight;
    return this.#access;
  }
}

/** Runs the scripted scenario against a running demo broker. */
export async function runDemoAgent(o: DemoAgentOptions): Promise<DemoAgentResult> {
  const base = o.url.replace(/\/$/, '');
  const say = o.log;
  let step = 0;
  const heading = (text: string) => say(`\n${++step}. ${text}`);

  if (!existsSync(join(o.dataDir, 'dev-spiffe.jwk.json'))) {
    throw new Error(`no development trust domain key in ${o.dataDir}: start the demo broker first (npm start) and pass its --data-dir`);
  }
  const health = await fetch(`${base}/healthz`).catch(() => undefined);
  if (health?.ok !== true) throw new Error(`the broker is not reachable at ${base}: start it with npm start`);

  const clock = o.clock ?? systemClock;
  const spiffe = await DevSpiffeAuthority.open(o.dataDir, clock);
  const humans = await DevIssuer.open(o.dataDir, `${base}${DEV_ISSUER_PATH}`, clock);
  const issuer = new URL(base);
  const insecure = { [oauth.allowInsecureRequests]: issuer.protocol === 'http:' };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  const client: oauth.Client = { client_id: 'demo-agent' };
  const exchange = async (params: Record<string, string>) =>
    oauth.processGenericTokenEndpointResponse(
      as,
      client,
      await oauth.genericTokenEndpointRequest(as, client, oauth.None(), GRANT_TOKEN_EXCHANGE, params, insecure),
    );
  const mandateOf = (token: string) => String(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).mandate);
  // The refresh token is bound to the agent's workload identity: the agent authenticates each
  // refresh with a fresh JWT-SVID as an RFC 7523 client assertion (no client secret).
  const renew = async (refreshToken: string) => {
    const assertion = await spiffe.mint({ spiffeId: TRIAGE_AGENT, audience: base, ttlSeconds: 60 });
    const auth: oauth.ClientAuth = (_as, _client, body) => {
      body.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      body.set('client_assertion', assertion);
    };
    return oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, insecure));
  };
  /** An MCP client whose every request carries the current token of `tokens`. */
  const connect = async (tokens: () => Promise<string>, name: string) => {
    const mcp = new Client({ name, version: '1.0.0' });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', base), {
        fetch: async (url, init) => {
          const headers = new Headers(init?.headers);
          headers.set('authorization', `Bearer ${await tokens()}`);
          return fetch(url, { ...init, headers });
        },
      }),
    );
    return mcp;
  };

  heading(`Prove identity: JWT-SVID for ${TRIAGE_AGENT}`);
  const svid = await spiffe.mint({ spiffeId: TRIAGE_AGENT, audience: base, ttlSeconds: 300 });
  const human = await humans.mint({ sub: o.onBehalfOf, roles: [], ttlSeconds: 300 });
  say(`   acting on behalf of ${o.onBehalfOf} (their token is the subject, the agent's SVID the actor: RFC 8693)`);

  heading('Open a mandate at the token endpoint (authorization_details: the task and its scope)');
  const opened = await exchange({
    subject_token: human,
    subject_token_type: JWT_TYPE,
    actor_token: svid,
    actor_token_type: JWT_TYPE,
    authorization_details: JSON.stringify([DEMO_TASK]),
  });
  const mandateId = mandateOf(opened.access_token);
  say(`   mandate ${mandateId}: "${DEMO_TASK.purpose}", ${DEMO_TASK.tools.length} tools, expires in ${DEMO_TASK.ttlSeconds}s`);
  say(`   console: ${base}/console/mandates/${mandateId}`);
  const keeper = new TokenKeeper(opened, clock, async (refreshToken) => {
    const res = await renew(refreshToken);
    say(`   (access token renewed with the rotated refresh token: same mandate ${mandateOf(res.access_token)})`);
    return res;
  });

  const triage = await connect(() => keeper.current(), 'support-triage');
  const childClients: Client[] = [];
  try {
    heading('List tools through the gateway (only what the mandate covers)');
    const { tools } = await triage.listTools();
    say(`   ${tools.map((t) => t.name).join(', ')}`);

    heading('Read tickets');
    const tickets = await call(triage, 'helpdesk.search_tickets', { customerId: 'C-1009' });
    say(`   ${tickets.ok ? 'allowed' : `refused (${tickets.meta.code})`}: ${short(tickets.text)}`);

    heading('Read the customer');
    const customer = await call(triage, 'helpdesk.get_customer', { customerId: 'C-1009' });
    say(`   ${customer.ok ? 'allowed' : `refused (${customer.meta.code})`}: ${short(customer.text)}`);

    heading('Propose a refund of 249.00 (propose: allowed within the mandate)');
    const proposal = await call(triage, 'helpdesk.propose_refund', { ...REFUND, reason: 'duplicate charge on March 3rd (T-4821)' });
    say(`   ${proposal.ok ? 'allowed' : `refused (${proposal.meta.code})`}: ${short(proposal.text)}`);

    heading('Execute the refund of 249.00 (production, above 100.00: org policy wants a human)');
    let attempt = await call(triage, 'helpdesk.execute_refund', REFUND);
    const approvalId = attempt.meta.approvalId ?? '';
    let approved = attempt.ok;
    if (!attempt.ok && approvalId !== '') {
      say(`   waiting for approval ${approvalId}`);
      say(`   >>> approve it in the console: ${attempt.meta.url ?? `${base}/console/approvals`}`);
      say(`   (sign in as carol, the finance approver; retrying the same call every ${Math.round(o.pollMs / 1000)}s)`);
      const deadline = clock.now() + o.approvalTimeoutMs;
      while (!attempt.ok && clock.now() < deadline) {
        await sleep(o.pollMs);
        attempt = await call(triage, 'helpdesk.execute_refund', REFUND);
        // A different approval id means ours was decided without becoming usable: denied or expired.
        if (!attempt.ok && attempt.meta.approvalId !== undefined && attempt.meta.approvalId !== approvalId) break;
        if (!attempt.ok && attempt.meta.approvalId === undefined) break;
      }
      approved = attempt.ok;
      say(
        approved
          ? `   approved: the retried call ran: ${short(attempt.text)}`
          : `   not approved (${attempt.meta.code ?? 'timeout'}): ${short(attempt.text)}`,
      );
    } else {
      say(`   ${attempt.ok ? 'allowed without approval' : `refused (${attempt.meta.code})`}: ${short(attempt.text)}`);
    }

    heading('Delegate a narrower mandate to the remediation agent');
    const childProof = await spiffe.mint({ spiffeId: REMEDIATION_AGENT, audience: base, ttlSeconds: 300 });
    // A child never outlives its parent: after a long approval wait, less of the root is left.
    const rootEnds = Date.parse(String((opened.authorization_details?.[0] as { expiresAt?: string } | undefined)?.expiresAt));
    const leftSeconds = Math.floor((rootEnds - clock.now()) / 1000) - 5;
    const delegated = await exchange({
      subject_token: await keeper.current(),
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: childProof,
      actor_token_type: JWT_TYPE,
      authorization_details: JSON.stringify([
        {
          ...DELEGATED_TASK,
          ttlSeconds: Number.isFinite(leftSeconds) ? Math.min(DELEGATED_TASK.ttlSeconds, leftSeconds) : DELEGATED_TASK.ttlSeconds,
        },
      ]),
    });
    const childMandateId = mandateOf(delegated.access_token);
    say(`   child mandate ${childMandateId}: get_customer and propose_refund up to 20.00, once`);
    const remediation = await connect(async () => delegated.access_token, 'remediation');
    childClients.push(remediation);
    const childRead = await call(remediation, 'helpdesk.get_customer', { customerId: 'C-1009' });
    say(`   remediation reads the customer: ${childRead.ok ? 'allowed' : `refused (${childRead.meta.code})`}`);

    heading('Try something outside the delegated scope (a 90.00 credit: the child may propose at most 20.00)');
    const outside = await call(remediation, 'helpdesk.propose_refund', {
      customerId: 'C-1009',
      amountCents: 9_000,
      reason: 'goodwill credit',
    });
    say(`   ${outside.ok ? 'UNEXPECTEDLY allowed' : `denied (${outside.meta.code ?? 'error'})`}: ${short(outside.text)}`);

    let completed = false;
    if (o.keepOpen) {
      heading('Leave the mandates open (--keep-open): revoke the root in the console and watch the child follow');
      say(`   ${base}/console/mandates/${mandateId}`);
    } else {
      heading('Complete the task: the mandate, its child and every token end at once');
      const res = await fetch(`${base}/mandate/v1/mandates/${encodeURIComponent(mandateId)}/complete`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await keeper.current()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'refund executed, ticket resolved' }),
      });
      completed = res.ok;
      say(
        completed ? `   completed ${mandateId} (and ${childMandateId})` : `   completion refused: HTTP ${res.status} ${await res.text()}`,
      );
    }
    say(`\nDone. Investigate in the console: ${base}/console/audit?mandate=${encodeURIComponent(mandateId)}`);
    return { mandateId, childMandateId, approvalId, approved, completed, renewals: keeper.renewals };
  } finally {
    for (const c of childClients) await c.close().catch(() => {});
    await triage.close().catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      'data-dir': { type: 'string', default: './data' },
      'on-behalf-of': { type: 'string', default: 'bob' },
      'poll-seconds': { type: 'string', default: '3' },
      'approval-timeout-seconds': { type: 'string', default: '600' },
      'keep-open': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'npm run demo:agent -- [--url http://127.0.0.1:8080] [--data-dir ./data] [--on-behalf-of bob] [--poll-seconds 3] [--keep-open]\n',
    );
    return;
  }
  const seconds = (v: string, name: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n * 1000;
  };
  process.stdout.write('Mandate demo agent (development only): support-triage resolves ticket T-4821\n');
  const result = await runDemoAgent({
    url: values.url,
    dataDir: resolve(values['data-dir']),
    onBehalfOf: values['on-behalf-of'],
    pollMs: seconds(values['poll-seconds'], 'poll-seconds'),
    approvalTimeoutMs: seconds(values['approval-timeout-seconds'], 'approval-timeout-seconds'),
    keepOpen: values['keep-open'],
    log: (line) => process.stdout.write(`${line}\n`),
  });
  if (!result.approved) process.exitCode = 2;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    const e = err as { error?: string; error_description?: string; message?: string };
    process.stderr.write(`demo agent failed: ${e.error ? `${e.error}: ${e.error_description ?? ''}` : (e.message ?? String(err))}\n`);
    process.exit(1);
  });
}
