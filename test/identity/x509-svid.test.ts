// X.509-SVID validation with real certificates made by the openssl CLI: a trust domain CA, an
// intermediate, good leaves, and the hostile and malformed chains of test/helpers/hostile-svids.ts
// (each SPIFFE or RFC 5280 rule broken once, plus the tricks that fooled byte search and display strings).
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Name } from '@peculiar/asn1-x509';
import type { TrustStore } from '../../src/identity/trust.js';
import { KeyUsageFlags, parseCertificate } from '../../src/identity/x509-certificate.js';
import { parsePemChain, verifyX509Svid } from '../../src/identity/x509-svid.js';
import { hostileSvids, svidPki } from '../helpers/hostile-svids.js';
import { leafExtensions, resign, TestPki } from '../helpers/pki.js';

const pki = new TestPki();
const issue = (name: string, issuer: string, ext: string) => pki.issue(name, issuer, ext);
const leafExt = leafExtensions;

describe('X.509-SVID', () => {
  let trust: TrustStore;
  let good: X509Certificate;
  let viaIntermediate: X509Certificate[];
  const now = () => new Date();
  const spiffeId = (chain: readonly { raw: Uint8Array }[]) => {
    const p = verifyX509Svid(chain, trust, now());
    return p.identity.kind === 'spiffe' ? p.identity.spiffeId : undefined;
  };

  before(async () => {
    trust = await svidPki(pki);
    good = issue('good', 'prod-ca', leafExt('URI:spiffe://prod.example.org/agent/a'));
    const inter = issue('inter', 'prod-ca', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    viaIntermediate = [issue('deep', 'inter', leafExt('URI:spiffe://prod.example.org/agent/deep')), inter];
  });
  after(() => pki.cleanup());

  test('a leaf signed by the trust domain CA verifies to its SPIFFE ID', () => {
    const p = verifyX509Svid([good], trust, now());
    assert.equal(p.identity.kind === 'spiffe' && p.identity.spiffeId, 'spiffe://prod.example.org/agent/a');
    assert.equal(p.identity.key, 'spiffe:spiffe://prod.example.org/agent/a');
    assert.equal(p.expiresAt, Math.floor(Date.parse(good.validTo) / 1000));
    assert.equal(p.proofId, good.fingerprint256.replaceAll(':', '').slice(0, 22));
  });

  test('a chain through an intermediate CA verifies', () => {
    assert.equal(spiffeId(viaIntermediate), 'spiffe://prod.example.org/agent/deep');
    assert.throws(() => verifyX509Svid([viaIntermediate[0] as X509Certificate], trust, now()), /does not lead to an authority/);
  });

  test('other SAN types and a full extKeyUsage are allowed beside the one URI SAN', () => {
    const leaf = issue(
      'mixed',
      'prod-ca',
      `${leafExt('@alt', 'digitalSignature,keyEncipherment')}extendedKeyUsage=serverAuth,clientAuth\n[alt]\nDNS.1 = URI:spiffe://prod.example.org/admin\nURI.1 = spiffe://prod.example.org/agent/m\nDNS.2 = m.example.org\n`,
    );
    assert.equal(spiffeId([leaf]), 'spiffe://prod.example.org/agent/m', 'the DNS SAN that reads like a URI is not the identity');
  });

  test('a leaf directly below a pathlen:0 root verifies', () => {
    const leaf = issue('pl-direct', 'pl-ca', leafExt('URI:spiffe://pl.example.org/a'));
    assert.equal(spiffeId([leaf]), 'spiffe://pl.example.org/a');
  });

  test('extensions are decoded by the ASN.1 parser', () => {
    const leaf = parseCertificate(good);
    assert.equal(leaf.keyUsage?.flags, KeyUsageFlags.digitalSignature);
    assert.equal(leaf.keyUsage?.critical, true);
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.uris, ['spiffe://prod.example.org/agent/a']);
    assert.equal(parseCertificate({ raw: Buffer.from(good.raw) }), leaf, 'the same DER is parsed once');
    const ca = parseCertificate(pki.cert('pl-ca'));
    assert.equal(ca.keyUsage?.flags, KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign);
    assert.equal(ca.ca, true);
    assert.equal(ca.pathLen, 0);
  });

  test('a leaf without subject verifies when its SAN is critical (RFC 5280 §4.1.2.6)', () => {
    issue('nosubject-ok', 'prod-ca', leafExt('critical,URI:spiffe://prod.example.org/agent/n'));
    const raw = resign(pki, 'nosubject-ok', 'prod-ca', (tbs) => {
      tbs.subject = new Name();
    });
    assert.equal(spiffeId([{ raw }]), 'spiffe://prod.example.org/agent/n');
  });

  test('a re-signed copy of a good leaf verifies (the hostile re-signed cases fail for their flaw, not their signature)', () => {
    issue('resigned', 'prod-ca', leafExt('URI:spiffe://prod.example.org/agent/r'));
    const raw = resign(pki, 'resigned', 'prod-ca', (tbs) => {
      tbs.serialNumber = new Uint8Array([0x01, 0x02, 0x03]).buffer;
    });
    assert.equal(spiffeId([{ raw }]), 'spiffe://prod.example.org/agent/r');
  });

  test('attack: refuses every hostile or malformed chain, each for its own reason', async (t) => {
    const cases = hostileSvids(pki);
    assert.ok(cases.length >= 30, `${cases.length} cases`);
    for (const c of cases) {
      await t.test(c.name, () => {
        assert.throws(
          () => verifyX509Svid(c.chain, trust, c.at ?? now()),
          (err: Error & { code?: string }) => err.code === 'OAUTH_INVALID_SUBJECT_TOKEN' && c.refusal.test(err.message),
        );
      });
    }
  });

  test('parsePemChain reads a leaf-first PEM bundle', () => {
    const pem = viaIntermediate.map((c) => c.toString()).join('\n');
    assert.equal(parsePemChain(pem).length, 2);
  });
});
