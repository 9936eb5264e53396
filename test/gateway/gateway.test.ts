// The gateway end to end: the official MCP SDK client over streamable HTTP, through /mcp, to real
// upstreams (the demo helpdesk over stdio, the MCP reference "everything" server over stdio, and a
// misbehaving fake upstream), with real mandates from the token exchange and the demo org policy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import * as oauth from 'oauth4webapi';
import { HELPDESK_KEY_ENV } from '../../src/demo/helpdesk-server.js';
import { storeFactories } from '../helpers/stores.js';
import { handDpopProof } from '../identity/helpers.js';
import { type GatewayHarness, HELPER, MISBEHAVING_SERVER_PATH, meta, startGateway, TESTER, text } from './harness.js';

const CLI = fileURLToPath(new URL('../helpers/mandate-source.js', import.meta.url));

/** A refused call: a tool result with isError, plain text for the model, Mandate's structured reason in `_meta`. */
const refused = async (p: Promise<unknown>): Promise<{ data: Record<string, unknown>; text: string }> => {
  const r = await p;
  assert.equal((r as { isError?: boolean }).isError, true, JSON.stringify(r));
  assert.match(text(r), /^Refused: /);
  assert.doesNotMatch(text(r), /MCP error/);
  return { data: meta(r), text: text(r) };
};

for (const factory of await storeFactories()) {
  describe(`MCP gateway end to end (${factory.name})`, { skip: factory.skip }, () => {
    let h: GatewayHarness;
    let admin: string;
    before(async () => {
      h = await startGateway({ store: await factory.open(), config: { upstreams: { stdio: { allowedCommands: [process.execPath] } } } });
      admin = await h.operatorToken('alice');
      await h.registerStdio('misbehaving', MISBEHAVING_SERVER_PATH);
    });
    after(async () => {
      await h.close();
      await factory.cleanup();
    });

    it('serves RFC 9728 metadata and answers 401 with resource_metadata', async () => {
      const md = (await (await fetch(`${h.base}/.well-known/oauth-protected-resource`)).json()) as Record<string, unknown>;
      assert.equal(md.resource, h.base);
      assert.deepEqual(md.authorization_servers, [h.base]);
      const res = await fetch(h.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 401);
      assert.match(
        res.headers.get('www-authenticate') ?? '',
        /^Bearer .*resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource"/,
      );
      const bad = await fetch(h.mcpUrl, {
        method: 'POST',
        headers: { authorization: 'Bearer not.a.token', 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(bad.status, 401);
      assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    });

    it('lists only the tools the mandate grants, and forwards an allowed call with the injected credential', async () => {
      const { token } = await h.mandate([
        { tool: 'helpdesk.search_tickets' },
        { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
      ]);
      const client = await h.connect(token);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['helpdesk.get_customer', 'helpdesk.search_tickets']);
      assert.equal(tools.find((t) => t.name === 'helpdesk.search_tickets')?.annotations?.readOnlyHint, true);
      const r = await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } });
      assert.equal(r.isError, undefined, text(r));
      assert.match(text(r), /T-4821/);
      // The helpdesk refuses calls without its key: success means the gateway injected it.
      const { credential } = await h.broker.upstreams.registry.connection('helpdesk');
      const key = credential?.env?.[HELPDESK_KEY_ENV] ?? '';
      assert.ok(key.length > 10);
      assert.ok(!JSON.stringify(tools).includes(key) && !JSON.stringify(r).includes(key));
      const listed = await (await fetch(`${h.base}/admin/v1/upstreams/helpdesk`, { headers: { authorization: `Bearer ${admin}` } })).text();
      assert.ok(!listed.includes(key));
    });

    it('denies a granted tool with arguments outside the grant, and a tool that is not in the list', async () => {
      const { token } = await h.mandate([{ tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } }]);
      const client = await h.connect(token);
      const other = await refused(client.callTool({ name: 'helpdesk.get_customer', arguments: { customerId: 'C-1010' } }));
      assert.equal(other.data.code, 'RPC_CALL_DENIED');
      assert.match(other.text, /customerId/);
      assert.ok(typeof other.data.decisionId === 'string');
      const unlisted = await refused(client.callTool({ name: 'helpdesk.delete_customer', arguments: { customerId: 'C-1009' } }));
      assert.equal(unlisted.data.code, 'RPC_CALL_DENIED');
      // What would be allowed: the tools the mandate grants.
      assert.match(unlisted.text, /Tools this mandate may call: helpdesk\.get_customer\./);
      // A tool that does not exist gets the same answer as one that exists but is not granted.
      const unknown = await refused(client.callTool({ name: 'nowhere.tool', arguments: {} }));
      assert.equal(unknown.data.code, 'RPC_CALL_DENIED');
      assert.equal(unknown.text.replace('nowhere.tool', 'X'), unlisted.text.replace('helpdesk.delete_customer', 'X'));
    });

    it('reaches a registry MCP server (everything) behind the gateway', async () => {
      const { token } = await h.mandate([{ tool: 'everything.echo' }]);
      const client = await h.connect(token);
      assert.deepEqual(
        (await client.listTools()).tools.map((t) => t.name),
        ['everything.echo'],
      );
      const r = await client.callTool({ name: 'everything.echo', arguments: { message: 'through the gateway' } });
      assert.match(text(r), /through the gateway/);
    });

    it('runs the approval round trip: pending, approved once for the exact call, never for another', async () => {
      const call = { customerId: 'C-1009', amountCents: 4900 };
      const { token } = await h.mandate([
        { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
      ]);
      const client = await h.connect(token);
      const first = await client.callTool({ name: 'helpdesk.execute_refund', arguments: call });
      assert.equal(first.isError, true);
      const approvalId = meta(first).approvalId as string;
      assert.match(approvalId, /^apr_/);
      assert.match(text(first), new RegExp(`/console/approvals/${approvalId}`));
      // A retry before anyone decided points at the same pending approval.
      assert.equal(meta(await client.callTool({ name: 'helpdesk.execute_refund', arguments: call })).approvalId, approvalId);

      const shown = (await (
        await fetch(`${h.base}/admin/v1/approvals/${approvalId}`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as {
        context: { args: Record<string, unknown>; purpose: string; chain: unknown[] };
        requiredRoles: string[];
      };
      assert.deepEqual(shown.context.args, call);
      assert.equal(shown.context.purpose, 'gateway test');
      assert.ok(shown.requiredRoles.includes('support-lead'));

      // Alice is an admin but not a role this approval needs.
      const wrongRole = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(wrongRole.status, 403);
      const bob = await h.operatorToken('bob');
      const ok = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: JSON.stringify({ note: 'duplicate charge confirmed' }),
      });
      assert.equal(ok.status, 200);

      // One argument changed: not covered, a new approval is needed.
      const changed = await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...call, amountCents: 4901 } });
      assert.equal(changed.isError, true);
      assert.notEqual(meta(changed).approvalId, approvalId);
      // The exact call runs once.
      const done = await client.callTool({ name: 'helpdesk.execute_refund', arguments: call });
      assert.equal(done.isError, undefined, text(done));
      assert.match(text(done), /"amountCents":4900/);
      // Replaying it needs a fresh approval: the consumed one never allows again.
      const replay = await client.callTool({ name: 'helpdesk.execute_refund', arguments: call });
      assert.equal(replay.isError, true);
      assert.notEqual(meta(replay).approvalId, approvalId);
      assert.equal((await h.broker.approvals.require(approvalId)).status, 'consumed');
      const trail = await h.broker.audit.entriesBy('approval_id', approvalId);
      assert.deepEqual(
        trail.map((e) => e.event.type),
        ['approval.requested', 'approval.decided', 'decision', 'approval.consumed'],
      );
    });

    it('never lets the agent approve its own request', async () => {
      const { token } = await h.mandate([{ tool: 'helpdesk.delete_customer' }]);
      const client = await h.connect(token);
      const r = await client.callTool({ name: 'helpdesk.delete_customer', arguments: { customerId: 'C-1011' } });
      const approvalId = meta(r).approvalId as string;
      // With its own mandate token: not an operator at all.
      const asAgentToken = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(asAgentToken.status, 401);
      // With an operator token whose subject is the agent (a misconfigured IdP): refused by the approval.
      const impersonation = await h.operatorToken('gateway-tester' as 'alice', ['admin']);
      const asAgentOperator = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${impersonation}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(asAgentOperator.status, 403);
      assert.equal(((await asAgentOperator.json()) as { error: string }).error, 'ERR_APPROVER_NOT_ALLOWED');
      assert.equal((await h.broker.approvals.require(approvalId)).status, 'pending');
    });

    it('lets an admin approve a destructive call from the CLI, after which it runs once', async () => {
      const { token } = await h.mandate([{ tool: 'helpdesk.delete_customer' }]);
      const client = await h.connect(token);
      const call = { name: 'helpdesk.delete_customer', arguments: { customerId: 'C-1010' } };
      const pending = await client.callTool(call);
      const approvalId = meta(pending).approvalId as string;
      assert.deepEqual(meta(pending).requiredRoles, ['admin']);
      const cli = (...args: string[]) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const child = spawn(process.execPath, [CLI, 'approvals', ...args, '--url', h.base], {
            env: { ...process.env, MANDATE_TOKEN: admin },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          child.stdout.on('data', (c) => (out += c));
          child.stderr.on('data', (c) => (out += c));
          child.on('close', (code) => resolve({ code, out }));
        });
      const listed = await cli('list', '--json');
      assert.equal(listed.code, 0, listed.out);
      assert.ok((JSON.parse(listed.out) as { id: string }[]).some((a) => a.id === approvalId));
      const approved = await cli('approve', approvalId, '--note', 'customer asked for erasure');
      assert.equal(approved.code, 0, approved.out);
      assert.equal((JSON.parse(approved.out) as { status: string; decidedRole: string }).decidedRole, 'admin');
      const done = await client.callTool(call);
      assert.equal(done.isError, undefined, text(done));
      assert.match(text(done), /"deleted":"C-1010"/);
    });

    it('shows a delegated agent a narrower list and refuses what only the parent had', async () => {
      const parent = await h.mandate([{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.get_customer' }]);
      const child = await h.delegate(parent.token, HELPER.spiffeId, {
        type: 'mandate',
        purpose: 'look up tickets only',
        taskType: 'support.refund',
        environment: 'production',
        ttlSeconds: 300,
        tools: [{ tool: 'helpdesk.search_tickets' }],
        delegable: false,
      });
      const client = await h.connect(child.access_token);
      assert.deepEqual(
        (await client.listTools()).tools.map((t) => t.name),
        ['helpdesk.search_tickets'],
      );
      const r = await refused(client.callTool({ name: 'helpdesk.get_customer', arguments: { customerId: 'C-1009' } }));
      assert.equal(r.data.code, 'RPC_CALL_DENIED');
    });

    it('refuses every call once the mandate is completed', async () => {
      const { token, mandateId } = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
      const client = await h.connect(token);
      await client.callTool({ name: 'helpdesk.search_tickets', arguments: {} });
      await h.broker.mandates.end(mandateId, 'completed', { type: 'agent', id: 'gateway-tester' });
      await assert.rejects(client.callTool({ name: 'helpdesk.search_tickets', arguments: {} }));
      const raw = await fetch(h.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(raw.status, 401);
    });

    it('accepts a DPoP-bound token with a fresh proof on every request, and never as a bearer token', async () => {
      const keyPair = await oauth.generateKeyPair('ES256');
      const res = await h.open(
        TESTER.spiffeId,
        {
          type: 'mandate',
          purpose: 'dpop through the gateway',
          taskType: 'support.refund',
          environment: 'production',
          ttlSeconds: 300,
          tools: [{ tool: 'helpdesk.search_tickets' }],
          delegable: false,
        },
        oauth.DPoP(h.client, keyPair),
      );
      assert.equal(res.token_type.toLowerCase(), 'dpop');
      const token = res.access_token;
      const ath = createHash('sha256').update(token).digest('base64url');
      let nonce: string | undefined;
      let challenges = 0;
      const client = new Client({ name: 'dpop-agent', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(h.mcpUrl, {
          // RFC 9449 §8/§9: the first request learns the gateway's nonce (use_dpop_nonce + DPoP-Nonce),
          // later ones carry the latest nonce it sent.
          fetch: async (url, init) => {
            const send = async () => {
              const headers = new Headers(init?.headers);
              headers.set('authorization', `DPoP ${token}`);
              headers.set('dpop', await handDpopProof(keyPair, { htm: init?.method ?? 'GET', htu: String(url), ath, nonce }));
              const res = await fetch(url, { ...init, headers });
              nonce = res.headers.get('dpop-nonce') ?? nonce;
              return res;
            };
            const res = await send();
            if (res.status !== 401 || !/DPoP error="use_dpop_nonce"/.test(res.headers.get('www-authenticate') ?? '')) return res;
            challenges++;
            return send();
          },
        }),
      );
      try {
        const r = await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } });
        assert.equal(r.isError, undefined, text(r));
        assert.match(text(r), /T-4821/);
        assert.equal(challenges, 1, 'one nonce challenge, then the nonce is reused');
      } finally {
        await client.close();
      }
      const asBearer = await fetch(h.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(asBearer.status, 401);
      assert.match(asBearer.headers.get('www-authenticate') ?? '', /DPoP/);
    });

    it('refuses oversized arguments before deciding', async () => {
      const { token } = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
      const client = await h.connect(token);
      const r = await refused(client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'x'.repeat(5000) } }));
      assert.equal(r.data.code, 'RPC_ARGS_TOO_LARGE');
    });

    it('cancels an upstream that hangs and withholds a huge result, both as audited tool errors', async () => {
      const { token, mandateId } = await h.mandate([{ tool: 'misbehaving.hang' }, { tool: 'misbehaving.huge' }]);
      const client = await h.connect(token);
      const hang = await client.callTool({ name: 'misbehaving.hang', arguments: {} });
      assert.equal(hang.isError, true);
      assert.equal(meta(hang).code, 'RPC_UPSTREAM_TIMEOUT');
      const huge = await client.callTool({ name: 'misbehaving.huge', arguments: { bytes: 200_000 } });
      assert.equal(huge.isError, true);
      assert.equal(meta(huge).code, 'RPC_RESULT_TOO_LARGE');
      assert.ok(JSON.stringify(huge).length < 2000);
      const small = await client.callTool({ name: 'misbehaving.huge', arguments: { bytes: 10 } });
      assert.equal(small.isError, undefined);
      const results = await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] });
      assert.deepEqual(
        results.map((e) => e.event.data.error ?? 'ok'),
        ['RPC_UPSTREAM_TIMEOUT', 'RPC_RESULT_TOO_LARGE', 'ok'],
      );
      assert.equal(results[2]?.event.data.bytes, JSON.stringify(small).length);
    });

    it('answers a clear, audited tool error when the upstream is down, without retrying', async () => {
      const auth = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
      const create = await fetch(`${h.base}/admin/v1/upstreams`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({
          id: 'flaky',
          transport: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', MISBEHAVING_SERVER_PATH] },
          isolation: 'shared',
        }),
      });
      assert.equal(create.status, 201);
      const { token, mandateId } = await h.mandate([{ tool: 'flaky.huge' }]);
      const client = await h.connect(token);
      assert.equal((await client.callTool({ name: 'flaky.huge', arguments: { bytes: 3 } })).isError, undefined);
      // The upstream now fails to start; its catalog entries stay, so calls are decided and then fail.
      const patch = await fetch(`${h.base}/admin/v1/upstreams/flaky`, {
        method: 'PATCH',
        headers: auth,
        body: JSON.stringify({ transport: { type: 'stdio', command: process.execPath, args: ['-e', 'process.exit(1)'] } }),
      });
      assert.match(((await patch.json()) as { discoveryError?: string }).discoveryError ?? '', /discovery failed/);
      const down = await client.callTool({ name: 'flaky.huge', arguments: { bytes: 3 } });
      assert.equal(down.isError, true);
      assert.equal(meta(down).code, 'RPC_UPSTREAM_UNAVAILABLE');
      assert.match(text(down), /not retried/);
      const last = (await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] })).at(-1);
      assert.equal(last?.event.data.error, 'RPC_UPSTREAM_UNAVAILABLE');
    });

    it('refuses a session opened under another mandate', async () => {
      const a = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
      const b = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
      const client = await h.connect(a.token);
      const sid = (client.transport as { sessionId?: string } | undefined)?.sessionId;
      assert.ok(sid);
      const res = await fetch(h.mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${b.token}`,
          'mcp-session-id': sid,
          'mcp-protocol-version': '2025-06-18',
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
      assert.equal(res.status, 404);
    });
  });
}
