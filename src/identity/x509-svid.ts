// X.509-SVID verification per the SPIFFE X509-SVID spec (§4 constraints, §5 validation): the
// leaf has exactly one URI SAN holding a valid SPIFFE ID, is not a CA, has digitalSignature and
// neither keyCertSign nor cRLSign; intermediates are CAs with keyCertSign; the chain ends at an
// X.509 authority of the leaf's own trust domain bundle; every certificate is within its validity.
// Node's X509Certificate checks signatures and issuers but exposes no keyUsage bits, so those are
// read from the DER with the small walker below (only what the rules need).
import { X509Certificate } from 'node:crypto';
import { OAuthError } from '../errors/index.js';
import { identityKey, type VerifiedProof } from './proofs.js';
import { parseSpiffeId } from './spiffe-id.js';
import type { TrustStore } from './trust.js';

const MAX_CHAIN = 8;
const fail = (message: string): never => {
  throw new OAuthError('OAUTH_INVALID_SUBJECT_TOKEN', message);
};

/** keyUsage bits (RFC 5280 §4.2.1.3), numbered from the most significant bit of the first byte. */
const KU = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** Verifies a presented chain (leaf first, as TLS delivers it) against the trust store. */
export function verifyX509Svid(chain: readonly X509Certificate[], trust: TrustStore, now: Date): VerifiedProof {
  const leaf = chain[0];
  if (leaf === undefined) return fail('no client certificate');
  if (chain.length > MAX_CHAIN) return fail('the certificate chain is too long');
  const uris = uriSans(leaf);
  if (uris.length !== 1) return fail(`an X.509-SVID must have exactly one URI SAN, found ${uris.length}`);
  const parsed = parseSpiffeId(uris[0]);
  if (!parsed.ok) return fail(`X.509-SVID URI SAN is not a valid SPIFFE ID: ${parsed.reason}`);
  if (parsed.id.path === '') return fail('an X.509-SVID leaf must not carry a trust domain ID without a path');
  if (isCa(leaf)) return fail('an X.509-SVID leaf must not be a CA');
  const usage = keyUsage(leaf);
  if (usage === undefined || !usage.has(KU.digitalSignature)) return fail('an X.509-SVID leaf must have keyUsage digitalSignature');
  if (usage.has(KU.keyCertSign) || usage.has(KU.cRLSign)) return fail('an X.509-SVID leaf must not have keyCertSign or cRLSign');
  const domain = trust.domains.get(parsed.id.trustDomain);
  if (domain === undefined) return fail(`trust domain "${parsed.id.trustDomain}" is not trusted`);
  const authorities = domain.x509Authorities();

  let current = leaf;
  for (let i = 0; ; i++) {
    within(current, now);
    const root = authorities.find((a) => current.checkIssued(a) && current.verify(a.publicKey));
    if (root !== undefined) {
      within(root, now);
      break;
    }
    const issuer = chain[i + 1];
    if (issuer === undefined) return fail(`the chain does not lead to an authority of "${domain.name}"`);
    if (!current.checkIssued(issuer) || !current.verify(issuer.publicKey))
      return fail('the chain is broken (issuer or signature mismatch)');
    if (!isCa(issuer) || !keyUsage(issuer)?.has(KU.keyCertSign)) return fail('an intermediate must be a CA with keyCertSign');
    current = issuer;
  }
  const spiffeId = parsed.id.uri;
  return {
    identity: { kind: 'spiffe', key: identityKey.spiffe(spiffeId), spiffeId, trustDomain: parsed.id.trustDomain },
    expiresAt: Math.floor(Date.parse(leaf.validTo) / 1000),
    proofId: leaf.fingerprint256.replaceAll(':', '').slice(0, 22),
  };
}

function within(cert: X509Certificate, now: Date): void {
  if (Date.parse(cert.validFrom) > now.getTime()) fail('a certificate of the chain is not yet valid');
  if (Date.parse(cert.validTo) < now.getTime()) fail('a certificate of the chain has expired');
}

/** URI entries of subjectAltName (Node renders them as `URI:...`, comma-separated, quoted when needed). */
function uriSans(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  return san
    .split(/, (?=[A-Za-z ]+:)/)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4).replace(/^"(.*)"$/, '$1'));
}

/** Start of an extension's value (inside its extnValue OCTET STRING), or -1 when absent. */
function extensionValue(der: Buffer, lastOidByte: number): number {
  const at = der.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d, lastOidByte]));
  if (at === -1) return -1;
  let p = at + 5;
  if (der[p] === 0x01) p += 3; // critical BOOLEAN
  if (der[p] !== 0x04) return -1; // extnValue OCTET STRING (short form: extensions here are small)
  return p + 2;
}

/**
 * basicConstraints cA (OID 2.5.29.19). Read from the DER because X509Certificate.ca also depends
 * on keyUsage, and a leaf claiming CA:TRUE must be refused whatever its key usage says.
 */
export function isCa(cert: X509Certificate): boolean {
  const der = cert.raw;
  const p = extensionValue(der, 0x13);
  if (p === -1 || der[p] !== 0x30) return false;
  return (der[p + 1] ?? 0) > 0 && der[p + 2] === 0x01 && der[p + 3] === 0x01 && der[p + 4] !== 0x00;
}

/** Set bits of the keyUsage extension (OID 2.5.29.15), or undefined when absent. */
export function keyUsage(cert: X509Certificate): Set<number> | undefined {
  const der = cert.raw;
  const p = extensionValue(der, 0x0f);
  if (p === -1) return undefined;
  if (der[p] !== 0x03) return undefined; // BIT STRING
  const len = der[p + 1] ?? 0;
  const unused = der[p + 2] ?? 0;
  const bytes = der.subarray(p + 3, p + 2 + len);
  const bits = new Set<number>();
  bytes.forEach((byte, i) => {
    for (let b = 0; b < 8; b++) {
      const isLastByte = i === bytes.length - 1;
      if (isLastByte && b >= 8 - unused) break;
      if (byte & (0x80 >> b)) bits.add(i * 8 + b);
    }
  });
  return bits;
}

/** Parses a PEM bundle of certificates (leaf first). */
export function parsePemChain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));
}
