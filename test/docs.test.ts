// Docs that must match the code: the error registry, the configuration reference, and the
// examples of docs/ (marked blocks run against a real demo broker).
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderConfigReference } from '../src/config/reference.js';
import { errorRegistry } from '../src/errors/registry.js';
import { evaluationRequestSchema } from '../src/policy/authzen.js';
import { scopeSchema } from '../src/scope/scope.js';
import { templateRequestSchema } from '../src/templates/resolve.js';
import { type DocBlock, docBlocks } from './helpers/doc-blocks.js';
import { freePort } from './helpers/ports.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

test('docs/errors.md lists exactly the registry codes, with their space and status', () => {
  const documented = new Map<string, { space: string; status: number }>();
  for (const match of read('docs/errors.md').matchAll(/^\| `([A-Z0-9_]+)` \| (\w+) \| (\d{3}) \|/gm)) {
    const [, code, space, status] = match;
    assert.ok(code !== undefined && space !== undefined && status !== undefined);
    assert.ok(!documented.has(code), `${code} is documented twice`);
    documented.set(code, { space, status: Number(status) });
  }
  const registered = Object.keys(errorRegistry);
  const undocumented = registered.filter((c) => !documented.has(c));
  const stale = [...documented.keys()].filter((c) => !registered.includes(c));
  assert.deepEqual(undocumented, [], 'codes missing from docs/errors.md');
  assert.deepEqual(stale, [], 'codes in docs/errors.md that are not in the registry');
  for (const [code, doc] of documented) {
    const spec = errorRegistry[code as keyof typeof errorRegistry];
    assert.equal(doc.space, spec.space, `${code} space`);
    assert.equal(doc.status, spec.status, `${code} status`);
  }
});

test('docs/configuration.md is generated from the current schema (run `npm run docs:config`)', () => {
  assert.equal(read('docs/configuration.md'), renderConfigReference());
});

// ── Docs that run ──
// Blocks marked in their info string are checked against one real demo broker (`mandate serve
// --demo`, as `npm start` runs it) in a scratch checkout (symlinks to this one, its own ./data):
//   ```sh run                      runs; all `run` blocks of a page run in order in one bash
//                                  session (variables carry over), with `set -euo pipefail` and
//                                  curl failing on HTTP errors. The page's http://127.0.0.1:8080 is
//                                  replaced by the broker's address and MANDATE_URL exported.
//   ```json file=examples/x.json   must be exactly the file (the file the shell examples use)
//   ```json valid                  must parse (responses and shapes shown on the page); with
//                                  schema=scope|template-request|authzen-evaluation it must also
//                                  be what the code accepts (SCHEMAS)
//   ```sh no-run                   not run: its first line is a `#` comment telling the reader why
//                                  (a production host, an external IdP, a long benchmark, …)
// Every shell and JSON block of docs/ and README.md carries one of these: an unmarked one fails
// (so a new example either runs or says why not), and so does an unlabelled block that holds
// commands (it would otherwise escape as "not shell").

const docPages = readdirSync(new URL('../docs/', import.meta.url))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`)
  .sort();
const pages = [...docPages, 'README.md'].map((path) => ({ path, blocks: docBlocks(read(path)) }));
const SHELL = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);
const MARKS = ['run', 'valid', 'no-run'];
/** `json valid schema=NAME`: the block must also be what the code accepts as NAME. */
const SCHEMAS: Record<string, { safeParse(v: unknown): { success: boolean; error?: { message: string } } }> = {
  scope: scopeSchema,
  'template-request': templateRequestSchema,
  'authzen-evaluation': evaluationRequestSchema,
};

test('marked JSON examples are the files they show, or parse', () => {
  for (const { path, blocks } of pages) {
    for (const b of blocks.filter((x) => x.lang === 'json')) {
      const where = `${path}:${b.line}`;
      if (b.attrs.file !== undefined) {
        assert.ok(existsSync(new URL(`../${b.attrs.file}`, import.meta.url)), `${where}: ${b.attrs.file} does not exist`);
        assert.equal(b.body.trim(), read(b.attrs.file).trim(), `${where}: the block differs from ${b.attrs.file}`);
        JSON.parse(b.body);
      } else if (b.words.has('valid')) {
        assert.doesNotThrow(() => JSON.parse(b.body), `${where}: not valid JSON`);
      }
      if (b.attrs.schema !== undefined) {
        // The shape the code accepts (an array block: each element).
        const schema = SCHEMAS[b.attrs.schema];
        assert.ok(schema !== undefined, `${where}: no schema ${b.attrs.schema} (one of ${Object.keys(SCHEMAS).join(', ')})`);
        const value: unknown = JSON.parse(b.body);
        for (const item of Array.isArray(value) ? value : [value]) {
          const r = schema.safeParse(item);
          assert.ok(r.success, `${where}: not a valid ${b.attrs.schema}: ${r.error?.message}`);
        }
      }
    }
  }
});

/** Where a page leaves a shell or JSON block unclassified, or a no-run block without its reason. */
function unclassified(path: string, blocks: readonly DocBlock[]): string[] {
  const out: string[] = [];
  for (const b of blocks) {
    const where = `${path}:${b.line}`;
    const marked = MARKS.some((w) => b.words.has(w)) || b.attrs.file !== undefined;
    if ((SHELL.has(b.lang) || b.lang === 'json') && !marked) out.push(`${where}: unmarked ${b.lang} block`);
    if (
      b.lang === '' &&
      /^(\$ )?(npm (run|start|ci|test|pack|install) |npx |curl |node |export [A-Z_]+=|docker |kubectl |mandate (serve|migrate|config|secrets|dev|policy|agents|audit|upstreams|approvals|mandates|report) )/m.test(
        b.body,
      )
    ) {
      out.push(`${where}: commands in a block without a language (label it sh and mark it)`);
    }
    if (SHELL.has(b.lang) && b.words.has('no-run') && !/^# \S/.test(b.body)) {
      out.push(`${where}: a no-run block starts with a # comment saying why it does not run`);
    }
    if (b.lang === 'json' && b.words.has('run')) out.push(`${where}: a JSON block is valid or file=…, not run`);
  }
  return out;
}

test('every shell and JSON block of docs/ and README.md runs, is checked, or says why not', () => {
  assert.deepEqual(
    pages.flatMap(({ path, blocks }) => unclassified(path, blocks)),
    [],
    'mark each block run, valid, file=… or no-run (with a # reason)',
  );
});

test('the classification check catches what it should', () => {
  const page = [
    '```sh',
    'curl -s x',
    '```',
    '```json',
    '{}',
    '```',
    '```',
    'npm run -s mandate -- agents list',
    '```',
    '```sh no-run',
    'mandate serve',
    '```',
    '```sh no-run',
    '# production only',
    'mandate serve',
    '```',
    '```sh run',
    'true',
    '```',
    '```json valid',
    '{}',
    '```',
    '```',
    'HTTP/1.1 200',
    '```',
  ].join('\n');
  assert.deepEqual(
    unclassified('p.md', docBlocks(page)).map((s) => s.split(':')[1]),
    ['1', '4', '7', '10'],
  );
});

describe('docs shell examples run against the demo broker', { timeout: 600_000 }, () => {
  const runnable = pages
    .map(({ path, blocks }) => ({ path, blocks: blocks.filter((b) => SHELL.has(b.lang) && b.words.has('run')) }))
    .filter((p) => p.blocks.length > 0);
  const ROOT = fileURLToPath(new URL('../', import.meta.url));
  let checkout: string;
  let broker: ChildProcess | undefined;
  let url: string;

  before(async () => {
    checkout = mkdtempSync(join(tmpdir(), 'mandate-docs-'));
    for (const entry of ['src', 'node_modules', 'examples', 'policies', 'console', 'tsconfig.json', 'docs']) {
      symlinkSync(join(ROOT, entry), join(checkout, entry));
    }
    // The CLI runs as compiled JavaScript, as the published `mandate` bin does: under tsx every
    // `npm run -s mandate -- …` line paid ~1 s of TypeScript loading. One build (the package's own
    // tsconfig.build.json, without the type check `npm run typecheck` already does) into the
    // scratch checkout's dist/; its package.json runs `tsx src/X.ts` scripts as `node dist/X.js`.
    execFileSync(
      process.execPath,
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        join(ROOT, 'tsconfig.build.json'),
        '--outDir',
        join(checkout, 'dist'),
        '--declaration',
        'false',
        '--noCheck',
      ],
      { cwd: ROOT, stdio: 'pipe', timeout: 180_000 },
    );
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    for (const [name, script] of Object.entries(pkg.scripts)) {
      pkg.scripts[name] = script.replace(/\btsx src\/(\S+)\.ts\b/g, 'node dist/$1.js');
    }
    assert.equal(pkg.scripts.mandate, 'node dist/cli/main.js');
    writeFileSync(join(checkout, 'package.json'), JSON.stringify(pkg, null, 2));
    // Examples written for an installed broker call `mandate …`: the package's bin, on the PATH.
    mkdirSync(join(checkout, 'path'));
    mkdirSync(join(checkout, 'bin'));
    copyFileSync(join(ROOT, 'bin', 'mandate.js'), join(checkout, 'bin', 'mandate.js'));
    writeFileSync(
      join(checkout, 'path', 'mandate'),
      `#!/bin/sh\nexec "${process.execPath}" "${join(checkout, 'bin', 'mandate.js')}" "$@"\n`,
      { mode: 0o755 },
    );
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    broker = spawn(process.execPath, ['dist/cli/main.js', 'serve', '--demo', '--port', String(port)], {
      cwd: checkout,
      env: { PATH: process.env.PATH ?? '', HOME: checkout },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      broker?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('operator token')) resolve();
      });
      broker?.stderr?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      broker?.on('exit', (code) => reject(new Error(`the demo broker exited ${code}: ${out}`)));
    });
  });

  after(async () => {
    if (broker !== undefined && broker.exitCode === null) {
      const exited = new Promise((r) => broker?.on('exit', r));
      broker.kill('SIGTERM');
      await exited;
    }
    rmSync(checkout, { recursive: true, force: true });
  });

  for (const { path, blocks } of runnable) {
    test(`${path}: ${blocks.length} shell example(s) run as written`, async () => {
      const script = [
        'set -euo pipefail',
        // The examples use curl -s; an HTTP error must still fail the example.
        'curl() { command curl --fail-with-body --show-error "$@"; }',
        ...blocks.flatMap((b) => [`echo "::docs-block ${path}:${b.line}" >&2`, b.body.replaceAll('http://127.0.0.1:8080', url)]),
      ].join('\n');
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn('bash', ['-c', script], {
          cwd: checkout,
          env: {
            PATH: `${join(checkout, 'path')}:${process.env.PATH ?? ''}`,
            HOME: checkout,
            MANDATE_URL: url,
            npm_config_update_notifier: 'false',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          out += d.toString();
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
      const failedAt = [...r.out.matchAll(/::docs-block (\S+)/g)].pop()?.[1];
      assert.equal(r.code, 0, `the example at ${failedAt} failed:\n${r.out.slice(-4000)}`);
    });
  }
});
