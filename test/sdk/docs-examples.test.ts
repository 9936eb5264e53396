// Every `ts` block of docs/sdk.md runs as its own process against a real demo broker, importing
// `mandate/sdk` by its package name (a scratch folder whose node_modules/mandate links to this
// repository, and node_modules/@modelcontextprotocol to its MCP SDKs). Only the broker URL and the SVID file paths are replaced; each run gets freshly
// minted SVIDs in those files, and a human decides the approvals an example waits for.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Running, startBroker } from '../identity/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AGENT = { id: 'refund-bot', spiffeId: 'spiffe://demo.mandate.local/agent/refund-bot' };
const CHILD = { id: 'refund-helper', spiffeId: 'spiffe://demo.mandate.local/agent/refund-helper' };
const TOOLS: { tool: string; args?: Record<string, { eq?: string; max?: number }> }[] = [
  { tool: 'helpdesk.search_tickets' },
  { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
  { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
  { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
];

/** The `ts` blocks of docs/sdk.md, in order. */
export function examplesOf(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
}

describe('docs/sdk.md examples run as written', () => {
  let b: Running;
  let dir: string;
  let bob: string;
  const examples = examplesOf(readFileSync(join(ROOT, 'docs/sdk.md'), 'utf8'));
  before(async () => {
    b = await startBroker({ config: { server: { rateLimit: { enabled: false } } } as never });
    bob = await b.operatorToken('bob');
    for (const a of [AGENT, CHILD]) {
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
    dir = mkdtempSync(join(tmpdir(), 'mandate-sdk-docs-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'mandate'), 'dir');
    // Examples may also import the MCP SDKs, as an agent with them installed would.
    symlinkSync(join(ROOT, 'node_modules', '@modelcontextprotocol'), join(dir, 'node_modules', '@modelcontextprotocol'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  });
  after(async () => {
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one example; approves (or denies) any approval its mandates ask for while it runs. */
  async function run(index: number, decision: 'approve' | 'deny' = 'approve'): Promise<{ code: number | null; out: string }> {
    const svid = join(dir, `svid-${index}.jwt`);
    const remediation = join(dir, `remediation-${index}.jwt`);
    writeFileSync(svid, await b.svid(AGENT.spiffeId));
    writeFileSync(remediation, await b.svid(CHILD.spiffeId));
    const code = (examples[index] ?? '')
      .replaceAll('http://127.0.0.1:8080', b.base)
      .replaceAll('/run/spiffe/svid.jwt', svid)
      .replaceAll('/run/spiffe/remediation.jwt', remediation);
    const file = join(dir, `example-${index}.ts`);
    writeFileSync(file, code);
    const proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    let done = false;
    void exited.then(() => {
      done = true;
    });
    const decided = new Set<string>();
    while (!done) {
      for (const id of out.matchAll(/waiting for approval (apr_[A-Za-z0-9-]+)/g)) {
        const approvalId = id[1] ?? '';
        if (decided.has(approvalId)) continue;
        decided.add(approvalId);
        const res = await fetch(`${b.base}/admin/v1/approvals/${approvalId}/${decision}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
          body: JSON.stringify({ note: decision === 'approve' ? 'duplicate charge confirmed' : 'not a duplicate' }),
        });
        assert.equal(res.status, 200, await res.text());
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { code: await exited, out };
  }

  const mandatesOf = async () => b.broker.mandates.list({ agentId: AGENT.id });

  test('the page has the examples this test knows', () => {
    assert.equal(examples.length, 4, 'update this test when examples are added or removed');
    // The headline example: an import and at most 4 more lines.
    const lines = (examples[0] ?? '').trim().split('\n');
    assert.equal(lines.length, 4, lines.join('\n'));
    assert.match(lines[0] ?? '', /from 'mandate\/sdk'/);
  });

  test('the examples typecheck (strict, as written)', async () => {
    const check = join(dir, 'typecheck');
    mkdirSync(check);
    examples.forEach((code, i) => {
      writeFileSync(join(check, `example-${i}.ts`), code);
    });
    writeFileSync(
      join(check, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        include: ['*.ts'],
      }),
    );
    const proc = spawn(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', check], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    assert.equal(code, 0, out);
  });

  test('1. open from a template, one governed call, complete', async () => {
    const before = (await mandatesOf()).length;
    const { code, out } = await run(0);
    assert.equal(code, 0, out);
    const mandates = await mandatesOf();
    assert.equal(mandates.length, before + 1);
    const opened = mandates.find((m) => m.purpose === 'Triage refund requests' && m.status === 'completed');
    assert.ok(opened, JSON.stringify(mandates.map((m) => [m.id, m.status])));
  });

  test('2. a scope refusal is caught; the approved refund runs and the mandate completes', async () => {
    const { code, out } = await run(1, 'approve');
    assert.equal(code, 0, out);
    assert.match(out, /refused RPC_CALL_DENIED \(decision \S+\): .*C-1009/);
    assert.match(out, /waiting for approval apr_\S+: http:\/\/\S+\/console\/approvals\/apr_/);
    assert.match(out, /refunded: .*"amountCents":4900/);
    const m = (await mandatesOf()).find((x) => x.purpose.startsWith('Resolve ticket T-4821'));
    assert.equal(m?.status, 'completed');
  });

  test('2. denied: ApprovalDenied is caught and the mandate fails', async () => {
    const { code, out } = await run(1, 'deny');
    assert.equal(code, 0, out);
    assert.doesNotMatch(out, /refunded/);
    const failed = (await mandatesOf()).filter((x) => x.purpose.startsWith('Resolve ticket T-4821') && x.status === 'failed');
    assert.equal(failed.length, 1);
  });

  test('3. delegation narrows: the child is refused beyond its grant, a wider child is refused', async () => {
    const { code, out } = await run(2);
    assert.equal(code, 0, out);
    assert.match(out, /the child cannot exceed what it was given: RPC_CALL_DENIED/);
    assert.match(out, /nor can a delegation ask for more than the parent has: invalid_\w+/);
    const children = await b.broker.mandates.list({ agentId: CHILD.id });
    assert.equal(children.length, 1);
    assert.equal(children[0]?.status, 'revoked', 'completing the parent ended the child');
  });

  test('4. the official client and another client through m.fetch', async () => {
    const { code, out } = await run(3);
    assert.equal(code, 0, out);
    assert.match(
      out,
      /^mnd_\S+ \d{4}-\d\d-\d\dT\S+ helpdesk\.execute_refund, helpdesk\.get_customer, helpdesk\.propose_refund, helpdesk\.search_tickets$/m,
    );
    assert.match(out, /^4$/m);
  });
});
