// docs/clients-interactive.md runs as written: its agent.json is registered through the admin API,
// and every `ts` block runs as its own process against a real demo broker (only the broker URL and
// the callback port replaced). Headless Chromium plays the human: it opens the URL the example
// prints, signs in as alice and grants the prefilled mandate.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { docBlocks } from '../helpers/doc-blocks.js';
import { freePort } from '../helpers/ports.js';
import { type ClientsHarness, startClientsGateway } from './helpers.js';
import { consent, launchChromium } from './interactive-helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const page = readFileSync(join(ROOT, 'docs/clients-interactive.md'), 'utf8');
const blocks = docBlocks(page);
const examples = blocks.filter((b) => b.lang === 'ts').map((b) => b.body);
const agentJson = blocks.find((b) => b.lang === 'json')?.body ?? '';

describe('docs/clients-interactive.md examples run as written', () => {
  let h: ClientsHarness;
  let browser: Browser;
  let dir: string;
  before(async () => {
    h = await startClientsGateway();
    const admin = await h.operatorToken('alice');
    const res = await fetch(`${h.base}/admin/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: agentJson.replaceAll('http://127.0.0.1:8080', h.base),
    });
    assert.equal(res.status, 201, await res.text());
    browser = await launchChromium();
    dir = mkdtempSync(join(tmpdir(), 'mandate-interactive-docs-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'node_modules', '@modelcontextprotocol'), join(dir, 'node_modules', '@modelcontextprotocol'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(index: number): Promise<{ code: number | null; out: string; err: string }> {
    const file = join(dir, `example-${index}.ts`);
    const port = await freePort();
    writeFileSync(file, (examples[index] ?? '').replaceAll('http://127.0.0.1:8080', h.base).replaceAll('8765', String(port)));
    const proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let announce: (url: string) => void = () => {};
    const announced = new Promise<string>((resolve) => {
      announce = resolve;
    });
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Open this URL to sign in: (\S+)/.exec(out);
      if (m?.[1] !== undefined) announce(m[1]);
    });
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const closed = new Promise<number | null>((resolve) => proc.on('close', resolve));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    const url = await Promise.race([announced, closed.then(() => '')]);
    if (url !== '') await (await consent(browser, url)).context().close();
    const code = await closed;
    clearTimeout(timer);
    return { code, out, err };
  }

  test('the page has the agent and both SDK examples', () => {
    assert.match(agentJson, /"interactive": true/);
    assert.equal(examples.length, 2);
  });

  test('SDK 1.x example: registers, the human consents, the call goes through', async () => {
    const r = await run(0);
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    assert.match(r.out, /T-4821/);
  });

  test('SDK 2.x example: the same, iss checked', async () => {
    const r = await run(1);
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    assert.match(r.out, /hello/);
  });
});
