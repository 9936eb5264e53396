// Every `ts` block of docs/clients-mcp-sdk.md runs as its own process, as written, against a real
// demo broker: the unmodified MCP SDKs (1.x and 2.x) with the agent's JWT-SVID as the
// client-credentials assertion. Only the broker URL and the SVID file path are replaced; each run
// gets a freshly minted SVID in that file. The scratch folder's node_modules links the SDKs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Running, startBroker, TRIAGE } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const examples = [...readFileSync(join(ROOT, 'docs/clients-mcp-sdk.md'), 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map(
  (m) => m[1] ?? '',
);

describe('docs/clients-mcp-sdk.md examples run as written', () => {
  let b: Running;
  let dir: string;
  before(async () => {
    b = await startBroker({ config: { server: { rateLimit: { enabled: false } } } as never });
    // The template the page tells the admin to register (the PATCH shown there).
    const admin = await b.operatorToken('alice');
    const res = await fetch(`${b.base}/admin/v1/agents/support-triage`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        templates: {
          default: {
            purpose: 'Answer support questions',
            taskType: 'support.triage',
            ttlSeconds: 900,
            tools: [{ tool: 'helpdesk.search_tickets' }],
          },
        },
      }),
    });
    assert.equal(res.status, 200, await res.text());
    dir = mkdtempSync(join(tmpdir(), 'mandate-mcp-sdk-docs-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'node_modules', '@modelcontextprotocol'), join(dir, 'node_modules', '@modelcontextprotocol'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  });
  after(async () => {
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(index: number): Promise<{ code: number | null; out: string }> {
    const svid = join(dir, `svid-${index}.jwt`);
    writeFileSync(svid, await b.svid(TRIAGE));
    const file = join(dir, `example-${index}.ts`);
    writeFileSync(file, (examples[index] ?? '').replaceAll('http://127.0.0.1:8080', b.base).replaceAll('/run/spiffe/svid.jwt', svid));
    const proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    return { code, out };
  }

  const triageMandates = async () =>
    (await b.broker.mandates.list({ agentId: 'support-triage' })).filter((m) => m.purpose === 'Answer support questions');

  test('the page has the examples this test knows', () => {
    assert.equal(examples.length, 3, 'update this test when examples are added or removed');
  });

  test('1. SDK 1.x StaticPrivateKeyJwtProvider: the default template, its tools, one call', async () => {
    const { code, out } = await run(0);
    assert.equal(code, 0, out);
    assert.match(out, /^tools: helpdesk\.search_tickets$/m);
    assert.match(out, /T-4821/);
    assert.equal((await triageMandates()).length, 1);
  });

  test('2. SDK 1.x with addClientAuthentication reading the current SVID: the same standing grant', async () => {
    const { code, out } = await run(1);
    assert.equal(code, 0, out);
    assert.match(out, /T-4821/);
    assert.equal((await triageMandates()).length, 1, 'the same agent, template and (no) key continue the live mandate');
  });

  test('3. SDK 2.x with a DpopSession: a DPoP-bound token, its own mandate', async () => {
    const { code, out } = await run(2);
    assert.equal(code, 0, out);
    assert.match(out, /token type: dpop/i);
    assert.match(out, /T-4821/);
    assert.equal((await triageMandates()).length, 2, 'a DPoP key is another standing grant');
  });
});
