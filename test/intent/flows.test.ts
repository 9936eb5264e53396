// Task templates with parameters and intent binding end to end, on both stores: opened through the
// token endpoint (RFC 8693 and client credentials via the SDK), the admin API and the CLI; the real
// gateway relays a real MCP upstream's results, remembers what they named, and policy holds a call
// whose target came from tool output; explain shows which values the human named.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explainEvent, renderExplanation } from '../../src/audit/explain.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { Mandate, svidCallback } from '../../src/sdk/index.js';
import { type GatewayHarness, mandateIdOf, meta, startGateway, text } from '../gateway/harness.js';
import { storeFactories } from '../helpers/stores.js';
import { oauthError } from '../identity/helpers.js';
import { FIXTURE_POLICIES } from './fixtures.js';

const MAIL_SERVER = fileURLToPath(new URL('./fixtures/mail-server.ts', import.meta.url));
const CLI = fileURLToPath(new URL('../helpers/mandate-source.js', import.meta.url));
const CLERK = { id: 'intent-clerk', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/intent-clerk` };
const DELEGATE = { id: 'intent-delegate', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/intent-delegate` };
const REQUEST = 'Read my inbox and reply to bob@example.com that the invoice is fine.';
const TRANSFER_REQUEST = 'Pay the invoice: 120 EUR to DE89 3704 0044 0532 0130 00.';

const factories = await storeFactories();

for (const factory of factories) {
  // PostgreSQL half: skipped only when PostgreSQL is unreachable on a developer machine (the reason is
  // the skip value); storeFactories never skips under CI, where an unreachable server fails the run.
  describe(`task templates and intent binding end to end (${factory.name})`, { skip: factory.skip }, () => {
    let h: GatewayHarness;
    let admin: string;

    before(async () => {
      h = await startGateway({
        store: await factory.open(),
        config: { policy: { dir: FIXTURE_POLICIES }, upstreams: { stdio: { allowedCommands: [process.execPath] } } },
      });
      await h.registerStdio('mail', MAIL_SERVER);
      await h.registerStdio('bank', MAIL_SERVER);
      await h.broker.agents.register({
        id: CLERK.id,
        displayName: CLERK.id,
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: CLERK.spiffeId },
        ceiling: {
          tools: ['mail.read_inbox', 'mail.send_email', 'mail.forward', 'bank.send_money', 'bank.get_balance', 'bank.set_reference'].map(
            (tool) => ({ tool }),
          ),
          delegable: true,
        },
      });
      await h.broker.agents.register({
        id: DELEGATE.id,
        displayName: DELEGATE.id,
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: DELEGATE.spiffeId },
        ceiling: { tools: [{ tool: 'mail.send_email' }], delegable: false },
        mayReceiveDelegation: true,
      });
      admin = await h.operatorToken('alice');
    });
    after(() => h?.close());

    const exchange = async (details: unknown) =>
      h.exchange({
        subject_token: await h.svid(CLERK.spiffeId),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([details]),
      });
    const adminPost = (path: string, body: unknown) =>
      fetch(`${h.base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const lastDecision = async (mandateId: string, tool: string) => {
      const entries = await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['decision'], limit: 100 });
      const mine = entries.filter((e) => e.event.data.tool === tool);
      const last = mine[mine.length - 1];
      assert.ok(last, `a decision on ${tool}`);
      return last;
    };

    it('token exchange: a template with parameters opens a mandate that keeps the request text and the template', async () => {
      const res = await exchange({
        type: 'mandate',
        template: 'mail.reply',
        params: { recipients: ['Bob@Example.com'] },
        request: REQUEST,
      });
      const id = mandateIdOf(res.access_token);
      const m = await h.broker.mandates.get(id);
      assert.equal(m?.requestText, REQUEST);
      assert.deepEqual(m?.template, {
        name: 'mail.reply',
        version: 1,
        params: { recipients: ['bob@example.com'] },
        approval: { tools: ['mail.forward'], unnamedTargets: false },
      });
      assert.deepEqual(m?.scope.tools[1], { tool: 'mail.send_email', args: { to: { in: ['bob@example.com'] } }, maxCalls: 3 });
      const details = res.authorization_details as Record<string, unknown>[] | undefined;
      assert.deepEqual(details?.[0]?.template, { name: 'mail.reply', version: 1 });
      // Read back from the store, not the cache: what a restarted replica sees.
      const [row] = await h.broker.store.query<{ request_text: string; template: string }>(
        'SELECT request_text, template FROM mandates WHERE id = ?',
        [id],
      );
      assert.equal(row?.request_text, REQUEST);
      assert.equal(JSON.parse(row?.template ?? '{}').name, 'mail.reply');
    });

    it('token exchange: unknown, missing or ill-typed parameters are invalid_authorization_details naming the code', async () => {
      for (const [params, code] of [
        [{ recipients: ['bob@example.com'], extra: 1 }, 'ERR_TEMPLATE_PARAMS'],
        [{}, 'ERR_TEMPLATE_PARAMS'],
        [{ recipients: 'bob@example.com' }, 'ERR_TEMPLATE_PARAMS'],
      ] as const) {
        const e = await oauthError(exchange({ type: 'mandate', template: 'mail.reply', params }));
        assert.equal(e.error, 'invalid_authorization_details');
        assert.match(e.description, /template mail\.reply v1/);
        void code;
      }
      const unknown = await oauthError(exchange({ type: 'mandate', template: 'no.such', params: {} }));
      assert.equal(unknown.error, 'invalid_authorization_details');
      assert.match(unknown.description, /no task template "no\.such"/);
      // A client cannot smuggle a template record of its own into a complete request.
      const smuggled = await oauthError(
        exchange({ type: 'mandate', purpose: 'x', taskType: 'email', environment: 'production', ttlSeconds: 60, tools: [], template: 1 }),
      );
      assert.equal(smuggled.error, 'invalid_authorization_details');
    });

    it('gateway: a value first seen in a relayed tool result is held for approval; the named one runs; explain tells them apart', async () => {
      const res = await exchange({
        type: 'mandate',
        purpose: 'reply',
        taskType: 'email',
        environment: 'production',
        ttlSeconds: 600,
        tools: [{ tool: 'mail.read_inbox' }, { tool: 'mail.send_email' }],
        request: REQUEST,
      });
      const id = mandateIdOf(res.access_token);
      const client = await h.connect(res.access_token);
      const inbox = await client.callTool({ name: 'mail.read_inbox', arguments: {} });
      assert.match(text(inbox), /eve@evil\.test/);

      const injected = await client.callTool({ name: 'mail.send_email', arguments: { to: 'eve@evil.test', subject: 'fwd' } });
      assert.equal(meta(injected).code, 'RPC_APPROVAL_REQUIRED', text(injected));
      const held = await lastDecision(id, 'mail.send_email');
      assert.equal(held.event.data.outcome, 'approval_required');
      assert.deepEqual((held.event.data.intent as { args: unknown }).args, {
        to: { named: false, fromToolOutput: true, target: true },
        subject: { named: false, fromToolOutput: false, target: false },
      });

      const named = await client.callTool({ name: 'mail.send_email', arguments: { to: 'bob@example.com', subject: 'ok' } });
      assert.equal(named.isError, undefined, text(named));
      assert.equal(text(named), 'sent to bob@example.com');

      const x = await explainEvent(h.broker.audit, held.id);
      assert.equal(x.intent?.request, REQUEST);
      assert.deepEqual(x.intent?.fromToolOutput, ['to']);
      assert.deepEqual(x.intent?.unnamedTargets, ['to']);
      assert.equal(x.intent?.args.to?.value, 'eve@evil.test');
      // What `mandate audit explain` prints.
      const rendered = renderExplanation(x);
      assert.match(rendered, /intent: request "Read my inbox/);
      assert.match(rendered, /target to = "eve@evil\.test": from tool output \(not named by the human\)/);
      assert.match(rendered, /subject = "fwd": not named by the human/);
      const api = await fetch(`${h.base}/admin/v1/audit/events/${held.id}/explain`, { headers: { authorization: `Bearer ${admin}` } });
      assert.equal(api.status, 200);
      const body = (await api.json()) as { intent?: { fromToolOutput?: string[] } };
      assert.deepEqual(body.intent?.fromToolOutput, ['to']);
    });

    it('gateway: what one mandate of a tree read is known to its delegate (provenance is per tree)', async () => {
      const parent = await exchange({
        type: 'mandate',
        purpose: 'reply',
        taskType: 'email',
        environment: 'production',
        ttlSeconds: 600,
        tools: [{ tool: 'mail.read_inbox' }, { tool: 'mail.send_email' }],
        delegable: true,
        request: REQUEST,
      });
      await (await h.connect(parent.access_token)).callTool({ name: 'mail.read_inbox', arguments: {} });
      const child = await h.delegate(parent.access_token, DELEGATE.spiffeId, {
        type: 'mandate',
        purpose: 'reply',
        taskType: 'email',
        environment: 'production',
        ttlSeconds: 300,
        tools: [{ tool: 'mail.send_email' }],
      });
      const childId = mandateIdOf(child.access_token);
      assert.equal((await h.broker.mandates.get(childId))?.requestText, REQUEST, "the delegate keeps the human's request");
      const r = await (await h.connect(child.access_token)).callTool({ name: 'mail.send_email', arguments: { to: 'eve@evil.test' } });
      assert.equal(meta(r).code, 'RPC_APPROVAL_REQUIRED', text(r));
      const d = await lastDecision(childId, 'mail.send_email');
      assert.deepEqual((d.event.data.intent as { toolOutputTargets: string[] }).toolOutputTargets, ['to']);
    });

    it('admin API: an orchestrator opens a mandate from a template; the agent takes it with its own proof and uses it', async () => {
      const bad = await adminPost('/admin/v1/mandates', {
        agentId: CLERK.id,
        template: 'payments.transfer',
        params: { iban: 'DE88370400440532013000', amount: 120 },
      });
      assert.equal(bad.status, 400);
      const badBody = (await bad.json()) as { error?: { code?: string; details?: { param?: string } }; code?: string };
      assert.match(JSON.stringify(badBody), /ERR_TEMPLATE_PARAMS/);
      assert.match(JSON.stringify(badBody), /iban/);

      const res = await adminPost('/admin/v1/mandates', {
        agentId: CLERK.id,
        template: 'payments.transfer',
        params: { iban: 'DE89 3704 0044 0532 0130 00', amount: 120 },
        request: TRANSFER_REQUEST,
      });
      assert.equal(res.status, 201, await res.clone().text());
      const opened = (await res.json()) as { id: string; requestText: string; take: unknown };
      assert.equal(opened.requestText, TRANSFER_REQUEST);

      const taken = await exchange(opened.take);
      assert.equal(mandateIdOf(taken.access_token), opened.id);
      const client = await h.connect(taken.access_token);
      const paid = await client.callTool({ name: 'bank.send_money', arguments: { recipient: 'DE89370400440532013000', amount: 120 } });
      assert.equal(text(paid), 'paid 120 to DE89370400440532013000');
      const other = await client.callTool({ name: 'bank.send_money', arguments: { recipient: 'GB82WEST12345698765432', amount: 120 } });
      assert.equal(meta(other).code, 'RPC_CALL_DENIED', 'the template pins the recipient');

      // Another agent cannot take it.
      const stranger = await oauthError(
        h.exchange({
          subject_token: await h.svid(`spiffe://${DEV_TRUST_DOMAIN}/agent/gateway-tester`),
          subject_token_type: TOKEN_TYPE.jwt,
          authorization_details: JSON.stringify([opened.take]),
        }),
      );
      assert.equal(stranger.error, 'invalid_grant');

      // An orchestrator (not an admin) may not claim another human's authority.
      const orchestrator = await h.operatorToken('bob', ['orchestrator']);
      const claim = await fetch(`${h.base}/admin/v1/mandates`, {
        method: 'POST',
        headers: { authorization: `Bearer ${orchestrator}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          agentId: CLERK.id,
          template: 'payments.transfer',
          params: { iban: 'DE89370400440532013000', amount: 1 },
          onBehalfOf: 'alice',
        }),
      });
      assert.equal(claim.status, 403);
      const auditor = await h.operatorToken('carol', ['auditor']);
      const forbidden = await fetch(`${h.base}/admin/v1/mandates`, {
        method: 'POST',
        headers: { authorization: `Bearer ${auditor}`, 'content-type': 'application/json' },
        body: JSON.stringify({ agentId: CLERK.id, template: 'payments.transfer', params: { iban: 'DE89370400440532013000', amount: 1 } }),
      });
      assert.equal(forbidden.status, 403);
      const own = await fetch(`${h.base}/admin/v1/mandates`, {
        method: 'POST',
        headers: { authorization: `Bearer ${orchestrator}`, 'content-type': 'application/json' },
        body: JSON.stringify({ agentId: CLERK.id, template: 'payments.transfer', params: { iban: 'DE89370400440532013000', amount: 1 } }),
      });
      assert.equal(own.status, 201, await own.clone().text());

      const unknownAgent = await adminPost('/admin/v1/mandates', { agentId: 'nobody', template: 'payments.transfer', params: {} });
      assert.equal(unknownAgent.status, 404);
      const list = await fetch(`${h.base}/admin/v1/templates`, { headers: { authorization: `Bearer ${admin}` } });
      const names = ((await list.json()) as { items: { name: string; version: number }[] }).items.map((t) => `${t.name}@${t.version}`);
      assert.deepEqual(names, ['mail.reply@1', 'payments.transfer@2', 'payments.transfer@1']);
    });

    it('CLI: mandates open with --param and --request; refusals print the registry code', async () => {
      // Asynchronously: the broker answering the CLI runs in this process.
      const run = (...args: string[]) =>
        new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
          execFile(
            process.execPath,
            [CLI, ...args, '--url', h.base],
            { env: { PATH: process.env.PATH ?? '', MANDATE_TOKEN: admin }, encoding: 'utf8', timeout: 60_000 },
            (err, stdout, stderr) => resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
          );
        });
      const ok = await run(
        'mandates',
        'open',
        '--agent',
        CLERK.id,
        '--template',
        'payments.transfer',
        '--template-version',
        '1',
        '--param',
        'iban=DE89 3704 0044 0532 0130 00',
        '--request',
        TRANSFER_REQUEST,
      );
      assert.equal(ok.status, 0, ok.stderr);
      const m = JSON.parse(ok.stdout) as { id: string; template: { version: number; params: { iban: string } }; requestText: string };
      assert.equal(m.template.version, 1);
      assert.equal(m.template.params.iban, 'DE89370400440532013000');
      assert.equal((await h.broker.mandates.get(m.id))?.requestText, TRANSFER_REQUEST);

      const refused = await run('mandates', 'open', '--agent', CLERK.id, '--template', 'payments.transfer', '--param', 'amount=12');
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /ERR_TEMPLATE_PARAMS/);
      const listed = await run('templates', 'list');
      assert.equal(listed.status, 0, listed.stderr);
      assert.match(listed.stdout, /payments\.transfer\s+2\s+payments\s+iban:iban amount:amount reference:string\?/);
    });

    it('a profile template that refers to a template file opens it with its fixed parameters (client credentials scope)', async () => {
      await h.broker.agents.update(CLERK.id, {
        templates: { 'pay-utility': { template: 'payments.transfer', params: { iban: 'DE89370400440532013000', amount: 80 } } },
      });
      const m = await Mandate.open({ broker: h.base, identity: svidCallback(() => h.svid(CLERK.spiffeId)), template: 'pay-utility' });
      try {
        const stored = await h.broker.mandates.get(m.id);
        assert.deepEqual(stored?.template?.params, { iban: 'DE89370400440532013000', amount: 80 });
        assert.deepEqual(stored?.scope.tools[0], {
          tool: 'bank.send_money',
          args: { recipient: { eq: 'DE89370400440532013000' }, amount: { max: 80 } },
          maxCalls: 1,
        });
      } finally {
        await m.complete().catch(() => {});
      }
      await h.broker.agents.update(CLERK.id, { templates: { broken: { template: 'payments.transfer', params: { amount: 80 } } } });
      await assert.rejects(
        Mandate.open({ broker: h.base, identity: svidCallback(() => h.svid(CLERK.spiffeId)), template: 'broken' }),
        (err: Error) => /iban/.test(`${err.message} ${JSON.stringify(err)}`),
      );
      await h.broker.agents.update(CLERK.id, { templates: {} });
    });

    it('SDK: Mandate.open({ task }) through client credentials, then a governed call', async () => {
      const m = await Mandate.open({
        broker: h.base,
        identity: svidCallback(() => h.svid(CLERK.spiffeId)),
        task: { template: 'mail.reply', params: { recipients: ['bob@example.com'] }, request: REQUEST },
      });
      try {
        const stored = await h.broker.mandates.get(m.id);
        assert.equal(stored?.requestText, REQUEST);
        assert.equal(stored?.template?.name, 'mail.reply');
        const r = await m.call('mail.send_email', { to: 'bob@example.com', subject: 're: invoice' });
        assert.match(JSON.stringify(r), /sent to bob@example\.com/);
      } finally {
        await m.complete().catch(() => {});
      }
      await assert.rejects(
        Mandate.open({
          broker: h.base,
          identity: svidCallback(() => h.svid(CLERK.spiffeId)),
          task: { template: 'mail.reply', params: { recipients: ['not an address'] } },
        }),
        (err: Error) => /invalid_authorization_details|ERR_TEMPLATE_PARAMS|e-mail/.test(`${err.message} ${JSON.stringify(err)}`),
      );
    });
  });
}
