// The package as npm ships it: built once here from the current sources, then checked the way a
// user meets it — `npm pack` content, the compiled bin and SDK under plain node (no tsx), the
// declared dependencies against what the compiled code imports, engines against the dependencies.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import semver from 'semver';

const ROOT = join(import.meta.dirname, '../..');
const DIST = join(ROOT, 'dist');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  engines: { node: string };
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  dependencies: Record<string, string>;
};
/** Environment of a plain node child: no loader inherited through NODE_OPTIONS. */
const plainEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
};

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .map((f) => join(dir, f));
}

/** The package a module specifier names (`@scope/name/sub` → `@scope/name`), or undefined for node: builtins. */
function packageOf(spec: string): string | undefined {
  if (spec.startsWith('node:') || builtinModules.includes(spec)) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

describe('package', () => {
  let files: string[];
  let work: string;

  before(() => {
    execFileSync('npm', ['run', '--silent', 'build:broker'], { cwd: ROOT, stdio: 'pipe', timeout: 180_000 });
    if (!existsSync(join(ROOT, 'console/dist/index.html'))) {
      execFileSync('npm', ['run', '--silent', 'build:console'], { cwd: ROOT, stdio: 'pipe', timeout: 180_000 });
    }
    // --ignore-scripts: prepack would rebuild what was just built.
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    files = (JSON.parse(out) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
    work = mkdtempSync(join(tmpdir(), 'mandate-package-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('ships the compiled broker, the built console, the SDK with types, the policies and the docs', () => {
    for (const f of [
      'bin/mandate.js',
      'dist/cli/main.js',
      'dist/broker.js',
      'dist/sdk/index.js',
      'dist/sdk/index.d.ts',
      'dist/demo/helpdesk-server.js',
      'console/dist/index.html',
      'policies/mandate.cedarschema',
      'README.md',
      'docs/deployment.md',
    ]) {
      assert.ok(files.includes(f), `${f} is not in the package`);
    }
    assert.ok(
      files.some((f) => f.startsWith('console/dist/assets/') && f.endsWith('.js')),
      'the console bundle is not in the package',
    );
    assert.ok(
      files.some((f) => f.startsWith('dist/store/migrations/')),
      'the migrations are not in the package',
    );
  });

  it('ships no tests, benchmarks, TypeScript sources or screenshots', () => {
    const unwanted = files.filter(
      (f) =>
        /(^|\/)test\//.test(f) ||
        /\.test\.[cm]?[jt]s$/.test(f) ||
        f.startsWith('bench/') ||
        f.startsWith('src/') ||
        f.startsWith('scripts/') ||
        f.startsWith('docs/img/') ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')),
    );
    assert.deepEqual(unwanted, []);
    assert.ok(files.length < 400, `${files.length} files`);
  });

  it('ships every file the bin and the exports name', () => {
    const named = [
      ...Object.values(pkg.bin),
      ...Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e))),
    ];
    for (const f of named) assert.ok(files.includes(f.replace(/^\.\//, '')), `${f} is named in package.json but not shipped`);
  });

  it('ships every declaration file the SDK types reach, and no other', () => {
    const reached = new Set<string>();
    const queue = ['dist/sdk/index.d.ts'];
    for (let f = queue.pop(); f !== undefined; f = queue.pop()) {
      if (reached.has(f)) continue;
      reached.add(f);
      for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(/(?:from\s+|import\()['"](\.[^'"]+)\.js['"]/g)) {
        queue.push(relative(ROOT, join(ROOT, dirname(f), `${m[1]}.d.ts`)));
      }
    }
    assert.deepEqual(files.filter((f) => f.endsWith('.d.ts')).sort(), [...reached].sort());
  });

  it('mandate/sdk imports under plain node, and its declarations type-check a consumer', () => {
    const app = join(work, 'app');
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    symlinkSync(ROOT, join(app, 'node_modules', 'mandate'), 'dir');
    writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(app, 'main.js'),
      "import { Mandate, MandateRefusal } from 'mandate/sdk';\nprocess.stdout.write(typeof Mandate + ' ' + typeof MandateRefusal);\n",
    );
    const run = spawnSync(process.execPath, ['main.js'], { cwd: app, env: plainEnv(), encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.stderr, '');
    assert.equal(run.stdout, 'function function');

    writeFileSync(
      join(app, 'consumer.ts'),
      "import { Mandate } from 'mandate/sdk';\nexport const open: typeof Mandate.open = Mandate.open;\n// @ts-expect-error: the SDK has no such export\nimport { NoSuchThing } from 'mandate/sdk';\nexport { NoSuchThing };\n",
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2023',
          strict: true,
          noEmit: true,
          // A Node consumer has @types/node; the SDK's own dependencies' declarations use it.
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(tsc.stdout + tsc.stderr, '');
    assert.equal(tsc.status, 0);
  });

  it('the bin runs the compiled CLI under plain node, and answers --version without loading it', () => {
    const bin = join(ROOT, pkg.bin.mandate ?? 'bin/mandate.js');
    const version = spawnSync(process.execPath, [bin, '--version'], { env: plainEnv(), encoding: 'utf8', timeout: 30_000 });
    assert.equal(version.stdout, `${pkg.version}\n`);
    const help = spawnSync(process.execPath, [bin, 'audit', '--help'], { env: plainEnv(), encoding: 'utf8', timeout: 60_000 });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /verify/);
    for (const f of jsFiles(DIST)) {
      assert.doesNotMatch(readFileSync(f, 'utf8'), /(from|import\()\s*['"]tsx/, `${relative(ROOT, f)} imports tsx`);
    }
  });

  it('finds the files it reads at run time from dist/ as from src/', async () => {
    const source = (await import(join(DIST, 'policy/source.js'))) as typeof import('../../src/policy/source.js');
    const consoleRoutes = (await import(join(DIST, 'http/routes/console.js'))) as typeof import('../../src/http/routes/console.js');
    const { version } = (await import(join(DIST, 'version.js'))) as typeof import('../../src/version.js');
    assert.equal(source.SHIPPED_SCHEMA, join(ROOT, 'policies/mandate.cedarschema'));
    assert.equal(source.DEMO_POLICY_DIR, join(ROOT, 'policies/demo/'));
    assert.equal(consoleRoutes.CONSOLE_DIST, join(ROOT, 'console/dist/'));
    assert.equal(version, pkg.version);
    for (const f of [source.SHIPPED_SCHEMA, source.DEMO_POLICY_DIR, join(consoleRoutes.CONSOLE_DIST, 'index.html')]) {
      assert.ok(
        files.some((p) => join(ROOT, p).startsWith(f)),
        `${relative(ROOT, f)} is read at run time but not shipped`,
      );
    }
  });

  it('keeps the V8 flag module imported before cedar-wasm in the compiled engines', () => {
    for (const f of ['policy/cedar/engine.js', 'policy/compiled/engine.js']) {
      const js = readFileSync(join(DIST, f), 'utf8');
      const flag = js.search(/import ['"][./]*(cedar\/)?v8-wasm-inlining\.js['"]/);
      const cedar = js.search(/from ['"]@cedar-policy\/cedar-wasm/);
      assert.ok(flag >= 0 && cedar > flag, `${f}: v8-wasm-inlining must be imported before cedar-wasm`);
    }
  });

  it('runs the compiled demo helpdesk without tsx, as the demo upstream does', async () => {
    const { demoHelpdeskUpstream } = (await import(join(DIST, 'upstreams/index.js'))) as typeof import('../../src/upstreams/index.js');
    const { transport } = demoHelpdeskUpstream('k');
    assert.equal(transport.type, 'stdio');
    if (transport.type !== 'stdio') return;
    assert.deepEqual(transport.args, [join(DIST, 'demo/helpdesk-server.js')]);
    const client = new Client({ name: 'package-test', version: '1' });
    await client.connect(
      new StdioClientTransport({
        command: transport.command,
        args: transport.args ?? [],
        env: { HELPDESK_API_KEY: 'k', PATH: process.env.PATH ?? '' },
        stderr: 'ignore',
      }),
    );
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'search_tickets'));
    } finally {
      await client.close();
    }
  });

  it('declares as dependencies exactly the packages the compiled code imports', () => {
    const imported = new Set<string>();
    const spec = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|\brequire(?:\.resolve)?\(\s*)['"]([@\w][\w.@/-]*)['"]/g;
    for (const f of jsFiles(DIST)) {
      for (const m of readFileSync(f, 'utf8').matchAll(spec)) {
        const name = packageOf(m[1] as string);
        if (name !== undefined && name !== pkg.name) imported.add(name);
      }
    }
    assert.deepEqual([...imported].sort(), Object.keys(pkg.dependencies).sort());
  });

  it('declares engines that every runtime dependency accepts', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean; engines?: { node?: string } }>;
    };
    const narrower: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const needs = entry.engines?.node;
      if (path === '' || entry.dev || entry.devOptional || needs === undefined) continue;
      if (!semver.subset(pkg.engines.node, needs)) narrower.push(`${path} needs node ${needs}`);
    }
    assert.deepEqual(narrower, []);
    assert.ok(semver.satisfies(process.version, pkg.engines.node), `this Node (${process.version}) is outside engines`);
  });
});
