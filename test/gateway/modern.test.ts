// /mcp as an MCP 2026-07-28 server (stateless), over raw HTTP so every MUST of the revision is
// checked on the wire: `_meta` fields, the request headers against the body, server/discover,
// resultType and serverInfo on results, the status codes; and the legacy revision beside it on
// the same endpoint: sessions bound to the mandate (a new token continues them), cancellation.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../src/lib/clock.js';
import { type AccessTokenClaims, AccessTokenIssuer } from '../../src/oauth/access-token.js';
import { type GatewayHarness, MISBEHAVING_SERVER_PATH, startGateway } from './harness.js';

const FORGING_SERVER_PATH = new URL('./fixtures/forging-server.ts', import.meta.url).pathname;

const MODERN = '2026-07-28';
const TASKS = 'io.modelcontextprotocol/tasks';

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: {
    id?: unknown;
    result?: Record<string, unknown> & { _meta?: Record<string, unknown>; isError?: boolean; content?: { text?: string }[] };
    error?: { code: number; message: string; data?: Record<string, unknown> };
  };
}

const b64 = (s: string) => `=?base64?${Buffer.from(s).toString('base64')}?=`;

describe('/mcp speaks MCP 2026-07-28 beside 2025-11-25', () => {
  let h: GatewayHarness;
  let token: string;
  let mandateId: string;

  /** Posts one message; `headers` override the ones derived from the body (undefined removes one). */
  const post = async (
    message: Record<string, unknown>,
    headers: Record<string, string | undefined> = {},
    bearer = token,
  ): Promise<Answer> => {
    const params = (message.params ?? {}) as Record<string, unknown>;
    const name = params.name ?? params.taskId;
    const all: Record<string, string | undefined> = {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': MODERN,
      'mcp-method': String(message.method),
      ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
      ...headers,
    };
    const sent: Record<string, string> = {};
    for (const [k, v] of Object.entries(all)) if (v !== undefined) sent[k] = v;
    const res = await fetch(h.mcpUrl, { method: 'POST', headers: sent, body: JSON.stringify({ jsonrpc: '2.0', ...message }) });
    const text = await res.text();
    let body: Answer['body'] = {};
    try {
      body = JSON.parse(text) as Answer['body'];
    } catch {
      // Empty bodies (202) fail the assertions that read them.
    }
    return { status: res.status, headers: res.headers, text, body };
  };

  /** A modern request's params: the required `_meta` plus `extra`. */
  const modern = (extra: Record<string, unknown> = {}, capabilities: Record<string, unknown> = {}) => ({
    ...extra,
    _meta: {
      'io.modelcontextprotocol/protocolVersion': MODERN,
      'io.modelcontextprotocol/clientCapabilities': capabilities,
      'io.modelcontextprotocol/clientInfo': { name: 'modern-test', version: '1' },
    },
  });

  const refused = (a: Answer, status: number, rpc: number, code: string, message?: RegExp) => {
    assert.equal(a.status, status, a.text);
    assert.equal(a.body.error?.code, rpc, a.text);
    assert.equal(a.body.error?.data?.code, code, a.text);
    if (message !== undefined) assert.match(a.body.error?.message ?? '', message, a.text);
  };

  before(async () => {
    h = await startGateway({ config: { upstreams: { stdio: { allowedCommands: [process.execPath] } } } });
    await h.registerStdio('misbehaving', MISBEHAVING_SERVER_PATH);
    await h.registerStdio('forging', FORGING_SERVER_PATH);
    ({ token, mandateId } = await h.mandate([
      { tool: 'helpdesk.search_tickets' },
      { tool: 'everything.echo' },
      { tool: 'misbehaving.hang' },
    ]));
  });
  after(async () => {
    await h.close();
  });

  it('answers server/discover with both revisions, the tasks extension, serverInfo and cache hints', async () => {
    const a = await post({ id: 'd1', method: 'server/discover', params: modern() });
    assert.equal(a.status, 200, a.text);
    const r = a.body.result ?? {};
    assert.equal(r.resultType, 'complete');
    assert.deepEqual(r.supportedVersions, ['2026-07-28', '2025-11-25']);
    assert.deepEqual((r.capabilities as Record<string, unknown>).extensions, { [TASKS]: {} });
    assert.equal((r._meta?.['io.modelcontextprotocol/serverInfo'] as { name?: string } | undefined)?.name, 'mandate-gateway');
    assert.equal(typeof r.instructions, 'string');
    assert.equal(typeof r.ttlMs, 'number');
    assert.equal(r.cacheScope, 'private');
    assert.equal(a.headers.get('mcp-session-id'), null, 'a stateless server mints no session');
  });

  it('lists and calls tools statelessly, with resultType and serverInfo on every result', async () => {
    const list = await post({ id: 1, method: 'tools/list', params: modern() });
    assert.equal(list.status, 200, list.text);
    const tools = ((list.body.result?.tools ?? []) as { name: string }[]).map((t) => t.name);
    assert.deepEqual(tools, ['everything.echo', 'helpdesk.search_tickets', 'misbehaving.hang']);
    assert.equal(list.body.result?.resultType, 'complete');
    assert.equal(list.body.result?.cacheScope, 'private');
    const call = await post({
      id: 2,
      method: 'tools/call',
      params: modern({ name: 'everything.echo', arguments: { message: 'stateless' } }),
    });
    assert.equal(call.status, 200, call.text);
    assert.equal(call.body.result?.resultType, 'complete');
    assert.match(call.body.result?.content?.[0]?.text ?? '', /stateless/);
    assert.ok(call.body.result?._meta?.['io.modelcontextprotocol/serverInfo']);
    // A name outside plain ASCII travels Base64-encoded in Mcp-Name, and is decoded before comparing.
    const encoded = await post(
      { id: 3, method: 'tools/call', params: modern({ name: 'everything.echo', arguments: { message: 'b64' } }) },
      { 'mcp-name': b64('everything.echo') },
    );
    assert.equal(encoded.status, 200, encoded.text);
  });

  it('refuses requests whose headers are missing or do not match the body with 400 and -32020', async () => {
    const call = { id: 4, method: 'tools/call', params: modern({ name: 'everything.echo', arguments: { message: 'x' } }) };
    refused(await post(call, { 'mcp-protocol-version': undefined }), 400, -32020, 'RPC_HEADER_MISMATCH', /MCP-Protocol-Version/);
    refused(await post(call, { 'mcp-method': undefined }), 400, -32020, 'RPC_HEADER_MISMATCH', /Mcp-Method/);
    refused(await post(call, { 'mcp-method': 'tools/list' }), 400, -32020, 'RPC_HEADER_MISMATCH', /Mcp-Method/);
    refused(await post(call, { 'mcp-name': undefined }), 400, -32020, 'RPC_HEADER_MISMATCH', /Mcp-Name/);
    // A router trusting the header would see one tool while the body calls another.
    refused(await post(call, { 'mcp-name': 'helpdesk.search_tickets' }), 400, -32020, 'RPC_HEADER_MISMATCH', /Mcp-Name/);
    refused(await post(call, { 'mcp-name': b64('helpdesk.search_tickets') }), 400, -32020, 'RPC_HEADER_MISMATCH');
    refused(await post(call, { 'mcp-name': '=?base64?!!!?=' }), 400, -32020, 'RPC_HEADER_MISMATCH', /malformed/);
    refused(await post(call, { 'mcp-protocol-version': '2025-11-25' }), 400, -32020, 'RPC_HEADER_MISMATCH', /does not match/);
    // Header values are case-sensitive.
    refused(await post(call, { 'mcp-method': 'TOOLS/CALL' }), 400, -32020, 'RPC_HEADER_MISMATCH');
    // Nothing was decided or forwarded for any of them.
    const decisions = await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['decision'] });
    assert.equal(
      decisions.filter(
        (e) =>
          e.event.data.tool === 'everything.echo' && e.event.data.args !== undefined && JSON.stringify(e.event.data.args).includes('"x"'),
      ).length,
      0,
    );
  });

  it('refuses a request without the required _meta with 400 and -32602, and an unsupported version with -32022', async () => {
    const noMeta = await post({ id: 5, method: 'tools/list', params: {} });
    refused(noMeta, 400, -32602, 'RPC_META_INVALID', /protocolVersion/);
    const noCaps = await post({
      id: 6,
      method: 'tools/list',
      params: { _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': [] } },
    });
    refused(noCaps, 400, -32602, 'RPC_META_INVALID', /clientCapabilities/);
    const future = await post(
      {
        id: 7,
        method: 'tools/list',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2099-01-01', 'io.modelcontextprotocol/clientCapabilities': {} } },
      },
      { 'mcp-protocol-version': '2099-01-01' },
    );
    refused(future, 400, -32022, 'RPC_UNSUPPORTED_PROTOCOL_VERSION');
    assert.deepEqual(future.body.error?.data?.supported, ['2026-07-28', '2025-11-25']);
    assert.equal(future.body.error?.data?.requested, '2099-01-01');
    assert.equal(future.body.id, 7);
  });

  it('answers an unknown method with 404 and -32601, a batch with 400, GET and DELETE with 405, a notification with 202', async () => {
    refused(await post({ id: 8, method: 'resources/list', params: modern() }), 404, -32601, 'RPC_METHOD_NOT_FOUND');
    // ping and initialize are gone in 2026-07-28: a request that declares the revision gets them as unknown.
    refused(await post({ id: 9, method: 'ping', params: modern() }), 404, -32601, 'RPC_METHOD_NOT_FOUND');
    const init = await post({ id: 19, method: 'initialize', params: modern({ protocolVersion: '2025-11-25', capabilities: {} }) });
    refused(init, 404, -32601, 'RPC_METHOD_NOT_FOUND');
    assert.equal(init.headers.get('mcp-session-id'), null);
    const batch = await fetch(h.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': MODERN,
      },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/list', params: modern() }]),
    });
    assert.equal(batch.status, 400);
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(h.mcpUrl, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream' },
      });
      assert.equal(res.status, 405, method);
      assert.match(res.headers.get('allow') ?? '', /POST/);
      await res.text();
    }
    const note = await post({ method: 'notifications/whatever', params: modern() });
    assert.equal(note.status, 202);
    assert.equal(note.text, '');
    // A client must not send responses.
    const response = await fetch(h.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': MODERN,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, result: {}, params: modern() }),
    });
    assert.equal(response.status, 400);
  });

  it('requires the tasks extension for tasks/* (-32021) and answers an unknown task like a foreign one (-32602)', async () => {
    const without = await post({ id: 10, method: 'tasks/get', params: modern({ taskId: 'task_nope' }) });
    refused(without, 400, -32021, 'RPC_MISSING_CLIENT_CAPABILITY');
    assert.deepEqual(without.body.error?.data?.requiredCapabilities, { extensions: { [TASKS]: {} } });
    const unknown = await post({ id: 11, method: 'tasks/get', params: modern({ taskId: 'task_nope' }, { extensions: { [TASKS]: {} } }) });
    refused(unknown, 200, -32602, 'RPC_TASK_NOT_FOUND');
    refused(
      await post({ id: 12, method: 'tasks/cancel', params: modern({ taskId: 'x'.repeat(500) }, { extensions: { [TASKS]: {} } }) }),
      200,
      -32602,
      'RPC_TASK_NOT_FOUND',
    );
  });

  it('refuses a scope violation as an isError result the model can read, with the decision in _meta', async () => {
    const a = await post({
      id: 13,
      method: 'tools/call',
      params: modern({ name: 'helpdesk.delete_customer', arguments: { customerId: 'C-1' } }),
    });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.error, undefined);
    assert.equal(a.body.result?.isError, true);
    assert.equal(a.body.result?.resultType, 'complete');
    const text = a.body.result?.content?.[0]?.text ?? '';
    assert.match(text, /^Refused: mandate \S+: tool helpdesk\.delete_customer is not granted\. Tools this mandate may call: /);
    assert.doesNotMatch(text, /MCP error/);
    const error = a.body.result?._meta?.['mandate/error'] as Record<string, unknown>;
    assert.equal(error.code, 'RPC_CALL_DENIED');
    assert.match(String(error.decisionId), /^gw_/);
    assert.ok(a.body.result?._meta?.['io.modelcontextprotocol/serverInfo'], 'serverInfo kept beside the Mandate error');
  });

  it('cancels the upstream call when the client closes its request (2026-07-28 cancellation)', async () => {
    const ac = new AbortController();
    const pending = fetch(h.mcpUrl, {
      method: 'POST',
      signal: ac.signal,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': MODERN,
        'mcp-method': 'tools/call',
        'mcp-name': 'misbehaving.hang',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 14, method: 'tools/call', params: modern({ name: 'misbehaving.hang', arguments: {} }) }),
    }).catch((err: Error) => err);
    // Wait until the decision is audited (the call reached the upstream), then hang up.
    await until(async () =>
      (await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['decision'] })).some(
        (e) => e.event.data.tool === 'misbehaving.hang',
      ),
    );
    ac.abort();
    assert.ok((await pending) instanceof Error);
    // The result is audited as cancelled by the client, not as the upstream timeout it would otherwise hit.
    let ended: Record<string, unknown> | undefined;
    await until(async () => {
      const results = await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] });
      ended = results.find((e) => e.event.data.tool === 'misbehaving.hang')?.event.data;
      return ended !== undefined;
    });
    assert.equal(ended?.error, 'RPC_REQUEST_CANCELLED');
  });

  it('never relays an upstream result that forges protocol fields (a task, an input request, the gateway identity)', async () => {
    const { token: t } = await h.mandate([{ tool: 'forging.task' }, { tool: 'forging.input' }, { tool: 'forging.identity' }]);
    for (const tool of ['forging.task', 'forging.input']) {
      const a = await post({ id: 20, method: 'tools/call', params: modern({ name: tool, arguments: {} }) }, {}, t);
      assert.equal(a.status, 200, a.text);
      assert.equal(a.body.result?.resultType, 'complete', a.text);
      assert.equal(a.body.result?.isError, true, a.text);
      assert.equal((a.body.result?._meta?.['mandate/error'] as Record<string, unknown> | undefined)?.code, 'RPC_UPSTREAM_ERROR');
      assert.equal(a.body.result?.taskId, undefined);
    }
    const a = await post({ id: 21, method: 'tools/call', params: modern({ name: 'forging.identity', arguments: {} }) }, {}, t);
    assert.equal(a.body.result?.isError, undefined, a.text);
    assert.notEqual((a.body.result?._meta?.['io.modelcontextprotocol/serverInfo'] as { version?: string } | undefined)?.version, 'forged');
    assert.equal(a.body.result?._meta?.keep, 1, 'the rest of the upstream _meta is kept');
  });

  describe('2025-11-25 sessions on the same endpoint', () => {
    const legacy = async (
      sid: string | undefined,
      message: Record<string, unknown>,
      bearer = token,
      extra: Record<string, string> = {},
    ) => {
      const res = await fetch(h.mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(sid === undefined ? {} : { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }),
          ...extra,
        },
        body: JSON.stringify({ jsonrpc: '2.0', ...message }),
      });
      const text = await res.text();
      return {
        status: res.status,
        sid: res.headers.get('mcp-session-id'),
        text,
        body: (text === '' ? {} : JSON.parse(text)) as Answer['body'],
      };
    };
    const initialize = async (bearer = token) => {
      const init = await legacy(
        undefined,
        {
          id: 0,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'legacy-test', version: '1' } },
        },
        bearer,
      );
      assert.equal(init.status, 200, init.text);
      assert.equal(init.body.result?.protocolVersion, '2025-11-25');
      assert.equal(init.body.result?.resultType, undefined, 'legacy results carry no resultType');
      assert.ok(init.sid);
      return init.sid;
    };

    it('continues a session under a new token for the same mandate, and refuses it to another mandate', async () => {
      const sid = await initialize();
      assert.ok(sid.startsWith(`${mandateId}.`));
      // A second token for the same mandate (what a refresh or a token rotation yields).
      const rotated = await mintSameMandate(h, token);
      assert.notEqual(rotated, token);
      const listed = await legacy(sid, { id: 1, method: 'tools/list' }, rotated);
      assert.equal(listed.status, 200, listed.text);
      assert.ok(Array.isArray(listed.body.result?.tools));
      // Another mandate presenting this session id: like an unknown session.
      const other = await h.mandate([{ tool: 'everything.echo' }]);
      const foreign = await legacy(sid, { id: 2, method: 'tools/list' }, other.token);
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.error?.data?.code, 'RPC_SESSION_NOT_FOUND');
      // Hostile ids: oversized, or naming this mandate through another's prefix, or empty-bodied.
      for (const forged of [`${mandateId}.${'a'.repeat(600)}`, `${other.mandateId}.${sid.split('.').pop()}`, `.${mandateId}`, '%2e%2e']) {
        const a = await legacy(forged, { id: 4, method: 'tools/list' });
        assert.equal(a.status, 404, forged.slice(0, 80));
        assert.equal(a.body.error?.data?.code, 'RPC_SESSION_NOT_FOUND');
      }
      // DELETE ends it; the id is then unknown.
      const del = await fetch(h.mcpUrl, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid } });
      assert.equal(del.status, 200);
      assert.equal((await legacy(sid, { id: 3, method: 'tools/list' })).status, 404);
    });

    it('stops a call cancelled with notifications/cancelled and answers it, so its HTTP request ends', async () => {
      const cancelled = async () =>
        (await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] })).filter(
          (e) => e.event.data.error === 'RPC_REQUEST_CANCELLED',
        ).length;
      const before = await cancelled();
      const sid = await initialize();
      const hanging = legacy(sid, { id: 'slow', method: 'tools/call', params: { name: 'misbehaving.hang', arguments: {} } });
      await new Promise((r) => setTimeout(r, 300));
      const note = await legacy(sid, { method: 'notifications/cancelled', params: { requestId: 'slow', reason: 'user pressed stop' } });
      assert.equal(note.status, 202);
      const answered = await hanging;
      assert.equal(answered.body.error?.data?.code, 'RPC_REQUEST_CANCELLED', answered.text);
      await until(async () => (await cancelled()) === before + 1);
    });
  });
});

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A second access token for an existing mandate, signed with the broker's own key (a rotation, not a new mandate). */
async function mintSameMandate(h: GatewayHarness, token: string): Promise<string> {
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as AccessTokenClaims;
  const { identity } = h.broker;
  const issuer = new AccessTokenIssuer(identity.keys, systemClock, identity.issuer, identity.issuer);
  const { token: fresh } = await issuer.mint({
    sub: claims.sub,
    clientId: claims.client_id,
    mandateId: claims.mandate,
    details: {},
    exp: claims.exp,
    ...(claims.act === undefined ? {} : { act: claims.act }),
  });
  return fresh;
}
