// The agent SDK with an OIDC workload token file as its identity (`oidcTokenFile`: a Kubernetes
// projected service-account token, a CI job's OIDC token), against a real broker that trusts a fake
// Kubernetes-style issuer we control (discovery and JWKS over HTTP). The file is read each time a
// proof is needed; an empty file or a token the broker has seen is a typed, clear failure.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Mandate, MandateAuthError, oidcTokenFile, textOf } from 'mandate/sdk';
import { type Running, startBroker } from '../identity/helpers.js';

const SUBJECT = 'system:serviceaccount:support:triage';

describe('agent SDK: oidcTokenFile', () => {
  let issuer: { server: Server; url: string };
  let key: CryptoKey;
  let b: Running;
  let dir: string;
  before(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'sa-1', alg: 'RS256', use: 'sig' };
    issuer = await new Promise((resolve) => {
      const server = createServer((req, res) => {
        const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
        const body =
          req.url === '/.well-known/openid-configuration'
            ? { issuer: url, jwks_uri: `${url}/openid/v1/jwks` }
            : req.url === '/openid/v1/jwks'
              ? { keys: [jwk] }
              : undefined;
        res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
      });
      server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }));
    });
    b = await startBroker({ config: { identity: { oidcIssuers: [{ issuer: issuer.url, audience: 'mandate', algorithms: ['RS256'] }] } } });
    await b.broker.agents.register({
      id: 'k8s-triage',
      displayName: 'Triage (Kubernetes)',
      owner: 'alice',
      environment: 'production',
      identity: { issuer: issuer.url, subject: SUBJECT },
      ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
      templates: {
        triage: { purpose: 'Read tickets', taskType: 'support.triage', ttlSeconds: 600, tools: [{ tool: 'helpdesk.search_tickets' }] },
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'mandate-sdk-oidc-'));
  });
  after(async () => {
    await b?.close();
    issuer?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const workloadToken = () =>
    new SignJWT({ kubernetes: { namespace: 'support' } })
      .setProtectedHeader({ alg: 'RS256', kid: 'sa-1' })
      .setIssuer(issuer.url)
      .setSubject(SUBJECT)
      .setAudience('mandate')
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(key);

  test('opens a mandate from a template with the token in a file, makes a governed call, completes', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, `${await workloadToken()}\n`);
    const m = await Mandate.open({ broker: b.base, identity: oidcTokenFile(path), template: 'triage' });
    assert.match(textOf(await m.call('helpdesk.search_tickets', { query: 'charged twice' })), /T-4821/);
    await m.complete();
    const mandate = await b.broker.mandates.get(m.id);
    assert.equal(mandate?.agentId, 'k8s-triage');
    assert.equal(mandate?.status, 'completed');
    // The kubelet has not rotated the file: the same token is a proof the broker has seen.
    const again = await Mandate.open({ broker: b.base, identity: oidcTokenFile(path), template: 'triage' }).catch((e: unknown) => e);
    assert.ok(again instanceof MandateAuthError, String(again));
    assert.equal(again.code, 'invalid_client');
  });

  test('an empty or missing token file fails before anything is sent, naming the file', async () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    await assert.rejects(Mandate.open({ broker: b.base, identity: oidcTokenFile(empty), template: 'triage' }), (err: Error) => {
      assert.match(err.message, /OIDC token file .*empty is empty/);
      return true;
    });
    await assert.rejects(Mandate.open({ broker: b.base, identity: oidcTokenFile(join(dir, 'absent')), template: 'triage' }), {
      code: 'ENOENT',
    });
  });
});
