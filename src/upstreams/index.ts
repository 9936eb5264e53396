// The upstreams service (`broker.upstreams`): the registry (admin side) and this replica's
// in-memory catalog (gateway side), kept current through the `catalog` change topic.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { HELPDESK_KEY_ENV, HELPDESK_SERVER_PATH } from '../demo/helpdesk-server.js';
import type { Clock } from '../lib/clock.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { UpstreamCredentials } from '../secrets/upstream-credentials.js';
import type { Change, ChangeFeed } from '../store/changes.js';
import type { Store } from '../store/types.js';
import { Catalog } from './catalog.js';
import type { HttpApiLimits } from './http-api/index.js';
import { CATALOG_TOPIC, UpstreamRegistry } from './registry.js';
import type { AllowedCommand } from './stdio-allowlist.js';
import type { UpstreamInput } from './upstream.js';

export { Catalog, type CatalogEntry, type CatalogTool } from './catalog.js';
export { CATALOG_TOPIC, UpstreamRegistry } from './registry.js';
export type { Upstream, UpstreamInput } from './upstream.js';

export interface Upstreams {
  readonly registry: UpstreamRegistry;
  readonly catalog: Catalog;
  /**
   * Discovers every upstream that was registered but never listed (demo upstreams are registered
   * without spawning anything); runs once per process, later calls share the first run.
   */
  discoverPending(): Promise<void>;
  /** Subscribes to upstream-level changes (transport or credential), e.g. to drop pooled sessions. */
  onUpstreamChange(fn: (upstreamId: string) => void): () => void;
}

export interface UpstreamsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly secrets: SecretBox;
  readonly changes: ChangeFeed;
  readonly discoveryTimeoutMs: number;
  readonly allowedCommands: readonly AllowedCommand[];
  /** Bounds on `openapi` upstreams (configuration `upstreams.httpApi`). */
  readonly httpApi?: HttpApiLimits;
}

export async function createUpstreams(o: UpstreamsOptions): Promise<Upstreams> {
  const registry = new UpstreamRegistry({
    store: o.store,
    clock: o.clock,
    credentials: new UpstreamCredentials(o.secrets),
    changes: o.changes,
    discoveryTimeoutMs: o.discoveryTimeoutMs,
    allowedCommands: o.allowedCommands,
    ...(o.httpApi === undefined ? {} : { httpApi: o.httpApi }),
  });
  const catalog = new Catalog(o.store);
  const listeners = new Set<(id: string) => void>();
  o.changes.subscribe(CATALOG_TOPIC, async (change: Change) => {
    await catalog.reload();
    if (change.data.kind === 'upstream') for (const fn of listeners) fn(change.key);
  });
  await catalog.reload();
  let pending: Promise<void> | undefined;
  return {
    registry,
    catalog,
    discoverPending() {
      pending ??= (async () => {
        for (const u of await registry.list()) {
          if (u.discoveredAt === undefined && u.discoveryError === undefined) await registry.refresh(u.id).catch(() => {});
        }
      })();
      return pending;
    },
    onUpstreamChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** Node arguments that run the helpdesk: the compiled file as is, the TypeScript source (a checkout) through tsx. */
function helpdeskArgs(): string[] {
  return HELPDESK_SERVER_PATH.endsWith('.ts') ? ['--import', 'tsx', HELPDESK_SERVER_PATH] : [HELPDESK_SERVER_PATH];
}

/** The demo helpdesk as an upstream: started over stdio, its API key injected from the sealed credential. */
export function demoHelpdeskUpstream(apiKey: string): UpstreamInput {
  return {
    id: 'helpdesk',
    displayName: 'Demo helpdesk',
    transport: { type: 'stdio', command: process.execPath, args: helpdeskArgs(), env: {} },
    isolation: 'shared',
    defaultSensitivity: 'confidential',
    credential: { env: { [HELPDESK_KEY_ENV]: apiKey } },
  };
}

/** The MCP reference "everything" server from the npm registry, over stdio. */
export function demoEverythingUpstream(): UpstreamInput {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
  return {
    id: 'everything',
    displayName: 'MCP reference server (everything)',
    transport: { type: 'stdio', command: process.execPath, args: [entry, 'stdio'], env: {} },
    isolation: 'mandate',
    defaultSensitivity: 'internal',
  };
}

/** The exact command lines of the demo upstreams, allowed in demo mode beside the configured ones. */
export function demoAllowedCommands(): AllowedCommand[] {
  return [demoHelpdeskUpstream(''), demoEverythingUpstream()].map(({ transport, credential }) => {
    if (transport.type !== 'stdio') throw new Error('demo upstreams are stdio');
    return { command: transport.command, args: transport.args ?? [], env: Object.keys(credential?.env ?? {}) };
  });
}

/**
 * Registers the demo upstreams if absent, without connecting: their tools are discovered on the
 * gateway's first use, so a demo broker (and every test built on one) starts no process it does
 * not need. The helpdesk API key is random per data folder and only ever stored sealed.
 */
export async function registerDemoUpstreams(registry: UpstreamRegistry): Promise<void> {
  if ((await registry.get('helpdesk')) === undefined) {
    await registry.create(demoHelpdeskUpstream(`demo-${randomBytes(18).toString('base64url')}`), { discover: false });
  }
  if ((await registry.get('everything')) === undefined) await registry.create(demoEverythingUpstream(), { discover: false });
}
