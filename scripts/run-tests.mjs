// Runs node:test files in this one process (no child process per file, unlike `node --test`), so a
// mutation-testing run pays the start-up cost once per mutant. Exit code 1 when any test fails.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

for (const file of process.argv.slice(2)) await import(pathToFileURL(resolve(file)).href);
