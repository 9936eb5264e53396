// The pure checks behind client registration and metadata-document fetching: which redirect URIs
// a public client may register, and which addresses the broker may connect to (SSRF). Table cases
// for each range, then properties over random addresses of the refused ranges; and the broker with
// interactive clients disabled advertises and serves nothing of it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { addressProblem, redirectUriProblem } from '../../src/identity/oauth-clients.js';
import { buildTestApp } from '../helpers/app.js';

describe('redirect URIs of public clients', () => {
  test('https anywhere, http only on loopback hosts; no fragment, no credentials, absolute only', () => {
    for (const ok of [
      'https://app.example/cb',
      'https://app.example:8443/cb?x=1',
      'http://127.0.0.1:6274/cb',
      'http://[::1]/cb',
      'http://localhost:1/cb',
    ]) {
      assert.equal(redirectUriProblem(ok), undefined, ok);
    }
    for (const bad of [
      'http://app.example/cb',
      'http://127.0.0.1.nip.io/cb',
      'http://localhost.evil.example/cb',
      'http://127.0.0.2/cb',
      'https://app.example/cb#',
      'https://app.example/cb#frag',
      'https://user:pw@app.example/cb',
      'javascript:alert(1)',
      'data:text/html,x',
      'file:///etc/passwd',
      '/relative/cb',
      'custom.scheme:/cb',
    ]) {
      assert.notEqual(redirectUriProblem(bad), undefined, bad);
    }
  });
});

describe('addresses a metadata document may be fetched from', () => {
  test('public addresses pass; private, loopback and special ranges do not; link-local never', () => {
    for (const ok of ['93.184.216.34', '8.8.8.8', '2606:4700::1111']) assert.equal(addressProblem(ok, false), undefined, ok);
    for (const bad of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fc00::1',
      'fd12::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a00:1',
    ]) {
      assert.match(addressProblem(bad, false) ?? '', /not a public address/, bad);
      assert.equal(addressProblem(bad, true), undefined, `${bad} with allowPrivateNetworks`);
    }
    for (const link of ['169.254.169.254', '169.254.0.1', 'fe80::1', 'fd00:ec2::254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe']) {
      assert.match(addressProblem(link, true) ?? '', /link-local/, link);
      assert.match(addressProblem(link, false) ?? '', /link-local/, link);
    }
  });

  test('property: every address of 127/8, 10/8, 192.168/16 and 169.254/16 is refused, in plain and IPv4-mapped spelling', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const ranges = fc.oneof(
      fc.tuple(octet, octet, octet).map(([a, b, c]) => `127.${a}.${b}.${c}`),
      fc.tuple(octet, octet, octet).map(([a, b, c]) => `10.${a}.${b}.${c}`),
      fc.tuple(octet, octet).map(([a, b]) => `192.168.${a}.${b}`),
      fc.tuple(octet, octet).map(([a, b]) => `169.254.${a}.${b}`),
    );
    fc.assert(
      fc.property(ranges, fc.boolean(), (ip, mapped) => {
        const [a = 0, b = 0, c = 0, d = 0] = ip.split('.').map(Number);
        const hex = `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
        return addressProblem(mapped ? hex : ip, false) !== undefined;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('interactive clients disabled', () => {
  test('the metadata claims no response type and the endpoint never redirects', async () => {
    const t = await buildTestApp({ config: { interactiveClients: { enabled: false } } });
    try {
      const md = (await (await t.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()) as Record<
        string,
        unknown
      >;
      assert.deepEqual(md.response_types_supported, []);
      assert.equal(md.registration_endpoint, undefined);
      assert.equal(md.code_challenge_methods_supported, undefined);
      assert.ok(!(md.grant_types_supported as string[]).includes('authorization_code'));
      const res = await t.app.inject({
        method: 'GET',
        url: '/oauth/authorize?response_type=code&client_id=x&redirect_uri=https%3A%2F%2Fevil.example',
      });
      assert.equal(res.statusCode, 400);
      assert.equal(res.headers.location, undefined);
      assert.equal(res.json().error, 'unsupported_response_type');
      assert.equal((await t.app.inject({ method: 'POST', url: '/oauth/register', payload: {} })).statusCode, 404);
      const token = await t.app.inject({
        method: 'POST',
        url: '/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'grant_type=authorization_code&code=mac_x&redirect_uri=x&client_id=x&code_verifier=x',
      });
      assert.equal(token.json().error, 'unsupported_grant_type');
    } finally {
      await t.close();
    }
  });
});
