// The agent SDK (`mandate/sdk`) against a real demo broker: the demo helpdesk behind /mcp, JWT-SVIDs
// from the development SPIFFE authority, access tokens that live 10 s so every long test crosses a
// refresh. Imports go through the package export, as an agent's would.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import {
  ApprovalDenied,
  ApprovalExpired,
  ApprovalRequired,
  Mandate,
  MandateAuthError,
  MandateRefusal,
  type PendingApproval,
  svidCallback,
  svidFile,
  textOf,
} from 'mandate/sdk';
import { type Running, startBroker } from '../identity/helpers.js';

const SDK_AGENT = { id: 'sdk-agent', spiffeId: 'spiffe://demo.mandate.local/agent/sdk-agent' };
const SDK_CHILD = { id: 'sdk-child', spiffeId: 'spiffe://demo.mandate.local/agent/sdk-child' };
const TOOLS: { tool: string; args?: Record<string, { eq?: string; max?: number }> }[] = [
  { tool: 'helpdesk.search_tickets' },
  { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
  { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
  { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
];
const REFUND = { customerId: 'C-1009', amountCents: 4900 } as const;
const SCOPE = {
  purpose: 'SDK test: refund C-1009',
  taskType: 'support.refund',
  environment: 'production',
  ttlSeconds: 600,
  tools: TOOLS,
  delegable: true,
};

describe('agent SDK against a real broker', () => {
  let b: Running;
  let dir: string;
  let bob: string;
  before(async () => {
    b = await startBroker({ config: { identity: { tokenTtlSeconds: 10 }, server: { rateLimit: { enabled: false } } } as never });
    dir = mkdtempSync(join(tmpdir(), 'mandate-sdk-'));
    bob = await b.operatorToken('bob');
    for (const a of [SDK_AGENT, SDK_CHILD]) {
      await b.broker.agents.register({
        id: a.id,
        displayName: a.id,
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: a.spiffeId },
        ceiling: { tools: TOOLS, delegable: true },
        mayReceiveDelegation: true,
        templates: {
          'refund-triage': {
            purpose: 'Triage refund requests',
            taskType: 'support.refund',
            ttlSeconds: 600,
            tools: TOOLS,
            delegable: true,
          },
        },
      });
    }
  });
  after(async () => {
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const identity = (spiffeId = SDK_AGENT.spiffeId) => svidCallback(() => b.svid(spiffeId));
  const open = (over: Partial<Parameters<typeof Mandate.open>[0]> = {}) =>
    Mandate.open({ broker: b.base, identity: identity(), scope: SCOPE, ...over });
  const status = async (id: string) => (await b.broker.mandates.get(id))?.status;
  async function decide(approvalId: string, approve: boolean) {
    const res = await fetch(`${b.base}/admin/v1/approvals/${approvalId}/${approve ? 'approve' : 'deny'}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: approve ? 'duplicate charge confirmed' : 'not a duplicate' }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  /** onPending that decides the approval the moment the SDK starts waiting, and records what it was told. */
  const decideWhenPending = (approve: boolean, seen: PendingApproval[]) => (p: PendingApproval) => {
    seen.push(p);
    assert.ok(p.approvalId, JSON.stringify(p));
    setTimeout(() => void decide(p.approvalId ?? '', approve), 300);
  };

  test('the minimal example: open from a template with a JWT-SVID file, one governed call, complete (4 lines)', async () => {
    const svidPath = join(dir, 'svid.jwt');
    writeFileSync(svidPath, await b.svid(SDK_AGENT.spiffeId));
    const broker = b.base;
    // ── the example, verbatim but for the broker URL and the file path ──
    const m = await Mandate.open({ broker, identity: svidFile(svidPath), template: 'refund-triage' });
    const r = await m.call('helpdesk.search_tickets', { query: 'charged twice' });
    await m.complete();
    // ──
    assert.match(textOf(r), /T-4821/);
    assert.equal(await status(m.id), 'completed');
    const mandate = await b.broker.mandates.get(m.id);
    assert.equal(mandate?.purpose, 'Triage refund requests');
    assert.equal(mandate?.agentId, SDK_AGENT.id);
    // DPoP on by default: the token is bound to a key, so a copy of it alone is no authority.
    const issued = await b.broker.audit.entriesBy('mandate_id', m.id, { types: ['token.issued'] });
    assert.equal((issued[0]?.event.data as Record<string, unknown> | undefined)?.grant, 'client_credentials');
    // The same SVID file, unchanged, is a proof the broker has already seen: refused, typed.
    const again = await Mandate.open({ broker, identity: svidFile(svidPath), template: 'refund-triage' }).catch((e: unknown) => e);
    assert.ok(again instanceof MandateAuthError, String(again));
    assert.equal(again.code, 'invalid_client');
    assert.match(again.description, /already been used/);
  });

  test('DPoP: every token is bound (cnf.jkt), sent as DPoP with a server nonce; a stolen copy is refused at /mcp', async () => {
    const m = await open();
    const token = await m.token();
    const jkt = (decodeJwt(token).cnf as { jkt?: string } | undefined)?.jkt;
    assert.match(String(jkt), /^[A-Za-z0-9_-]{43}$/);
    assert.match(textOf(await m.call('helpdesk.search_tickets', { query: 'charged twice' })), /T-4821/);
    for (const scheme of ['Bearer', 'DPoP']) {
      const stolen = await fetch(`${b.base}/mcp`, {
        method: 'POST',
        headers: { authorization: `${scheme} ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
      assert.equal(stolen.status, 401, scheme);
    }
    // dpop: false gives a Bearer mandate (where the agent's profile allows it).
    const bearer = await open({ dpop: false });
    assert.equal(decodeJwt(await bearer.token()).cnf, undefined);
    await m.complete();
    await bearer.complete();
  });

  test('a token expiring mid-run is refreshed: the same mandate, a new token, with and without DPoP', async () => {
    for (const dpop of [true, false]) {
      const m = await open({ dpop });
      const first = await m.token();
      assert.match(textOf(await m.call('helpdesk.search_tickets', { query: 'charged twice' })), /T-4821/);
      // Tokens live 10 s; wait past their whole life so the old one is useless.
      await new Promise((r) => setTimeout(r, 10_500));
      const r = await m.call('helpdesk.get_customer', { customerId: 'C-1009' });
      assert.match(textOf(r), /C-1009/);
      const second = await m.token();
      assert.notEqual(second, first);
      assert.equal(decodeJwt(second).mandate, m.id, 'same mandate');
      assert.equal(decodeJwt(first).mandate, m.id);
      const grants = (await b.broker.audit.entriesBy('mandate_id', m.id, { types: ['token.issued'] })).map(
        (e) => (e.event.data as Record<string, unknown>).grant,
      );
      assert.ok(grants.includes('refresh_token'), `dpop=${dpop}: ${grants.join()}`);
      assert.equal(await status(m.id), 'active');
      await m.complete();
    }
  });

  test('concurrent calls across a refresh share one refresh (a refresh token used twice would revoke the mandate)', async () => {
    let refreshes = 0;
    const m = await open({ onTokenRefresh: () => refreshes++ });
    await new Promise((r) => setTimeout(r, 8_000)); // past three quarters of the 10 s token
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        i % 2 === 0
          ? m.call('helpdesk.search_tickets', { query: 'charged twice' })
          : m.call('helpdesk.get_customer', { customerId: 'C-1009' }),
      ),
    );
    assert.equal(results.length, 6);
    assert.ok(results.every((r) => r.isError !== true));
    assert.equal(refreshes, 1);
    assert.equal(await status(m.id), 'active', 'no refresh token reuse');
    const reused = await b.broker.audit.entriesBy('mandate_id', m.id, { types: ['token.refresh_reused'] });
    assert.equal(reused.length, 0);
    await m.complete();
  });

  test('an approval wait as an MCP task completes once a human approves through the admin API', async () => {
    const m = await open();
    const seen: PendingApproval[] = [];
    const r = await m.call('helpdesk.execute_refund', REFUND, { onPending: decideWhenPending(true, seen) });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.via, 'task');
    assert.match(String(seen[0]?.taskId), /^task_/);
    assert.match(String(seen[0]?.url), /\/console\/approvals\/apr_/);
    assert.match(String(seen[0]?.message), new RegExp(seen[0]?.approvalId ?? 'none'));
    assert.equal(r.isError, undefined, textOf(r));
    assert.match(textOf(r), /"amountCents":4900/);
    const approval = await b.broker.approvals.require(seen[0]?.approvalId ?? '');
    assert.equal(approval.status, 'consumed');
    const forwarded = await b.broker.audit.entriesBy('mandate_id', m.id, { types: ['tool.result'] });
    assert.equal(forwarded.length, 1, 'forwarded exactly once');
    await m.complete();
  });

  test('an approval wait by retrying the same call completes once approved', async () => {
    const m = await open();
    const seen: PendingApproval[] = [];
    const r = await m.call('helpdesk.execute_refund', REFUND, {
      approvalMode: 'retry',
      pollMs: 200,
      onPending: decideWhenPending(true, seen),
    });
    assert.equal(seen[0]?.via, 'retry');
    assert.match(textOf(r), /"amountCents":4900/);
    assert.equal((await b.broker.approvals.require(seen[0]?.approvalId ?? '')).status, 'consumed');
    await m.complete();
  });

  test('a denial throws ApprovalDenied (tasks and retry), with the registry code; the call did not run', async () => {
    for (const approvalMode of ['auto', 'retry'] as const) {
      const m = await open();
      const seen: PendingApproval[] = [];
      const err = await m
        .call('helpdesk.execute_refund', REFUND, { approvalMode, pollMs: 200, onPending: decideWhenPending(false, seen) })
        .then(
          () => assert.fail('a denied call resolved'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof ApprovalDenied, `${approvalMode}: ${String(err)}`);
      assert.ok(err instanceof MandateRefusal);
      assert.equal(err.code, 'RPC_APPROVAL_DENIED');
      assert.equal(err.approvalId, seen[0]?.approvalId);
      assert.equal((await b.broker.approvals.require(seen[0]?.approvalId ?? '')).status, 'denied');
      const forwarded = await b.broker.audit.entriesBy('mandate_id', m.id, { types: ['tool.result'] });
      assert.equal(forwarded.length, 0, 'nothing was forwarded');
      await m.complete();
    }
  });

  test('not waiting: ApprovalRequired names the approval; a timeout cancels the task and withdraws its request', async () => {
    const m = await open();
    const err = await m.call('helpdesk.execute_refund', REFUND, { waitForApproval: false }).catch((e: unknown) => e);
    assert.ok(err instanceof ApprovalRequired, String(err));
    assert.equal(err.code, 'RPC_APPROVAL_REQUIRED');
    assert.match(String(err.approvalId), /^apr_/);
    assert.match(String(err.details.url), /\/console\/approvals\/apr_/);

    const other = await open();
    const seen: PendingApproval[] = [];
    const timedOut = await other
      .call('helpdesk.execute_refund', REFUND, { timeoutMs: 500, onPending: (p) => seen.push(p) })
      .catch((e: unknown) => e);
    assert.ok(timedOut instanceof ApprovalRequired, String(timedOut));
    assert.equal((await b.broker.approvals.require(seen[0]?.approvalId ?? '')).status, 'withdrawn');
    await m.complete();
    await other.complete();
  });

  test('refusals by the mandate are MandateRefusal with code, decision id and reasons; nothing is forwarded', async () => {
    const m = await open();
    const err = await m.call('helpdesk.get_customer', { customerId: 'C-1010' }).catch((e: unknown) => e);
    assert.ok(err instanceof MandateRefusal, String(err));
    assert.ok(!(err instanceof ApprovalDenied || err instanceof ApprovalExpired || err instanceof ApprovalRequired));
    assert.equal(err.code, 'RPC_CALL_DENIED');
    assert.match(String(err.decisionId), /./);
    assert.ok(
      err.reasons.some((r) => /C-1009/.test(r)),
      err.reasons.join(),
    );
    assert.match(err.message, /get_customer/);
    const ungranted = await m.call('helpdesk.delete_customer', { customerId: 'C-1009' }).catch((e: unknown) => e);
    assert.ok(ungranted instanceof MandateRefusal);
    assert.equal(ungranted.code, 'RPC_CALL_DENIED');
    // The official client is there for anything else, on the same token.
    const { tools } = await m.client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS.map((t) => t.tool).sort());
    await m.complete();
  });

  test('opening refusals are MandateAuthError: unknown template, scope beyond the ceiling, unregistered agent', async () => {
    const unknown = await open({ scope: undefined, template: 'nope' }).catch((e: unknown) => e);
    assert.ok(unknown instanceof MandateAuthError, String(unknown));
    assert.equal(unknown.code, 'invalid_scope');
    const wide = await open({ scope: { ...SCOPE, tools: [{ tool: 'helpdesk.delete_customer' }] } }).catch((e: unknown) => e);
    assert.ok(wide instanceof MandateAuthError, String(wide));
    assert.equal(wide.code, 'invalid_authorization_details');
    const stranger = await open({ identity: identity('spiffe://demo.mandate.local/agent/nobody') }).catch((e: unknown) => e);
    assert.ok(stranger instanceof MandateAuthError, String(stranger));
    assert.equal(stranger.code, 'invalid_client');
  });

  test('delegate narrows: the child gets what it was given and no more; wider than the parent is refused', async () => {
    const m = await open();
    const child = await m.delegate({
      identity: identity(SDK_CHILD.spiffeId),
      scope: {
        purpose: 'propose a goodwill credit',
        taskType: 'support.refund',
        environment: 'production',
        ttlSeconds: 300,
        tools: [{ tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 2_000 } }, maxCalls: 1 }],
        delegable: false,
      },
    });
    assert.notEqual(child.id, m.id);
    assert.equal((await b.broker.mandates.get(child.id))?.parentId, m.id);
    assert.equal((await b.broker.mandates.get(child.id))?.agentId, SDK_CHILD.id);
    const ok = await child.call('helpdesk.propose_refund', { customerId: 'C-1009', amountCents: 1_500, reason: 'goodwill' });
    assert.equal(ok.isError, undefined, textOf(ok));
    // Beyond the child's limits, though the parent could.
    const over = await child
      .call('helpdesk.propose_refund', { customerId: 'C-1009', amountCents: 9_000, reason: 'goodwill' })
      .catch((e: unknown) => e);
    assert.ok(over instanceof MandateRefusal, String(over));
    assert.equal(over.code, 'RPC_CALL_DENIED');
    const notGiven = await child.call('helpdesk.search_tickets', { query: 'x' }).catch((e: unknown) => e);
    assert.ok(notGiven instanceof MandateRefusal);
    // A child wider than the parent (a tool the parent does not have) is refused at the token endpoint.
    const wider = await m
      .delegate({ identity: identity(SDK_CHILD.spiffeId), scope: { ...SCOPE, tools: [{ tool: 'helpdesk.delete_customer' }] } })
      .catch((e: unknown) => e);
    assert.ok(wider instanceof MandateAuthError, String(wider));
    assert.equal(wider.code, 'invalid_authorization_details');
    await m.complete();
    assert.equal(await status(child.id), 'revoked', 'ending the parent ends the child');
  });

  test('complete ends the mandate: further calls through the SDK and with its last token are refused', async () => {
    const m = await open();
    const token = await m.token();
    await m.complete('done');
    assert.equal(m.ended, true);
    assert.equal(await status(m.id), 'completed');
    const after = await m.call('helpdesk.search_tickets', { query: 'charged twice' }).catch((e: unknown) => e);
    assert.ok(after instanceof MandateAuthError, String(after));
    assert.equal(after.code, 'invalid_grant');
    const raw = await fetch(`${b.base}/mcp`, {
      method: 'POST',
      headers: { authorization: `DPoP ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    assert.equal(raw.status, 401);
    // fail() on an ended mandate is refused, typed.
    const again = await m.fail('too late').catch((e: unknown) => e);
    assert.ok(again instanceof MandateAuthError, String(again));
    // Revoked elsewhere (an admin, the console): the next call is refused by the broker, typed.
    const revoked = await open();
    assert.match(textOf(await revoked.call('helpdesk.search_tickets', { query: 'charged twice' })), /T-4821/);
    const alice = await b.operatorToken('alice');
    const res = await fetch(`${b.base}/admin/v1/mandates/${revoked.id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'stop' }),
    });
    assert.equal(res.status, 200, await res.text());
    const refused = await revoked.call('helpdesk.search_tickets', { query: 'charged twice' }).catch((e: unknown) => e);
    assert.ok(refused instanceof MandateAuthError, String(refused));
    // invalid_token from /mcp, or invalid_grant when the SDK first tried a refresh (short tokens here).
    assert.ok(['invalid_token', 'invalid_grant'].includes(refused.code), refused.code);
    assert.match(refused.description, /revoked|ended/);
    await revoked.close();
    // fail() ends a live one as failed.
    const f = await open();
    await f.fail('customer record locked');
    assert.equal(await status(f.id), 'failed');
  });
});

describe('agent SDK: an approval nobody decides (broker and agent clocks moved past its expiry)', () => {
  let b: Running;
  let offsetMs = 0;
  const clock = { now: () => Date.now() + offsetMs };
  before(async () => {
    // The replica freshness check runs on the moved clock too; it is not under test here.
    b = await startBroker({
      clock,
      config: { server: { rateLimit: { enabled: false } }, changes: { maxStalenessMs: 3_600_000 } } as never,
    });
    await b.broker.agents.register({
      id: SDK_AGENT.id,
      displayName: SDK_AGENT.id,
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: SDK_AGENT.spiffeId },
      ceiling: { tools: TOOLS, delegable: true },
    });
  });
  after(() => b?.close());

  for (const approvalMode of ['auto', 'retry'] as const) {
    test(`ApprovalExpired (${approvalMode === 'auto' ? 'task' : 'retry'}): the call did not run; tokens were refreshed on the moved clock`, async () => {
      let refreshes = 0;
      const m = await Mandate.open({
        broker: b.base,
        identity: svidCallback(() => b.svid(SDK_AGENT.spiffeId)),
        scope: { ...SCOPE, ttlSeconds: 3000 },
        clock,
        onTokenRefresh: () => refreshes++,
      });
      const seen: PendingApproval[] = [];
      const err = await m
        .call('helpdesk.execute_refund', REFUND, {
          approvalMode,
          pollMs: 200,
          onPending: (p) => {
            seen.push(p);
            // Sixteen minutes pass: the 15-minute approval expires unanswered, 5-minute tokens three times over.
            offsetMs += 16 * 60_000;
          },
        })
        .catch((e: unknown) => e);
      assert.ok(err instanceof ApprovalExpired, String(err));
      assert.ok(err instanceof MandateRefusal);
      assert.equal(seen[0]?.via, approvalMode === 'auto' ? 'task' : 'retry');
      assert.equal((await b.broker.approvals.require(seen[0]?.approvalId ?? '')).status, 'expired');
      assert.equal((await b.broker.audit.entriesBy('mandate_id', m.id, { types: ['tool.result'] })).length, 0, 'nothing ran');
      assert.ok(refreshes >= 1, 'the token was refreshed on the moved clock (DPoP proofs dated by it)');
      assert.equal(decodeJwt(await m.token()).mandate, m.id);
      await m.complete();
      assert.equal(await b.broker.mandates.get(m.id).then((x) => x?.status), 'completed');
    });
  }
});
