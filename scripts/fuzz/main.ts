// `npm run fuzz`: starts a broker on loopback and sends generated and mutated inputs to the token
// endpoint, AuthZEN, /mcp and the admin API; prints counts per target, the first examples of each
// finding, and `RESULT fuzz inputs=… crashes=… leaks=… allows=… duration_s=…`. Exit code 1 on findings.
//
//   npm run fuzz -- --inputs 1000000 --seed 7 --concurrency 32     (or FUZZ_INPUTS, FUZZ_SEED)
//   npm run fuzz -- --seed 7 --index 1234                          (replay input 1234 of seed 7)
import { parseArgs } from 'node:util';
import { replay, runFuzz } from './campaign.js';
import { printSummary } from './report.js';

const { values } = parseArgs({
  options: {
    inputs: { type: 'string' },
    seed: { type: 'string' },
    concurrency: { type: 'string' },
    examples: { type: 'string' },
    index: { type: 'string' },
  },
});
const inputs = Number(values.inputs ?? process.env.FUZZ_INPUTS ?? 1_000_000);
const seed = Number(values.seed ?? process.env.FUZZ_SEED ?? 1);
const concurrency = Number(values.concurrency ?? process.env.FUZZ_CONCURRENCY ?? 32);
if (!Number.isSafeInteger(inputs) || inputs < 1 || !Number.isSafeInteger(seed) || !Number.isSafeInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: npm run fuzz -- [--inputs N] [--seed S] [--concurrency C] [--examples K]\n');
  process.exit(2);
}
if (values.index !== undefined) {
  process.stdout.write(`${await replay(seed, Number(values.index))}\n`);
  process.exit(0);
}
process.stdout.write(`fuzz: ${inputs} inputs, seed ${seed}, ${concurrency} in flight\n`);
const summary = await runFuzz({
  inputs,
  seed,
  concurrency,
  examples: Number(values.examples ?? 3),
  progress: (line) => process.stdout.write(`${line}\n`),
});
printSummary(summary, (line) => process.stdout.write(`${line}\n`));
process.exitCode = summary.crashes + summary.leaks + summary.allows > 0 ? 1 : 0;
