// A throwaway PKI made with the openssl CLI (real certificates, no fakes): trust domain CAs,
// X.509-SVID leaves with chosen extensions, and a server certificate for TLS tests.
import { execFileSync } from 'node:child_process';
import { sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, type TBSCertificate } from '@peculiar/asn1-x509';

export const CA_EXTENSIONS = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];

/** Extensions of an X.509-SVID leaf; each argument can be set wrong on purpose. */
export const leafExtensions = (sans: string, usage = 'digitalSignature', basic = 'CA:FALSE') =>
  `basicConstraints=critical,${basic}\nkeyUsage=critical,${usage}\nsubjectAltName=${sans}\n`;

export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'mandate-pki-'));

  file(name: string): string {
    return join(this.dir, name);
  }

  cert(name: string): X509Certificate {
    return new X509Certificate(readFileSync(this.file(`${name}.pem`)));
  }

  /** A self-signed certificate (a CA with CA_EXTENSIONS, or a server certificate). */
  selfSigned(name: string, extensions: readonly string[]): X509Certificate {
    this.#key(name);
    this.#ssl(
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-subj',
      `/CN=${name}`,
      '-days',
      '30',
      '-out',
      `${name}.pem`,
      ...extensions.flatMap((e) => ['-addext', e]),
    );
    return this.cert(name);
  }

  /** A certificate signed by `issuer` with the given extension file text. */
  issue(name: string, issuer: string, extensions: string): X509Certificate {
    this.#key(name);
    this.#ssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    writeFileSync(this.file(`${name}.ext`), extensions);
    this.#ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer}.pem`,
      '-CAkey',
      `${issuer}.key`,
      '-CAcreateserial',
      '-days',
      '10',
      '-out',
      `${name}.pem`,
      '-extfile',
      `${name}.ext`,
    );
    return this.cert(name);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  #key(name: string): void {
    this.#ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  }

  #ssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  }
}

/**
 * Re-signs certificate `name` with `issuer`'s key after `mutate` edits its to-be-signed part: for
 * hostile certificates openssl will not make (a repeated extension, mismatched algorithms).
 * Returns the DER.
 */
export function resign(pki: TestPki, name: string, issuer: string, mutate: (tbs: TBSCertificate, cert: Certificate) => void): Buffer {
  const cert = AsnConvert.parse(pki.cert(name).raw, Certificate);
  mutate(cert.tbsCertificate, cert);
  cert.tbsCertificateRaw = undefined;
  const tbs = Buffer.from(AsnConvert.serialize(cert.tbsCertificate));
  const signature = sign('sha256', tbs, readFileSync(pki.file(`${issuer}.key`)));
  cert.signatureValue = new Uint8Array(signature).buffer;
  return Buffer.from(AsnConvert.serialize(cert));
}
