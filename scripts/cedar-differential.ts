// `npm run -s cedar:differential`: the full differential check of the compiled policy engine.
// 1. Every Cedar integration test (../shared/vectors/cedar: handwritten + the corpus, unpacked into a
//    temporary folder): decision, reasons and erroring policies equal Cedar's for every test accepted.
// 2. ≥ 100,000 generated requests over Mandate's schema and shipped policies, and 20,000 over each
//    example, compared with cedar-wasm (decision, determining and erroring policies).
// Exits non-zero on any disagreement. DIFF_RUNS overrides the 100,000.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CEDAR_VECTORS,
  corpusFiles,
  emptyReport,
  handwrittenFiles,
  runVectorFile,
  summary,
  vectorsPresent,
} from '../test/policy/cedar-vectors.js';
import { differential, shippedSets } from '../test/policy/engine-differential.js';

let failed = false;
if (!vectorsPresent()) {
  process.stdout.write(`Cedar integration vectors not found at ${CEDAR_VECTORS}\n`);
  failed = process.env.CI === 'true';
} else {
  const hand = emptyReport();
  for (const f of handwrittenFiles()) runVectorFile(CEDAR_VECTORS, f, hand);
  process.stdout.write(`${summary('handwritten', hand)}\n`);
  const tmp = mkdtempSync(join(tmpdir(), 'mandate-cedar-corpus-'));
  try {
    execFileSync('tar', ['xzf', join(CEDAR_VECTORS, 'corpus-tests.tar.gz'), '-C', tmp]);
    const corpus = emptyReport();
    for (const f of corpusFiles(tmp)) runVectorFile(tmp, f, corpus);
    process.stdout.write(`${summary('corpus', corpus)}\n`);
    for (const m of [...hand.mismatches, ...corpus.mismatches].slice(0, 20)) process.stdout.write(`MISMATCH ${m}\n`);
    failed ||= hand.mismatches.length + corpus.mismatches.length > 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const runs = Number(process.env.DIFF_RUNS ?? 100_000);
for (const [i, set] of shippedSets().entries()) {
  const n = i === 0 ? runs : Math.max(1, Math.round(runs / 5));
  const t = performance.now();
  try {
    const r = differential(set, n, 1000 + i);
    process.stdout.write(
      `${set.name}: ${r.requests} generated requests agree with cedar-wasm (${r.allows} allowed, ${r.withErrors} with erroring policies, ` +
        `${r.delegated} handed to cedar-wasm; engine ${r.engine}) in ${((performance.now() - t) / 1000).toFixed(0)} s\n`,
    );
  } catch (err) {
    failed = true;
    process.stdout.write(`${set.name}: ${(err as Error).message.slice(0, 2000)}\n`);
  }
}
process.stdout.write(failed ? 'RESULT cedar-differential FAILED\n' : 'RESULT cedar-differential ok\n');
process.exitCode = failed ? 1 : 0;
