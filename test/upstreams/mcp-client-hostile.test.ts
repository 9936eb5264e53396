// The upstream client against upstreams that misbehave: era probe edge cases, garbage and
// oversized lines on stdio, malformed results, server requests, endless progress, redirects and
// odd HTTP answers. None of it may crash the gateway or leave a caller waiting past its deadline.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectUpstream } from '../../src/upstreams/connect.js';
import { UpstreamCallError, type UpstreamClient } from '../../src/upstreams/mcp-client/index.js';
import type { UpstreamTransport } from '../../src/upstreams/upstream.js';
import { SDK2_SERVER_PATH, type Sdk2Http, startSdk2Http } from './fixtures/sdk2-server.js';

const RAW = fileURLToPath(new URL('./fixtures/raw-stdio-server.ts', import.meta.url));
const raw = (era: string): UpstreamTransport => ({
  type: 'stdio',
  command: process.execPath,
  args: ['--import', 'tsx', RAW, '--era', era],
  env: {},
});
const text = (r: Record<string, unknown>): string => (r.content as { text?: string }[])[0]?.text ?? '';
const call = (c: UpstreamClient, name: string, args: Record<string, unknown> = {}, timeoutMs = 5000) =>
  c.request('tools/call', { name, arguments: args }, { timeoutMs });

async function rejects(p: Promise<unknown>, kind: UpstreamCallError['kind'], message?: RegExp): Promise<UpstreamCallError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof UpstreamCallError, `expected UpstreamCallError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return err;
  }
  assert.fail('expected a rejection');
}

/** A node:http server answering every request with `handler`; records what it saw. */
async function httpServer(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('era probe', () => {
  it('modern stdio server: stays modern, every request carries the _meta envelope', async () => {
    const c = await connectUpstream({ transport: raw('modern'), credential: undefined, timeoutMs: 10_000 });
    assert.equal(c.era, 'modern');
    await call(c, 'echo', { text: 'x' });
    const lines = (JSON.parse(text(await call(c, 'received'))) as string[]).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l.method),
      ['server/discover', 'tools/call', 'tools/call'],
    );
    for (const l of lines) {
      const meta = (l.params as { _meta?: Record<string, unknown> })._meta ?? {};
      assert.equal(meta['io.modelcontextprotocol/protocolVersion'], '2026-07-28');
      assert.deepEqual(meta['io.modelcontextprotocol/clientCapabilities'], {});
      assert.equal((meta['io.modelcontextprotocol/clientInfo'] as { name?: string }).name, 'mandate-gateway');
    }
    // The caller's params are untouched and its own _meta is kept beside ours.
    const params = { name: 'echo', arguments: { text: 'y' }, _meta: { progressToken: 7 } };
    await c.request('tools/call', params, { timeoutMs: 5000 });
    assert.deepEqual(params._meta, { progressToken: 7 });
    const last = (JSON.parse(text(await call(c, 'received'))) as string[])
      .map((l) => JSON.parse(l) as { params: { _meta: Record<string, unknown> } })
      .at(-2);
    assert.equal(last?.params._meta.progressToken, 7);
    assert.equal(last?.params._meta['io.modelcontextprotocol/protocolVersion'], '2026-07-28');
    await c.close();
  });

  it('legacy stdio server (-32601 to server/discover): falls back to initialize and takes its older version', async () => {
    const c = await connectUpstream({ transport: raw('legacy'), credential: undefined, timeoutMs: 10_000 });
    assert.equal(c.era, 'legacy');
    assert.equal(c.protocolVersion, '2025-06-18');
    const lines = (JSON.parse(text(await call(c, 'received'))) as string[]).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l.method),
      ['server/discover', 'initialize', 'notifications/initialized', 'tools/call'],
    );
    assert.equal((lines[3]?.params as { _meta?: unknown } | undefined)?._meta, undefined, 'legacy requests carry no modern envelope');
    await c.close();
  });

  it('silent legacy stdio server: the probe times out within part of the budget, then initialize', async () => {
    const started = Date.now();
    const c = await connectUpstream({ transport: raw('silent'), credential: undefined, timeoutMs: 3000 });
    assert.equal(c.era, 'legacy');
    assert.ok(Date.now() - started < 3000);
    assert.equal(text(await call(c, 'echo', { text: 'late' })), 'late');
    await c.close();
  });

  it('a server that refuses initialize is unavailable (the call never reached it), not an rpc error', async () => {
    await rejects(
      connectUpstream({ transport: raw('refuse-init'), credential: undefined, timeoutMs: 10_000 }),
      'unavailable',
      /refused the connection/,
    );
  });

  it('a modern server that supports no version we speak is refused, not downgraded', async () => {
    await rejects(connectUpstream({ transport: raw('future'), credential: undefined, timeoutMs: 10_000 }), 'unavailable', /2099-01-01/);
  });

  it('a modern-only SDK 2.x stdio server is reached modern', async () => {
    const c = await connectUpstream({
      transport: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', SDK2_SERVER_PATH, '--modern-only'], env: {} },
      credential: undefined,
      timeoutMs: 10_000,
    });
    assert.equal(c.era, 'modern');
    assert.equal(text(await call(c, 'era')), 'modern');
    await c.close();
  });

  it('HTTP 4xx without a modern error body to server/discover means legacy; 5xx means unavailable', async () => {
    let status = 400;
    const s = await httpServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const msg = JSON.parse(body) as { id?: number; method: string };
        if (msg.method === 'server/discover') {
          res.writeHead(status, { 'content-type': 'text/plain' });
          return void res.end('nope');
        }
        if (msg.id === undefined) {
          res.writeHead(202);
          return void res.end();
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: msg.id,
            result: { protocolVersion: '2025-03-26', capabilities: {}, serverInfo: { name: 's', version: '1' } },
          }),
        );
      });
    });
    try {
      const c = await connectUpstream({ transport: { type: 'http', url: s.url }, credential: undefined, timeoutMs: 5000 });
      assert.equal(c.era, 'legacy');
      assert.equal(c.protocolVersion, '2025-03-26');
      await c.close();
      status = 503;
      await rejects(
        connectUpstream({ transport: { type: 'http', url: s.url }, credential: undefined, timeoutMs: 5000 }),
        'unavailable',
        /503/,
      );
    } finally {
      await s.close();
    }
  });

  it('an unreachable HTTP upstream is unavailable, naming no secret', async () => {
    const err = await rejects(
      connectUpstream({
        transport: { type: 'http', url: 'http://127.0.0.1:9/mcp?token=hunter2' },
        credential: { headers: { Authorization: 'Bearer hunter2' } },
        timeoutMs: 3000,
      }),
      'unavailable',
    );
    assert.doesNotMatch(err.message, /hunter2/);
  });

  it('a stdio command that cannot start is unavailable', async () => {
    await rejects(
      connectUpstream({
        transport: { type: 'stdio', command: '/nonexistent/mcp-server', args: [], env: {} },
        credential: undefined,
        timeoutMs: 3000,
      }),
      'unavailable',
      /could not be started/,
    );
    await rejects(
      connectUpstream({
        transport: { type: 'stdio', command: process.execPath, args: ['-e', 'process.exit(3)'], env: {} },
        credential: undefined,
        timeoutMs: 3000,
      }),
      'unavailable',
      /exited/,
    );
  });
});

describe('hostile stdio upstream', () => {
  let c: UpstreamClient;
  before(async () => {
    c = await connectUpstream({ transport: raw('legacy'), credential: undefined, timeoutMs: 10_000, maxMessageBytes: 8192 });
  });
  after(async () => {
    await c.close();
  });

  it('skips garbage lines, notifications and answers to unknown ids', async () => {
    assert.equal(text(await call(c, 'noise')), 'after noise');
  });

  it('refuses an oversized answer without buffering it, and stays usable', async () => {
    const started = Date.now();
    await rejects(call(c, 'oversized', { bytes: 2_000_000 }, 10_000), 'rpc', /limit/);
    assert.ok(Date.now() - started < 5000);
    assert.equal(text(await call(c, 'echo', { text: 'ok' })), 'ok');
    // An over-limit line with no id to blame: its caller times out, the channel lives on.
    await rejects(call(c, 'oversized_anonymous', { bytes: 50_000 }, 500), 'timeout');
    assert.equal(text(await call(c, 'echo', { text: 'still ok' })), 'still ok');
  });

  it('reports malformed results as kind rpc', async () => {
    await rejects(call(c, 'malformed_string'), 'rpc', /not an object/);
    await rejects(call(c, 'malformed_array'), 'rpc', /not an object/);
    await rejects(call(c, 'malformed_content'), 'rpc', /content is not an array/);
    await rejects(call(c, 'input_required'), 'rpc', /input_required/);
    // Other methods are only checked to be objects.
    assert.deepEqual(await c.request('tools/list', {}, { timeoutMs: 5000 }), { tools: [] });
  });

  it('keeps an upstream error message to one bounded line', async () => {
    const err = await rejects(call(c, 'rpc_error'), 'rpc');
    assert.equal(err.rpcCode, -32602);
    assert.ok(err.message.length <= 300);
    assert.doesNotMatch(err.message, /\n/);
  });

  it('answers a server ping (and refuses other server requests) without confusing ids', async () => {
    const answer = JSON.parse(text(await call(c, 'ping_me'))) as Record<string, unknown>;
    assert.deepEqual(answer, { jsonrpc: '2.0', id: 'srv-1', result: {} });
  });

  it('gives up a process that stops reading its input instead of buffering for it', async () => {
    const d = await connectUpstream({ transport: raw('legacy'), credential: undefined, timeoutMs: 10_000 });
    let closed = 0;
    d.onclose = () => closed++;
    const pid = Number(text(await call(d, 'pid')));
    assert.equal(text(await call(d, 'stop_reading')), 'no longer reading');
    const big = 'b'.repeat(1024 * 1024);
    const calls = Array.from({ length: 24 }, () => call(d, 'echo', { text: big }, 5000).catch((e: unknown) => e));
    const results = await Promise.all(calls);
    assert.ok(
      results.every((r) => r instanceof UpstreamCallError && r.kind === 'unavailable'),
      'every call fails fast as unavailable',
    );
    assert.equal(closed, 1);
    // The process, still running but useless, is ended without anyone calling close().
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const end = Date.now() + 8000;
    while (alive() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(), false);
    await d.close();
  });

  it('holds the deadline however much progress the upstream reports', async () => {
    const started = Date.now();
    await rejects(call(c, 'progress_forever', {}, 400), 'timeout');
    assert.ok(Date.now() - started < 1500);
    const lines = JSON.parse(text(await call(c, 'received'))) as string[];
    const cancel = lines
      .map((l) => JSON.parse(l) as { method?: string; params?: { requestId?: number; reason?: string } })
      .findLast((m) => m.method === 'notifications/cancelled');
    assert.equal(typeof cancel?.params?.requestId, 'number');
    assert.match(cancel?.params?.reason ?? '', /400 ms/);
  });
});

describe('hostile HTTP upstream', () => {
  let sdk2: Sdk2Http;
  before(async () => {
    sdk2 = await startSdk2Http();
  });
  after(async () => {
    await sdk2.close();
  });

  it('refuses a redirect: the credential never reaches the other origin', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(307, { location: sdk2.url });
      res.end();
    });
    try {
      const seen = sdk2.seen.length;
      await rejects(
        connectUpstream({
          transport: { type: 'http', url: s.url },
          credential: { headers: { Authorization: 'Bearer do-not-follow' } },
          timeoutMs: 3000,
        }),
        'unavailable',
        /redirect/,
      );
      assert.equal(sdk2.seen.length, seen);
    } finally {
      await s.close();
    }
  });

  it('finds the response among SSE notifications, and refuses a body that is not the response', async () => {
    let mode = 'sse';
    const s = await httpServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const msg = JSON.parse(body) as { id: number; method: string };
        if (msg.method === 'server/discover') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return void res.end(
            JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { supportedVersions: ['2026-07-28'], capabilities: {} } }),
          );
        }
        if (mode === 'sse') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(': keep-alive\r\n\r\n');
          res.write(
            `event: message\r\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } })}\r\n\r\n`,
          );
          res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id + 1000, result: { content: [] } })}\n\n`);
          res.write('data: not json\n\n');
          // The response split over two data lines (joined by a newline: whitespace in JSON) and two writes.
          const json = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'from sse' }] } });
          res.write(`data: ${json.slice(0, 17)}\r`);
          setTimeout(() => res.end(`\ndata: ${json.slice(17)}\r\n\r\n`), 20);
          return;
        }
        if (mode === 'wrong-id') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id + 1, result: { content: [] } }));
        }
        if (mode === 'sse-no-answer') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          return void res.end(': nothing\n\n');
        }
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>');
      });
    });
    try {
      const c = await connectUpstream({ transport: { type: 'http', url: s.url }, credential: undefined, timeoutMs: 3000 });
      assert.equal(c.era, 'modern');
      assert.equal(text(await call(c, 'x')), 'from sse');
      mode = 'wrong-id';
      await rejects(call(c, 'x'), 'rpc', /not the response/);
      mode = 'sse-no-answer';
      await rejects(call(c, 'x'), 'unavailable', /without answering/);
      mode = 'html';
      await rejects(call(c, 'x'), 'rpc', /content type text\/html/);
      await c.close();
    } finally {
      await s.close();
    }
  });

  it('refuses an over-limit JSON body', async () => {
    const s = await httpServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const msg = JSON.parse(body) as { id: number; method: string };
        res.writeHead(200, { 'content-type': 'application/json' });
        if (msg.method === 'server/discover')
          return void res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { supportedVersions: ['2026-07-28'] } }));
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'x'.repeat(100_000) }] } }));
      });
    });
    try {
      const c = await connectUpstream({
        transport: { type: 'http', url: s.url },
        credential: undefined,
        timeoutMs: 3000,
        maxMessageBytes: 10_000,
      });
      await rejects(call(c, 'x'), 'rpc', /limit/);
      await c.close();
    } finally {
      await s.close();
    }
  });

  it('sends Mcp-Name in the Base64 sentinel form when the name is not plain ASCII', async () => {
    const c = await connectUpstream({ transport: { type: 'http', url: sdk2.url }, credential: undefined, timeoutMs: 5000 });
    await rejects(c.request('tools/call', { name: 'héllo wörld', arguments: {} }, { timeoutMs: 5000 }), 'rpc');
    const last = sdk2.seen.at(-1);
    assert.equal(last?.headers['mcp-name'], `=?base64?${Buffer.from('héllo wörld').toString('base64')}?=`);
    await c.close();
  });
});
