// Opens a client to an upstream with its credential injected (env for stdio, headers for
// streamable HTTP). Used by discovery and by the gateway's session pool; the only place that
// turns a sealed credential into a live connection.
import type { UpstreamCredential } from '../secrets/upstream-credentials.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  HttpChannel,
  McpClient,
  StdioChannel,
  safeEnvironment,
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
}

/** Connects and negotiates; the caller owns (and must close) the client. Throws UpstreamCallError. */
export async function connectUpstream({ transport, credential, timeoutMs, maxMessageBytes }: ConnectOptions): Promise<UpstreamClient> {
  const max = maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (transport.type === 'stdio') {
    const channel = await StdioChannel.spawn({
      command: transport.command,
      args: transport.args,
      // A minimal safe environment (PATH, HOME, ...), then the upstream's env, then its credential: nothing else of ours leaks.
      env: safeEnvironment(transport.env, credential?.env),
      ...(transport.cwd === undefined ? {} : { cwd: transport.cwd }),
      maxMessageBytes: max,
    });
    return McpClient.start(channel, 'stdio', timeoutMs);
  }
  return McpClient.start(new HttpChannel(transport.url, credential?.headers, max), 'http', timeoutMs);
}
