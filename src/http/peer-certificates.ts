// The client certificate chain of a request's mTLS handshake, leaf first, or undefined on plain
// HTTP or when the client sent none. The chain is verified by the caller (X.509-SVID rules against
// trust bundles, parsed with an ASN.1 library), not by Node's CA store.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { AuthError } from '../errors/index.js';

/** One more than the verifier accepts, so an over-long chain is refused there rather than cut short here. */
const MAX_CHAIN = 9;

export function peerCertificates(req: FastifyRequest): X509Certificate[] | undefined {
  const socket = req.raw.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  let cert = socket.getPeerCertificate(true);
  if (cert === null || cert.raw === undefined) return undefined;
  const chain: X509Certificate[] = [];
  // Node links the presented chain through issuerCertificate; a self-issued one points at itself.
  while (cert?.raw !== undefined && chain.length < MAX_CHAIN) {
    try {
      chain.push(new X509Certificate(cert.raw));
    } catch {
      // OpenSSL accepted it in the handshake, so this is unexpected; never drop a link silently.
      throw new AuthError('ERR_CLIENT_CERTIFICATE_REQUIRED', 'a client certificate of the chain could not be parsed');
    }
    if (cert.issuerCertificate === undefined || cert.issuerCertificate === cert || cert.issuerCertificate.raw?.equals(cert.raw)) break;
    cert = cert.issuerCertificate;
  }
  return chain;
}
