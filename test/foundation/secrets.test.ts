// Secrets at rest: AES-256-GCM with key ids, rotation, context binding, refusal without a key.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.js';
import { MandateError } from '../../src/errors/index.js';
import { generateMasterKeySpec, parseMasterKeys, resolveSecretBox, SecretBox } from '../../src/secrets/index.js';

const is = (code: string) => (err: unknown) => err instanceof MandateError && err.code === code;

test('seal/open round-trips and the ciphertext does not contain the plaintext', () => {
  const box = new SecretBox(parseMasterKeys(generateMasterKeySpec('k1')));
  const sealed = box.seal('upstream-api-key-123', 'upstream:helpdesk');
  assert.ok(!sealed.includes('upstream-api-key-123'));
  assert.equal(box.open(sealed, 'upstream:helpdesk').toString(), 'upstream-api-key-123');
  assert.notEqual(box.seal('same', 'c'), box.seal('same', 'c'), 'fresh IV per seal');
});

test('a sealed value bound to one context cannot be opened in another, nor after tampering', () => {
  const box = new SecretBox(parseMasterKeys(generateMasterKeySpec()));
  const sealed = box.seal('secret', 'row:1');
  assert.throws(() => box.open(sealed, 'row:2'), is('ERR_SECRET_UNDECRYPTABLE'));
  const parts = sealed.split('.');
  parts[3] = Buffer.from('tampered').toString('base64url');
  assert.throws(() => box.open(parts.join('.'), 'row:1'), is('ERR_SECRET_UNDECRYPTABLE'));
});

test('rotation: a new first key seals, old keys still open, and unknown key ids fail', () => {
  const old = generateMasterKeySpec('old');
  const sealedOld = new SecretBox(parseMasterKeys(old)).seal('v', 'c');
  const rotated = new SecretBox(parseMasterKeys(`${generateMasterKeySpec('new')},${old}`));
  assert.equal(rotated.open(sealedOld, 'c').toString(), 'v');
  assert.equal(rotated.needsReseal(sealedOld), true);
  assert.equal(rotated.needsReseal(rotated.seal('v', 'c')), false);
  const other = new SecretBox(parseMasterKeys(generateMasterKeySpec('other')));
  assert.throws(() => other.open(sealedOld, 'c'), is('ERR_SECRET_UNDECRYPTABLE'));
});

test('malformed master keys are refused without echoing key material', () => {
  const material = Buffer.alloc(32, 7).toString('base64');
  for (const bad of ['nokid', 'k1:c2hvcnRrZXk=', `:${material}`, `k 1:${material}`]) {
    assert.throws(
      () => parseMasterKeys(bad),
      (err: unknown) =>
        is('ERR_MASTER_KEY_MALFORMED')(err) &&
        !(err as Error).message.includes(material) &&
        !(err as Error).message.includes('c2hvcnRrZXk'),
    );
  }
  const k = generateMasterKeySpec('dup').split(':')[1];
  assert.throws(() => parseMasterKeys(`dup:${k},dup:${k}`), is('ERR_MASTER_KEY_MALFORMED'));
});

test('production without MANDATE_MASTER_KEY refuses to start; demo generates a 0600 key file', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-secrets-'));
  assert.throws(() => resolveSecretBox(buildConfig({ dataDir })), is('ERR_MASTER_KEY_MISSING'));
  const demo = resolveSecretBox(buildConfig({ mode: 'demo', dataDir }));
  assert.ok(demo.demoKeyFile !== undefined);
  assert.equal(statSync(demo.demoKeyFile).mode & 0o777, 0o600);
  const again = resolveSecretBox(buildConfig({ mode: 'demo', dataDir }));
  assert.equal(again.box.open(demo.box.seal('x', 'c'), 'c').toString(), 'x', 'the demo key is reused across restarts');
  assert.match(readFileSync(demo.demoKeyFile, 'utf8'), /^demo:/);
});
