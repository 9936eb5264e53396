// One DER certificate parsed with a real ASN.1 library (@peculiar/asn1-x509, the schema layer of
// @peculiar/x509) into the facts X.509-SVID validation needs; malformed or ambiguous input is refused.
import { createHash, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  type Extension,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  Version,
} from '@peculiar/asn1-x509';
import { LRUCache } from 'lru-cache';

/** A certificate as it arrives: its DER bytes (node:crypto's X509Certificate carries them as `raw`). */
export interface DerCertificate {
  readonly raw: Uint8Array;
}

export interface ParsedCertificate {
  readonly der: Buffer;
  /** The same bytes in node:crypto, which checks issuer names and signatures (OpenSSL). */
  readonly node: X509Certificate;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectEmpty: boolean;
  /** basicConstraints; absent means not a CA (RFC 5280 §4.2.1.9 default). */
  readonly ca: boolean;
  readonly pathLen: number | undefined;
  /** keyUsage bits as KeyUsageFlags, or undefined when the extension is absent. */
  readonly keyUsage: { readonly flags: number; readonly critical: boolean } | undefined;
  /** uniformResourceIdentifier entries of subjectAltName, decoded from the GeneralNames. */
  readonly uris: readonly string[];
  readonly sanCritical: boolean;
  /** extKeyUsage purposes (OIDs), or undefined when absent. */
  readonly extKeyUsage: readonly string[] | undefined;
  /** Uppercase hex SHA-256 of the DER. */
  readonly sha256: string;
}

export { KeyUsageFlags };

export class CertificateError extends Error {}

/** Far above any real SVID or CA certificate; TLS records bound them too. */
const MAX_DER_BYTES = 16 * 1024;
/** Extensions whose meaning we apply; any other extension marked critical refuses the certificate (RFC 5280 §4.2). */
const UNDERSTOOD = new Set([
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_extKeyUsage,
  id_ce_subjectKeyIdentifier,
  id_ce_authorityKeyIdentifier,
]);

const bad = (message: string): never => {
  throw new CertificateError(message);
};

/**
 * Parsed certificates by the SHA-256 of their DER: parsing is a pure function of the bytes, and the
 * same SVID comes back on every mTLS request. Only the parse is cached; every check runs each time.
 */
const cache = new LRUCache<string, ParsedCertificate>({ max: 1000 });

/** Parses one certificate; throws CertificateError when it is not exactly one well-formed DER X.509 v3 certificate. */
export function parseCertificate(input: DerCertificate): ParsedCertificate {
  if (!(input?.raw instanceof Uint8Array)) return bad('a certificate is not DER bytes');
  if (input.raw.length === 0) return bad('a certificate is empty');
  if (input.raw.length > MAX_DER_BYTES) return bad('a certificate is larger than 16 KiB');
  const der = Buffer.from(input.raw);
  const sha256 = createHash('sha256').update(der).digest('hex').toUpperCase();
  const cached = cache.get(sha256);
  if (cached !== undefined) return cached;
  const parsed = parseUncached(der, sha256, input instanceof X509Certificate ? input : undefined);
  cache.set(sha256, parsed);
  return parsed;
}

function parseUncached(der: Buffer, sha256: string, presented: X509Certificate | undefined): ParsedCertificate {
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(der, Certificate, { berOptions: { maxDepth: 32, maxNodes: 2000 } });
  } catch {
    return bad('a certificate is not valid DER X.509');
  }
  // Re-encoding must give the same bytes: refuses trailing data and BER forms that another parser
  // (OpenSSL, which checks the signature below) might read differently.
  if (!Buffer.from(AsnConvert.serialize(cert)).equals(der)) return bad('a certificate is not in canonical DER');
  const tbs = cert.tbsCertificate;
  if (tbs.version !== Version.v3) return bad('a certificate is not X.509 v3');
  // RFC 5280 §4.1.1.2: the outer signature algorithm must equal the one inside the signed part.
  if (!Buffer.from(AsnConvert.serialize(cert.signatureAlgorithm)).equals(Buffer.from(AsnConvert.serialize(tbs.signature))))
    return bad('a certificate names two different signature algorithms');

  const extensions = new Map<string, Extension>();
  for (const ext of tbs.extensions ?? []) {
    if (extensions.has(ext.extnID)) return bad(`a certificate repeats extension ${ext.extnID}`);
    extensions.set(ext.extnID, ext);
    // Name constraints would restrict the names below; not applying them would accept what they forbid.
    if (ext.extnID === id_ce_nameConstraints) return bad('name constraints are not supported');
    if (ext.critical && !UNDERSTOOD.has(ext.extnID)) return bad(`a certificate has an unsupported critical extension ${ext.extnID}`);
  }
  const value = <T>(id: string, type: new () => T): T | undefined => {
    const ext = extensions.get(id);
    if (ext === undefined) return undefined;
    try {
      const parsed = AsnConvert.parse(ext.extnValue.buffer, type);
      if (!Buffer.from(AsnConvert.serialize(parsed)).equals(Buffer.from(ext.extnValue.buffer))) throw new Error('not DER');
      return parsed;
    } catch {
      return bad(`extension ${id} of a certificate is malformed`);
    }
  };

  const basic = value(id_ce_basicConstraints, BasicConstraints);
  const usage = value(id_ce_keyUsage, KeyUsage);
  const san = value(id_ce_subjectAltName, SubjectAlternativeName);
  const eku = value(id_ce_extKeyUsage, ExtendedKeyUsage);

  let node: X509Certificate;
  try {
    node = presented ?? new X509Certificate(der);
  } catch {
    return bad('a certificate is not valid DER X.509');
  }
  return {
    der,
    node,
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    subjectEmpty: tbs.subject.length === 0,
    ca: basic?.cA === true,
    pathLen: basic?.cA === true ? basic.pathLenConstraint : undefined,
    keyUsage: usage === undefined ? undefined : { flags: usage.toNumber(), critical: extensions.get(id_ce_keyUsage)?.critical === true },
    uris: [...(san ?? [])].flatMap((name) => (name.uniformResourceIdentifier === undefined ? [] : [name.uniformResourceIdentifier])),
    sanCritical: extensions.get(id_ce_subjectAltName)?.critical === true,
    extKeyUsage: eku === undefined ? undefined : [...eku],
    sha256,
  };
}
