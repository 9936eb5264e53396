// The gateway's client to one upstream MCP server, over raw JSON-RPC: it finds out which protocol
// era the server speaks (a `server/discover` probe, spec 2026-07-28 basic/versioning.mdx), then
// sends each request with the least work possible: no schema library, the result checked only for
// the shape the gateway relies on.
import type { Channel, RequestOptions } from './channel.js';
import {
  type Era,
  encodeNotification,
  encodeRequest,
  INITIALIZE_PARAMS,
  LEGACY_VERSION,
  LEGACY_VERSIONS,
  MODERN_ERROR_CODES,
  MODERN_VERSION,
  offersModern,
  supportedFromError,
  UNSUPPORTED_PROTOCOL_VERSION,
} from './era.js';
import { bounded, UpstreamCallError } from './errors.js';
import { HttpChannel } from './http-channel.js';

/** A connected upstream: requests in, JSON-RPC `result` objects out. */
export interface UpstreamClient {
  /** The protocol version in use: '2026-07-28' (modern, stateless) or what `initialize` negotiated. */
  readonly protocolVersion: string;
  readonly era: Era;
  /**
   * Sends one request and resolves with its `result` object; throws UpstreamCallError (kind
   * 'timeout', 'unavailable' or 'rpc'). A request is sent once and never retried, except a legacy
   * HTTP request the server proved it did not process (404 for a forgotten session).
   */
  request(method: string, params: Record<string, unknown>, opts: RequestOptions): Promise<Record<string, unknown>>;
  close(): Promise<void>;
  /** Called once when the transport dies (process exited, session lost for good) or is closed. */
  onclose: (() => void) | undefined;
}

export class McpClient implements UpstreamClient {
  readonly #channel: Channel;
  readonly #transport: 'stdio' | 'http';
  #era: Era = 'modern';
  #version = MODERN_VERSION;
  #nextId = 0;
  #renewing: Promise<void> | undefined;

  private constructor(channel: Channel, transport: 'stdio' | 'http') {
    this.#channel = channel;
    this.#transport = transport;
  }

  /**
   * Probes the era over an open channel and completes the legacy handshake if needed; closes the
   * channel on failure. `knownLegacy`: the server answered as legacy last time, so the
   * `server/discover` probe is skipped and the legacy handshake starts at once (one round trip less
   * per session; on stdio, no wait for a legacy server that never answers unknown methods). If the
   * server no longer speaks legacy, the handshake fails like any failed connect.
   */
  static async start(channel: Channel, transport: 'stdio' | 'http', timeoutMs: number, knownLegacy = false): Promise<McpClient> {
    const client = new McpClient(channel, transport);
    try {
      await client.#negotiate(timeoutMs, knownLegacy);
      return client;
    } catch (err) {
      await channel.close().catch(() => {});
      // The call that needed this connection never reached the upstream: not an upstream refusal of it.
      if (err instanceof UpstreamCallError && err.kind === 'rpc') {
        throw new UpstreamCallError('unavailable', `the upstream refused the connection: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  get protocolVersion(): string {
    return this.#version;
  }
  get era(): Era {
    return this.#era;
  }
  get onclose(): (() => void) | undefined {
    return this.#channel.onclose;
  }
  set onclose(cb: (() => void) | undefined) {
    this.#channel.onclose = cb;
  }

  async request(method: string, params: Record<string, unknown>, opts: RequestOptions): Promise<Record<string, unknown>> {
    const id = ++this.#nextId;
    const result = await this.#channel.exchange(id, method, targetOf(method, params), encodeRequest(this.#era, id, method, params), opts);
    return checkResult(method, result);
  }

  close(): Promise<void> {
    return this.#channel.close();
  }

  async #negotiate(timeoutMs: number, knownLegacy: boolean): Promise<void> {
    const started = Date.now();
    const era = knownLegacy ? 'legacy' : await this.#probe(timeoutMs);
    if (era === 'modern') return;
    this.#era = 'legacy';
    await this.#initialize(Math.max(100, timeoutMs - (Date.now() - started)));
    const http = this.#channel;
    if (http instanceof HttpChannel) http.renewSession = (stale) => this.#renew(stale, timeoutMs);
  }

  /**
   * `server/discover` with the modern envelope. A result naming 2026-07-28 means modern; a
   * recognized modern error means modern but unusable (unless it offers a legacy revision);
   * anything else (an other error, an HTTP 4xx without a modern error body, silence on stdio)
   * means legacy. The fallback is never keyed to one error code (spec, stdio Backward Compatibility).
   */
  async #probe(timeoutMs: number): Promise<Era> {
    // On stdio a legacy server may never answer an unknown method: wait only part of the budget.
    const probeMs = this.#transport === 'stdio' ? Math.max(100, Math.min(Math.floor(timeoutMs / 2), 10_000)) : timeoutMs;
    let result: Record<string, unknown>;
    try {
      result = await this.request('server/discover', {}, { timeoutMs: probeMs });
    } catch (err) {
      if (!(err instanceof UpstreamCallError)) throw err;
      if (err.kind === 'rpc' && err.rpcCode !== undefined && MODERN_ERROR_CODES.has(err.rpcCode)) {
        const supported = err.rpcCode === UNSUPPORTED_PROTOCOL_VERSION ? supportedFromError(err.errorData) : [];
        if (supported.some((v) => LEGACY_VERSIONS.has(v))) return 'legacy';
        throw new UpstreamCallError(
          'unavailable',
          `the upstream speaks a protocol version the gateway does not (${supported.length > 0 ? supported.slice(0, 5).join(', ') : err.message})`,
        );
      }
      if (err.kind === 'rpc') return 'legacy';
      if (err.kind === 'unavailable' && err.httpStatus !== undefined && err.httpStatus >= 400 && err.httpStatus < 500) return 'legacy';
      if (err.kind === 'timeout' && this.#transport === 'stdio') return 'legacy';
      throw err;
    }
    if (offersModern(result)) return 'modern';
    const versions = Array.isArray(result.supportedVersions) ? result.supportedVersions.filter((v) => typeof v === 'string') : [];
    if (versions.some((v) => LEGACY_VERSIONS.has(v))) return 'legacy';
    throw new UpstreamCallError(
      'unavailable',
      `the upstream offers only protocol versions ${bounded(versions.slice(0, 5).join(', ')) || '(none)'}`,
    );
  }

  /** The legacy handshake: `initialize`, then `notifications/initialized`. */
  async #initialize(timeoutMs: number): Promise<void> {
    const http = this.#channel instanceof HttpChannel ? this.#channel : undefined;
    if (http !== undefined) {
      http.era = 'legacy';
      http.protocolVersion = undefined;
      http.sessionId = undefined;
    }
    const result = await this.request('initialize', { ...INITIALIZE_PARAMS }, { timeoutMs });
    const v = result.protocolVersion;
    if (typeof v !== 'string' || !LEGACY_VERSIONS.has(v)) {
      throw new UpstreamCallError(
        'unavailable',
        `the upstream answered initialize with protocol version ${bounded(String(v).slice(0, 40))}`,
      );
    }
    this.#version = v;
    if (http !== undefined) http.protocolVersion = v;
    await this.#channel.notify(encodeNotification('notifications/initialized', undefined));
  }

  /** One new session for everyone who saw `stale` die; if that fails the client is done. */
  #renew(stale: string, timeoutMs: number): Promise<void> {
    const http = this.#channel as HttpChannel;
    if (this.#renewing !== undefined) return this.#renewing;
    if (http.sessionId !== stale) return Promise.resolve();
    this.#renewing = this.#initialize(timeoutMs)
      .catch(async (err: unknown) => {
        await this.#channel.close().catch(() => {});
        throw err instanceof UpstreamCallError ? err : new UpstreamCallError('unavailable', 'the upstream session could not be renewed');
      })
      .finally(() => {
        this.#renewing = undefined;
      });
    return this.#renewing;
  }
}

/** What `Mcp-Name` mirrors: the tool or prompt name, or the resource URI. */
function targetOf(method: string, params: Record<string, unknown>): string | undefined {
  if (method === 'tools/call' || method === 'prompts/get') return typeof params.name === 'string' ? params.name : undefined;
  if (method === 'resources/read') return typeof params.uri === 'string' ? params.uri : undefined;
  return undefined;
}

/** The only result checks on the hot path: an object, and for tools/call a final result with `content` blocks. */
function checkResult(method: string, result: unknown): Record<string, unknown> {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) {
    throw new UpstreamCallError('rpc', `the upstream answered ${method} with a malformed result (not an object)`);
  }
  const r = result as Record<string, unknown>;
  if (method === 'tools/call') {
    if (r.resultType !== undefined && r.resultType !== 'complete') {
      throw new UpstreamCallError(
        'rpc',
        `the upstream answered tools/call with resultType ${bounded(JSON.stringify(r.resultType).slice(0, 40))}, which the gateway cannot continue`,
      );
    }
    if (!Array.isArray(r.content))
      throw new UpstreamCallError('rpc', 'the upstream answered tools/call with a malformed result (content is not an array)');
  }
  return r;
}

export { LEGACY_VERSION, MODERN_VERSION };
