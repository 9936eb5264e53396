// The `mandate` CLI run from the TypeScript sources through tsx, for tests that spawn it: they
// exercise src/ as it is now, never a stale dist/ (bin/mandate.js runs the compiled build).
import { register } from 'tsx/esm/api';

register();
await import('../../src/cli/main.ts');
