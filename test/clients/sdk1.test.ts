// The official MCP TypeScript SDK 1.x client (@modelcontextprotocol/sdk), unmodified, over
// streamable HTTP on the 2025-11-25 revision (initialize + Mcp-Session-Id): lists and calls
// through the gateway, reads refusals as isError tool results, runs the retry-the-same-call
// approval flow, and keeps its session when its access token is replaced by a new one for the
// same mandate (while another mandate cannot use that session).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { storeFactories } from '../helpers/stores.js';
import { assertRefusal, type ClientsHarness, LEGACY, REFUND, refusalOf, startClientsGateway, textOf } from './helpers.js';

/** An SDK 1.x client whose bearer token can be swapped mid-session, as a client refreshing its token does. */
async function connect(h: ClientsHarness, initial: string) {
  let token = initial;
  const transport = new StreamableHTTPClientTransport(h.mcpUrl, {
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${token}`);
      return fetch(url, { ...init, headers });
    },
  });
  const client = new Client({ name: 'mandate-sdk1-test', version: '1' });
  await client.connect(transport);
  return {
    client,
    transport,
    setToken: (t: string) => {
      token = t;
    },
  };
}

for (const factory of await storeFactories()) {
  // The skip is only the PostgreSQL half on a machine where PostgreSQL is unreachable (its reason is the
  // skip value, test/helpers/stores.ts); under CI (CI set) storeFactories() throws instead.
  describe(`SDK 1.x client through the gateway (2025-11-25, sessions) (${factory.name})`, { skip: factory.skip }, () => {
    let h: ClientsHarness;
    const clients: Client[] = [];
    before(async () => {
      h = await startClientsGateway({}, await factory.open());
    });
    after(async () => {
      for (const c of clients) await c.close().catch(() => {});
      await h?.close();
      await factory.cleanup();
    });

    it('negotiates 2025-11-25, lists exactly the granted tools and calls one', async () => {
      const { token } = await h.grant();
      const { client, transport } = await connect(h, token);
      clients.push(client);
      assert.equal(transport.protocolVersion, LEGACY);
      assert.match(transport.sessionId ?? '', /.{16,}/, 'a session id was issued');
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), [
        'everything.echo',
        'helpdesk.execute_refund',
        'helpdesk.get_customer',
        'helpdesk.search_tickets',
      ]);
      const r = await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } });
      assert.equal(r.isError, undefined, textOf(r));
      assert.match(textOf(r), /T-4821/);
      const echo = await client.callTool({ name: 'everything.echo', arguments: { message: 'sdk one' } });
      assert.match(textOf(echo), /sdk one/);
    });

    it('gets refusals as isError results with the registry code, not JSON-RPC errors', async () => {
      const { token } = await h.grant();
      const { client } = await connect(h, token);
      clients.push(client);
      // Outside the argument grant: says what was refused and what would be allowed.
      const outside = await client.callTool({ name: 'helpdesk.get_customer', arguments: { customerId: 'C-1010' } });
      assertRefusal(outside, 'RPC_CALL_DENIED', /get_customer[\s\S]*customerId[\s\S]*C-1009/);
      // A tool the mandate does not grant, and one that exists nowhere: the same answer.
      assertRefusal(
        await client.callTool({ name: 'helpdesk.delete_customer', arguments: { customerId: 'C-1009' } }),
        'RPC_CALL_DENIED',
        /delete_customer/,
      );
      assertRefusal(await client.callTool({ name: 'nowhere.tool', arguments: {} }), 'RPC_CALL_DENIED', /nowhere\.tool/);
      // A protocol error stays a JSON-RPC error.
      await assert.rejects(client.request({ method: 'no/such-method', params: {} } as never, ResultSchema), { code: -32601 });
    });

    it('without the Tasks extension: approval pending as an isError result, retry runs once after approval', async () => {
      const { token, mandateId } = await h.grant();
      const { client } = await connect(h, token);
      clients.push(client);
      const first = await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...REFUND } });
      const pending = assertRefusal(first, 'RPC_APPROVAL_REQUIRED', /approv/i);
      const approvalId = await h.pendingApproval(mandateId);
      assert.equal(pending.approvalId, approvalId);
      assert.match(textOf(first), new RegExp(`/console/approvals/${approvalId}`));
      // A retry before the decision points at the same approval and writes no new audit event.
      const before = (await h.broker.audit.entriesBy('approval_id', approvalId)).length;
      const again = await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...REFUND } });
      assert.equal(refusalOf(again).approvalId, approvalId);
      assert.equal((await h.broker.audit.entriesBy('approval_id', approvalId)).length, before);
      await h.decide(approvalId, true);
      const done = await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...REFUND } });
      assert.equal(done.isError, undefined, textOf(done));
      assert.match(textOf(done), /"amountCents":4900/);
      assert.equal((await h.broker.approvals.require(approvalId)).status, 'consumed');
    });

    it('a retry after a denial says it was denied instead of opening a new approval', async () => {
      const { token, mandateId } = await h.grant();
      const { client } = await connect(h, token);
      clients.push(client);
      await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...REFUND } });
      const approvalId = await h.pendingApproval(mandateId);
      await h.decide(approvalId, false);
      const retry = await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...REFUND } });
      assert.equal(retry.isError, true);
      assert.match(textOf(retry), /denied/i);
      const m = refusalOf(retry);
      assert.equal(m.approvalId, approvalId, 'names the approval that was denied');
      const open = await h.broker.approvals.list({ mandateId, status: 'pending' });
      assert.deepEqual(open, [], 'no new approval was opened');
    });

    it('continues its session under a new access token for the same mandate; another mandate gets 404', async () => {
      const { token } = await h.grant();
      const { client, transport, setToken } = await connect(h, token);
      clients.push(client);
      const sessionId = transport.sessionId;
      assert.ok(sessionId);
      assert.equal((await client.listTools()).tools.length, 4);
      setToken(await h.refresh(token));
      const r = await client.callTool({ name: 'everything.echo', arguments: { message: 'after rotation' } });
      assert.equal(r.isError, undefined, textOf(r));
      assert.match(textOf(r), /after rotation/);
      assert.equal(transport.sessionId, sessionId, 'same session, no new initialize');

      // Another mandate's token presenting this session id: not its session.
      const other = await h.grant();
      const res = await fetch(h.mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${other.token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': sessionId,
          'mcp-protocol-version': LEGACY,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
      assert.equal(res.status, 404);
      // And the session still works for its own mandate afterwards.
      assert.equal((await client.listTools()).tools.length, 4);
    });
  });
}
