// Hostile and malformed X.509-SVID chains (openssl-made where openssl can, re-signed DER where it
// cannot), each with the refusal it must get. Shared by the X.509-SVID unit test and the mTLS test.
import { randomBytes } from 'node:crypto';
import { OctetString } from '@peculiar/asn1-schema';
import { Extension, id_ce_keyUsage, Name, Version } from '@peculiar/asn1-x509';
import { TrustDomain, TrustStore } from '../../src/identity/trust.js';
import { CA_EXTENSIONS, leafExtensions, resign, type TestPki } from './pki.js';

export interface DerChain {
  readonly raw: Buffer;
}

export interface HostileCase {
  readonly name: string;
  readonly chain: readonly DerChain[];
  readonly refusal: RegExp;
  /** Verification time; now when absent. */
  readonly at?: Date;
}

/** Extension lines that smuggle DER of keyUsage (digitalSignature only) or basicConstraints (cA false) into another extension's value. */
const FAKE_KEY_USAGE = '1.2.3.4=DER:06:03:55:1d:0f:04:04:03:02:07:80';
const FAKE_BASIC_CONSTRAINTS = '1.2.3.4=DER:06:03:55:1d:13:04:02:30:00';

/**
 * Trust domains `prod.example.org` (CA `prod-ca`), `pl.example.org` (CA `pl-ca`, pathlen 0) and
 * `nonca.example.org` (anchored, wrongly, at a certificate with CA:FALSE); `evil-ca` is trusted by nobody.
 */
export async function svidPki(pki: TestPki): Promise<TrustStore> {
  const ca = (name: string, spiffe: string, basic = 'basicConstraints=critical,CA:TRUE') =>
    pki.selfSigned(name, [basic, CA_EXTENSIONS[1] as string, `subjectAltName=URI:${spiffe}`]);
  ca('prod-ca', 'spiffe://prod.example.org');
  ca('evil-ca', 'spiffe://evil.example.org');
  ca('pl-ca', 'spiffe://pl.example.org', 'basicConstraints=critical,CA:TRUE,pathlen:0');
  ca('nonca-ca', 'spiffe://nonca.example.org', 'basicConstraints=critical,CA:FALSE');
  const trust = new TrustStore();
  for (const [name, caName] of [
    ['prod.example.org', 'prod-ca'],
    ['pl.example.org', 'pl-ca'],
    ['nonca.example.org', 'nonca-ca'],
  ] as const) {
    const x5c = [pki.cert(caName).raw.toString('base64')];
    trust.addDomain(
      new TrustDomain({
        name,
        source: { kind: 'static', bundle: { keys: [{ kty: 'EC', use: 'x509-svid', x5c }] } },
        algorithms: ['ES256'],
        singleAudience: true,
        refreshSeconds: 300,
      }),
    );
  }
  await trust.start();
  return trust;
}

const ID = 'URI:spiffe://prod.example.org/a';
const INTERMEDIATE = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';

/** Every case is built afresh under unique names in `pki` (which svidPki set up). */
export function hostileSvids(pki: TestPki): HostileCase[] {
  const leaf = (name: string, ext: string, issuer = 'prod-ca') => pki.issue(name, issuer, ext);
  const good = leaf('h-good', leafExtensions(ID));
  const cases: HostileCase[] = [];
  const add = (name: string, chain: readonly DerChain[], refusal: RegExp, at?: Date) => cases.push({ name, chain, refusal, at });

  // Malformed DER.
  add('garbage bytes', [{ raw: randomBytes(300) }], /not valid DER X\.509/);
  add('truncated DER', [{ raw: good.raw.subarray(0, good.raw.length - 40) }], /not valid DER X\.509/);
  add('trailing bytes after the certificate', [{ raw: Buffer.concat([good.raw, Buffer.from([0x05, 0x00])]) }], /canonical DER/);
  add('an empty certificate', [{ raw: Buffer.alloc(0) }], /empty/);
  add('no certificate at all', [], /no client certificate/);
  add('a certificate of more than 16 KiB', [{ raw: Buffer.alloc(17 * 1024, 0x30) }], /larger than 16 KiB/);
  add('a certificate that is not bytes', [{ raw: good.toString() as unknown as Buffer }], /not DER bytes/);
  leaf('h-v1', leafExtensions(ID));
  const v1 = resign(pki, 'h-v1', 'prod-ca', (tbs) => {
    tbs.version = Version.v1;
  });
  add('an X.509 v1 certificate', [{ raw: v1 }], /not X\.509 v3/);
  add(
    'a keyUsage extension that is not a BIT STRING',
    [leaf('h-kubad', `basicConstraints=critical,CA:FALSE\n2.5.29.15=critical,DER:05:00\nsubjectAltName=${ID}\n`)],
    /extension 2\.5\.29\.15 of a certificate is malformed/,
  );
  leaf('h-nosubject', leafExtensions(ID));
  const noSubject = resign(pki, 'h-nosubject', 'prod-ca', (tbs) => {
    tbs.subject = new Name();
  });
  add('a leaf without subject whose SAN is not critical', [{ raw: noSubject }], /without a subject must mark its SAN critical/);

  // Leaf rules (§2, §4, §5.2).
  add('a leaf with CA:TRUE', [leaf('h-ca', leafExtensions(ID, 'digitalSignature', 'CA:TRUE'))], /must not be a CA/);
  add('a leaf with keyCertSign', [leaf('h-kcs', leafExtensions(ID, 'digitalSignature,keyCertSign'))], /keyCertSign or cRLSign/);
  add('a leaf with cRLSign', [leaf('h-crl', leafExtensions(ID, 'digitalSignature,cRLSign'))], /keyCertSign or cRLSign/);
  add('a leaf without digitalSignature', [leaf('h-nods', leafExtensions(ID, 'keyAgreement'))], /digitalSignature/);
  add(
    'a leaf whose keyUsage is not critical',
    [leaf('h-kunc', `basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nsubjectAltName=${ID}\n`)],
    /keyUsage extension of an X\.509-SVID must be critical/,
  );
  add('a leaf without keyUsage', [leaf('h-noku', `basicConstraints=critical,CA:FALSE\nsubjectAltName=${ID}\n`)], /digitalSignature/);
  add('two URI SANs', [leaf('h-two', leafExtensions(`${ID},URI:spiffe://prod.example.org/b`))], /exactly one URI SAN, found 2/);
  add('a non-SPIFFE URI SAN', [leaf('h-https', leafExtensions('URI:https://prod.example.org/a'))], /not a valid SPIFFE ID/);
  add('a trust domain ID as a leaf', [leaf('h-root', leafExtensions('URI:spiffe://prod.example.org'))], /without a path/);
  // Display-string tricks: Node renders SANs as "URI:a, DNS:b"; a split on ", " would find a second entry.
  add(
    'a URI SAN whose text contains ", URI:spiffe://…"',
    [leaf('h-comma', `${leafExtensions('@alt')}[alt]\nURI.1 = http://x.example/, URI:spiffe://prod.example.org/admin\n`)],
    /not a valid SPIFFE ID/,
  );
  add(
    'a DNS SAN reading "URI:spiffe://…"',
    [leaf('h-dnsuri', `${leafExtensions('@alt')}[alt]\nDNS.1 = URI:spiffe://prod.example.org/admin\n`)],
    /exactly one URI SAN, found 0/,
  );
  add(
    'a DNS SAN with ", URI:spiffe://…" inside',
    [leaf('h-dnscomma', `${leafExtensions('@alt')}[alt]\nDNS.1 = a.example, URI:spiffe://prod.example.org/admin\n`)],
    /exactly one URI SAN, found 0/,
  );
  add(
    'extKeyUsage without clientAuth',
    [leaf('h-eku', `${leafExtensions(ID)}extendedKeyUsage=serverAuth\n`)],
    /must include serverAuth and clientAuth/,
  );
  add(
    'extKeyUsage without serverAuth',
    [leaf('h-eku-client', `${leafExtensions(ID)}extendedKeyUsage=clientAuth\n`)],
    /must include serverAuth and clientAuth/,
  );
  add(
    'an unsupported critical extension',
    [leaf('h-crit', `${leafExtensions(ID)}1.2.3.4=critical,DER:05:00\n`)],
    /unsupported critical extension 1\.2\.3\.4/,
  );

  // The old byte-search trap: the OID bytes of keyUsage/basicConstraints inside another extension, before the real one.
  add(
    'keyUsage OID bytes in an earlier extension (real keyUsage has keyCertSign)',
    [leaf('h-trap-ku', `${FAKE_KEY_USAGE}\n${leafExtensions(ID, 'digitalSignature,keyCertSign')}`)],
    /keyCertSign or cRLSign/,
  );
  add(
    'basicConstraints OID bytes in an earlier extension (real basicConstraints is CA:TRUE)',
    [leaf('h-trap-bc', `${FAKE_BASIC_CONSTRAINTS}\n${leafExtensions(ID, 'digitalSignature', 'CA:TRUE')}`)],
    /must not be a CA/,
  );
  // A second keyUsage (digitalSignature only) in front of the real one (keyCertSign); openssl will not repeat one, so re-signed.
  leaf('h-dup', leafExtensions(ID, 'digitalSignature,keyCertSign'));
  const dup = resign(pki, 'h-dup', 'prod-ca', (tbs) => {
    const fake = new Extension({
      extnID: id_ce_keyUsage,
      critical: true,
      extnValue: new OctetString(Buffer.from([0x03, 0x02, 0x07, 0x80])),
    });
    tbs.extensions?.unshift(fake);
  });
  add('a repeated keyUsage extension', [{ raw: dup }], /repeats extension 2\.5\.29\.15/);
  leaf('h-alg', leafExtensions(ID));
  const alg = resign(pki, 'h-alg', 'prod-ca', (tbs) => {
    tbs.signature.algorithm = '1.2.840.10045.4.3.3'; // ecdsa-with-SHA384 inside, SHA256 outside
  });
  add('different signature algorithms inside and outside the signed part', [{ raw: alg }], /two different signature algorithms/);

  // Signatures, validity and chains (§5.1).
  const tampered = Buffer.from(good.raw);
  tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0x01;
  add('a wrong signature', [{ raw: tampered }], /does not lead to an authority/);
  add('an expired leaf', [good], /expired/, new Date(Date.now() + 365 * 86_400_000));
  add('a leaf not yet valid', [good], /not yet valid/, new Date(Date.now() - 86_400_000));
  add(
    'a leaf signed by a foreign CA claiming our domain',
    [leaf('h-forged', leafExtensions(ID), 'evil-ca')],
    /does not lead to an authority/,
  );
  add('a leaf of an untrusted domain', [leaf('h-evil', leafExtensions('URI:spiffe://evil.example.org/a'), 'evil-ca')], /not trusted/);
  add('a chain through a leaf used as CA', [leaf('h-under-leaf', leafExtensions(ID), 'h-good'), good], /intermediate must be a CA/);
  pki.issue('h-inter-nokcs', 'prod-ca', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,cRLSign\n');
  add(
    'an intermediate without keyCertSign',
    [leaf('h-under-nokcs', leafExtensions(ID), 'h-inter-nokcs'), pki.cert('h-inter-nokcs')],
    /intermediate must have keyUsage keyCertSign/,
  );
  pki.issue('h-inter-kunc', 'prod-ca', 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n');
  add(
    'an intermediate whose keyUsage is not critical',
    [leaf('h-under-kunc', leafExtensions(ID), 'h-inter-kunc'), pki.cert('h-inter-kunc')],
    /keyUsage extension of an intermediate must be critical/,
  );
  pki.issue('h-inter-path', 'prod-ca', `${INTERMEDIATE}subjectAltName=URI:spiffe://prod.example.org/ca\n`);
  add(
    'an intermediate with a SPIFFE ID that has a path',
    [leaf('h-under-path', leafExtensions(ID), 'h-inter-path'), pki.cert('h-inter-path')],
    /signing certificate must not carry a SPIFFE ID with a path/,
  );
  pki.issue('h-inter-nc', 'prod-ca', `${INTERMEDIATE}nameConstraints=critical,permitted;URI:.example.com\n`);
  add(
    'an intermediate with name constraints',
    [leaf('h-under-nc', leafExtensions(ID), 'h-inter-nc'), pki.cert('h-inter-nc')],
    /name constraints are not supported/,
  );
  pki.issue('h-pl-inter', 'pl-ca', INTERMEDIATE);
  add(
    'an intermediate below a pathlen:0 root',
    [leaf('h-pl-leaf', leafExtensions('URI:spiffe://pl.example.org/a'), 'h-pl-inter'), pki.cert('h-pl-inter')],
    /allows 0 intermediates below it, the chain has 1/,
  );
  add(
    'a bundle authority that is not a CA',
    [leaf('h-nonca-leaf', leafExtensions('URI:spiffe://nonca.example.org/a'), 'nonca-ca')],
    /trust bundle authority must be a CA/,
  );
  add(
    'a chain of nine certificates',
    Array.from({ length: 9 }, () => good),
    /too long/,
  );
  return cases;
}
