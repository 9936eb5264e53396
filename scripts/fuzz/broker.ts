// The broker under fuzz, as its own process: a demo-like seeded broker on loopback (SQLite in a
// temp folder, rate limits raised so inputs reach the handlers) with one agent, one upstream MCP
// server (in this process) and valid credentials of every kind, which it prints for the fuzzer.
//
//   node --import tsx scripts/fuzz/broker.ts   → prints `READY {json}` on stdout, then serves until SIGTERM
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createBroker } from '../../src/broker.js';
import { buildConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { generateMasterKeySpec } from '../../src/secrets/index.js';
import { freePort } from '../../test/helpers/ports.js';
import { fuzzConfig } from './config.js';
import type { BrokerInfo } from './types.js';

/** A stateless streamable-HTTP MCP server with one read tool; it never echoes its arguments. */
async function startUpstream(): Promise<string> {
  const { McpServer } = await import('@modelcontextprotocol/sdk/server/mcp.js');
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { z } = await import('zod');
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      let parsed: unknown;
      try {
        parsed = body === '' ? undefined : JSON.parse(body);
      } catch {
        res.writeHead(400).end();
        return;
      }
      const mcp = new McpServer({ name: 'fuzz-upstream', version: '1' });
      mcp.registerTool(
        'lookup',
        {
          description: 'look one record up',
          inputSchema: { id: z.string().max(64), limit: z.number().int().min(1).max(10).optional() },
          annotations: { readOnlyHint: true },
        },
        () => ({ content: [{ type: 'text', text: '{"status":"open"}' }] }),
      );
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void transport.close());
      await mcp.connect(transport);
      await transport.handleRequest(req, res, parsed);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
}

async function main(): Promise<void> {
  // In memory when the machine has /dev/shm: every refusal and decision is a durable audit append,
  // and fsync on a shared disk, not the handlers, would otherwise bound the input rate.
  const dataDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'mandate-fuzz-'));
  const port = await freePort();
  const masterKey = generateMasterKeySpec('fuzz');
  const bootstrapToken = `fuzz-bootstrap-${randomBytes(24).toString('base64url')}`;
  const config = buildConfig(fuzzConfig(dataDir, port), {
    env: { MANDATE_MASTER_KEY: masterKey, MANDATE_BOOTSTRAP_TOKEN: bootstrapToken },
  });
  const broker = await createBroker(config);
  const app = await buildApp(broker);
  await app.listen({ host: '127.0.0.1', port });
  const base = `http://127.0.0.1:${port}`;

  const upstreamUrl = await startUpstream();
  await broker.upstreams.registry.create({ id: 'fz', transport: { type: 'http', url: upstreamUrl }, isolation: 'shared' });
  const spiffeId = `spiffe://${DEV_TRUST_DOMAIN}/agent/fuzz`;
  await broker.agents.register({
    id: 'fuzz-agent',
    displayName: 'fuzz',
    owner: 'alice',
    environment: 'production',
    identity: { spiffeId },
    ceiling: { tools: [{ tool: 'fz.lookup' }], delegable: true },
  });
  const svid = await broker.identity.devSpiffe?.mint({ spiffeId, audience: base, ttlSeconds: 4 * 3600 });
  if (svid === undefined) throw new Error('the fuzz broker needs the development SPIFFE authority (demo mode)');
  const authorizationDetails = JSON.stringify([
    {
      type: 'mandate',
      purpose: 'fuzzing',
      taskType: 'fuzz',
      environment: 'production',
      ttlSeconds: 3600,
      tools: [{ tool: 'fz.lookup' }],
      delegable: true,
    },
  ]);
  const exchange = async (dpop?: string) => {
    const res = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(dpop === undefined ? {} : { dpop }) },
      body: new URLSearchParams({
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: svid,
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: authorizationDetails,
      }),
    });
    const body = (await res.json()) as { access_token?: string };
    if (body.access_token === undefined) throw new Error(`token exchange failed: HTTP ${res.status} ${JSON.stringify(body)}`);
    return body.access_token;
  };
  const bearerToken = await exchange();
  const dpopKeys = await generateKeyPair('ES256', { extractable: true });
  const dpopPublic = await exportJWK(dpopKeys.publicKey);
  const proof = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: `${base}/oauth/token` })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: dpopPublic })
    .setIssuedAt()
    .sign(dpopKeys.privateKey);
  const dpopToken = await exchange(proof);
  const operatorToken = await broker.devIssuer?.mint({ sub: 'alice', roles: ['admin'], ttlSeconds: 4 * 3600 });
  if (operatorToken === undefined) throw new Error('the fuzz broker needs the development issuer (demo mode)');

  // Every private key the broker holds, so the fuzzer can tell if one ever appears in a response.
  const rows = await broker.store.query<{ kid: string; private_sealed: string }>('SELECT kid, private_sealed FROM signing_keys');
  const signingKeys = rows.map(
    (r) => (JSON.parse(broker.secrets.open(r.private_sealed, `signing_key:${r.kid}`).toString()) as { d: string }).d,
  );
  const fileKey = (name: string) => (JSON.parse(readFileSync(join(dataDir, name), 'utf8')) as { d: string }).d;
  const info: BrokerInfo = {
    base,
    pid: process.pid,
    dataDir,
    creds: {
      svid,
      bearerToken,
      dpopToken,
      dpopPrivateJwk: await exportJWK(dpopKeys.privateKey),
      operatorToken,
      bootstrapToken,
      authorizationDetails,
    },
    secrets: [
      masterKey.split(':')[1] ?? masterKey,
      bootstrapToken,
      ...signingKeys,
      fileKey('dev-spiffe.jwk.json'),
      fileKey('dev-issuer.jwk.json'),
    ],
  };
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
  const stop = () => {
    void app.close().finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

await main();
