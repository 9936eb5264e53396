// `mandate dev svid` and `mandate agents` / `mandate mandates` as a user runs them, against a
// broker listening on 127.0.0.1 that shares the demo data folder.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import { TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { mandateRequest, type Running, startBroker } from './helpers.js';

const BIN = new URL('../helpers/mandate-source.js', import.meta.url).pathname;
let b: Running;
let configFile: string;
let admin: string;

/** Runs the CLI asynchronously: the broker answers from this same process. */
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
  configFile = join(b.dataDir, 'mandate.yaml');
  const port = new URL(b.base).port;
  writeFileSync(configFile, `mode: demo\ndataDir: ${b.dataDir}\nserver:\n  port: ${port}\n`);
});
after(async () => b?.close());

test('mandate dev svid mints a JWT-SVID the broker accepts', async () => {
  const r = await run(['dev', 'svid', '--config', configFile, '--spiffe-id', 'spiffe://demo.mandate.local/agent/support-triage']);
  assert.equal(r.code, 0, r.stderr);
  const svid = r.stdout.trim();
  const claims = decodeJwt(svid);
  assert.equal(claims.sub, 'spiffe://demo.mandate.local/agent/support-triage');
  assert.equal(claims.aud, b.base);
  const res = await b.exchange({
    subject_token: svid,
    subject_token_type: TOKEN_TYPE.jwt,
    authorization_details: JSON.stringify([mandateRequest()]),
  });
  assert.equal(decodeJwt(res.access_token).client_id, 'support-triage');
});

test('mandate dev svid refuses IDs outside the development trust domain', async () => {
  const r = await run(['dev', 'svid', '--config', configFile, '--spiffe-id', 'spiffe://prod.example.org/agent/x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^mandate: ERR_VALIDATION: .*demo\.mandate\.local/);
});

test('mandate agents register, quarantine and list; mandates revoke', async () => {
  const reg = await run([
    'agents',
    'register',
    'cli-agent',
    '--owner',
    'bob',
    '--environment',
    'production',
    '--spiffe-id',
    'spiffe://demo.mandate.local/agent/cli-agent',
    '--tool',
    'helpdesk.search_tickets',
    '--task-type',
    'support.refund',
  ]);
  assert.equal(reg.code, 0, reg.stderr);
  const opened = await b.open(
    'spiffe://demo.mandate.local/agent/cli-agent',
    mandateRequest({ tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false }),
  );
  const mandateId = decodeJwt(opened.access_token).mandate as string;
  const revoked = await run(['mandates', 'revoke', mandateId, '--reason', 'test']);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal((JSON.parse(revoked.stdout) as { status: string }).status, 'revoked');
  assert.equal((await run(['agents', 'quarantine', 'cli-agent'])).code, 0);
  const list = JSON.parse((await run(['agents', 'list', '--json'])).stdout) as { items: { principal: { id: string; status: string } }[] };
  assert.equal(list.items.find((a) => a.principal.id === 'cli-agent')?.principal.status, 'quarantined');
  const noOwner = await run(['agents', 'register', 'x', '--environment', 'production', '--spiffe-id', 'spiffe://demo.mandate.local/x']);
  assert.equal(noOwner.code, 1);
});
