// Every JWT-SVID algorithm the docs allow (RS256…RS512, PS256…PS512, ES256…ES512), end to end: a
// bundle file with one RSA key and one EC key per curve, SVIDs signed with each algorithm, exchanged
// for a mandate by oauth4webapi and by openid-client at a running broker. Keys used with an algorithm they cannot verify
// are refused, whatever the allow-list says.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, type JWK, SignJWT } from 'jose';
import * as openid from 'openid-client';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { mandateRequest, oauthError, type Running, startBroker } from './helpers.js';

const DOMAIN = 'algs.example.org';
const NARROW = 'narrow.example.org';
const AGENT = `spiffe://${DOMAIN}/agent/signer`;
const NARROW_AGENT = `spiffe://${NARROW}/agent/signer`;
const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
const EC = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' } as const;

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = Object.fromEntries(Object.entries(EC).map(([alg, namedCurve]) => [alg, generateKeyPairSync('ec', { namedCurve })])) as Record<
  keyof typeof EC,
  { privateKey: KeyObject; publicKey: KeyObject }
>;
/** An RSA key that names its own alg (RFC 7517 §4.4): only RS256 may use it. */
const pinned = generateKeyPairSync('rsa', { modulusLength: 2048 });

const jwk = (key: KeyObject, kid: string, extra: Record<string, unknown> = {}) =>
  ({ ...key.export({ format: 'jwk' }), kid, use: 'jwt-svid', ...extra }) as JWK;

describe('JWT-SVIDs signed with every documented algorithm', () => {
  let b: Running;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mandate-svid-algs-'));
    const keys = [
      jwk(rsa.publicKey, 'rsa'),
      ...Object.entries(ec).map(([alg, pair]) => jwk(pair.publicKey, alg.toLowerCase())),
      jwk(pinned.publicKey, 'pinned', { alg: 'RS256' }),
    ];
    writeFileSync(join(dir, 'algs.json'), JSON.stringify({ keys }));
    writeFileSync(join(dir, 'narrow.json'), JSON.stringify({ keys: [jwk(rsa.publicKey, 'rsa')] }));
    b = await startBroker({
      config: {
        identity: {
          trustDomains: [
            { name: DOMAIN, bundleFile: join(dir, 'algs.json') },
            { name: NARROW, bundleFile: join(dir, 'narrow.json'), algorithms: ['PS256'] },
          ],
        },
      },
    });
    for (const [id, spiffeId] of [
      ['alg-signer', AGENT],
      ['narrow-signer', NARROW_AGENT],
    ] as const) {
      await b.broker.agents.register({
        id,
        displayName: id,
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId },
        ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
      });
    }
  });
  after(async () => {
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const svid = (alg: string, kid: string, key: KeyObject, sub = AGENT) =>
    new SignJWT({}).setProtectedHeader({ alg, kid, typ: 'JWT' }).setSubject(sub).setAudience(b.base).setExpirationTime('2m').sign(key);

  const exchange = (subjectToken: string) =>
    b.exchange({
      subject_token: subjectToken,
      subject_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([
        mandateRequest({ taskType: 'support.triage', tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false }),
      ]),
    });

  for (const alg of RSA_ALGS) {
    test(`${alg}: an SVID signed by the bundle's RSA key opens a mandate`, async () => {
      const res = await exchange(await svid(alg, 'rsa', rsa.privateKey));
      assert.equal(decodeJwt(res.access_token).sub, 'alg-signer');
    });
  }
  for (const alg of Object.keys(EC) as (keyof typeof EC)[]) {
    test(`${alg}: an SVID signed by the bundle's ${EC[alg]} key opens a mandate`, async () => {
      const res = await exchange(await svid(alg, alg.toLowerCase(), ec[alg].privateKey));
      assert.equal(decodeJwt(res.access_token).sub, 'alg-signer');
    });
  }

  test('openid-client: an SVID in every documented algorithm opens a mandate', async () => {
    const config = await openid.discovery(new URL(b.base), 'agent', undefined, openid.None(), {
      execute: [openid.allowInsecureRequests],
      algorithm: 'oauth2',
    });
    const signed: [string, string, KeyObject][] = [
      ...RSA_ALGS.map((alg): [string, string, KeyObject] => [alg, 'rsa', rsa.privateKey]),
      ...(Object.keys(EC) as (keyof typeof EC)[]).map((alg): [string, string, KeyObject] => [alg, alg.toLowerCase(), ec[alg].privateKey]),
    ];
    for (const [alg, kid, key] of signed) {
      const tokens = await openid.genericGrantRequest(config, GRANT_TOKEN_EXCHANGE, {
        subject_token: await svid(alg, kid, key),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([
          mandateRequest({ taskType: 'support.triage', tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false }),
        ]),
      });
      assert.equal(decodeJwt(tokens.access_token).sub, 'alg-signer', alg);
    }
    assert.equal(signed.length, 9);
  });

  test('the same RSA key in RS384 and PS512 in turn (one import per algorithm, no cross-talk)', async () => {
    for (const alg of ['RS384', 'PS512', 'RS384', 'RS256', 'PS512']) {
      assert.equal(decodeJwt((await exchange(await svid(alg, 'rsa', rsa.privateKey))).access_token).sub, 'alg-signer', alg);
    }
  });

  test('attack: an alg that does not fit the key its kid names is refused', async () => {
    // An ES256 header naming the RSA key, ES384 naming the P-256 key, RS256 naming an EC key.
    const cases: [string, string, KeyObject][] = [
      ['ES256', 'rsa', ec.ES256.privateKey],
      ['ES384', 'es256', ec.ES384.privateKey],
      ['RS256', 'es256', rsa.privateKey],
      ['PS384', 'pinned', pinned.privateKey],
    ];
    for (const [alg, kid, key] of cases) {
      const r = await oauthError(exchange(await svid(alg, kid, key)));
      assert.equal(r.error, 'invalid_request', `${alg} with ${kid}`);
      assert.match(r.description, /cannot be used with the key its kid names/, `${alg} with ${kid}`);
    }
    // The pinned key still verifies its own alg.
    assert.ok((await exchange(await svid('RS256', 'pinned', pinned.privateKey))).access_token);
  });

  test('attack: a signature by another key under the right kid and alg is refused', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const r = await oauthError(exchange(await svid('PS256', 'rsa', other.privateKey)));
    assert.equal(r.error, 'invalid_request');
    assert.match(r.description, /signature/i);
  });

  test('a domain allow-list narrower than the key: only the listed alg opens a mandate', async () => {
    const ok = await exchange(await svid('PS256', 'rsa', rsa.privateKey, NARROW_AGENT));
    assert.equal(decodeJwt(ok.access_token).sub, 'narrow-signer');
    for (const alg of ['RS256', 'PS384']) {
      const r = await oauthError(exchange(await svid(alg, 'rsa', rsa.privateKey, NARROW_AGENT)));
      assert.match(r.description, new RegExp(`alg "${alg}" is not allowed`));
    }
  });

  test('attack: none and HS256 are refused before any key is used', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', kid: 'rsa' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ sub: AGENT, aud: b.base, exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
    assert.match((await oauthError(exchange(`${header}.${body}.`))).description, /alg "none" is not allowed/);
    const hs = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa' })
      .setSubject(AGENT)
      .setAudience(b.base)
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(JSON.stringify(jwk(rsa.publicKey, 'rsa'))));
    assert.match((await oauthError(exchange(hs))).description, /alg "HS256" is not allowed/);
  });
});
