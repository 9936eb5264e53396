// mTLS with X.509-SVIDs: the broker serves HTTPS and asks for a client certificate. The token
// endpoint opens a mandate for the agent whose X.509-SVID (verified against its trust domain's
// bundle) the handshake presented; the AuthZEN PDP (auth: mtls) answers only allowed enforcement
// points. Real certificates from the openssl CLI.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { CA_EXTENSIONS, leafExtensions, TestPki } from '../helpers/pki.js';

const pki = new TestPki();
const file = (name: string) => pki.file(name);
const leaf = (name: string, ca: string, spiffeId: string) => pki.issue(name, ca, leafExtensions(`URI:${spiffeId}`));
const der = (name: string) => pki.cert(name).raw.toString('base64url');
/** The keyUsage OID and a digitalSignature-only value smuggled into an earlier extension (what byte search found first). */
const FAKE_KEY_USAGE = '1.2.3.4=DER:06:03:55:1d:0f:04:04:03:02:07:80\n';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs over HTTPS to 127.0.0.1:port, presenting the named client certificate (if any). */
function post(port: number, path: string, client: string | undefined, contentType: string, body: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca: readFileSync(file('server.pem')),
        ...(client === undefined ? {} : { cert: readFileSync(file(`${client}.pem`)), key: readFileSync(file(`${client}.key`)) }),
        headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
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

const AGENT_ID = 'spiffe://mtls.example.org/agent/mtls-agent';
const PEP_ID = 'spiffe://mtls.example.org/pep/gateway';

before(() => {
  pki.selfSigned('ca', [...CA_EXTENSIONS, 'subjectAltName=URI:spiffe://mtls.example.org']);
  pki.selfSigned('evil-ca', [...CA_EXTENSIONS, 'subjectAltName=URI:spiffe://mtls.example.org']);
  pki.selfSigned('server', ['subjectAltName=IP:127.0.0.1']);
  leaf('agent', 'ca', AGENT_ID);
  leaf('other', 'ca', 'spiffe://mtls.example.org/agent/other');
  leaf('forged', 'evil-ca', AGENT_ID);
  leaf('pep', 'ca', PEP_ID);
  // Hostile leaves for our own identities: keyCertSign hidden behind smuggled keyUsage bytes.
  pki.issue('trap-agent', 'ca', FAKE_KEY_USAGE + leafExtensions(`URI:${AGENT_ID}`, 'digitalSignature,keyCertSign'));
  pki.issue('trap-pep', 'ca', FAKE_KEY_USAGE + leafExtensions(`URI:${PEP_ID}`, 'digitalSignature,keyCertSign'));
  // The agent's SVID below an intermediate, presented as a two-certificate chain in the handshake.
  const inter = pki.issue(
    'inter',
    'ca',
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\nsubjectAltName=URI:spiffe://mtls.example.org\n',
  );
  const deep = pki.issue('deep-leaf', 'inter', leafExtensions(`URI:${AGENT_ID}`));
  writeFileSync(file('deep.pem'), `${deep.toString()}${inter.toString()}`);
  copyFileSync(file('deep-leaf.key'), file('deep.key'));
  const caCert = pki.cert('ca');
  const jwk = caCert.publicKey.export({ format: 'jwk' });
  writeFileSync(file('bundle.json'), JSON.stringify({ keys: [{ ...jwk, use: 'x509-svid', x5c: [caCert.raw.toString('base64')] }] }));
});
after(() => pki.cleanup());

const tlsConfig = {
  server: { tls: { certFile: file('server.pem'), keyFile: file('server.key') } },
  identity: { trustDomains: [{ name: 'mtls.example.org', bundleFile: file('bundle.json') }] },
};

describe('X.509-SVID over mTLS at the token endpoint', () => {
  let t: TestApp;
  let port: number;

  before(async () => {
    t = await buildTestApp({ config: tlsConfig });
    await t.broker.agents.register({
      id: 'mtls-agent',
      displayName: 'mTLS agent',
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: AGENT_ID },
      ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(() => t.close());

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
    return post(port, '/oauth/token', client, 'application/x-www-form-urlencoded', body);
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

  test('a chain through an intermediate, presented in the handshake, opens the mandate', async () => {
    const res = await exchange('deep', der('deep-leaf'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });

  test('attack: a leaf with keyCertSign hidden behind smuggled keyUsage bytes is refused', async () => {
    const res = await exchange('trap-agent', der('trap-agent'));
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(String(res.body.error_description), /must not have keyCertSign/);
  });

  test('a valid X.509-SVID of an unregistered identity is refused', async () => {
    const res = await exchange('other', der('other'));
    assert.equal(res.status, 400);
    assert.match(String(res.body.error_description), /not a registered agent/);
  });
});

describe('AuthZEN PDP authenticated by mTLS', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await buildTestApp({ config: { ...tlsConfig, policy: { authzen: { auth: 'mtls', mtlsClients: [PEP_ID] } } } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(() => t.close());

  const evaluation = JSON.stringify({
    subject: { type: 'Agent', id: 'support-triage' },
    action: { name: 'call' },
    resource: { type: 'Tool', id: 'helpdesk.search_tickets' },
  });

  test('an allowed enforcement point gets an answer', async () => {
    const res = await post(port, '/access/v1/evaluation', 'pep', 'application/json', evaluation);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof res.body.decision, 'boolean');
  });

  test('no certificate is 401, a valid SVID not on the list is 403, an untrusted chain is 401', async () => {
    const none = await post(port, '/access/v1/evaluation', undefined, 'application/json', evaluation);
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'ERR_CLIENT_CERTIFICATE_REQUIRED');
    const notListed = await post(port, '/access/v1/evaluation', 'agent', 'application/json', evaluation);
    assert.equal(notListed.status, 403);
    assert.equal(notListed.body.error, 'ERR_FORBIDDEN');
    const forged = await post(port, '/access/v1/evaluation', 'forged', 'application/json', evaluation);
    assert.equal(forged.status, 401);
    const trap = await post(port, '/access/v1/evaluation', 'trap-pep', 'application/json', evaluation);
    assert.equal(trap.status, 401, 'a PEP leaf with keyCertSign behind smuggled keyUsage bytes');
    assert.equal(trap.body.error, 'ERR_CLIENT_CERTIFICATE_REQUIRED');
    assert.match(String(trap.body.message), /must not have keyCertSign/);
  });

  test('mtls without a TLS listener is a configuration error', async () => {
    await assert.rejects(
      buildTestApp({ config: { policy: { authzen: { auth: 'mtls', mtlsClients: [PEP_ID] } } } }),
      (err: unknown) => (err as { code?: string }).code === 'ERR_CONFIG_INVALID',
    );
  });
});
