// Hostile input at /mcp, against a real broker and real upstreams: catalog enumeration (an
// ungranted tool and a nonexistent one must be indistinguishable), and every malformed envelope
// refused through the error registry and the one serializer — raw fetch() for bodies no SDK
// client would send, the official SDK client for tool calls.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type GatewayHarness, meta, startGateway, text } from './harness.js';

const PROTOCOL = '2025-06-18';

interface RawAnswer {
  readonly status: number;
  readonly text: string;
  readonly body: {
    jsonrpc?: string;
    id?: unknown;
    error?: { code: number; message: string; data?: Record<string, unknown> };
    result?: { isError?: boolean; content?: { text?: string }[]; _meta?: Record<string, Record<string, unknown>> };
  };
}

/** A refused call: a tool result with isError (never a JSON-RPC error), its Mandate error in `_meta`. */
const refusedAs = async (p: Promise<unknown>): Promise<{ text: string; data: Record<string, unknown> }> => {
  const r = await p;
  assert.equal((r as { isError?: boolean }).isError, true, JSON.stringify(r));
  return { text: text(r), data: meta(r) };
};

/** No stack frames, file paths, schema dumps or SDK prefixes in what an agent sees. */
function assertClean(text: string): void {
  assert.doesNotMatch(text, /\bat [\w.<>]+ \(|node_modules|\/work\/|\.ts:\d|\.js:\d|"expected":|invalid_type|MCP error -?\d/);
}

describe('the /mcp boundary under hostile input', () => {
  let h: GatewayHarness;
  let token: string;
  let mandateId: string;
  let session: Record<string, string>;

  const raw = async (body: string, headers: Record<string, string> = {}, auth = true): Promise<RawAnswer> => {
    const res = await fetch(h.mcpUrl, {
      method: 'POST',
      headers: {
        ...(auth ? { authorization: `Bearer ${token}` } : {}),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...session,
        ...headers,
      },
      body,
    });
    const text = await res.text();
    let parsed: RawAnswer['body'] = {};
    try {
      parsed = JSON.parse(text) as RawAnswer['body'];
    } catch {
      // An empty or non-JSON answer fails the assertions below.
    }
    return { status: res.status, text, body: parsed };
  };

  /** Asserts a JSON-RPC error through the registry: HTTP status, JSON-RPC code, registry code, request id, short clean message. */
  const assertRefused = (a: RawAnswer, status: number, rpc: number, code: string, message?: RegExp) => {
    assert.equal(a.status, status, a.text);
    assert.equal(a.body.jsonrpc, '2.0', a.text);
    assert.equal(a.body.error?.code, rpc, a.text);
    assert.equal(a.body.error?.data?.code, code, a.text);
    assert.match(String(a.body.error?.data?.request_id), /^[\w-]{8,}$/, a.text);
    assert.ok((a.body.error?.message.length ?? 999) < 200, a.text);
    if (message !== undefined) assert.match(a.body.error?.message ?? '', message);
    assertClean(a.text);
  };

  /** Asserts a refused tools/call: HTTP 200, a result with isError, the registry code in `_meta`, no dump. */
  const assertToolRefusal = (a: RawAnswer, code: string, message?: RegExp) => {
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.error, undefined, a.text);
    assert.equal(a.body.result?.isError, true, a.text);
    assert.equal(a.body.result?._meta?.['mandate/error']?.code, code, a.text);
    const said = a.body.result?.content?.[0]?.text ?? '';
    assert.match(said, /^Refused: /);
    if (message !== undefined) assert.match(said, message);
    assertClean(a.text);
  };

  const call = (name: string, args: string, id = 7) =>
    `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":${args}}}`;

  before(async () => {
    // Input handling is under test, not risk: dozens of refused calls on one mandate would (rightly)
    // get it held and revoked by the risk engine's default responses (test/risk covers those).
    h = await startGateway({ config: { risk: { responses: [] } } });
    ({ token, mandateId } = await h.mandate([{ tool: 'everything.get-sum' }, { tool: 'everything.echo' }]));
    session = {};
    session = { 'mcp-session-id': await sessionIdOf(), 'mcp-protocol-version': PROTOCOL };
    await raw('{"jsonrpc":"2.0","method":"notifications/initialized"}');
  });
  after(async () => {
    await h.close();
  });

  /** A session id for the raw requests (opened by its own initialize, like any client). */
  async function sessionIdOf(): Promise<string> {
    const res = await fetch(h.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'hostile', version: '1' } },
      }),
    });
    await res.text();
    const sid = res.headers.get('mcp-session-id');
    assert.ok(sid !== null);
    return sid;
  }

  it('gives an ungranted tool and a nonexistent one the same answer, audit shape and timing', async () => {
    const client = await h.connect(token);
    const listed = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(listed, ['everything.echo', 'everything.get-sum']);
    // Exists in the catalog (the demo helpdesk), not granted / does not exist anywhere.
    const exists = 'helpdesk.delete_customer';
    const absent = 'helpdesk.delete_customes';
    assert.ok(h.broker.upstreams.catalog.get(exists) !== undefined);
    assert.equal(h.broker.upstreams.catalog.get(absent), undefined);
    const shape = (e: { text: string; data: Record<string, unknown> }, name: string) => ({
      text: e.text.replaceAll(name, '<tool>'),
      dataKeys: Object.keys(e.data).sort(),
      dataCode: e.data.code,
      reasons: (e.data.reasons as string[]).map((r) => r.replaceAll(name, '<tool>')),
    });
    const a = await refusedAs(client.callTool({ name: exists, arguments: { customerId: 'C-1009' } }));
    const b = await refusedAs(client.callTool({ name: absent, arguments: { customerId: 'C-1009' } }));
    assert.equal(a.data.code, 'RPC_CALL_DENIED');
    assert.deepEqual(shape(a, exists), shape(b, absent));
    assert.match(String(a.data.decisionId), /^gw_/);
    assert.match(String(b.data.decisionId), /^gw_/);
    // What was refused, then what is allowed; no "MCP error" prefixes.
    assert.match(
      a.text,
      /^Refused: mandate \S+: tool helpdesk\.delete_customer is not granted\. Tools this mandate may call: everything\.echo, everything\.get-sum\.$/,
    );

    // The audit log records both as denied decisions of one shape; only `inCatalog` tells them apart.
    const decisions = await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['decision'] });
    const of = (tool: string) => decisions.find((e) => e.event.data.tool === tool)?.event.data as Record<string, unknown>;
    assert.equal(of(exists)?.outcome, 'deny');
    assert.equal(of(absent)?.outcome, 'deny');
    assert.deepEqual(Object.keys(of(exists)).sort(), Object.keys(of(absent)).sort());
    assert.equal(of(exists).inCatalog, true);
    assert.equal(of(absent).inCatalog, false);
    assert.equal(of(exists).decisionId, a.data.decisionId);

    // Timing: the same path for both (no catalog-dependent work before the answer).
    const times: Record<string, number[]> = { [exists]: [], [absent]: [] };
    for (let i = 0; i < 15; i++) {
      for (const name of [exists, absent]) {
        const t0 = performance.now();
        await refusedAs(client.callTool({ name, arguments: {} }));
        (times[name] as number[]).push(performance.now() - t0);
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
    const [ma, mb] = [median(times[exists] as number[]), median(times[absent] as number[])];
    assert.ok(Math.abs(ma - mb) < Math.max(15, 0.5 * Math.max(ma, mb)), `medians ${ma.toFixed(1)} ms vs ${mb.toFixed(1)} ms`);

    // A granted tool still runs, and granted-but-outside-the-constraints is still decided by policy.
    const sum = await client.callTool({ name: 'everything.get-sum', arguments: { a: 2, b: 3 } });
    assert.match(JSON.stringify(sum.content), /5/);
  });

  it('answers malformed JSON with -32700, and only after authentication', async () => {
    assertRefused(await raw('{"jsonrpc":'), 400, -32700, 'RPC_PARSE_ERROR');
    assertRefused(await raw('\u0000\u00ff'), 400, -32700, 'RPC_PARSE_ERROR');
    // Unauthenticated garbage is not parsed at all: the answer is the 401 challenge.
    const anonymous = await raw('{"jsonrpc":', {}, false);
    assert.equal(anonymous.status, 401);
  });

  it('refuses lone surrogates in names and arguments with -32600 (they broke the audit encoding: found by npm run fuzz)', async () => {
    for (const body of [
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"helpdesk.search_tickets","arguments":{"query":"\\ud800"}}}',
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"helpdesk.\\udfff","arguments":{}}}',
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"helpdesk.search_tickets","arguments":{"\\ud800":1}}}',
    ]) {
      const a = await raw(body);
      assertRefused(a, 400, -32600, 'RPC_INVALID_REQUEST', /not well-formed Unicode/);
      assert.equal(a.body.id, 7, body);
    }
  });

  it('answers an empty batch with -32600 Invalid Request, not 202', async () => {
    assertRefused(await raw('[]'), 400, -32600, 'RPC_INVALID_REQUEST', /empty batch/);
    assertRefused(await raw('[1,2]'), 400, -32600, 'RPC_INVALID_REQUEST', /batch message 0/);
    // A batch that cancels its own call was never answered (found by npm run fuzz: a 30 s hang).
    const cancelsOwn =
      '[{"jsonrpc":"2.0","id":-1,"method":"tools/call","params":{"name":"helpdesk.search_tickets","arguments":{}}},' +
      '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":-1}}]';
    assertRefused(await raw(cancelsOwn), 400, -32600, 'RPC_INVALID_REQUEST', /may not cancel/);
  });

  it('answers envelopes that are not JSON-RPC 2.0 requests with -32600 and a short reason', async () => {
    const cases: [string, RegExp, unknown][] = [
      ['{"jsonrpc":"1.0","id":3,"method":"tools/list"}', /jsonrpc must be "2.0"/, 3],
      ['{"id":3,"method":"tools/list"}', /jsonrpc must be "2.0"/, 3],
      ['{"jsonrpc":"2.0","id":3}', /method is missing/, 3],
      ['{"jsonrpc":"2.0","id":3,"method":5}', /method must be a non-empty string/, 3],
      ['{"jsonrpc":"2.0","id":3,"method":""}', /method must be a non-empty string/, 3],
      ['{"jsonrpc":"2.0","id":1e999,"method":"tools/list"}', /id must be/, null],
      ['{"jsonrpc":"2.0","id":{"x":1},"method":"tools/list"}', /id must be/, null],
      ['null', /must be an object/, null],
      ['"tools/list"', /must be an object/, null],
    ];
    for (const [body, message, id] of cases) {
      const a = await raw(body);
      assertRefused(a, 400, -32600, 'RPC_INVALID_REQUEST', message);
      assert.equal(a.body.id, id, body);
    }
  });

  it('answers tools/call schema errors with -32602 Invalid params and a short reason, never a validation dump', async () => {
    const cases: [string, RegExp][] = [
      ['{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":5}}', /params\.name must be a non-empty string/],
      ['{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"arguments":{}}}', /params\.name/],
      [call('everything.get-sum', '[1,2]', 4), /params\.arguments must be an object/],
      [call('everything.get-sum', '"a"', 4), /params\.arguments must be an object/],
      ['{"jsonrpc":"2.0","id":4,"method":"tools/call","params":[1]}', /params must be an object/],
      ['{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":5}}', /cursor/],
    ];
    for (const [body, message] of cases) {
      const a = await raw(body);
      assertRefused(a, 200, -32602, 'RPC_INVALID_PARAMS', message);
      assert.equal(a.body.id, 4);
    }
  });

  it('refuses a non-finite argument (1e999 parses to Infinity) with a clear code, audited as a refusal, never forwarded', async () => {
    const before = await h.broker.audit.entriesBy('mandate_id', mandateId);
    const a = await raw(call('everything.get-sum', '{"a":1e999,"b":1}'));
    assertToolRefusal(a, 'RPC_NON_FINITE_NUMBER', /argument a is not a finite number/);
    const nested = await raw(call('everything.echo', '{"message":"x","deep":{"list":[1,-1e999]}}'));
    assertToolRefusal(nested, 'RPC_NON_FINITE_NUMBER', /argument deep\.list\.1/);
    const added = (await h.broker.audit.entriesBy('mandate_id', mandateId)).slice(before.length);
    assert.deepEqual(
      added.map((e) => [e.event.type, e.event.data.outcome, e.event.data.tool]),
      [
        ['decision', 'deny', 'everything.get-sum'],
        ['decision', 'deny', 'everything.echo'],
      ],
    );
    assert.match(JSON.stringify(added[0]?.event.data.reasons), /argument a is not a finite number/);
    // Outside tool arguments there is no call to audit, but the same code.
    assertRefused(
      await raw('{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"_meta":{"n":1e999}}}'),
      200,
      -32602,
      'RPC_NON_FINITE_NUMBER',
    );
  });

  it('refuses deeply nested and oversized requests with clear codes', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    assertRefused(await raw(call('everything.echo', `{"message":${deep}}`)), 400, -32600, 'RPC_REQUEST_TOO_DEEP', /nested deeper than 64/);
    // Over the HTTP body limit: a JSON-RPC answer too, not the framework's error body.
    const big = await raw(call('everything.echo', `{"message":"${'x'.repeat(2_000_000)}"}`));
    assertRefused(big, 413, -32600, 'ERR_BODY_TOO_LARGE');
    // Over gateway.maxArgumentsBytes but under the body limit: the existing, audited refusal.
    const large = await raw(call('everything.echo', `{"message":"${'x'.repeat(10_000)}"}`));
    assertToolRefusal(large, 'RPC_ARGS_TOO_LARGE', /Arguments of up to 4096 bytes are accepted/);
    // Nesting within the limit still reaches the upstream.
    const ok = await raw(call('everything.echo', `{"message":"fine","n":${'['.repeat(40)}${']'.repeat(40)}}`));
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.text, /Echo: fine/);
  });

  it('refuses bad transport headers in JSON-RPC with registry codes', async () => {
    const list = '{"jsonrpc":"2.0","id":6,"method":"tools/list"}';
    assertRefused(await raw(list, { accept: 'application/json' }), 406, -32600, 'RPC_NOT_ACCEPTABLE');
    assertRefused(await raw(list, { 'content-type': 'text/plain' }), 415, -32600, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    const old = await raw(list, { 'mcp-protocol-version': '1999-01-01' });
    assertRefused(old, 400, -32022, 'RPC_UNSUPPORTED_PROTOCOL_VERSION', /1999-01-01/);
    assert.deepEqual(old.body.error?.data?.supported, ['2026-07-28', '2025-11-25']);
    const listed = await raw(list);
    assert.equal(listed.status, 200);
    assert.match(listed.text, /everything\.get-sum/);
  });

  it('answers an unknown method and a second initialize through the registry', async () => {
    assertRefused(await raw('{"jsonrpc":"2.0","id":8,"method":"resources/list"}'), 200, -32601, 'RPC_METHOD_NOT_FOUND');
    const again = await raw(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 9,
        method: 'initialize',
        params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'hostile', version: '1' } },
      }),
    );
    assertRefused(again, 400, -32600, 'RPC_INVALID_REQUEST', /already initialized/);
  });
});
