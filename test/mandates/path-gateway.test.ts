// End to end: the gateway fronting the official filesystem MCP server (stdio), an SDK client with
// a mandate confined to `<root>/public`. Traversal out of it (`..`, percent-encoded, backslashes)
// is refused by the broker before the upstream sees it; files inside are served; delegation
// narrows by path.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { oauthError, type Running, startBroker } from '../identity/helpers.js';

const FS_SERVER = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
const AGENT = { id: 'fs-reader', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/fs-reader` };
const HELPER = { id: 'fs-helper', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/fs-helper` };
const SECRET = 'TOP-SECRET-7f3a';

const textOf = (r: unknown): string => ((r as CallToolResult).content ?? []).map((c) => (c as { text?: string }).text ?? '').join('\n');

/** What a call came back as: a refusal is a tool result with isError and Mandate's error in `_meta`. */
async function refusal(p: Promise<unknown>): Promise<{ data: Record<string, unknown>; message: string }> {
  const r = (await p) as CallToolResult;
  const error = r._meta?.['mandate/error'] as Record<string, unknown> | undefined;
  return { data: r.isError === true && error !== undefined ? error : { code: '(allowed)' }, message: textOf(r) };
}

describe('path constraints through the gateway, in front of @modelcontextprotocol/server-filesystem', () => {
  let b: Running;
  let root: string;
  const clients: Client[] = [];

  const open = async (tools: Record<string, unknown>[], delegable = false) =>
    (
      await b.open(AGENT.spiffeId, {
        type: 'mandate',
        purpose: 'read public files',
        taskType: 'files.read',
        environment: 'production',
        ttlSeconds: 600,
        tools,
        delegable,
      })
    ).access_token;

  const connect = async (token: string) => {
    const client = new Client({ name: 'path-test-agent', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', b.base), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    clients.push(client);
    return client;
  };

  before(async () => {
    // The server resolves symlinks in its allowed directories: use the real path of the root.
    root = realpathSync(mkdtempSync(join(tmpdir(), 'mandate-fs-')));
    mkdirSync(join(root, 'public', 'sub'), { recursive: true });
    mkdirSync(join(root, 'private'));
    writeFileSync(join(root, 'public', 'ok.txt'), 'hello from public');
    writeFileSync(join(root, 'public', 'sub', 'deep.txt'), 'hello from sub');
    writeFileSync(join(root, 'private', 'secret.txt'), SECRET);
    b = await startBroker({ config: { upstreams: { stdio: { allowedCommands: [{ command: process.execPath, args: [FS_SERVER] }] } } } });
    const u = await b.broker.upstreams.registry.create({
      id: 'fs',
      // The whole root is the server's allowed directory: confining to public/ is the broker's job.
      transport: { type: 'stdio', command: process.execPath, args: [FS_SERVER, root] },
      isolation: 'shared',
    });
    assert.equal(u.discoveryError, undefined);
    const ceiling = {
      tools: ['fs.read_text_file', 'fs.read_multiple_files', 'fs.list_directory'].map((tool) => ({ tool })),
      delegable: true,
    };
    for (const a of [AGENT, HELPER]) {
      await b.broker.agents.register({
        id: a.id,
        displayName: a.id,
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: a.spiffeId },
        ceiling,
        mayReceiveDelegation: true,
      });
    }
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await b?.close();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it('the catalog marks the filesystem arguments that are paths', () => {
    assert.deepEqual(b.broker.upstreams.catalog.get('fs.read_text_file')?.pathArgs, ['path']);
    assert.deepEqual(b.broker.upstreams.catalog.get('fs.read_multiple_files')?.pathArgs, ['paths']);
    assert.deepEqual(b.broker.upstreams.catalog.get('fs.move_file')?.pathArgs, ['source', 'destination']);
  });

  it('without a constraint the upstream itself serves the traversal (the attack is real)', async () => {
    const client = await connect(await open([{ tool: 'fs.read_text_file' }]));
    const r = await client.callTool({ name: 'fs.read_text_file', arguments: { path: `${root}/public/../private/secret.txt` } });
    assert.match(textOf(r), new RegExp(SECRET));
  });

  const traversals = (r: string): string[] => [
    `${r}/public/../private/secret.txt`,
    `${r}/public/./../private/secret.txt`,
    `${r}/public/%2e%2e/private/secret.txt`,
    `${r}/public/%2E%2E%2Fprivate%2Fsecret.txt`,
    `${r}/public/..\\private\\secret.txt`,
    `${r}/public/\uff0e\uff0e/private/secret.txt`,
    `${r}/public/ok.txt\u0000/../../private/secret.txt`,
    'public/../private/secret.txt',
  ];

  for (const kind of ['prefix', 'within'] as const) {
    describe(`a grant with ${kind}`, () => {
      let client: Client;
      before(async () => {
        const constraint = kind === 'prefix' ? { prefix: `${root}/public/` } : { within: `${root}/public` };
        client = await connect(await open([{ tool: 'fs.read_text_file', args: { path: constraint } }]));
      });

      it('allows <root>/public/ok.txt and a file below it', async () => {
        const ok = await client.callTool({ name: 'fs.read_text_file', arguments: { path: `${root}/public/ok.txt` } });
        assert.equal(ok.isError, undefined, textOf(ok));
        assert.equal(textOf(ok), 'hello from public');
        const deep = await client.callTool({ name: 'fs.read_text_file', arguments: { path: `${root}//public/sub/deep.txt` } });
        assert.equal(textOf(deep), 'hello from sub');
      });

      it('refuses every traversal out of <root>/public before the upstream sees it', async () => {
        for (const path of traversals(root)) {
          const r = await refusal(client.callTool({ name: 'fs.read_text_file', arguments: { path } }));
          assert.equal(r.data.code, 'RPC_CALL_DENIED', `${JSON.stringify(path)} was not refused: ${r.message}`);
          assert.ok(!JSON.stringify(r).includes(SECRET));
        }
      });

      it('refuses a sibling directory that shares the prefix text', async () => {
        mkdirSync(join(root, 'public-not'), { recursive: true });
        writeFileSync(join(root, 'public-not', 'x.txt'), SECRET);
        const r = await refusal(client.callTool({ name: 'fs.read_text_file', arguments: { path: `${root}/public-not/x.txt` } }));
        assert.equal(r.data.code, 'RPC_CALL_DENIED');
      });
    });
  }

  it('within confines every path of a list (read_multiple_files)', async () => {
    const client = await connect(await open([{ tool: 'fs.read_multiple_files', args: { paths: { within: `${root}/public` } } }]));
    const ok = await client.callTool({
      name: 'fs.read_multiple_files',
      arguments: { paths: [`${root}/public/ok.txt`, `${root}/public/sub/deep.txt`] },
    });
    assert.match(textOf(ok), /hello from public/);
    const r = await refusal(
      client.callTool({
        name: 'fs.read_multiple_files',
        arguments: { paths: [`${root}/public/ok.txt`, `${root}/public/../private/secret.txt`] },
      }),
    );
    assert.equal(r.data.code, 'RPC_CALL_DENIED');
    assert.ok(!JSON.stringify(r).includes(SECRET));
  });

  it('delegation narrows by path: a deeper within is granted, a wider within or prefix is refused', async () => {
    const parent = await open([{ tool: 'fs.read_text_file', args: { path: { within: `${root}/public` } } }], true);
    const child = (path: Record<string, unknown>) =>
      b.delegate(parent, HELPER.spiffeId, {
        type: 'mandate',
        purpose: 'read the sub directory',
        taskType: 'files.read',
        environment: 'production',
        ttlSeconds: 300,
        tools: [{ tool: 'fs.read_text_file', args: { path } }],
        delegable: false,
      });
    for (const wider of [{ within: root }, { within: `${root}/pub` }, { prefix: `${root}/publ` }, { maxLength: 200 }]) {
      const e = await oauthError(child(wider));
      assert.equal(e.error, 'invalid_authorization_details', JSON.stringify(wider));
      assert.match(e.description, /not a subset.*argument path/);
    }
    const granted = await child({ within: `${root}/public/sub` });
    const client = await connect(granted.access_token);
    assert.equal(
      textOf(await client.callTool({ name: 'fs.read_text_file', arguments: { path: `${root}/public/sub/deep.txt` } })),
      'hello from sub',
    );
    for (const path of [`${root}/public/ok.txt`, `${root}/public/sub/../ok.txt`, `${root}/public/sub/../../private/secret.txt`]) {
      const r = await refusal(client.callTool({ name: 'fs.read_text_file', arguments: { path } }));
      assert.equal(r.data.code, 'RPC_CALL_DENIED', path);
    }
  });
});
