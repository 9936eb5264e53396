// `mandate agents register --templates` and `agents update --templates` as a user runs them,
// against a broker listening on 127.0.0.1; then a client-credentials request names the template.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { assertionParams, mandateOf, tokenRequest } from './grant-helpers.js';
import { type Running, startBroker } from './helpers.js';

const BIN = new URL('../helpers/mandate-source.js', import.meta.url).pathname;
const SPIFFE_ID = 'spiffe://demo.mandate.local/agent/cli-templated';
let b: Running;
let admin: string;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: b.dataDir,
        env: { PATH: process.env.PATH ?? '', HOME: b.dataDir, MANDATE_URL: b.base, MANDATE_TOKEN: admin },
        timeout: 30_000,
      },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr }),
    );
  });
}

before(async () => {
  b = await startBroker();
  admin = await b.operatorToken('alice');
});
after(async () => b?.close());

test('register with --templates @file, update with inline JSON, refuse bad JSON; the template opens a mandate', async () => {
  const file = join(b.dataDir, 'templates.json');
  writeFileSync(
    file,
    JSON.stringify({
      triage: { purpose: 'Triage from the CLI', taskType: 'support.triage', ttlSeconds: 300, tools: [{ tool: 'helpdesk.search_tickets' }] },
    }),
  );
  const reg = await run([
    'agents',
    'register',
    'cli-templated',
    '--owner',
    'bob',
    '--environment',
    'production',
    '--spiffe-id',
    SPIFFE_ID,
    '--tool',
    'helpdesk.search_tickets',
    '--templates',
    `@${file}`,
  ]);
  assert.equal(reg.code, 0, reg.stderr);
  assert.deepEqual(Object.keys((JSON.parse(reg.stdout) as { templates: Record<string, unknown> }).templates), ['triage']);
  const cc = async (scope: string) =>
    tokenRequest(b.base, { grant_type: 'client_credentials', ...assertionParams(await b.svid(SPIFFE_ID)), scope });
  const r = await cc('triage');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await b.broker.mandates.require(mandateOf(r.body.access_token))).purpose, 'Triage from the CLI');

  const upd = await run([
    'agents',
    'update',
    'cli-templated',
    '--templates',
    JSON.stringify({
      default: { purpose: 'Renamed', taskType: 'support.triage', ttlSeconds: 120, tools: [{ tool: 'helpdesk.search_tickets' }] },
    }),
  ]);
  assert.equal(upd.code, 0, upd.stderr);
  assert.equal((await cc('triage')).body.error, 'invalid_scope', 'the templates were replaced');
  assert.equal((await cc('default')).status, 200);

  const bad = await run(['agents', 'update', 'cli-templated', '--templates', '{not json']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ERR_VALIDATION: --templates must be JSON/);
  const invalid = await run(['agents', 'update', 'cli-templated', '--templates', JSON.stringify({ 'has space': {} })]);
  assert.equal(invalid.code, 1, 'the schema refuses a name that is not one scope token');
});
