// Hand-made mutants of the security modules: the changes StrykerJS does not make (it has no
// numeric-literal or dropped-`await` mutator, and never widens a role list to '*'). Each mutant is
// applied to a copy of the sources in a temporary sandbox (never to the working tree, which other
// people use) and must make the module's focused tests fail. `npm run mutate:hand [-- name-filter]`.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { permissions } from '../src/http/admin-policy.js';

// The same module → focused tests table Stryker uses (a plain .mjs file, so imported untyped).
const strykerConfig: string = '../stryker.config.mjs';
const { modules } = (await import(strykerConfig)) as { modules: Record<string, string[]> };

interface HandMutant {
  readonly name: string;
  readonly file: string;
  readonly from: string;
  readonly to: string;
}

const m = (name: string, file: string, from: string, to: string): HandMutant => ({ name, file, from, to });

const DPOP = 'src/oauth/dpop.ts';
const VERIFY = 'src/oauth/verify.ts';
const PROOFS = 'src/identity/proofs.ts';
const SPIFFE = 'src/identity/spiffe-id.ts';
const APPROVALS = 'src/approvals/service.ts';
const POLICY = 'src/http/admin-policy.ts';
const GATE = 'src/http/route-access.ts';

const mutants: HandMutant[] = [
  // Constants: clock tolerances, maximum ages, windows, bounds.
  m('dpop: nonce window 5 min → 10 min', DPOP, 'const NONCE_WINDOW_MS = 5 * 60_000;', 'const NONCE_WINDOW_MS = 10 * 60_000;'),
  m('dpop: jti minimum 8 → 7', DPOP, 'jti.length < 8', 'jti.length < 7'),
  m('dpop: jti maximum 256 → 257', DPOP, 'jti.length > 256', 'jti.length > 257'),
  m('dpop: iat future leeway doubled', DPOP, 'iat > nowS + this.#o.leewaySeconds', 'iat > nowS + 2 * this.#o.leewaySeconds'),
  m(
    'dpop: max age without leeway',
    DPOP,
    'iat < nowS - this.#o.maxAgeSeconds - this.#o.leewaySeconds',
    'iat < nowS - this.#o.maxAgeSeconds',
  ),
  m('dpop: jose clock tolerance 0', DPOP, 'clockTolerance: this.#o.leewaySeconds,', 'clockTolerance: 0,'),
  m('dpop: replay entry lifetime one leeway shorter', DPOP, '2 * this.#o.leewaySeconds) * 1000', 'this.#o.leewaySeconds) * 1000'),
  m('dpop: nonce mac 22 → 21 chars', DPOP, ".digest('base64url').slice(0, 22)", ".digest('base64url').slice(0, 21)"),
  m('verify: key reload every 10 s → 1 s', VERIFY, 'const KEY_RELOAD_MS = 10_000;', 'const KEY_RELOAD_MS = 1_000;'),
  m('verify: jose clock tolerance 0', VERIFY, 'clockTolerance: this.#o.leewaySeconds,', 'clockTolerance: 0,'),
  m('verify: cached expiry without leeway', VERIFY, 'cached.exp + this.#o.leewaySeconds > nowS', 'cached.exp > nowS'),
  m('verify: resolution expiry without leeway', VERIFY, 'now - this.#o.leewaySeconds * 1000', 'now'),
  m('proofs: jose clock tolerance 0 (SVID)', PROOFS, 'clockTolerance: this.#o.leewaySeconds,', 'clockTolerance: 0,'),
  m(
    'proofs: SVID cache kept one leeway longer',
    PROOFS,
    'cached.expiresAt + this.#o.leewaySeconds > now',
    'cached.expiresAt + 2 * this.#o.leewaySeconds > now',
  ),
  m('proofs: proof id 22 → 16 chars', PROOFS, 'hash.slice(0, 22)', 'hash.slice(0, 16)'),
  m('spiffe-id: 2048 → 2049 bytes', SPIFFE, 'const MAX_URI_BYTES = 2048;', 'const MAX_URI_BYTES = 2049;'),
  m('spiffe-id: 255 → 256 trust domain', SPIFFE, 'const MAX_TRUST_DOMAIN = 255;', 'const MAX_TRUST_DOMAIN = 256;'),
  m('approvals: list limit cap 1000 → 2', APPROVALS, 'Math.min(options.limit ?? 100, 1000)', 'Math.min(options.limit ?? 100, 2)'),
  m(
    'scope: a passing within check ends the checks early',
    'src/scope/scope.ts',
    'const why = withinCheck(constraint, value);\n    if (why !== undefined) return why;',
    'return withinCheck(constraint, value);',
  ),
  // Dropped awaits: a promise not awaited lets the request go on before the check or the write.
  m(
    'dpop: replay consume not awaited',
    DPOP,
    'await this.#consume(jkt, jti, iat, fail);',
    'void this.#consume(jkt, jti, iat, fail).catch(() => {});',
  ),
  m('verify: DPoP proof not awaited', VERIFY, 'await this.#o.dpop.verify(', 'void this.#o.dpop.verify('),
  m(
    'approvals: mandate-active check not awaited',
    APPROVALS,
    '!(await this.o.isMandateActive(approval.mandateId))',
    '!this.o.isMandateActive(approval.mandateId)',
  ),
  m(
    'approvals: decided audit not awaited',
    APPROVALS,
    "await this.o.audit.append({\n      type: 'approval.decided',",
    "void this.o.audit.append({\n      type: 'approval.decided',",
  ),
  m(
    'approvals: actor type not awaited',
    APPROVALS,
    'const actorType = await this.o.actorTypeOf(approver.id);',
    'const actorType = this.o.actorTypeOf(approver.id) as unknown as string;',
  ),
  m(
    'route gate: operator authentication not awaited',
    GATE,
    'req.operator = await broker.authenticateOperator(',
    'req.operator = void broker.authenticateOperator(',
  ),
  // The permission table: widening any non-public permission to every operator.
  ...Object.entries(permissions)
    .filter(([, roles]) => !(roles as readonly string[]).includes('*'))
    .map(([perm, roles]) =>
      m(
        `admin-policy: ${perm} widened to every operator`,
        POLICY,
        `'${perm}': ${JSON.stringify(roles).replaceAll('"', "'").replaceAll(',', ', ')}`,
        `'${perm}': ['*']`,
      ),
    ),
];

const filter = process.argv[2];
const root = resolve(import.meta.dirname, '..');
const sandbox = mkdtempSync(join(tmpdir(), 'mandate-hand-mutants-'));
for (const dir of ['src', 'test', 'scripts']) cpSync(join(root, dir), join(sandbox, dir), { recursive: true });
for (const f of ['package.json', 'tsconfig.json', 'stryker.config.mjs']) cpSync(join(root, f), join(sandbox, f));
symlinkSync(join(root, 'node_modules'), join(sandbox, 'node_modules'));

const results: { name: string; outcome: 'killed' | 'SURVIVED' | 'stale' }[] = [];
const runTests = (tests: readonly string[]) =>
  spawnSync('node', ['--import', 'tsx', '--test-reporter=dot', 'scripts/run-tests.mjs', ...tests], {
    cwd: sandbox,
    encoding: 'utf8',
    timeout: 180_000,
  });
const selectedMutants = mutants.filter((x) => filter === undefined || x.name.includes(filter));
try {
  // Baseline: the unmutated sandbox must pass every test set used, or "killed" would mean nothing.
  for (const file of new Set(selectedMutants.map((x) => x.file))) {
    const baseline = runTests(modules[file] ?? []);
    if (baseline.status !== 0) throw new Error(`the tests of ${file} fail without any mutant:\n${baseline.stdout}${baseline.stderr}`);
  }
  for (const mutant of selectedMutants) {
    const path = join(sandbox, mutant.file);
    const original = readFileSync(path, 'utf8');
    if (original.split(mutant.from).length !== 2) {
      results.push({ name: mutant.name, outcome: 'stale' });
      continue;
    }
    writeFileSync(path, original.replace(mutant.from, mutant.to));
    const tests = modules[mutant.file] ?? [];
    const run = runTests(tests);
    writeFileSync(path, original);
    results.push({ name: mutant.name, outcome: run.status === 0 ? 'SURVIVED' : 'killed' });
    process.stdout.write(`${results.at(-1)?.outcome.padEnd(8)} ${mutant.name}\n`);
  }
} finally {
  rmSync(sandbox, { recursive: true, force: true });
}
const survived = results.filter((r) => r.outcome !== 'killed');
process.stdout.write(`\n${results.length - survived.length}/${results.length} hand-made mutants killed\n`);
for (const r of survived) process.stdout.write(`${r.outcome}: ${r.name}\n`);
process.exitCode = survived.length === 0 ? 0 : 1;
