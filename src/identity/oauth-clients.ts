// Interactive OAuth clients (MCP Inspector, desktop assistants, IDEs): public clients that use the
// authorization code grant with PKCE. Two ways a client becomes known (MCP 2026-07-28 "Client
// Registration"):
//   - RFC 7591 dynamic registration: the broker stores the metadata and issues an opaque client_id;
//     only public clients (`token_endpoint_auth_method: none`) are registered.
//   - Client ID Metadata Documents: the client_id is an https URL of a JSON document the broker
//     fetches on demand, with SSRF protections (below), a size and time limit, and a cache.
// Either way a redirect URI is https, or http on a loopback host (RFC 8252 §7.3), and the
// authorization request must name one of the client's redirect URIs exactly.
//
// SSRF: the document URL must be https with a path, no credentials and no fragment. The host is
// resolved once and every address must be public (loopback and private ranges only when
// `allowPrivateNetworks`; link-local — cloud metadata services — never); the connection is made to
// the checked address (a custom `lookup`), so a DNS answer cannot change between check and use.
// No redirects are followed.
import { randomBytes } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { OAuthError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';

export interface OAuthClient {
  readonly clientId: string;
  readonly clientName: string;
  readonly clientUri?: string;
  readonly redirectUris: readonly string[];
  readonly source: 'registration' | 'metadata-document';
}

export interface OAuthClientOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly registration: { readonly enabled: boolean; readonly maxClients: number };
  readonly metadataDocuments: {
    readonly enabled: boolean;
    readonly timeoutMs: number;
    readonly maxBytes: number;
    readonly cacheSeconds: number;
    readonly allowPrivateNetworks: boolean;
    readonly caFile?: string | undefined;
  };
}

const invalidMetadata = (message: string) => new OAuthError('OAUTH_INVALID_CLIENT_METADATA', message);
const invalidRedirect = (message: string) => new OAuthError('OAUTH_INVALID_REDIRECT_URI', message);
const invalidClient = (message: string) => new OAuthError('OAUTH_INVALID_CLIENT', message);

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * A redirect URI a public client may register: https, or http on a loopback host (RFC 8252 §7.3;
 * OAuth 2.1 §8.4.2); absolute, without a fragment (RFC 6749 §3.1.2) or credentials. Returns the
 * reason when it is not acceptable.
 */
export function redirectUriProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.hash !== '' || value.includes('#')) return 'has a fragment';
  if (url.username !== '' || url.password !== '') return 'has credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  return 'must be https, or http on a loopback host (127.0.0.1, [::1], localhost)';
}

function redirectUris(value: unknown, where: string, error: (m: string) => OAuthError): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 20 || !value.every((v) => typeof v === 'string' && v.length <= 2048)) {
    throw error(`${where}: redirect_uris must be a non-empty array of at most 20 URLs`);
  }
  for (const uri of value as string[]) {
    const problem = redirectUriProblem(uri);
    if (problem !== undefined) throw error(`${where}: redirect URI ${JSON.stringify(uri.slice(0, 200))} ${problem}`);
  }
  return value as string[];
}

/** RFC 7591 §2 client metadata: what a public client may send (unknown members are ignored, §3.1). */
const registrationSchema = z.object({
  redirect_uris: z.unknown(),
  client_name: z.string().min(1).max(200).optional(),
  client_uri: z.url().max(2048).optional(),
  token_endpoint_auth_method: z.string().max(64).optional(),
  grant_types: z.array(z.string().max(200)).max(10).optional(),
  response_types: z.array(z.string().max(64)).max(10).optional(),
  scope: z.string().max(1024).optional(),
  software_id: z.string().max(255).optional(),
  software_version: z.string().max(255).optional(),
});

/** The Client ID Metadata Document members the broker reads (draft-ietf-oauth-client-id-metadata-document §4). */
const documentSchema = z.object({
  client_id: z.string(),
  client_name: z.string().min(1).max(200),
  client_uri: z.string().max(2048).optional(),
  redirect_uris: z.unknown(),
  token_endpoint_auth_method: z.string().max(64).optional(),
});

/** Addresses a metadata document may never be fetched from, and those only allowed with `allowPrivateNetworks`. */
const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');
LINK_LOCAL.addAddress('fd00:ec2::254', 'ipv6');
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  NON_PUBLIC.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['2001:db8::', 32],
] as const)
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');

/** Why the broker must not connect to `address` (undefined: it may). IPv4-mapped IPv6 is checked as IPv4. */
export function addressProblem(address: string, allowPrivateNetworks: boolean): string | undefined {
  const ip = ipv4Mapped(address) ?? address;
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (LINK_LOCAL.check(ip, family)) return `${address} is a link-local address`;
  if (!allowPrivateNetworks && NON_PUBLIC.check(ip, family)) return `${address} is not a public address`;
  return undefined;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address, in either spelling (`::ffff:127.0.0.1`, `::ffff:7f00:1`). */
function ipv4Mapped(address: string): string | undefined {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (dotted !== undefined) return dotted;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex?.[1] === undefined || hex[2] === undefined) return undefined;
  const hi = Number.parseInt(hex[1], 16);
  const lo = Number.parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

interface Cached {
  readonly client: OAuthClient | OAuthError;
  readonly until: number;
}

export class OAuthClients {
  readonly #cache = new LRUCache<string, Cached>({ max: 1000 });
  readonly #ca: string | undefined;

  constructor(private readonly o: OAuthClientOptions) {
    this.#ca = o.metadataDocuments.caFile === undefined ? undefined : readFileSync(o.metadataDocuments.caFile, 'utf8');
  }

  /** RFC 7591 §3: registers a public client; the response is the registered metadata (§3.2.1). */
  async register(body: unknown): Promise<Record<string, unknown>> {
    if (!this.o.registration.enabled) throw invalidMetadata('dynamic client registration is disabled; use a Client ID Metadata Document');
    const parsed = registrationSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalidMetadata(`${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    const m = parsed.data;
    const uris = redirectUris(m.redirect_uris, 'registration', invalidRedirect);
    // Only public clients: a confidential client would need a secret, and Mandate keeps none.
    if (m.token_endpoint_auth_method !== undefined && m.token_endpoint_auth_method !== 'none') {
      throw invalidMetadata(`token_endpoint_auth_method must be "none" (public client with PKCE); got "${m.token_endpoint_auth_method}"`);
    }
    for (const g of m.grant_types ?? []) {
      if (g !== 'authorization_code' && g !== 'refresh_token') throw invalidMetadata(`grant type "${g}" cannot be registered`);
    }
    for (const r of m.response_types ?? []) if (r !== 'code') throw invalidMetadata(`response type "${r}" cannot be registered`);
    const [count] = await this.o.store.query<{ n: number }>('SELECT COUNT(*) AS n FROM oauth_clients');
    if (Number(count?.n ?? 0) >= this.o.registration.maxClients) throw invalidMetadata('the registration limit of this server is reached');
    const clientId = `mcl_${randomBytes(18).toString('base64url')}`;
    const now = this.o.clock.now();
    const metadata = {
      client_id: clientId,
      client_id_issued_at: Math.floor(now / 1000),
      client_name: m.client_name ?? 'unnamed client',
      ...(m.client_uri === undefined ? {} : { client_uri: m.client_uri }),
      redirect_uris: uris,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(m.software_id === undefined ? {} : { software_id: m.software_id }),
      ...(m.software_version === undefined ? {} : { software_version: m.software_version }),
    };
    await this.o.store.run('INSERT INTO oauth_clients (client_id, metadata, created_at) VALUES (?, ?, ?)', [
      clientId,
      JSON.stringify(metadata),
      now,
    ]);
    return metadata;
  }

  /** The client `clientId` names; throws `invalid_client` when it is unknown or its document is unacceptable. */
  async resolve(clientId: string): Promise<OAuthClient> {
    if (clientId.startsWith('https://')) return this.#document(clientId);
    if (!/^mcl_[A-Za-z0-9_-]{24}$/.test(clientId)) throw invalidClient('unknown client_id');
    const [row] = await this.o.store.query<{ metadata: string }>('SELECT metadata FROM oauth_clients WHERE client_id = ?', [clientId]);
    if (row === undefined) throw invalidClient('unknown client_id');
    const m = JSON.parse(row.metadata) as { client_name: string; client_uri?: string; redirect_uris: string[] };
    return {
      clientId,
      clientName: m.client_name,
      ...(m.client_uri === undefined ? {} : { clientUri: m.client_uri }),
      redirectUris: m.redirect_uris,
      source: 'registration',
    };
  }

  async #document(clientId: string): Promise<OAuthClient> {
    if (!this.o.metadataDocuments.enabled) throw invalidClient('Client ID Metadata Documents are not accepted by this server');
    const now = this.o.clock.now();
    const cached = this.#cache.get(clientId);
    if (cached !== undefined && cached.until > now) {
      if (cached.client instanceof OAuthError) throw cached.client;
      return cached.client;
    }
    let result: { client: OAuthClient; maxAge: number | undefined };
    try {
      result = await this.#fetchDocument(clientId);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      // A refusal is remembered briefly, so a client_id cannot make the broker fetch on every request.
      this.#remember(clientId, err, 30);
      throw err;
    }
    this.#remember(
      clientId,
      result.client,
      Math.min(result.maxAge ?? this.o.metadataDocuments.cacheSeconds, this.o.metadataDocuments.cacheSeconds),
    );
    return result.client;
  }

  #remember(clientId: string, client: OAuthClient | OAuthError, seconds: number): void {
    if (seconds <= 0) return;
    this.#cache.set(clientId, { client, until: this.o.clock.now() + seconds * 1000 });
  }

  async #fetchDocument(clientId: string): Promise<{ client: OAuthClient; maxAge: number | undefined }> {
    let url: URL;
    try {
      url = new URL(clientId);
    } catch {
      throw invalidClient('client_id is not a valid URL');
    }
    // draft-ietf-oauth-client-id-metadata-document §3: https, a path, no fragment, no credentials, no dot segments.
    if (url.protocol !== 'https:' || url.pathname === '/' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw invalidClient('a URL client_id must be https with a path, without fragment or credentials');
    }
    if (url.href !== clientId || /\/\.\.?(\/|$)/.test(clientId)) throw invalidClient('a URL client_id must be in normalized form');
    const { body, maxAge } = await this.#get(url);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw invalidClient('the client metadata document is not JSON');
    }
    const parsed = documentSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalidClient(`the client metadata document: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    const d = parsed.data;
    if (d.client_id !== clientId) throw invalidClient('the client metadata document names another client_id than its URL');
    if (d.token_endpoint_auth_method !== undefined && d.token_endpoint_auth_method !== 'none') {
      throw invalidClient('only public clients (token_endpoint_auth_method "none") are accepted');
    }
    const uris = redirectUris(d.redirect_uris, 'the client metadata document', invalidClient);
    return {
      client: {
        clientId,
        clientName: d.client_name,
        ...(d.client_uri === undefined ? {} : { clientUri: d.client_uri }),
        redirectUris: uris,
        source: 'metadata-document',
      },
      maxAge,
    };
  }

  /** One GET with the SSRF, size and time limits above. */
  #get(url: URL): Promise<{ body: string; maxAge: number | undefined }> {
    const limits = this.o.metadataDocuments;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) {
      const problem = addressProblem(host, limits.allowPrivateNetworks);
      if (problem !== undefined) return Promise.reject(invalidClient(`the client metadata document cannot be fetched: ${problem}`));
    }
    let refused: string | undefined;
    const lookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, '', 0);
        const list = addresses as unknown as LookupAddress[];
        for (const a of list) {
          const problem = addressProblem(a.address, limits.allowPrivateNetworks);
          if (problem !== undefined) {
            refused = `${hostname} resolves to ${problem.replace(`${a.address} is `, '')} (${a.address})`;
            return callback(Object.assign(new Error(refused), { code: 'EADDRNOTALLOWED' }), '', 0);
          }
        }
        const first = list[0];
        if (first === undefined) return callback(new Error('no address'), '', 0);
        // `all: true` callers (happy eyeballs) get the checked list; others the first address.
        if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
        return callback(null, first.address, first.family);
      });
    };
    return new Promise((resolve, reject) => {
      const fail = (message: string) => reject(invalidClient(`the client metadata document cannot be fetched: ${message}`));
      const req = httpsRequest(
        url,
        {
          method: 'GET',
          headers: { accept: 'application/json' },
          lookup,
          timeout: limits.timeoutMs,
          ...(this.#ca === undefined ? {} : { ca: this.#ca }),
          agent: false,
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return fail(
              `HTTP ${res.statusCode}${res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed)' : ''}`,
            );
          }
          const type = res.headers['content-type'] ?? '';
          if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type)) {
            res.resume();
            return fail(`content type ${JSON.stringify(type)} is not JSON`);
          }
          const declared = Number(res.headers['content-length'] ?? '0');
          if (declared > limits.maxBytes) {
            req.destroy();
            return fail(`it is larger than ${limits.maxBytes} bytes`);
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > limits.maxBytes) {
              req.destroy();
              fail(`it is larger than ${limits.maxBytes} bytes`);
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            if (size > limits.maxBytes) return;
            resolve({ body: Buffer.concat(chunks).toString('utf8'), maxAge: maxAgeOf(res.headers['cache-control']) });
          });
          res.on('error', (err) => fail(err.message));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        fail(`no complete answer within ${limits.timeoutMs} ms`);
      }, limits.timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('timeout', () => {
        req.destroy();
        fail(`no answer within ${limits.timeoutMs} ms`);
      });
      req.on('error', (err) => fail(refused ?? (err as Error).message));
      req.end();
    });
  }
}

/** Seconds a response may be reused per its Cache-Control (0 for no-store/no-cache; undefined when unstated). */
function maxAgeOf(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  if (/\b(no-store|no-cache|private)\b/i.test(header)) return 0;
  const m = /\bmax-age=(\d+)/i.exec(header);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
