// DEVELOPMENT ONLY: the scripted demo agent behind `npm run demo:agent`. It behaves like a real
// agent and is written with the agent SDK (src/sdk, `mandate/sdk`): it proves its identity with a
// JWT-SVID (minted from the demo trust domain's key in the data folder, as `spire-server jwt mint`
// would), opens a mandate on behalf of a human (RFC 8693 token exchange, DPoP-bound tokens), and
// calls tools through the gateway with the official MCP client the SDK wires. Each step is
// printed, so a newcomer can follow it in the console at the same time. The mandate outlives its
// access tokens: the SDK refreshes them (rotated, key-bound refresh tokens) before they expire, so
// a long approval wait keeps the same mandate.
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEV_ISSUER_PATH, DevIssuer } from '../identity/dev-issuer.js';
import { DEV_TRUST_DOMAIN, DevSpiffeAuthority } from '../identity/dev-spiffe.js';
import { type Clock, systemClock } from '../lib/clock.js';
import {
  ApprovalDenied,
  ApprovalExpired,
  ApprovalRequired,
  Mandate,
  MandateRefusal,
  svidCallback,
  type ToolResult,
  textOf,
} from '../sdk/index.js';

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
  /** How often to retry the call that waits for approval, when the gateway offers no tasks. */
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

interface CallOutcome {
  readonly ok: boolean;
  readonly text: string;
  readonly code: string | undefined;
}

/** A governed call as the demo prints it: what ran, or the broker's refusal code and text. */
async function attempt(run: () => Promise<ToolResult>): Promise<CallOutcome> {
  try {
    const r = await run();
    return { ok: r.isError !== true, text: textOf(r), code: undefined };
  } catch (err) {
    if (err instanceof MandateRefusal) return { ok: false, text: err.message, code: err.code };
    throw err;
  }
}

function short(text: string, max = 160): string {
  const one = text.replace(/(MCP error -?\d+: )+/g, '').replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
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
  // Identity sources: a fresh JWT-SVID each time the SDK needs one (the broker accepts each once).
  const svidOf = (spiffeId: string) => svidCallback(() => spiffe.mint({ spiffeId, audience: base, ttlSeconds: 300 }));

  heading(`Prove identity: JWT-SVID for ${TRIAGE_AGENT}`);
  const human = await humans.mint({ sub: o.onBehalfOf, roles: [], ttlSeconds: 300 });
  say(`   acting on behalf of ${o.onBehalfOf} (their token is the subject, the agent's SVID the actor: RFC 8693)`);

  heading('Open a mandate at the token endpoint (authorization_details: the task and its scope)');
  let renewals = 0;
  const triage = await Mandate.open({
    broker: base,
    identity: svidOf(TRIAGE_AGENT),
    scope: DEMO_TASK,
    onBehalfOf: human,
    clientInfo: { name: 'support-triage', version: '1.0.0' },
    clock,
    onTokenRefresh: ({ mandateId }) => {
      renewals++;
      say(`   (access token renewed with the rotated refresh token: same mandate ${mandateId})`);
    },
  });
  const mandateId = triage.id;
  say(`   mandate ${mandateId}: "${DEMO_TASK.purpose}", ${DEMO_TASK.tools.length} tools, expires in ${DEMO_TASK.ttlSeconds}s`);
  say(`   console: ${base}/console/mandates/${mandateId}`);

  let remediation: Mandate | undefined;
  try {
    heading('List tools through the gateway (only what the mandate covers)');
    const { tools } = await triage.client.listTools();
    say(`   ${tools.map((t) => t.name).join(', ')}`);

    heading('Read tickets');
    const tickets = await attempt(() => triage.call('helpdesk.search_tickets', { customerId: 'C-1009' }));
    say(`   ${tickets.ok ? 'allowed' : `refused (${tickets.code})`}: ${short(tickets.text)}`);

    heading('Read the customer');
    const customer = await attempt(() => triage.call('helpdesk.get_customer', { customerId: 'C-1009' }));
    say(`   ${customer.ok ? 'allowed' : `refused (${customer.code})`}: ${short(customer.text)}`);

    heading('Propose a refund of 249.00 (propose: allowed within the mandate)');
    const proposal = await attempt(() =>
      triage.call('helpdesk.propose_refund', { ...REFUND, reason: 'duplicate charge on March 3rd (T-4821)' }),
    );
    say(`   ${proposal.ok ? 'allowed' : `refused (${proposal.code})`}: ${short(proposal.text)}`);

    heading('Execute the refund of 249.00 (production, above 100.00: org policy wants a human)');
    let approvalId = '';
    let approved = false;
    try {
      const r = await triage.call('helpdesk.execute_refund', REFUND, {
        timeoutMs: o.approvalTimeoutMs,
        pollMs: o.pollMs,
        onPending: (p) => {
          approvalId = p.approvalId ?? '';
          say(`   waiting for approval ${approvalId}`);
          say(`   >>> approve it in the console: ${p.url ?? `${base}/console/approvals`}`);
          say(
            p.via === 'task'
              ? '   (sign in as carol, the finance approver; the call waits as an MCP task and runs once approved)'
              : `   (sign in as carol, the finance approver; retrying the same call every ${Math.round(o.pollMs / 1000)}s)`,
          );
        },
      });
      approved = r.isError !== true;
      say(
        approvalId === ''
          ? `   allowed without approval: ${short(textOf(r))}`
          : approved
            ? `   approved: the retried call ran: ${short(textOf(r))}`
            : `   approved, but the call failed: ${short(textOf(r))}`,
      );
    } catch (err) {
      if (err instanceof ApprovalDenied || err instanceof ApprovalExpired || err instanceof ApprovalRequired) {
        const why = err instanceof ApprovalRequired ? 'timeout' : err.code;
        say(`   not approved (${why}): ${short(err.message)}`);
      } else if (err instanceof MandateRefusal) {
        say(`   refused (${err.code}): ${short(err.message)}`);
      } else throw err;
    }

    heading('Delegate a narrower mandate to the remediation agent');
    // A child never outlives its parent: after a long approval wait, less of the root is left.
    const leftSeconds = Math.floor((triage.expiresAt - clock.now()) / 1000) - 5;
    remediation = await triage.delegate({
      identity: svidOf(REMEDIATION_AGENT),
      scope: {
        ...DELEGATED_TASK,
        ttlSeconds: Number.isFinite(leftSeconds) ? Math.min(DELEGATED_TASK.ttlSeconds, leftSeconds) : DELEGATED_TASK.ttlSeconds,
      },
    });
    const child = remediation;
    const childMandateId = child.id;
    say(`   child mandate ${childMandateId}: get_customer and propose_refund up to 20.00, once`);
    const childRead = await attempt(() => child.call('helpdesk.get_customer', { customerId: 'C-1009' }));
    say(`   remediation reads the customer: ${childRead.ok ? 'allowed' : `refused (${childRead.code})`}`);

    heading('Try something outside the delegated scope (a 90.00 credit: the child may propose at most 20.00)');
    const outside = await attempt(() =>
      child.call('helpdesk.propose_refund', { customerId: 'C-1009', amountCents: 9_000, reason: 'goodwill credit' }),
    );
    say(`   ${outside.ok ? 'UNEXPECTEDLY allowed' : `denied (${outside.code ?? 'error'})`}: ${short(outside.text)}`);

    let completed = false;
    if (o.keepOpen) {
      heading('Leave the mandates open (--keep-open): revoke the root in the console and watch the child follow');
      say(`   ${base}/console/mandates/${mandateId}`);
    } else {
      heading('Complete the task: the mandate, its child and every token end at once');
      try {
        await triage.complete('refund executed, ticket resolved');
        completed = true;
        say(`   completed ${mandateId} (and ${childMandateId})`);
      } catch (err) {
        say(`   completion refused: ${(err as Error).message}`);
      }
    }
    say(`\nDone. Investigate in the console: ${base}/console/audit?mandate=${encodeURIComponent(mandateId)}`);
    return { mandateId, childMandateId, approvalId, approved, completed, renewals };
  } finally {
    await remediation?.close();
    await triage.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      // The broker's public URL: the same MANDATE_URL the CLI reads, so one export serves every terminal.
      url: { type: 'string', default: process.env.MANDATE_URL || 'http://127.0.0.1:8080' },
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
      'npm run demo:agent -- [--url URL (default: MANDATE_URL, else http://127.0.0.1:8080)] [--data-dir ./data] [--on-behalf-of bob] [--poll-seconds 3] [--keep-open]\n',
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

// Real paths: run through a symlinked checkout, argv[1] and this module's URL name the same file differently.
if (process.argv[1] !== undefined && realpathSync(resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url))) {
  main().catch((err: unknown) => {
    const e = err as { error?: string; error_description?: string; message?: string };
    process.stderr.write(`demo agent failed: ${e.error ? `${e.error}: ${e.error_description ?? ''}` : (e.message ?? String(err))}\n`);
    process.exit(1);
  });
}
