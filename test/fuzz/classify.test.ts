// The fuzzer's judge (scripts/fuzz/classify.ts): it must see what the smoke run claims is absent,
// and must not call a harmless answer a finding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Classifier, sameJwt } from '../../scripts/fuzz/classify.js';
import { normalizePath } from '../../scripts/fuzz/paths.js';
import type { BrokerInfo, FuzzRequest } from '../../scripts/fuzz/types.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const jwt = (sub: string) => `${b64({ alg: 'EdDSA' })}.${b64({ sub })}.${Buffer.alloc(64, 7).toString('base64url')}`;

const info: BrokerInfo = {
  base: 'http://127.0.0.1:9',
  pid: 1,
  dataDir: '/nonexistent',
  creds: {
    svid: jwt('svid'),
    bearerToken: jwt('bearer'),
    dpopToken: jwt('dpop'),
    dpopPrivateJwk: {},
    operatorToken: jwt('alice'),
    bootstrapToken: 'bootstrap-token-of-at-least-32-characters',
    authorizationDetails: '[]',
  },
  secrets: ['master-key-material-AAAAAAAAAAAA='],
};
const judge = new Classifier(info);
const req = (over: Partial<FuzzRequest>): FuzzRequest => ({
  target: 'admin',
  method: 'GET',
  path: '/',
  headers: [],
  body: undefined,
  how: '',
  ...over,
});
const kinds = (r: FuzzRequest, status: number, body: string) => judge.judge(r, { status, headers: '{}', body }).map((f) => f.kind);

test('2xx on an admin route without credentials is an allow, in any spelling; public routes are not', () => {
  for (const path of [
    '/admin/v1/agents',
    '/%61dmin/v1/agents',
    'http://127.0.0.1:9/admin/v%31/agents',
    '//admin//v1/agents/',
    '/x/../admin/v1/agents;p',
  ]) {
    assert.deepEqual(kinds(req({ path }), 200, '{"items":[]}'), ['allow'], path);
  }
  assert.deepEqual(kinds(req({ path: '/admin/v1/agents' }), 401, '{}'), []);
  assert.deepEqual(kinds(req({ path: '/healthz' }), 200, '{"status":"ok"}'), []);
  assert.deepEqual(
    kinds(req({ path: '/admin/v1/agents', headers: [['authorization', `Bearer ${info.creds.operatorToken}`]] }), 200, '{}'),
    [],
  );
});

test('a token for a mutated subject_token is an allow; for the intact one it is not', () => {
  const form = (st: string) => Buffer.from(new URLSearchParams({ subject_token: st }).toString());
  const token = req({ target: 'token', method: 'POST', path: '/oauth/token' });
  assert.deepEqual(kinds({ ...token, body: form(`${info.creds.svid}x`) }, 200, '{}'), ['allow']);
  assert.deepEqual(kinds({ ...token, body: form(info.creds.svid) }, 200, '{}'), []);
  // DPoP-bound subject without its proof (issue 11, finding 4)
  assert.deepEqual(kinds({ ...token, body: form(info.creds.dpopToken) }, 200, '{}'), ['allow']);
});

test('5xx is a crash; stacks, paths, SQL, secrets and echoed tokens are leaks', () => {
  assert.deepEqual(kinds(req({}), 500, '{}'), ['crash']);
  assert.deepEqual(
    kinds(req({ path: '/healthz' }), 200, '{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"data":{"code":"ERR_INTERNAL"}}}'),
    ['crash'],
  );
  assert.deepEqual(kinds(req({}), 400, 'Error: x\n    at f (/work/main/src/a.ts:1:1)'), ['leak', 'leak']);
  assert.deepEqual(kinds(req({}), 400, 'SQLITE_CONSTRAINT: UNIQUE failed'), ['leak']);
  assert.deepEqual(kinds(req({}), 400, 'SELECT kid FROM signing_keys WHERE x'), ['leak']);
  assert.deepEqual(kinds(req({}), 400, `{"x":"${info.secrets[0]}"}`), ['leak']);
  assert.ok(kinds(req({}), 401, `bad token ${info.creds.bearerToken}`).includes('leak'));
  assert.deepEqual(kinds(req({}), 400, '{"error":"ERR_BAD_REQUEST","message":"select a tool from the list"}'), []);
});

test('AuthZEN permit for a mutated request and a tool result for an ungranted name are allows', () => {
  const auth: [string, string][] = [['authorization', `Bearer ${info.creds.operatorToken}`]];
  const az = req({ target: 'authzen', method: 'POST', path: '/access/v1/evaluation', headers: auth });
  assert.deepEqual(kinds(az, 200, '{"decision":true}'), ['allow']);
  assert.deepEqual(kinds(az, 200, '{"decision":false}'), []);
  const mcp = (name: string) =>
    req({
      target: 'mcp',
      method: 'POST',
      path: '/mcp',
      headers: [['authorization', `Bearer ${info.creds.bearerToken}`]],
      body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } })),
    });
  const result = '{"result":{"content":[{"type":"text","text":"{\\"status\\":\\"open\\"}"}]}}';
  assert.deepEqual(kinds(mcp('fz.secret'), 200, result), ['allow']);
  assert.deepEqual(kinds(mcp('fz.lookup'), 200, result), []);
});

test('sameJwt: equal after base64url decoding (padding bits, whitespace), different otherwise', () => {
  const t = info.creds.bearerToken;
  assert.ok(sameJwt(` ${t} `, t));
  // 64 bytes = 86 base64url characters: the last one carries 4 unused bits.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const twin = `${t.slice(0, -1)}${alphabet[alphabet.indexOf(t.at(-1) as string) ^ 1]}`;
  assert.notEqual(twin, t);
  assert.ok(sameJwt(twin, t), 'a change in unused bits is the same token (jose would accept it)');
  assert.equal(sameJwt(`${t.slice(0, 10)}X${t.slice(11)}`, t), false);
  assert.equal(sameJwt(`${t}.`, t), false);
});

test('normalizePath undoes encodings, dot segments, parameters, absolute form and case', () => {
  assert.equal(normalizePath('HTTP://h:1/%2561dmin//V1/./x/../agents;a=b?q#f'), '/admin/v1/agents');
  assert.equal(normalizePath('/healthz'), '/healthz');
});
