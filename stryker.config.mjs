// Mutation testing of the security modules (`npm run mutate`, or one module:
// `npm run mutate -- --mutate src/oauth/dpop.ts`). Each module is scored by its own fast, focused
// tests only: the command below runs just the test files mapped to the modules being mutated.
// See docs/testing.md.
import { existsSync } from 'node:fs';

/** Security module → the focused test files that must kill its mutants. */
export const modules = {
  // (test/mandates/scope.property.test.ts is left out: 14 s per run is too slow per mutant.)
  'src/scope/scope.ts': ['test/mandates/scope.test.ts', 'test/mandates/path-constraints.test.ts', 'test/mutation-hardening/scope.test.ts'],
  'src/scope/path.ts': ['test/mandates/path-constraints.test.ts', 'test/mandates/scope.test.ts', 'test/mutation-hardening/scope.test.ts'],
  'src/identity/spiffe-id.ts': ['test/identity/spiffe-id.test.ts', 'test/mutation-hardening/spiffe-id.test.ts'],
  'src/identity/proofs.ts': ['test/mutation-hardening/proofs.test.ts'],
  'src/approvals/service.ts': ['test/mutation-hardening/approvals.test.ts'],
  'src/approvals/call-hash.ts': ['test/mutation-hardening/approvals.test.ts'],
  'src/oauth/dpop.ts': ['test/mutation-hardening/dpop.test.ts'],
  'src/oauth/verify.ts': ['test/mutation-hardening/access-token.test.ts'],
  'src/oauth/access-token.ts': ['test/mutation-hardening/access-token.test.ts'],
  'src/http/admin-policy.ts': ['test/mutation-hardening/admin-policy.test.ts'],
  'src/http/route-access.ts': ['test/mutation-hardening/admin-policy.test.ts'],
};

/** The modules named by `--mutate a,b` on the command line (Stryker reads the same flag), else all. */
const all = Object.keys(modules).filter((m) => existsSync(m));

function selected() {
  const i = process.argv.indexOf('--mutate');
  const arg = i === -1 ? undefined : process.argv[i + 1];
  if (arg === undefined) return all;
  return arg.split(',').map((s) => s.trim().replace(/^\.\//, '').replace(/:.*$/, ''));
}

const chosen = selected();
// MUTATE_TESTS overrides the mapped tests (used to measure a module against other test files).
const tests = process.env.MUTATE_TESTS?.split(/[\s,]+/).filter(Boolean) ?? [
  ...new Set(chosen.flatMap((m) => modules[m] ?? []).filter((t) => existsSync(t))),
];
if (tests.length === 0) throw new Error(`no focused tests are mapped to ${chosen.join(', ')} (see stryker.config.mjs)`);

const slug =
  chosen.length === all.length
    ? 'all'
    : chosen
        .map((m) =>
          m
            .replace(/^src\//, '')
            .replace(/\.ts$/, '')
            .replace(/\//g, '-'),
        )
        .join('+');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'command',
  // One process per mutant (scripts/run-tests.mjs imports every file) instead of one per test file.
  commandRunner: { command: `node --import tsx --test-reporter=dot scripts/run-tests.mjs ${tests.join(' ')}` },
  coverageAnalysis: 'off',
  mutate: chosen,
  // The machine is shared: two workers at most.
  concurrency: 2,
  timeoutMS: 8_000,
  // Incremental: reruns reuse results while the mutated module is unchanged. The command runner
  // cannot see which tests changed, so after editing tests run with `-- --force`.
  incremental: true,
  // One incremental file per selection, so running one module does not forget the others' results.
  incrementalFile: `reports/stryker-incremental-${slug}.json`,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: `reports/mutation/${slug}.json` },
  thresholds: { high: 90, low: 80, break: null },
  ignorePatterns: ['/data', '/dist', '/console/dist', '/test-artifacts', '/reports', '/bench', '*.db', '*.db-wal', '*.db-shm'],
  tempDirName: '.stryker-tmp',
  // TypeScript 7 has no JavaScript API for Stryker's tsconfig rewriter; the sandbox sits inside the
  // project, so tsconfig.json needs no rewriting: point the option at a file that does not exist.
  tsconfigFile: 'tsconfig.stryker-unused.json',
  cleanTempDir: 'always',
};
