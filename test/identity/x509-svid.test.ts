// X.509-SVID validation with real certificates made by the openssl CLI: a trust domain CA, an
// intermediate, good and bad leaves (each SPIFFE rule broken once), and a foreign trust domain.
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { TrustDomain, TrustStore } from '../../src/identity/trust.js';
import { keyUsage, parsePemChain, verifyX509Svid } from '../../src/identity/x509-svid.js';
import { CA_EXTENSIONS, leafExtensions, TestPki } from '../helpers/pki.js';

const pki = new TestPki();
const ca = (name: string, spiffe: string) => pki.selfSigned(name, [...CA_EXTENSIONS, `subjectAltName=URI:${spiffe}`]);
const issue = (name: string, issuer: string, ext: string) => pki.issue(name, issuer, ext);
const leafExt = leafExtensions;

describe('X.509-SVID', () => {
  let trust: TrustStore;
  let good: X509Certificate;
  let viaIntermediate: X509Certificate[];
  const now = () => new Date();

  before(async () => {
    ca('prod-ca', 'spiffe://prod.example.org');
    ca('evil-ca', 'spiffe://evil.example.org');
    good = issue('good', 'prod-ca', leafExt('URI:spiffe://prod.example.org/agent/a'));
    const inter = issue('inter', 'prod-ca', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    viaIntermediate = [issue('deep', 'inter', leafExt('URI:spiffe://prod.example.org/agent/deep')), inter];
    const caDer = pki.cert('prod-ca').raw.toString('base64');
    trust = new TrustStore();
    trust.addDomain(
      new TrustDomain({
        name: 'prod.example.org',
        source: { kind: 'static', bundle: { keys: [{ kty: 'EC', use: 'x509-svid', x5c: [caDer] }] } },
        algorithms: ['ES256'],
        singleAudience: true,
        refreshSeconds: 300,
      }),
    );
    await trust.start();
  });
  after(() => pki.cleanup());

  test('a leaf signed by the trust domain CA verifies to its SPIFFE ID', () => {
    const p = verifyX509Svid([good], trust, now());
    assert.equal(p.identity.kind === 'spiffe' && p.identity.spiffeId, 'spiffe://prod.example.org/agent/a');
    assert.equal(p.identity.key, 'spiffe:spiffe://prod.example.org/agent/a');
  });

  test('a chain through an intermediate CA verifies', () => {
    const p = verifyX509Svid(viaIntermediate, trust, now());
    assert.equal(p.identity.kind === 'spiffe' && p.identity.spiffeId, 'spiffe://prod.example.org/agent/deep');
    assert.throws(() => verifyX509Svid([viaIntermediate[0] as X509Certificate], trust, now()), /does not lead to an authority/);
  });

  test('keyUsage bits are read from the DER', () => {
    assert.deepEqual([...(keyUsage(good) ?? [])], [0]);
    assert.deepEqual([...(keyUsage(pki.cert('prod-ca')) ?? [])].sort(), [5, 6]);
  });

  const bad: [string, () => X509Certificate, RegExp][] = [
    [
      'two URI SANs',
      () => issue('two', 'prod-ca', leafExt('URI:spiffe://prod.example.org/a,URI:spiffe://prod.example.org/b')),
      /exactly one URI SAN, found 2/,
    ],
    ['no URI SAN', () => issue('none', 'prod-ca', leafExt('DNS:agent.example.org')), /exactly one URI SAN, found 0/],
    ['a malformed SPIFFE ID', () => issue('malformed', 'prod-ca', leafExt('URI:spiffe://Prod.example.org/a')), /not a valid SPIFFE ID/],
    [
      'a leaf that is a CA',
      () => issue('isca', 'prod-ca', leafExt('URI:spiffe://prod.example.org/a', 'digitalSignature', 'CA:TRUE')),
      /must not be a CA/,
    ],
    [
      'keyCertSign on a leaf',
      () => issue('kcs', 'prod-ca', leafExt('URI:spiffe://prod.example.org/a', 'digitalSignature,keyCertSign')),
      /keyCertSign or cRLSign/,
    ],
    [
      'no digitalSignature',
      () => issue('nods', 'prod-ca', leafExt('URI:spiffe://prod.example.org/a', 'keyEncipherment')),
      /digitalSignature/,
    ],
    [
      'a leaf of another trust domain',
      () => issue('evil', 'evil-ca', leafExt('URI:spiffe://evil.example.org/a')),
      /"evil.example.org" is not trusted/,
    ],
    [
      'a leaf claiming our domain signed by a foreign CA',
      () => issue('forged', 'evil-ca', leafExt('URI:spiffe://prod.example.org/a')),
      /does not lead to an authority/,
    ],
  ];
  for (const [name, make, reason] of bad) {
    test(`attack: refuses ${name}`, () => {
      assert.throws(() => verifyX509Svid([make()], trust, now()), reason);
    });
  }

  test('attack: refuses an expired chain', () => {
    assert.throws(() => verifyX509Svid([good], trust, new Date(Date.now() + 365 * 86_400_000)), /expired/);
  });

  test('parsePemChain reads a leaf-first PEM bundle', () => {
    const pem = viaIntermediate.map((c) => c.toString()).join('\n');
    assert.equal(parsePemChain(pem).length, 2);
  });
});
