// Runs every benchmark (bench/*.bench.ts) one after another; each prints its own result lines.
// `npm run bench -- NAME` runs only benchmarks whose file name contains NAME.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const dir = new URL('.', import.meta.url).pathname;
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts') && (filter === undefined || f.includes(filter)))
  .sort();
let failed = 0;
for (const file of files) {
  process.stdout.write(`\n== ${file}\n`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${file}`], { stdio: 'inherit', env: process.env });
  if (res.status !== 0) failed++;
}
process.stdout.write(`\nbenchmarks: ${files.length - failed} ran, ${failed} failed\n`);
process.exitCode = failed > 0 ? 1 : 0;
