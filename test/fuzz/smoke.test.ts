// A short fuzz run (scripts/fuzz) as part of the suite: a real broker on loopback gets ~20,000
// generated and mutated inputs on the token endpoint, AuthZEN, /mcp and the admin API; none may
// crash it (5xx, no answer, dead process), leak (stack, path, SQL, secret, token) or be allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzz } from '../../scripts/fuzz/campaign.js';
import { printSummary } from '../../scripts/fuzz/report.js';

const INPUTS = Number(process.env.FUZZ_SMOKE_INPUTS ?? 20_000);

test(`fuzz smoke: ${INPUTS} inputs, no crash, no leak, no allow`, { timeout: 180_000 }, async () => {
  const summary = await runFuzz({ inputs: INPUTS, seed: 20_261_126, concurrency: 32 });
  const lines: string[] = [];
  printSummary(summary, (line) => lines.push(line));
  const report = lines.join('\n');
  assert.equal(summary.inputs, INPUTS, report);
  // The run reached the handlers with valid credentials too, not only the front door.
  for (const target of ['token', 'authzen', 'mcp'] as const) {
    assert.ok((summary.perTarget[target]['2xx'] ?? 0) > 0, `no 2xx at all on ${target}: the fuzz broker is not set up\n${report}`);
  }
  assert.equal(summary.brokerDied, undefined, report);
  assert.deepEqual({ crashes: summary.crashes, leaks: summary.leaks, allows: summary.allows }, { crashes: 0, leaks: 0, allows: 0 }, report);
});
