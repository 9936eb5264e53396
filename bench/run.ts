// Runs every benchmark (bench/*.bench.ts) one after another; each prints its own result lines.
// `npm run bench -- NAME` runs only benchmarks whose file name contains NAME; opt-in ones (soak) only so.
// Arguments after NAME go to each benchmark run (`npm run bench -- gateway --seconds 5`).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const dir = new URL('.', import.meta.url).pathname;
/** Long benchmarks that run only when named (`npm run bench -- soak`): the soak takes 10 minutes. */
const OPT_IN = new Set(['soak.bench.ts']);
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts') && (filter === undefined ? !OPT_IN.has(f) : f.includes(filter)))
  .sort();
let failed = 0;
for (const file of files) {
  process.stdout.write(`\n== ${file}\n`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${file}`, ...process.argv.slice(3)], {
    stdio: 'inherit',
    env: process.env,
  });
  if (res.status !== 0) failed++;
}
process.stdout.write(`\nbenchmarks: ${files.length - failed} ran, ${failed} failed\n`);
process.exitCode = failed > 0 ? 1 : 0;
