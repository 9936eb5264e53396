// Pooled MCP clients to upstreams (src/upstreams/mcp-client: raw JSON-RPC, either protocol era). An upstream with `isolation: mandate` gets one session
// (and, for stdio, one process) per mandate, so no agent's session ever reaches state another
// mandate created; `shared` upstreams get one session for everyone. Sessions close when idle,
// when the pool is full (least recently used first), when their upstream changes, and when their
// mandate ends. The pool remembers which upstreams answered as legacy servers, so their later
// sessions skip the era probe; a remembered upstream that refuses the legacy handshake is probed
// at once, and a change of the upstream forgets it.
import type { CredentialInjector } from '../leases/injection.js';
import type { Clock } from '../lib/clock.js';
import { connectUpstream } from '../upstreams/connect.js';
import { type RequestOptions, UpstreamCallError, type UpstreamClient } from '../upstreams/mcp-client/index.js';
import type { UpstreamRegistry } from '../upstreams/registry.js';

export interface UpstreamPoolOptions {
  readonly registry: Pick<UpstreamRegistry, 'connection'>;
  /**
   * What to inject per mandate (src/leases/injection.ts). Absent: the upstream's static credential.
   * An upstream with a lease gets one session per mandate whatever its `isolation`.
   */
  readonly credentials?: CredentialInjector;
  readonly clock: Clock;
  readonly connectTimeoutMs: number;
  readonly idleMs: number;
  readonly maxSessions: number;
}

interface Entry {
  readonly upstream: string;
  readonly mandateId: string | undefined;
  client: Promise<UpstreamClient>;
  /** When the injected lease stops being valid: the session is reopened with a fresh one after it. */
  credentialExpiresAt: number | undefined;
  lastUsed: number;
  inFlight: number;
}

export class UpstreamPool {
  readonly #o: UpstreamPoolOptions;
  // Map iteration order is insertion order; touching an entry re-inserts it, so the first is the LRU.
  readonly #entries = new Map<string, Entry>();
  /** Upstreams whose last session negotiated the legacy era. */
  readonly #legacy = new Set<string>();
  /** Bumped when an upstream changes, so a connect begun before the change cannot record its era. */
  readonly #generation = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: UpstreamPoolOptions) {
    this.#o = options;
    this.#timer = setInterval(() => this.#sweep(), Math.max(1000, Math.min(options.idleMs, 60_000)));
    this.#timer.unref();
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Sends one request to `upstream` over the session for `mandateId` (opening it if needed) and
   * resolves with its result; throws UpstreamCallError (or the registry's error when the upstream
   * cannot be resolved). A session whose transport failed is dropped, so the next call opens a
   * fresh one; the failed call itself is never retried here.
   */
  async call(
    upstream: string,
    isolation: 'mandate' | 'shared',
    mandateId: string,
    method: string,
    params: Record<string, unknown>,
    opts: RequestOptions,
  ): Promise<Record<string, unknown>> {
    const entry = this.#acquire(upstream, isolation, mandateId);
    try {
      return await (await entry.client).request(method, params, opts);
    } finally {
      entry.inFlight--;
      entry.lastUsed = this.#o.clock.now();
    }
  }

  /** Runs `fn` with the session of `upstream` for `mandateId` (opening it if needed). */
  async use<T>(
    upstream: string,
    isolation: 'mandate' | 'shared',
    mandateId: string,
    fn: (client: UpstreamClient) => Promise<T>,
  ): Promise<T> {
    const entry = this.#acquire(upstream, isolation, mandateId);
    try {
      return await fn(await entry.client);
    } finally {
      entry.inFlight--;
      entry.lastUsed = this.#o.clock.now();
    }
  }

  /** The entry for this session, created if needed, marked most recently used and in flight. */
  #acquire(upstream: string, isolation: 'mandate' | 'shared', mandateId: string): Entry {
    const shared = isolation === 'shared' && this.#o.credentials?.perMandate(upstream) !== true;
    const key = shared ? `s\0${upstream}` : `m\0${upstream}\0${mandateId}`;
    let entry = this.#entries.get(key);
    // A session whose leased credential expired is not reused (if idle; a busy one is left to finish).
    if (entry !== undefined && entry.inFlight === 0 && entry.credentialExpiresAt !== undefined) {
      if (entry.credentialExpiresAt <= this.#o.clock.now()) {
        this.#drop(key, entry);
        entry = undefined;
      }
    }
    if (entry === undefined) {
      const created: Entry = {
        upstream,
        mandateId: shared ? undefined : mandateId,
        client: undefined as unknown as Promise<UpstreamClient>,
        credentialExpiresAt: undefined,
        lastUsed: this.#o.clock.now(),
        inFlight: 0,
      };
      created.client = this.#open(upstream, shared ? undefined : mandateId, key, created);
      entry = created;
      this.#entries.set(key, created);
      // A failed connect is forgotten, so the next call tries again (this one reports the failure).
      created.client.catch(() => this.#drop(key, created));
      this.#evictOverflow();
    } else {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    entry.lastUsed = this.#o.clock.now();
    entry.inFlight++;
    return entry;
  }

  /** Closes every session of an upstream (its transport or credential changed). */
  closeUpstream(upstream: string): void {
    this.#legacy.delete(upstream);
    this.#generation.set(upstream, (this.#generation.get(upstream) ?? 0) + 1);
    for (const [key, e] of this.#entries) if (e.upstream === upstream) this.#drop(key, e);
  }

  /** Closes every session opened for a mandate (it ended). */
  closeMandate(mandateId: string): void {
    for (const [key, e] of this.#entries) if (e.mandateId === mandateId) this.#drop(key, e);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    const all = [...this.#entries.entries()];
    this.#entries.clear();
    await Promise.all(all.map(([, e]) => e.client.then((c) => c.close()).catch(() => {})));
  }

  async #open(upstream: string, mandateId: string | undefined, key: string, entry: Entry): Promise<UpstreamClient> {
    const generation = this.#generation.get(upstream) ?? 0;
    const injector = this.#o.credentials;
    let u: Awaited<ReturnType<UpstreamPoolOptions['registry']['connection']>>['upstream'];
    let credential: Awaited<ReturnType<UpstreamPoolOptions['registry']['connection']>>['credential'];
    let httpApi: Awaited<ReturnType<UpstreamPoolOptions['registry']['connection']>>['httpApi'];
    if (injector === undefined || mandateId === undefined) {
      ({ upstream: u, credential, httpApi } = await this.#o.registry.connection(upstream));
    } else {
      // The one injection seam: static credential merged with the mandate's lease (obtained lazily, fail closed).
      const injected = await injector.credentialFor({ upstreamId: upstream, mandateId });
      entry.credentialExpiresAt = injected?.expiresAt;
      ({ upstream: u, httpApi } = await this.#o.registry.connection(upstream, { extraEnv: Object.keys(injected?.env ?? {}) }));
      credential =
        injected === undefined
          ? undefined
          : { ...(injected.headers ? { headers: injected.headers } : {}), ...(injected.env ? { env: injected.env } : {}) };
    }
    // An `openapi` upstream's client is its HTTP API forwarder (src/upstreams/http-api), with the same credential.
    const connect = (knownLegacy: boolean) =>
      connectUpstream({ transport: u.transport, credential, httpApi, timeoutMs: this.#o.connectTimeoutMs, knownLegacy });
    let client: UpstreamClient;
    if (!this.#legacy.has(upstream)) client = await connect(false);
    else {
      try {
        client = await connect(true);
      } catch (err) {
        // Perhaps no longer a legacy server (it refused the handshake): probe once, unless it did not answer in time.
        this.#legacy.delete(upstream);
        if (err instanceof UpstreamCallError && err.kind === 'timeout') throw err;
        client = await connect(false);
      }
    }
    if ((this.#generation.get(upstream) ?? 0) === generation) {
      if (client.era === 'legacy') this.#legacy.add(upstream);
      else this.#legacy.delete(upstream);
    }
    // A dead transport (process exited, session lost) must not be reused; a newer session under the same key is kept.
    client.onclose = () => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    };
    return client;
  }

  #drop(key: string, entry: Entry): void {
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
    entry.client.then((c) => c.close()).catch(() => {});
  }

  #evictOverflow(): void {
    for (const [key, e] of this.#entries) {
      if (this.#entries.size <= this.#o.maxSessions) break;
      if (e.inFlight === 0) this.#drop(key, e);
    }
  }

  #sweep(): void {
    const cutoff = this.#o.clock.now() - this.#o.idleMs;
    for (const [key, e] of this.#entries) if (e.inFlight === 0 && e.lastUsed < cutoff) this.#drop(key, e);
  }
}
