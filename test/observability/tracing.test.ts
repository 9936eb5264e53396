// OpenTelemetry tracing end to end: an agent's W3C `traceparent` (in MCP `_meta`) reaches a real
// broker, whose spans (tools/call, decide, audit append, upstream call) arrive at a real OTLP/HTTP
// receiver (a node:http server decoding the JSON the exporter sends) as children of the agent's
// span, and the upstream (a raw HTTP MCP server) receives the upstream-call span as its parent,
// in `_meta` and as an HTTP header. Off by default: no tracer, nothing exported.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { SPANS } from '../../src/observability/tracing.js';
import { buildTestApp } from '../helpers/app.js';
import { mandateRequest, type Running, startBroker } from '../identity/helpers.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}

/** An OTLP/HTTP traces receiver: every span of every request, as the exporter encoded it (JSON). */
function otlpReceiver() {
  const spans: OtlpSpan[] = [];
  const contentTypes: string[] = [];
  const server = createServer(async (req, res) => {
    const text = await body(req);
    contentTypes.push(req.headers['content-type'] ?? '');
    if (req.url === '/v1/traces' && req.method === 'POST') {
      const doc = JSON.parse(text) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  return { server, spans, contentTypes };
}

/** A raw MCP 2026-07-28 server over HTTP with one read tool; records the trace context of each tools/call. */
function traceUpstream() {
  const seen: { header: string | undefined; meta: unknown }[] = [];
  const server = createServer(async (req, res) => {
    const msg = JSON.parse(await body(req)) as { id: number; method: string; params?: { _meta?: Record<string, unknown> } };
    const answer = (result: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    if (msg.method === 'server/discover') {
      return answer({
        supportedVersions: ['2026-07-28'],
        capabilities: { tools: {} },
        serverInfo: { name: 'trace-upstream', version: '1' },
      });
    }
    if (msg.method === 'tools/list') {
      return answer({
        tools: [{ name: 'echo', description: 'echo', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } }],
      });
    }
    if (msg.method === 'tools/call') {
      const header = req.headers.traceparent;
      seen.push({ header: typeof header === 'string' ? header : undefined, meta: msg.params?._meta?.traceparent });
      return answer({ content: [{ type: 'text', text: 'ok' }] });
    }
    res.writeHead(404).end();
  });
  return { server, seen };
}

const AGENT = { id: 'traced-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/traced-agent` };

describe('tracing on: the agent → gateway → upstream trace', () => {
  const receiver = otlpReceiver();
  const upstream = traceUpstream();
  let b: Running;

  before(async () => {
    const otlp = await listen(receiver.server);
    const upstreamUrl = await listen(upstream.server);
    b = await startBroker({ config: { telemetry: { tracing: { enabled: true, endpoint: `${otlp}/v1/traces` } } } });
    assert.ok(b.broker.tracing !== undefined);
    const res = await fetch(`${b.base}/admin/v1/upstreams`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await b.operatorToken('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'traced', transport: { type: 'http', url: `${upstreamUrl}/mcp` }, isolation: 'shared' }),
    });
    assert.equal(res.status, 201, await res.text());
    await b.broker.agents.register({
      id: AGENT.id,
      displayName: AGENT.id,
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: AGENT.spiffeId },
      ceiling: { tools: [{ tool: 'traced.echo' }], delegable: false },
    });
  });
  after(async () => {
    await b?.close();
    receiver.server.close();
    upstream.server.closeAllConnections();
    upstream.server.close();
  });

  const openMandate = async (): Promise<string> => {
    const opened = b.open(AGENT.spiffeId, {
      ...mandateRequest(),
      type: 'mandate',
      purpose: 'tracing test',
      taskType: 'support.refund',
      environment: 'production',
      ttlSeconds: 300,
      tools: [{ tool: 'traced.echo' }],
      delegable: false,
    });
    const { access_token: token } = await opened.catch((err: { error?: unknown; cause?: unknown }) => {
      throw new Error(`token exchange refused: ${JSON.stringify(err.cause ?? err.error)}`);
    });
    return token as string;
  };

  /** One tools/call of traced.echo on /mcp (2026-07-28), with this trace context in `_meta` and/or headers. */
  const callEcho = async (token: string, meta: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${b.base}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'traced.echo',
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: {
          name: 'traced.echo',
          arguments: {},
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientCapabilities': {},
            ...meta,
          },
        },
      }),
    });
    const answer = (await res.json()) as { result?: { isError?: boolean; content?: { text: string }[] } };
    assert.equal(res.status, 200);
    assert.notEqual(answer.result?.isError, true, JSON.stringify(answer));
    assert.equal(answer.result?.content?.[0]?.text, 'ok');
  };

  it('exports the call as children of the agent span, and the upstream gets the upstream-call span as parent', async () => {
    const token = await openMandate();
    const traceId = randomBytes(16).toString('hex');
    const agentSpan = randomBytes(8).toString('hex');
    const traceparent = `00-${traceId}-${agentSpan}-01`;
    // `_meta` wins over the HTTP header (MCP 2026-07-28 reserves the key for OpenTelemetry).
    await callEcho(token, { traceparent }, { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` });

    // The exporter batches: flush, then read what arrived.
    await b.broker.tracing?.flush();
    const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
    const byName = (name: string) => inTrace.filter((s) => s.name === name);
    const [call] = byName(SPANS.toolsCall);
    assert.ok(call, `no ${SPANS.toolsCall} span in ${JSON.stringify(receiver.spans.map((s) => s.name))}`);
    assert.equal(call.parentSpanId, agentSpan, 'the tools/call span is a child of the agent span');
    assert.equal(call.kind, 2, 'server span');
    const [decide] = byName(SPANS.decide);
    assert.equal(decide?.parentSpanId, call.spanId);
    const appends = byName(SPANS.auditAppend);
    assert.equal(appends.length, 2, 'the decision and the result are each one append');
    for (const a of appends) assert.equal(a.parentSpanId, call.spanId);
    const [up] = byName(SPANS.upstreamCall);
    assert.equal(up?.parentSpanId, call.spanId);
    assert.equal(up?.kind, 3, 'client span');
    assert.ok(
      receiver.contentTypes.every((t) => t.startsWith('application/json')),
      receiver.contentTypes.join(),
    );

    // The upstream received the upstream-call span as its parent, in _meta and as the HTTP header.
    const expected = `00-${traceId}-${up?.spanId}-01`;
    assert.deepEqual(upstream.seen.at(-1), { header: expected, meta: expected });
    // Nothing in the exported spans carries the agent's token.
    assert.ok(!JSON.stringify(receiver.spans).includes(token));
  });

  it('takes the HTTP header when _meta has none, and starts a new trace for malformed or hostile trace context', async () => {
    const token = await openMandate();
    const traceId = randomBytes(16).toString('hex');
    const agentSpan = randomBytes(8).toString('hex');
    await callEcho(token, {}, { traceparent: `00-${traceId}-${agentSpan}-01` });
    await b.broker.tracing?.flush();
    const fromHeader = receiver.spans.find((s) => s.traceId === traceId && s.name === SPANS.toolsCall);
    assert.equal(fromHeader?.parentSpanId, agentSpan);

    const hostile: Record<string, unknown>[] = [
      { traceparent: 'garbage' },
      { traceparent: `00-${'0'.repeat(32)}-${agentSpan}-01` }, // all-zero trace id is invalid
      { traceparent: `00-${traceId}-${'0'.repeat(16)}-01` }, // all-zero parent id is invalid
      { traceparent: `00-${traceId.toUpperCase()}-${agentSpan}-01` }, // upper-case hex is not W3C
      { traceparent: 12345 }, // not a string
      { traceparent: `00-${traceId}-${agentSpan}-01${'x'.repeat(10_000)}` },
    ];
    const before = new Set(receiver.spans.map((s) => s.spanId));
    for (const meta of hostile) await callEcho(token, meta);
    await b.broker.tracing?.flush();
    const calls = receiver.spans.filter((s) => s.name === SPANS.toolsCall && !before.has(s.spanId));
    assert.equal(calls.length, hostile.length);
    for (const c of calls) {
      assert.equal(c.parentSpanId ?? '', '', `a malformed traceparent must not become a parent (${c.parentSpanId})`);
      assert.notEqual(c.traceId, '0'.repeat(32));
    }
    // The upstream still received a well-formed traceparent for each (the gateway's own trace).
    for (const s of upstream.seen.slice(-hostile.length)) assert.match(String(s.header), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });
});

describe('tracing off (the default)', () => {
  it('creates no tracer and sends no trace context upstream', async () => {
    const t = await buildTestApp();
    try {
      assert.equal(t.broker.config.telemetry.tracing.enabled, false);
      assert.equal(t.broker.tracing, undefined);
    } finally {
      await t.close();
    }
  });
});
