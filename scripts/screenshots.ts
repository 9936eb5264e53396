// Regenerates the console screenshots in docs/img/ (npm run docs:screenshots): builds the console,
// then runs the console's end-to-end test (a real demo broker, the real demo agent, headless
// Chromium), which writes the pages the docs show as docs/img/console-NAME.png. The pictures are
// therefore of states the test has just asserted, never staged by hand.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OUT = join(ROOT, 'docs/img');

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env });
  if (r.status !== 0) {
    process.stderr.write(`screenshots: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
};

const started = Date.now();
run('npm', ['run', '-s', 'build:console']);
run(process.execPath, ['--import', 'tsx', '--test', 'test/e2e/console.test.ts'], { ...process.env, MANDATE_SCREENSHOTS_DIR: OUT });
const written = readdirSync(OUT).filter((f) => f.startsWith('console-') && statSync(join(OUT, f)).mtimeMs >= started);
if (written.length === 0) {
  process.stderr.write('screenshots: the test wrote no screenshot (is Chromium installed? MANDATE_CHROMIUM)\n');
  process.exit(1);
}
for (const f of written.sort()) process.stdout.write(`docs/img/${f}\n`);
