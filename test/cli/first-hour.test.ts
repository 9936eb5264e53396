// A newcomer's first hour on another port, as real processes: `mandate serve --demo --port P`,
// then the commands its banner prints, the dev and demo helpers, the audit CLI and the client
// commands, all reaching that one broker through --url or MANDATE_URL. Each assertion here failed
// before issue 19 (wrong issuer, wrong audience, wrong vkey name, raw JSON, stack traces…).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { freePort } from '../helpers/ports.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const TSX = import.meta.resolve('tsx');
const dir = mkdtempSync(join(tmpdir(), 'mandate-first-hour-'));
// The demo's stdio upstreams start with `node --import tsx` from the working directory, as from a clone.
symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
// Nothing from the developer's shell leaks in (a MANDATE_URL there would hide the defect).
const baseEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: dir, NODE_ENV: 'test' };

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

after(() => rmSync(dir, { recursive: true, force: true }));

function mandate(args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: dir,
    env: { ...baseEnv, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** As `mandate`, without blocking this process (which may be serving the command something). */
function mandateAsync(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: dir, env: { ...baseEnv, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function ok(r: Run, what: string): string {
  assert.equal(r.status, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

describe('one address everywhere: a demo broker on another port', () => {
  let broker: ChildProcess;
  let url: string;
  let banner = '';
  let at: Record<string, string>;
  let alice: string;

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    at = { MANDATE_URL: url };
    broker = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--demo', '--port', String(port)], {
      cwd: dir,
      env: baseEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    broker.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    await new Promise<void>((resolve, reject) => {
      broker.stdout?.on('data', (d: Buffer) => {
        banner += d.toString();
        if (/other terminals: .*\n/.test(banner)) resolve();
      });
      broker.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    alice = ok(mandate(['dev', 'operator-token', '--user', 'alice'], at), 'operator token').trim();
  });

  after(async () => {
    const exited = new Promise((r) => broker.on('exit', r));
    broker.kill('SIGTERM');
    await exited;
  });

  const whoami = (token: string) => fetch(`${url}/admin/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });

  test('the banner prints commands that reach this broker, and they work as printed', async () => {
    assert.match(banner, new RegExp(`console: ${url}/console/`));
    assert.match(banner, new RegExp(`npm run demo:agent -- --url ${url} `));
    assert.match(banner, new RegExp(`export MANDATE_URL=${url}`));
    const printed = /npm run mandate -- (dev operator-token .*)$/m.exec(banner)?.[1];
    assert.ok(printed !== undefined, banner);
    assert.match(printed, new RegExp(`--url ${url}$`));
    const token = ok(mandate(printed.split(' ')), 'the printed command').trim();
    assert.equal((await whoami(token)).status, 200);
    // MANDATE_URL alone is enough, as the banner says.
    assert.equal((await whoami(alice)).status, 200);
  });

  test('a token for the default address is refused naming both issuers', async () => {
    const elsewhere = ok(mandate(['dev', 'operator-token', '--user', 'alice']), 'token for :8080').trim();
    const res = await whoami(elsewhere);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: string; message: string };
    assert.equal(body.error, 'ERR_AUTH_INVALID_TOKEN');
    assert.ok(body.message.includes('http://127.0.0.1:8080/'), body.message);
    assert.ok(body.message.includes(`${url}/`), body.message);
  });

  test('dev svid takes its audience from MANDATE_URL (or --port)', () => {
    const id = 'spiffe://demo.mandate.local/agent/support-triage';
    const fromEnv = decodeJwt(ok(mandate(['dev', 'svid', '--spiffe-id', id], at), 'svid').trim());
    assert.equal(fromEnv.aud, url);
    const fromPort = decodeJwt(ok(mandate(['dev', 'svid', '--spiffe-id', id, '--port', url.split(':')[2] ?? '']), 'svid').trim());
    assert.equal(fromPort.aud, url);
  });

  test('audit vkey --demo names this broker’s origin, so verify passes; a vkey for another origin is said to be one', async () => {
    assert.equal((await fetch(`${url}/audit/log/checkpoint`)).status, 200); // at least one signed checkpoint
    const vkey = ok(mandate(['audit', 'vkey', '--demo'], at), 'vkey').trim();
    assert.ok(vkey.startsWith(`${new URL(url).host}/audit+`), vkey);
    assert.equal(ok(mandate(['audit', 'vkey', '--demo', '--port', new URL(url).port]), 'vkey --port').trim(), vkey);
    assert.match(
      ok(mandate(['audit', 'verify', '--demo', '--vkey', vkey], at), 'verify'),
      /^ok: \d+ entries, [1-9]\d* checkpoints verified/,
    );
    const other = ok(mandate(['audit', 'vkey', '--demo']), 'vkey for :8080').trim();
    const wrong = mandate(['audit', 'verify', '--demo', '--vkey', other], at);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /ERR_AUDIT_VERIFY_FAILED: .*not by the verifier key "127\.0\.0\.1:8080\/audit" \(a vkey for another origin/);
  });

  test('a broker that does not answer is named by its URL', () => {
    const r = mandate(['agents', 'list', '--url', 'http://127.0.0.1:9'], { MANDATE_TOKEN: alice });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^mandate: ERR_BROKER_UNREACHABLE: cannot reach the broker at http:\/\/127\.0\.0\.1:9 /);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('agents register: --environment is marked required; an unknown owner, a missing tool and a missing file are refused clearly', () => {
    assert.match(ok(mandate(['agents', 'register', '--help']), 'help'), /--environment <env>\s+.*\(required\)/);
    const env = { ...at, MANDATE_TOKEN: alice };
    const common = ['--environment', 'sandbox', '--spiffe-id', 'spiffe://demo.mandate.local/agent/newcomer'];
    const owner = mandate(['agents', 'register', 'newcomer', '--owner', 'dave', ...common, '--tool', 'helpdesk.search_tickets'], env);
    assert.equal(owner.status, 1);
    assert.match(owner.stderr, /^mandate: ERR_VALIDATION: owner "dave" is not a known principal/);
    const tool = mandate(['agents', 'register', 'newcomer', '--owner', 'bob', ...common, '--tool', 'helpdesk.serch_tickets'], env);
    assert.equal(tool.status, 1);
    assert.match(tool.stderr, /^mandate: ERR_VALIDATION: not in the tool catalog: "helpdesk\.serch_tickets" /);
    const file = mandate(['agents', 'register', 'newcomer', '--owner', 'bob', ...common, '--ceiling', '@support-ceiling.json'], env);
    assert.equal(file.status, 1);
    assert.match(file.stderr, /^mandate: ERR_FILE_UNREADABLE: cannot open support-ceiling\.json: no such file/);
    const registered = JSON.parse(
      ok(mandate(['agents', 'register', 'newcomer', '--owner', 'bob', ...common, '--tool', 'helpdesk.search_tickets'], env), 'register'),
    );
    assert.equal(registered.principal.owner, 'bob');
  });

  test('agents list is a paged table (--json too) with no cursor after the last page', () => {
    const env = { ...at, MANDATE_TOKEN: alice };
    const all = JSON.parse(ok(mandate(['agents', 'list', '--json'], env), 'list --json')) as {
      items: { principal: { id: string } }[];
      next?: string;
    };
    assert.ok(all.items.length >= 2, 'the demo agents and the newcomer');
    assert.equal(all.next, undefined, 'one page holds them all: no next cursor');
    const first = ok(mandate(['agents', 'list', '--limit', '1'], env), 'list --limit 1');
    assert.match(first, /^ID\s+STATUS\s+ENVIRONMENT\s+OWNER\s+IDENTITY\n/);
    const firstId = all.items[0]?.principal.id ?? '';
    assert.match(first, new RegExp(`more: mandate agents list --after ${firstId}\\n$`));
    const lastId = all.items[all.items.length - 2]?.principal.id ?? '';
    const last = ok(mandate(['agents', 'list', '--limit', '1', '--after', lastId], env), 'last page');
    assert.ok(last.includes(all.items[all.items.length - 1]?.principal.id ?? '?'));
    assert.doesNotMatch(last, /more:/);
  });

  test('upstreams add --openapi registers an HTTP API from its description; misuse is refused clearly', async () => {
    const env = { ...at, MANDATE_TOKEN: alice };
    const yaml = readFileSync(join(ROOT, 'examples/openapi/billing.yaml'), 'utf8');
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/yaml' }).end(yaml));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const descriptionUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/openapi.yaml`;
    try {
      assert.match(ok(mandate(['upstreams', 'add', '--help']), 'help'), /--openapi <url\|path>/);
      // The broker fetches the description from this process: the command must not block it.
      const added = await mandateAsync(
        ['upstreams', 'add', 'billing', '--openapi', descriptionUrl, '--server-url', 'http://127.0.0.1:9/v1'],
        env,
      );
      const upstream = JSON.parse(ok(added, 'add --openapi')) as { transport: { type: string; serverUrl?: string } };
      assert.equal(upstream.transport.type, 'openapi');
      assert.equal(upstream.transport.serverUrl, 'http://127.0.0.1:9/v1');
      const catalog = JSON.parse(ok(mandate(['catalog', 'list'], env), 'catalog')) as { items: { name: string; actionClass: string }[] };
      const tools = new Map(catalog.items.map((t) => [t.name, t.actionClass]));
      assert.equal(tools.get('billing.listCustomers'), 'read');
      assert.equal(tools.get('billing.deleteCustomer'), 'destructive');
      // A file is read by the broker, and only under upstreams.httpApi.descriptionDirs (none in the demo).
      const file = mandate(['upstreams', 'add', 'billing2', '--openapi', 'examples/openapi/billing.yaml'], env);
      assert.equal(file.status, 1);
      assert.match(file.stderr, /^mandate: ERR_\w+: .*descriptionDirs/);
      for (const [args, why] of [
        [['upstreams', 'add', 'x', '--openapi', descriptionUrl, '--mcp-url', 'http://127.0.0.1:9/mcp'], /exactly one of/],
        [
          ['upstreams', 'add', 'x', '--server-url', 'http://127.0.0.1:9/v1', '--mcp-url', 'http://127.0.0.1:9/mcp'],
          /--server-url goes with --openapi/,
        ],
      ] as const) {
        const r = mandate([...args], env);
        assert.equal(r.status, 1);
        assert.match(r.stderr, why);
      }
    } finally {
      server.close();
    }
  });

  test('mandates --help names the real subcommands', () => {
    const help = ok(mandate(['mandates', '--help']), 'help');
    const commands = [...help.matchAll(/^ {2}(\w+)(?: \[options\])?(?: <id>)?\s/gm)].map((m) => m[1]);
    const real = commands.filter((c): c is string => c !== undefined && c !== 'help');
    for (const c of ['get', 'list', 'revoke']) assert.ok(real.includes(c), `${c} is a subcommand`);
    // The summary line names each real subcommand, and nothing that is not one (it said `show`).
    const summary = help.split('\n\n')[1] ?? '';
    for (const c of real) assert.match(summary, new RegExp(`\\b${c}\\b`), `the summary names ${c}`);
    assert.doesNotMatch(help, /\bshow\b/);
  });

  test('a reader that stops early (| head -1) ends the command quietly', async () => {
    const child = spawn(process.execPath, ['--import', TSX, MAIN, 'approvals', 'list', '--status', 'all'], {
      cwd: dir,
      env: { ...baseEnv, ...at, MANDATE_TOKEN: alice },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.destroy(); // the reader is gone before the first line
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  test('demo:agent follows MANDATE_URL; explain of the approval names bob, the outcome and carol’s comment (CLI and API)', async () => {
    const agent = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/demo/agent.ts'), '--poll-seconds', '1'], {
      cwd: dir,
      env: { ...baseEnv, ...at },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    agent.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    agent.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => agent.on('exit', r));
    const deadline = Date.now() + 90_000;
    let approvalId: string | undefined;
    while (approvalId === undefined) {
      approvalId = /waiting for approval (apr_[A-Za-z0-9-]+)/.exec(out)?.[1];
      if (agent.exitCode !== null || Date.now() > deadline) assert.fail(`no approval was requested:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const carol = ok(mandate(['dev', 'operator-token', '--user', 'carol'], at), 'carol').trim();
    const note = 'duplicate charge confirmed on the statement';
    ok(mandate(['approvals', 'approve', approvalId, '--note', note], { ...at, MANDATE_TOKEN: carol }), 'approve');
    assert.equal(await exited, 0, out);

    const entries = (await (
      await fetch(`${url}/admin/v1/audit/entries?from=0&limit=1000`, { headers: { authorization: `Bearer ${alice}` } })
    ).json()) as { items: { id: string; event: { type: string; data: Record<string, unknown> } }[] };
    const decided = entries.items.find((e) => e.event.type === 'approval.decided' && e.event.data.approvalId === approvalId);
    assert.ok(decided !== undefined);
    assert.equal(decided.event.data.note, note);

    const api = (await (
      await fetch(`${url}/admin/v1/audit/events/${decided.id}/explain`, { headers: { authorization: `Bearer ${alice}` } })
    ).json()) as { onBehalfOf?: string; approval?: { outcome: string; decidedBy: string; note: string } };
    assert.equal(api.onBehalfOf, 'bob');
    assert.deepEqual(
      { ...api.approval },
      { id: approvalId, outcome: 'approved', decidedBy: 'carol', role: 'finance', note, consumed: true },
    );
    const text = ok(mandate(['audit', 'explain', decided.id, '--demo'], at), 'explain');
    assert.match(text, /^on behalf of: bob$/m);
    assert.match(text, new RegExp(`^approval ${approvalId}: approved by carol as finance, used by the call$`, 'm'));
    assert.ok(text.includes(`comment: ${JSON.stringify(note)}`), text);
  });
});

test('config check refuses what serve refuses (one validation: master key, policy)', () => {
  const prod = join(dir, 'prod.yaml');
  writeFileSync(prod, `dataDir: ${join(dir, 'prod')}\n`);
  const check = mandate(['config', 'check', prod]);
  const serve = mandate(['serve', '--config', prod]);
  assert.equal(check.status, 1);
  assert.match(check.stderr, /^mandate: ERR_MASTER_KEY_MISSING: /);
  assert.equal(check.stderr.split(':').slice(0, 2).join(), serve.stderr.split(':').slice(0, 2).join());
  const badPolicy = join(dir, 'bad-policy.yaml');
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'broken.cedar'), 'permit (principal, action, resource) when { nonsense };\n');
  writeFileSync(badPolicy, `mode: demo\ndataDir: ${join(dir, 'bp')}\npolicy:\n  dir: ${join(dir, 'policies')}\n`);
  assert.match(mandate(['config', 'check', badPolicy]).stderr, /^mandate: ERR_POLICY_INVALID: /);
});
