// Builds the console once when a test needs console/dist and it is missing (npm test builds it first).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function ensureConsoleBuilt(): void {
  if (existsSync(join(ROOT, 'console/dist/index.html'))) return;
  const built = spawnSync('npm', ['run', 'build:console'], { cwd: ROOT, stdio: 'inherit' });
  assert.equal(built.status, 0, 'the console must build');
}
