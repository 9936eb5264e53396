#!/usr/bin/env node
// Entry point of the `mandate` command: runs the compiled CLI in dist/ (`npm run build`).
// From a source checkout without a build, `npm run mandate -- <args>` runs the TypeScript sources.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Answered here: loading the whole CLI (every command's modules) costs most of a second.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  const main = new URL('../dist/cli/main.js', import.meta.url);
  try {
    await import(main.href);
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(main.pathname)) {
      process.stderr.write('mandate: the compiled CLI (dist/cli/main.js) is missing: run `npm run build` first\n');
      process.exitCode = 1;
    } else {
      throw err;
    }
  }
}
