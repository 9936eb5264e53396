// Trust anchors with fakes we control: a SPIFFE bundle endpoint and an OIDC workload issuer served
// over real HTTP, bundle files, several trust domains at once, and proof verification against them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { ProofVerifier } from '../../src/identity/proofs.js';
import { OidcIssuer, type SpiffeBundleDocument, TrustDomain, TrustStore } from '../../src/identity/trust.js';
import { systemClock } from '../../src/lib/clock.js';

const AUD = 'https://mandate.test';

async function esKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid } as JWK };
}

function serve(handler: (path: string) => unknown): Promise<{ server: Server; url: string }> {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const body = handler(req.url ?? '/');
      if (body === undefined) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }));
  });
}

const svid = (key: CryptoKey, kid: string, sub: string, aud: string | string[] = AUD) =>
  new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setSubject(sub).setAudience(aud).setExpirationTime('5m').sign(key);

describe('SPIFFE bundle endpoint', () => {
  let bundle: SpiffeBundleDocument | undefined;
  let endpoint: { server: Server; url: string };
  before(async () => {
    endpoint = await serve(() => bundle);
  });
  after(() => endpoint.server.close());

  test('loads jwt-svid keys, follows rotations by spiffe_sequence, ignores older bundles and x509 keys', async () => {
    const a = await esKey('a');
    const b = await esKey('b');
    const x509 = await esKey('x');
    bundle = {
      keys: [
        { ...a.jwk, use: 'jwt-svid' },
        { ...x509.jwk, use: 'x509-svid' },
      ],
      spiffe_sequence: 1,
      spiffe_refresh_hint: 60,
    };
    const domain = new TrustDomain({
      name: 'prod.example.org',
      source: { kind: 'url', url: endpoint.url },
      algorithms: ['ES256'],
      singleAudience: true,
      refreshSeconds: 300,
    });
    assert.throws(() => domain.key('a'), /not loaded/);
    assert.equal(await domain.refresh(), 60_000, 'the refresh hint sets the next refresh');
    assert.ok(domain.key('a'));
    assert.equal(domain.key('x'), undefined, 'x509-svid keys never verify JWT-SVIDs');
    bundle = { keys: [{ ...b.jwk, use: 'jwt-svid' }], spiffe_sequence: 2 };
    assert.equal(await domain.refresh(), 300_000, 'no hint: the configured interval');
    assert.equal(domain.key('a'), undefined);
    assert.ok(domain.key('b'));
    assert.equal(domain.sequence, 2);
    bundle = { keys: [{ ...a.jwk, use: 'jwt-svid' }], spiffe_sequence: 1 };
    await domain.refresh();
    assert.equal(domain.key('a'), undefined, 'an older sequence cannot roll keys back');
    bundle = undefined;
    await domain.refresh();
    assert.ok(domain.key('b'), 'a failed refresh keeps the last good keys');
    assert.match(domain.lastError ?? '', /503/);
  });
});

describe('proof verification across trust domains and issuers', () => {
  let dir: string;
  let issuerServer: { server: Server; url: string };
  let trust: TrustStore;
  let proofs: ProofVerifier;
  let prod: Awaited<ReturnType<typeof esKey>>;
  let ci: Awaited<ReturnType<typeof esKey>>;
  let oidc: { privateKey: CryptoKey; jwk: JWK };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mandate-trust-'));
    prod = await esKey('prod-1');
    ci = await esKey('ci-1');
    const rsa = await generateKeyPair('RS256', { extractable: true });
    oidc = { privateKey: rsa.privateKey, jwk: { ...(await exportJWK(rsa.publicKey)), kid: 'k8s-1', alg: 'RS256' } };
    issuerServer = await serve((path) => {
      if (path === '/.well-known/openid-configuration') return { issuer: issuerServer.url, jwks_uri: `${issuerServer.url}/keys` };
      if (path === '/keys') return { keys: [oidc.jwk] };
      return undefined;
    });
    writeFileSync(join(dir, 'prod.json'), JSON.stringify({ keys: [{ ...prod.jwk, use: 'jwt-svid' }] }));
    writeFileSync(join(dir, 'ci.json'), JSON.stringify({ keys: [{ ...ci.jwk, use: 'jwt-svid' }] }));
    trust = new TrustStore();
    for (const name of ['prod', 'ci']) {
      trust.addDomain(
        new TrustDomain({
          name: `${name}.example.org`,
          source: { kind: 'file', path: join(dir, `${name}.json`) },
          algorithms: ['ES256'],
          singleAudience: true,
          refreshSeconds: 300,
        }),
      );
    }
    trust.addWorkloadIssuer(new OidcIssuer({ issuer: issuerServer.url, audience: AUD, algorithms: ['RS256'], jwks: 'discover' }));
    await trust.start();
    proofs = new ProofVerifier({ trust, clock: systemClock, audience: AUD, leewaySeconds: 30 });
  });
  after(() => {
    trust.stop();
    issuerServer.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a JWT-SVID of each configured domain verifies with its own bundle', async () => {
    const p = await proofs.verify(await svid(prod.privateKey, 'prod-1', 'spiffe://prod.example.org/agent/a'));
    assert.deepEqual(p.identity, {
      kind: 'spiffe',
      key: 'spiffe:spiffe://prod.example.org/agent/a',
      spiffeId: 'spiffe://prod.example.org/agent/a',
      trustDomain: 'prod.example.org',
    });
    const c = await proofs.verify(await svid(ci.privateKey, 'ci-1', 'spiffe://ci.example.org/job/b'));
    assert.equal(c.identity.kind === 'spiffe' && c.identity.trustDomain, 'ci.example.org');
  });

  test('attack: an SVID claiming one trust domain signed by another domain key is refused', async () => {
    await assert.rejects(
      proofs.verify(await svid(ci.privateKey, 'ci-1', 'spiffe://prod.example.org/agent/a')),
      /kid is not in the bundle of "prod.example.org"/,
    );
    await assert.rejects(proofs.verify(await svid(ci.privateKey, 'prod-1', 'spiffe://prod.example.org/agent/a')), /signature is invalid/);
  });

  test('an OIDC workload token verifies via discovery; identity is iss + sub', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k8s-1' })
      .setIssuer(issuerServer.url)
      .setSubject('system:serviceaccount:ops:remediation')
      .setAudience(AUD)
      .setExpirationTime('5m')
      .sign(oidc.privateKey);
    const p = await proofs.verify(token);
    assert.deepEqual(p.identity, {
      kind: 'oidc',
      key: `oidc:${issuerServer.url} system:serviceaccount:ops:remediation`,
      issuer: issuerServer.url,
      subject: 'system:serviceaccount:ops:remediation',
    });
  });

  test('attack: OIDC workload tokens with the wrong audience, an unlisted alg or an unknown issuer are refused', async () => {
    const base = () => new SignJWT({}).setIssuer(issuerServer.url).setSubject('s').setExpirationTime('5m');
    await assert.rejects(
      proofs.verify(await base().setProtectedHeader({ alg: 'RS256', kid: 'k8s-1' }).setAudience('other').sign(oidc.privateKey)),
      /aud/,
    );
    await assert.rejects(
      proofs.verify(
        await base()
          .setProtectedHeader({ alg: 'HS256' })
          .setAudience(AUD)
          .sign(new TextEncoder().encode('secret-secret-secret-secret-32b')),
      ),
      /alg "HS256" is not allowed/,
    );
    const stranger = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://stranger.example')
      .setSubject('s')
      .setAudience(AUD)
      .setExpirationTime('5m')
      .sign(oidc.privateKey);
    await assert.rejects(proofs.verify(stranger), /neither a JWT-SVID nor a token of a trusted workload issuer/);
  });

  test('a domain whose bundle cannot be loaded refuses its SVIDs (fail closed)', async () => {
    const broken = new TrustStore();
    broken.addDomain(
      new TrustDomain({
        name: 'prod.example.org',
        source: { kind: 'file', path: join(dir, 'missing.json') },
        algorithms: ['ES256'],
        singleAudience: true,
        refreshSeconds: 300,
      }),
    );
    await broken.start();
    broken.stop();
    const v = new ProofVerifier({ trust: broken, clock: systemClock, audience: AUD, leewaySeconds: 30 });
    await assert.rejects(v.verify(await svid(prod.privateKey, 'prod-1', 'spiffe://prod.example.org/agent/a')), /not loaded/);
  });
});
