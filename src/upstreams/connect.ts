// Opens an MCP client session to an upstream with its credential injected (env for stdio, headers
// for streamable HTTP). Used by discovery and by the gateway's session pool; the only place that
// turns a sealed credential into a live connection.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { UpstreamCredential } from '../secrets/upstream-credentials.js';
import { version } from '../version.js';
import type { UpstreamTransport } from './upstream.js';

export interface ConnectOptions {
  readonly transport: UpstreamTransport;
  readonly credential: UpstreamCredential | undefined;
  /** Bound on the MCP initialize handshake. */
  readonly timeoutMs: number;
}

/** Connects and initializes an SDK client; the caller owns (and must close) it. */
export async function connectUpstream({ transport, credential, timeoutMs }: ConnectOptions): Promise<Client> {
  const client = new Client({ name: 'mandate-gateway', version });
  const t =
    transport.type === 'stdio'
      ? new StdioClientTransport({
          command: transport.command,
          args: [...transport.args],
          // The SDK adds a minimal safe environment (PATH, HOME, ...); nothing else of ours leaks.
          env: { ...transport.env, ...(credential?.env ?? {}) },
          ...(transport.cwd === undefined ? {} : { cwd: transport.cwd }),
          // Upstream stderr may echo its secrets; it never reaches our logs.
          stderr: 'ignore',
        })
      : new StreamableHTTPClientTransport(new URL(transport.url), {
          // Credentials must not follow a redirect to another origin.
          requestInit: { headers: { ...(credential?.headers ?? {}) }, redirect: 'error' },
          fetch: postWithoutSessionSignal,
        });
  await client.connect(t, { timeout: timeoutMs });
  return client;
}

/**
 * The SDK passes its session-long AbortSignal to every POST; fetch (undici) only drops its abort
 * listener when the request is garbage-collected, so a busy pooled session piles up thousands of
 * listeners and slows down. POSTs are bounded by the per-request timeout (which cancels through
 * MCP), so they go without it; the long-lived GET stream keeps it, so closing still ends it.
 */
const postWithoutSessionSignal: typeof fetch = (input, init) => fetch(input, init?.method === 'POST' ? { ...init, signal: null } : init);
