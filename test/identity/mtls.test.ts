// X.509-SVID over mTLS at the token endpoint: the broker serves HTTPS, asks for a client
// certificate, and opens a mandate for the agent whose X.509-SVID (verified against its trust
// domain's bundle) the TLS handshake presented. Real certificates from the openssl CLI.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/mandates/token-exchange.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const dir = mkdtempSync(join(tmpdir(), 'mandate-mtls-'));
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
const file = (name: string) => join(dir, name);

function key(name: string): void {
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
}

function selfSigned(name: string, exts: string[]): void {
  key(name);
  ssl(
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
    ...exts.flatMap((e) => ['-addext', e]),
  );
}

function leaf(name: string, ca: string, spiffeId: string): void {
  key(name);
  ssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
  writeFileSync(
    file(`${name}.ext`),
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=URI:${spiffeId}\n`,
  );
  ssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '10',
    '-out',
    `${name}.pem`,
    '-extfile',
    `${name}.ext`,
  );
}

const der = (name: string) => new X509Certificate(readFileSync(file(`${name}.pem`))).raw.toString('base64url');

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe('X.509-SVID over mTLS at the token endpoint', () => {
  let t: TestApp;
  let port: number;
  const agentId = 'spiffe://mtls.example.org/agent/mtls-agent';

  before(async () => {
    const caExts = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
    selfSigned('ca', [...caExts, 'subjectAltName=URI:spiffe://mtls.example.org']);
    selfSigned('evil-ca', [...caExts, 'subjectAltName=URI:spiffe://mtls.example.org']);
    selfSigned('server', ['subjectAltName=IP:127.0.0.1']);
    leaf('agent', 'ca', agentId);
    leaf('other', 'ca', 'spiffe://mtls.example.org/agent/other');
    leaf('forged', 'evil-ca', agentId);
    const caCert = new X509Certificate(readFileSync(file('ca.pem')));
    const jwk = caCert.publicKey.export({ format: 'jwk' });
    writeFileSync(file('bundle.json'), JSON.stringify({ keys: [{ ...jwk, use: 'x509-svid', x5c: [caCert.raw.toString('base64')] }] }));
    t = await buildTestApp({
      config: {
        server: { tls: { certFile: file('server.pem'), keyFile: file('server.key') } },
        identity: { trustDomains: [{ name: 'mtls.example.org', bundleFile: file('bundle.json') }] },
      },
    });
    await t.broker.agents.register({
      id: 'mtls-agent',
      displayName: 'mTLS agent',
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: agentId },
      ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function exchange(client: string | undefined, subjectToken: string): Promise<Reply> {
    const body = new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: TOKEN_TYPE.x509Svid,
      authorization_details: JSON.stringify([
        {
          type: 'mandate',
          purpose: 'mTLS test',
          taskType: 'support.triage',
          environment: 'production',
          ttlSeconds: 300,
          tools: [{ tool: 'helpdesk.search_tickets' }],
          delegable: false,
        },
      ]),
    }).toString();
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/oauth/token',
          method: 'POST',
          ca: readFileSync(file('server.pem')),
          ...(client === undefined ? {} : { cert: readFileSync(file(`${client}.pem`)), key: readFileSync(file(`${client}.key`)) }),
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  test('the agent presenting its X.509-SVID gets a mandate token', async () => {
    const res = await exchange('agent', der('agent'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = JSON.parse(Buffer.from(String(res.body.access_token).split('.')[1] ?? '', 'base64url').toString());
    assert.equal(claims.sub, 'mtls-agent');
  });

  test('without a client certificate the X.509 subject is refused', async () => {
    const res = await exchange(undefined, der('agent'));
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_request');
  });

  test('a subject token naming another certificate than the connection presented is refused', async () => {
    const res = await exchange('other', der('agent'));
    assert.equal(res.status, 400);
    assert.match(String(res.body.error_description), /not the client certificate/);
  });

  test('a certificate for the same SPIFFE ID from an untrusted CA is refused', async () => {
    const res = await exchange('forged', der('forged'));
    assert.equal(res.status, 400);
    assert.match(String(res.body.error_description), /authority|chain/);
  });

  test('a valid X.509-SVID of an unregistered identity is refused', async () => {
    const res = await exchange('other', der('other'));
    assert.equal(res.status, 400);
    assert.match(String(res.body.error_description), /not a registered agent/);
  });
});
