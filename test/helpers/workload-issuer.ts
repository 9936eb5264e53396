// Test fixture: a fake Kubernetes-style OIDC workload token issuer we control, served over HTTP
// with discovery (/.well-known/openid-configuration) and a JWKS of one RS256 key (kid sa-1).
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

export interface WorkloadIssuer {
  readonly url: string;
  /** A fresh workload token (audience `mandate`, 10 minutes, a new jti) for `sub`, with extra claims. */
  token(o: { sub: string; aud?: string; jti?: string; claims?: JWTPayload }): Promise<string>;
  close(): Promise<void>;
}

export async function startWorkloadIssuer(): Promise<WorkloadIssuer> {
  const pair = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'sa-1', alg: 'RS256', use: 'sig' };
  let url = '';
  const server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer: url, jwks_uri: `${url}/openid/v1/jwks` }
        : req.url === '/openid/v1/jwks'
          ? { keys: [jwk] }
          : undefined;
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token: (o) =>
      new SignJWT(o.claims ?? {})
        .setProtectedHeader({ alg: 'RS256', kid: 'sa-1' })
        .setIssuer(url)
        .setSubject(o.sub)
        .setAudience(o.aud ?? 'mandate')
        .setJti(o.jti ?? randomUUID())
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(pair.privateKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
