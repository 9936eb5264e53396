// X.509-SVID verification per the SPIFFE X509-SVID spec (§2 one URI SAN, §3 hierarchy, §4 constraints,
// §5 validation). Certificates are parsed with a real ASN.1 library (./x509-certificate.ts); node:crypto
// (OpenSSL) checks issuer names and signatures. The chain must end at an X.509 authority of the leaf's
// own trust domain bundle; every certificate must be within its validity. Anything else fails closed.
import { X509Certificate } from 'node:crypto';
import { OAuthError } from '../errors/index.js';
import { identityKey, type VerifiedProof } from './proofs.js';
import { parseSpiffeId } from './spiffe-id.js';
import type { TrustStore } from './trust.js';
import { CertificateError, type DerCertificate, KeyUsageFlags, type ParsedCertificate, parseCertificate } from './x509-certificate.js';

export type { DerCertificate } from './x509-certificate.js';

const MAX_CHAIN = 8;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const fail = (message: string): never => {
  throw new OAuthError('OAUTH_INVALID_SUBJECT_TOKEN', message);
};

/** Bundle authorities are parsed once per certificate object (bundles replace them on refresh). */
const anchors = new WeakMap<object, ParsedCertificate | null>();

/** Verifies a presented chain (leaf first, as TLS delivers it) against the trust store. */
export function verifyX509Svid(chain: readonly DerCertificate[], trust: TrustStore, now: Date): VerifiedProof {
  if (chain.length === 0) return fail('no client certificate');
  if (chain.length > MAX_CHAIN) return fail('the certificate chain is too long');
  const certs = chain.map(parse);
  const leaf = certs[0] as ParsedCertificate;

  // §2 and §5.2: exactly one URI SAN, a SPIFFE ID with a path (other SAN types may be present).
  if (leaf.uris.length !== 1) return fail(`an X.509-SVID must have exactly one URI SAN, found ${leaf.uris.length}`);
  const parsed = parseSpiffeId(leaf.uris[0]);
  if (!parsed.ok) return fail(`X.509-SVID URI SAN is not a valid SPIFFE ID: ${parsed.reason}`);
  if (parsed.id.path === '') return fail('an X.509-SVID leaf must not carry a trust domain ID without a path');
  // §3.1 with RFC 5280 §4.1.2.6: without a subject the SAN must be critical.
  if (leaf.subjectEmpty && !leaf.sanCritical) return fail('an X.509-SVID leaf without a subject must mark its SAN critical');
  // §4.1, §4.3, §5.2: a leaf is not a CA, has a critical keyUsage with digitalSignature, and cannot sign certificates or CRLs.
  if (leaf.ca) return fail('an X.509-SVID leaf must not be a CA');
  if (leaf.keyUsage === undefined) return fail('an X.509-SVID leaf must have keyUsage digitalSignature');
  if (!leaf.keyUsage.critical) return fail('the keyUsage extension of an X.509-SVID must be critical');
  if ((leaf.keyUsage.flags & KeyUsageFlags.digitalSignature) === 0) return fail('an X.509-SVID leaf must have keyUsage digitalSignature');
  if ((leaf.keyUsage.flags & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) !== 0)
    return fail('an X.509-SVID leaf must not have keyCertSign or cRLSign');
  // §4.4: when extKeyUsage is present it names both serverAuth and clientAuth (we authenticate a client).
  if (leaf.extKeyUsage !== undefined && !(leaf.extKeyUsage.includes(CLIENT_AUTH) && leaf.extKeyUsage.includes(SERVER_AUTH)))
    return fail('the extKeyUsage of an X.509-SVID leaf must include serverAuth and clientAuth');

  const domain = trust.domains.get(parsed.id.trustDomain);
  if (domain === undefined) return fail(`trust domain "${parsed.id.trustDomain}" is not trusted`);
  const authorities = domain.x509Authorities().flatMap((a) => anchor(a) ?? []);

  // §5.1: path validation. At step i, i intermediates lie between the next signer and the leaf (for pathLenConstraint).
  let current = leaf;
  for (let i = 0; ; i++) {
    within(current, now);
    const root = authorities.find((a) => issued(current, a));
    if (root !== undefined) {
      signer(root, i, 'a trust bundle authority');
      within(root, now);
      break;
    }
    const issuer = certs[i + 1];
    if (issuer === undefined) return fail(`the chain does not lead to an authority of "${domain.name}"`);
    signer(issuer, i, 'an intermediate');
    if (!issued(current, issuer)) return fail('the chain is broken (issuer or signature mismatch)');
    // §3.2: a signing certificate's SPIFFE ID, if any, has no path.
    if (issuer.uris.some(isSpiffeIdWithPath)) return fail('a signing certificate must not carry a SPIFFE ID with a path');
    current = issuer;
  }
  const spiffeId = parsed.id.uri;
  return {
    identity: { kind: 'spiffe', key: identityKey.spiffe(spiffeId), spiffeId, trustDomain: parsed.id.trustDomain },
    expiresAt: Math.floor(leaf.notAfter.getTime() / 1000),
    proofId: leaf.sha256.slice(0, 22),
  };
}

function parse(cert: DerCertificate): ParsedCertificate {
  try {
    return parseCertificate(cert);
  } catch (err) {
    if (err instanceof CertificateError) return fail(err.message);
    throw err;
  }
}

/** A bundle authority, or null when it cannot anchor anything (malformed); such an entry is ignored. */
function anchor(cert: X509Certificate): ParsedCertificate | null {
  let parsed = anchors.get(cert);
  if (parsed === undefined) {
    try {
      parsed = parseCertificate(cert);
    } catch {
      parsed = null;
    }
    anchors.set(cert, parsed);
  }
  return parsed;
}

/** `child` names `parent` as its issuer and carries a valid signature by `parent`'s key. */
function issued(child: ParsedCertificate, parent: ParsedCertificate): boolean {
  try {
    return child.node.checkIssued(parent.node) && child.node.verify(parent.node.publicKey);
  } catch {
    return false;
  }
}

/** §3.2, §4.1, §4.3, RFC 5280 §4.2.1.9: a certificate that signed another is a CA with a critical keyCertSign, within its path length. */
function signer(cert: ParsedCertificate, below: number, what: string): void {
  if (!cert.ca) fail(`${what} must be a CA (basicConstraints cA)`);
  if (cert.keyUsage === undefined || (cert.keyUsage.flags & KeyUsageFlags.keyCertSign) === 0)
    fail(`${what} must have keyUsage keyCertSign`);
  if (cert.keyUsage?.critical !== true) fail(`the keyUsage extension of ${what} must be critical`);
  if (cert.pathLen !== undefined && below > cert.pathLen)
    fail(`${what} allows ${cert.pathLen} intermediates below it, the chain has ${below}`);
}

function isSpiffeIdWithPath(uri: string): boolean {
  const parsed = parseSpiffeId(uri);
  return parsed.ok && parsed.id.path !== '';
}

function within(cert: ParsedCertificate, now: Date): void {
  if (cert.notBefore.getTime() > now.getTime()) fail('a certificate of the chain is not yet valid');
  if (cert.notAfter.getTime() < now.getTime()) fail('a certificate of the chain has expired');
}

/** Parses a PEM bundle of certificates (leaf first). */
export function parsePemChain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));
}
