// The Cedar project's own integration tests (../shared/vectors/cedar, beside the repository):
// the handwritten tests and the ~7,800 generated corpus tests, unpacked into a temporary folder.
// For every test the compiled evaluator accepts, decision, reasons and erroring policies must equal
// Cedar's; how many it accepts is printed. Absent vectors skip the test, except under CI=true.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CEDAR_VECTORS, corpusFiles, emptyReport, handwrittenFiles, runVectorFile, summary, vectorsPresent } from './cedar-vectors.js';

const present = vectorsPresent();
if (!present && process.env.CI === 'true') throw new Error(`Cedar integration vectors missing at ${CEDAR_VECTORS} (required under CI)`);
const skip = present ? false : `Cedar integration vectors not found at ${CEDAR_VECTORS}; skipped`;

describe('Cedar integration tests: the compiled evaluator agrees with Cedar', { skip }, () => {
  it('handwritten tests (tests/, sample-data/): all accepted, all agree', () => {
    const r = emptyReport();
    for (const f of handwrittenFiles()) runVectorFile(CEDAR_VECTORS, f, r);
    process.stdout.write(`# ${summary('handwritten', r).replaceAll('\n', '\n# ')}\n`);
    assert.deepEqual(r.mismatches, []);
    assert.equal(r.accepted, r.tests);
    assert.ok(r.compared >= 70, `only ${r.compared} requests compared`);
  });

  const tmp = present ? mkdtempSync(join(tmpdir(), 'mandate-cedar-corpus-')) : '';
  after(() => {
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  it('the generated corpus (corpus-tests.tar.gz, unpacked here): every accepted test agrees', () => {
    execFileSync('tar', ['xzf', join(CEDAR_VECTORS, 'corpus-tests.tar.gz'), '-C', tmp]);
    const r = emptyReport();
    for (const f of corpusFiles(tmp)) runVectorFile(tmp, f, r);
    process.stdout.write(`# ${summary('corpus', r).replaceAll('\n', '\n# ')}\n`);
    assert.deepEqual(r.mismatches.slice(0, 5), []);
    assert.ok(r.tests > 7000, `only ${r.tests} corpus tests found`);
    // It accepts (compiles) most sets, and evaluates most of their requests itself.
    assert.ok(r.accepted / r.tests > 0.9, `accepted only ${r.accepted} of ${r.tests}`);
    assert.ok(r.compared > 50_000, `only ${r.compared} requests compared`);
  });
});
