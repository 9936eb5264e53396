// DPoP at /mcp over real HTTP: the server nonce a resource demands (RFC 9449 §9, bound to the replica
// that issued it) and the `htu` comparison against the URI the router matched (RFC 9449 §4.3 check 9),
// never the raw request target. Requests are written with node:http so the request target reaches
// the broker byte for byte (fetch would normalise `..` away). Adversarial targets: absolute-form,
// percent-encoded path, dot segments, query string.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { handDpopProof, ath as tokenHash } from '../identity/helpers.js';
import { type GatewayHarness, startGateway, TESTER } from './harness.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

describe('DPoP at /mcp: replica-bound nonces and the matched URI', () => {
  let h: GatewayHarness;
  let keyPair: CryptoKeyPair;
  let token: string;
  let mandateId: string;
  let port: number;

  before(async () => {
    h = await startGateway();
    port = Number(new URL(h.base).port);
    keyPair = await oauth.generateKeyPair('ES256');
    const res = await h.open(
      TESTER.spiffeId,
      {
        type: 'mandate',
        purpose: 'dpop nonce and htu',
        taskType: 'support.refund',
        environment: 'production',
        ttlSeconds: 300,
        tools: [{ tool: 'helpdesk.search_tickets' }],
        delegable: false,
      },
      oauth.DPoP(h.client, keyPair),
    );
    assert.equal(res.token_type.toLowerCase(), 'dpop');
    token = res.access_token;
    mandateId = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).mandate;
  });
  after(() => h?.close());

  /** One raw HTTP request; `target` is written as the request target exactly as given. */
  const send = (method: string, target: string, headers: Record<string, string>, body = ''): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: target,
          headers: { host: `127.0.0.1:${port}`, 'content-length': Buffer.byteLength(body), ...headers },
        },
        (res) => {
          let data = '';
          res.on('data', (c) => {
            data += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
  const mcpHeaders = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-11-25',
  };

  /** POST to /mcp (or another target) with a proof for `htu`; nonce from the broker unless given. */
  const call = async (target: string, htu: string, nonce: string | null = h.broker.identity.dpop.nonce()) =>
    send(
      'POST',
      target,
      {
        ...mcpHeaders,
        authorization: `DPoP ${token}`,
        dpop: await handDpopProof(keyPair, { htm: 'POST', htu, ath: tokenHash(token), ...(nonce === null ? {} : { nonce }) }),
      },
      ping,
    );

  const accepted = (a: Answer) => assert.notEqual(a.status, 401, `refused: ${a.status} ${a.headers['www-authenticate']} ${a.body}`);
  const refusedFor = (a: Answer, reason: RegExp) => {
    assert.equal(a.status, 401, a.body);
    assert.match(String(a.headers['www-authenticate']), reason);
  };

  test('a proof without a nonce gets a DPoP use_dpop_nonce challenge with this replica’s nonce; with it, the call passes', async () => {
    const first = await call('/mcp', `${h.base}/mcp`, null);
    assert.equal(first.status, 401);
    assert.match(String(first.headers['www-authenticate']), /DPoP error="use_dpop_nonce"/);
    assert.doesNotMatch(String(first.headers['www-authenticate']), /Bearer error=/, 'the token itself was not refused');
    assert.equal(JSON.parse(first.body).error, 'use_dpop_nonce');
    const nonce = String(first.headers['dpop-nonce']);
    assert.match(nonce, /^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    accepted(await call('/mcp', `${h.base}/mcp`, nonce));
  });

  test('attack: a nonce this replica did not issue is refused with a fresh one', async () => {
    const forged = `${h.broker.identity.dpop.nonce().split('.')[0]}.${'A'.repeat(22)}`;
    const r = await call('/mcp', `${h.base}/mcp`, forged);
    refusedFor(r, /DPoP error="use_dpop_nonce"/);
    assert.notEqual(r.headers['dpop-nonce'], forged);
  });

  test('attack: the same proof twice is refused the second time (in-memory replay cache)', async () => {
    const proof = await handDpopProof(keyPair, {
      htm: 'POST',
      htu: `${h.base}/mcp`,
      ath: tokenHash(token),
      nonce: h.broker.identity.dpop.nonce(),
    });
    const headers = { ...mcpHeaders, authorization: `DPoP ${token}`, dpop: proof };
    // The token endpoint (nonces optional there by default) recorded its nonce-less proof in the store.
    const stored = async () => (await h.broker.store.query('SELECT proof_key FROM dpop_proofs')).length;
    const before = await stored();
    accepted(await send('POST', '/mcp', headers, ping));
    refusedFor(await send('POST', '/mcp', headers, ping), /already been used/);
    assert.equal(await stored(), before, 'proofs carrying our nonce never reach the store');
  });

  test('htu: the query string of the request and of the proof is ignored', async () => {
    accepted(await call('/mcp?x=1', `${h.base}/mcp`));
    accepted(await call('/mcp', `${h.base}/mcp?y=2#f`));
  });

  test('htu: a percent-encoded target is compared as the path the router matched', async () => {
    // find-my-way routes `/%6Dcp` to `/mcp`: the proof must name /mcp (or an equivalent spelling).
    accepted(await call('/%6Dcp', `${h.base}/mcp`));
    accepted(await call('/mcp', `${h.base}/%6dcp`));
    refusedFor(await call('/%6Dcp', `${h.base}/other`), /htu does not match/);
  });

  test('attack: an absolute-form request target does not choose the host the proof is compared with', async () => {
    // The request reaches this broker's /mcp; a proof made for the host named in the target is refused.
    refusedFor(await call('http://evil.example/mcp', 'http://evil.example/mcp'), /htu does not match/);
    accepted(await call('http://evil.example/mcp', `${h.base}/mcp`));
  });

  test('attack: a proof whose htu holds dot segments or encoded separators never matches', async () => {
    for (const htu of [`${h.base}/x/../mcp`, `${h.base}/x/%2e%2e/mcp`, `${h.base}/./mcp`, `${h.base}/mcp%2F`, `${h.base}//mcp`]) {
      refusedFor(await call('/mcp', htu), /htu does not match/);
    }
    refusedFor(await call('/mcp', `${h.base.replace('127.0.0.1', 'localhost')}/mcp`), /htu does not match/);
    refusedFor(await call('/mcp', `${h.base}/MCP`), /htu does not match/);
  });

  test('attack: on the agent API a dotted or encoded-separator path is refused before any proof is compared', async () => {
    const complete = async (target: string, htu: string) =>
      send(
        'POST',
        target,
        {
          'content-type': 'application/json',
          authorization: `DPoP ${token}`,
          dpop: await handDpopProof(keyPair, { htm: 'POST', htu, ath: tokenHash(token), nonce: h.broker.identity.dpop.nonce() }),
        },
        '{}',
      );
    // `%2E%2E` reaches the route as id ".." (the router decodes it); as a URI it means "up one".
    const dotted = await complete('/mandate/v1/mandates/%2E%2E/complete', `${h.base}/mandate/v1/mandates/%2E%2E/complete`);
    assert.equal(dotted.status, 401, dotted.body);
    assert.match(dotted.body, /not in normal form/);
    const slashed = await complete(`/mandate/v1/mandates/a%2Fb/complete`, `${h.base}/mandate/v1/mandates/a%2Fb/complete`);
    assert.equal(slashed.status, 401, slashed.body);
    // The proof names the mandate route it is sent to: a proof for another mandate id is refused.
    const other = await complete(`/mandate/v1/mandates/${mandateId}/complete`, `${h.base}/mandate/v1/mandates/m_other/complete`);
    assert.equal(other.status, 401, other.body);
    assert.match(other.body, /htu does not match/);
    // And the right one completes the mandate (query ignored, encoded unreserved characters decoded).
    const ok = await complete(
      `/mandate/v1/mandates/${mandateId}/complete?via=test`,
      `${h.base}/mandate/v1/mandates/${mandateId}/%63omplete`,
    );
    assert.equal(ok.status, 200, ok.body);
  });
});
