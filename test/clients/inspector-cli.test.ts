// The MCP Inspector's CLI (@modelcontextprotocol/inspector, `mcp-inspector --cli`), unmodified, as
// a separate process against the gateway in both protocol eras (`--protocol-era legacy|modern`):
// lists, calls, reads a refusal (the CLI exits 5 on an isError result and still prints it), and
// in the modern era completes an approval-required call as a task once a human approves, or ends
// it with an isError result once a human denies (the CLI runs every modern tools/call through its
// ext-tasks session and waits for the outcome).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ClientsHarness, REFUND, refusalOf, startClientsGateway, textOf } from './helpers.js';

const LAUNCHER = createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector/clients/launcher/build/index.js');
const GRANTED = ['everything.echo', 'helpdesk.execute_refund', 'helpdesk.get_customer', 'helpdesk.search_tickets'];
/** Exit codes the Inspector CLI documents (clients/cli EXIT_CODES). */
const EXIT = { OK: 0, TOOL_ERROR: 5 };

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The `--format json` payload on stdout: `{ result }` (or the error envelope). */
  readonly json: { result?: Record<string, unknown>; error?: { code: string; message: string } };
}

describe('MCP Inspector CLI through the gateway', () => {
  let h: ClientsHarness;
  // The CLI keeps a catalog and client config under $HOME; give it an empty one per run.
  const home = mkdtempSync(join(tmpdir(), 'mandate-inspector-home-'));
  before(async () => {
    h = await startClientsGateway();
  });
  after(async () => {
    await h?.close();
    rmSync(home, { recursive: true, force: true });
  });

  function inspector(token: string, era: 'legacy' | 'modern', args: string[], timeoutMs = 60_000): Promise<Run> {
    const argv = [
      LAUNCHER,
      '--cli',
      '--transport',
      'http',
      '--server-url',
      h.mcpUrl.href,
      '--header',
      `Authorization: Bearer ${token}`,
      '--protocol-era',
      era,
      '--format',
      'json',
      ...args,
    ];
    const child = spawn(process.execPath, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: home, MCP_CATALOG_PATH: join(home, 'mcp.json'), MCP_CLIENT_CONFIG_PATH: join(home, 'client.json') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    return new Promise((resolve) =>
      child.on('close', (code) => {
        clearTimeout(timer);
        let json: Run['json'] = {};
        const line = stdout.trim() || stderr.trim().split('\n').at(-1) || '';
        try {
          json = JSON.parse(line) as Run['json'];
        } catch {
          json = { error: { code: 'unparsed', message: `${stdout}\n${stderr}`.slice(0, 2000) } };
        }
        resolve({ code, stdout, stderr, json });
      }),
    );
  }
  const show = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout.slice(0, 1500)}\nstderr: ${r.stderr.slice(0, 1500)}`;

  for (const era of ['legacy', 'modern'] as const) {
    describe(`--protocol-era ${era}`, () => {
      it('lists exactly the granted tools', async () => {
        const { token } = await h.grant();
        const r = await inspector(token, era, ['--method', 'tools/list']);
        assert.equal(r.code, EXIT.OK, show(r));
        const tools = (r.json.result?.tools ?? []) as { name: string }[];
        assert.deepEqual(tools.map((t) => t.name).sort(), GRANTED, show(r));
      });

      it('calls a granted tool', async () => {
        const { token } = await h.grant();
        const r = await inspector(token, era, [
          '--method',
          'tools/call',
          '--tool-name',
          'helpdesk.search_tickets',
          '--tool-args-json',
          JSON.stringify({ query: 'charged twice' }),
        ]);
        assert.equal(r.code, EXIT.OK, show(r));
        assert.match(textOf(r.json.result), /T-4821/, show(r));
      });

      it('shows a refusal as an isError result carrying the reason and registry code', async () => {
        const { token } = await h.grant();
        const r = await inspector(token, era, [
          '--method',
          'tools/call',
          '--tool-name',
          'helpdesk.get_customer',
          '--tool-args-json',
          JSON.stringify({ customerId: 'C-1010' }),
        ]);
        assert.equal(r.code, EXIT.TOOL_ERROR, show(r));
        assert.equal(r.json.result?.isError, true, show(r));
        assert.match(textOf(r.json.result), /C-1009/, 'says what would be allowed');
        assert.doesNotMatch(textOf(r.json.result), /MCP error/);
        assert.equal(refusalOf(r.json.result).code, 'RPC_CALL_DENIED', show(r));
        assert.equal(typeof refusalOf(r.json.result).decisionId, 'string');
      });
    });
  }

  it('legacy era: an approval-required call is an isError "approval pending" result naming the approval', async () => {
    const { token, mandateId } = await h.grant();
    const r = await inspector(token, 'legacy', [
      '--method',
      'tools/call',
      '--tool-name',
      'helpdesk.execute_refund',
      '--tool-args-json',
      JSON.stringify(REFUND),
    ]);
    assert.equal(r.code, EXIT.TOOL_ERROR, show(r));
    const m = refusalOf(r.json.result);
    assert.equal(m.code, 'RPC_APPROVAL_REQUIRED', show(r));
    assert.equal(m.approvalId, await h.pendingApproval(mandateId));
  });

  it('modern era: the Tasks-capable CLI waits on the task and prints the upstream result once a human approves', async () => {
    const { token, mandateId } = await h.grant();
    const running = inspector(token, 'modern', [
      '--method',
      'tools/call',
      '--tool-name',
      'helpdesk.execute_refund',
      '--tool-args-json',
      JSON.stringify(REFUND),
    ]);
    const approvalId = await Promise.race([
      h.pendingApproval(mandateId),
      running.then((r) => Promise.reject(new Error(`the CLI ended before an approval was requested:\n${show(r)}`))),
    ]);
    // The CLI is still waiting: nothing forwarded yet.
    assert.equal((await h.broker.approvals.require(approvalId)).status, 'pending');
    await h.decide(approvalId, true);
    const r = await running;
    assert.equal(r.code, EXIT.OK, show(r));
    assert.equal(r.json.result?.isError, undefined, show(r));
    assert.match(textOf(r.json.result), /"amountCents":4900/, show(r));
    assert.equal((await h.broker.approvals.require(approvalId)).status, 'consumed');
  });

  it("modern era: a human denial ends the CLI's wait with an isError result saying it was denied", async () => {
    const { token, mandateId } = await h.grant();
    const running = inspector(token, 'modern', [
      '--method',
      'tools/call',
      '--tool-name',
      'helpdesk.execute_refund',
      '--tool-args-json',
      JSON.stringify(REFUND),
    ]);
    const approvalId = await Promise.race([
      h.pendingApproval(mandateId),
      running.then((r) => Promise.reject(new Error(`the CLI ended before an approval was requested:\n${show(r)}`))),
    ]);
    await h.decide(approvalId, false);
    const r = await running;
    assert.equal(r.code, EXIT.TOOL_ERROR, show(r));
    assert.equal(r.json.result?.isError, true, show(r));
    assert.match(textOf(r.json.result), /denied/i, show(r));
    assert.equal((await h.broker.approvals.require(approvalId)).status, 'denied');
  });
});
