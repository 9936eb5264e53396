// src/cli/main.ts loads only the module of the command a line runs: its table must name exactly
// the top-level commands each module registers, or a command would be missing when run directly.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { COMMAND_MODULES } from '../../src/cli/command-modules.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('each module registers exactly the top-level commands the table names for it', async () => {
  for (const m of COMMAND_MODULES) {
    const program = new Command('mandate');
    (await m.load())(program);
    assert.deepEqual(
      program.commands.map((c) => c.name()).sort(),
      [...m.commands].sort(),
      `the module registering ${m.commands.join(', ')}`,
    );
  }
});

test('a command runs with only its module loaded; help and unknown commands see all of them', () => {
  const run = (...args: string[]) =>
    execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
  const help = run('--help');
  for (const name of new Set(COMMAND_MODULES.flatMap((m) => m.commands))) {
    assert.match(help, new RegExp(`^  ${name}\\b`, 'm'), `--help lists ${name}`);
  }
  // Two modules add subcommands to `dev`: both are loaded for it.
  const dev = run('dev', '--help');
  assert.match(dev, /operator-token/);
  assert.match(dev, /svid/);
  assert.match(run('--debug', 'agents', '--help'), /register/);
  assert.throws(
    () => run('agnets'),
    (err: { stderr?: string }) => /unknown command 'agnets'/.test(err.stderr ?? '') && /agents/.test(err.stderr ?? ''),
  );
});
