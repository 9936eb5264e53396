// Opens a client to an upstream with its credential injected (env for stdio, headers for
// streamable HTTP and HTTP APIs). Used by discovery and by the gateway's session pool; the only
// place that turns a sealed credential into a live connection.
import type { UpstreamCredential } from '../secrets/upstream-credentials.js';
import { type HttpApi, HttpApiClient } from './http-api/index.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  HttpChannel,
  McpClient,
  StdioChannel,
  safeEnvironment,
  UpstreamCallError,
  type UpstreamClient,
} from './mcp-client/index.js';
import type { UpstreamTransport } from './upstream.js';

export interface ConnectOptions {
  readonly transport: UpstreamTransport;
  readonly credential: UpstreamCredential | undefined;
  /** Bound on starting the upstream and agreeing on a protocol era (probe, and the legacy handshake). */
  readonly timeoutMs: number;
  /** Largest single message accepted from the upstream. */
  readonly maxMessageBytes?: number;
  /** An `openapi` upstream's compiled bindings (UpstreamConnection.httpApi). */
  readonly httpApi?: { readonly api: HttpApi; readonly maxResponseBytes: number } | undefined;
  /** The upstream answered as a legacy (2025-11-25) server last time: handshake without the era probe. */
  readonly knownLegacy?: boolean;
}

/** Connects and negotiates; the caller owns (and must close) the client. Throws UpstreamCallError. */
export async function connectUpstream({
  transport,
  credential,
  timeoutMs,
  maxMessageBytes,
  httpApi,
  knownLegacy = false,
}: ConnectOptions): Promise<UpstreamClient> {
  const max = maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (transport.type === 'openapi') {
    // Nothing to connect: each tools/call is one HTTP request. The bindings come from registration.
    if (httpApi === undefined) throw new UpstreamCallError('unavailable', 'the HTTP API upstream has no compiled description');
    return new HttpApiClient({ api: httpApi.api, credential, maxResponseBytes: httpApi.maxResponseBytes });
  }
  if (transport.type === 'stdio') {
    const channel = await StdioChannel.spawn({
      command: transport.command,
      args: transport.args,
      // A minimal safe environment (PATH, HOME, ...), then the upstream's env, then its credential: nothing else of ours leaks.
      env: safeEnvironment(transport.env, credential?.env),
      ...(transport.cwd === undefined ? {} : { cwd: transport.cwd }),
      maxMessageBytes: max,
    });
    return McpClient.start(channel, 'stdio', timeoutMs, knownLegacy);
  }
  return McpClient.start(new HttpChannel(transport.url, credential?.headers, max), 'http', timeoutMs, knownLegacy);
}
