// The upstream registry: persists upstreams and their sealed credentials, discovers their tools
// into the catalog, and keeps operator overrides. Every write publishes a `catalog` change in the
// same transaction so every replica reloads its catalog and drops stale upstream sessions.
import { MandateError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { type UpstreamCredential, UpstreamCredentials } from '../secrets/upstream-credentials.js';
import type { ChangeFeed } from '../store/changes.js';
import type { SqlExecutor, Store } from '../store/types.js';
import { type CatalogEntry, readCatalog } from './catalog.js';
import { connectUpstream } from './connect.js';
import { DEFAULT_HTTP_API_LIMITS, type HttpApi, type HttpApiLimits, loadHttpApi } from './http-api/index.js';
import { type AllowedCommand, assertStdioAllowed } from './stdio-allowlist.js';
import {
  type Sensitivity,
  type ToolOverrideInput,
  toolOverrideInput,
  type Upstream,
  type UpstreamInput,
  type UpstreamPatch,
  type UpstreamTransport,
  upstreamInput,
  upstreamPatch,
  upstreamTransportSchema,
} from './upstream.js';

/** Topic of catalog changes; `data.kind` says what changed. */
export const CATALOG_TOPIC = 'catalog';
export type CatalogChangeKind = 'upstream' | 'tools' | 'override';

interface UpstreamRow {
  [key: string]: unknown;
  id: string;
  display_name: string;
  transport: string;
  isolation: 'mandate' | 'shared';
  default_sensitivity: Sensitivity;
  timeout_ms: number | null;
  credential_sealed: string | null;
  credential_names: string | null;
  discovered_at: number | null;
  discovery_error: string | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS =
  'id, display_name, transport, isolation, default_sensitivity, timeout_ms, credential_sealed, credential_names, discovered_at, discovery_error, created_at, updated_at';

function fromRow(r: UpstreamRow): Upstream {
  return {
    id: r.id,
    displayName: r.display_name,
    transport: upstreamTransportSchema.parse(JSON.parse(r.transport)),
    isolation: r.isolation,
    defaultSensitivity: r.default_sensitivity,
    timeoutMs: r.timeout_ms === null ? undefined : Number(r.timeout_ms),
    credential: r.credential_names === null ? undefined : (JSON.parse(r.credential_names) as Upstream['credential']),
    discoveredAt: r.discovered_at === null ? undefined : Number(r.discovered_at),
    discoveryError: r.discovery_error ?? undefined,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** What the gateway needs to open a session: the upstream plus its opened credential. */
export interface UpstreamConnection {
  readonly upstream: Upstream;
  readonly credential: UpstreamCredential | undefined;
  /** An `openapi` upstream's bindings (compiled at registration) and response bound. */
  readonly httpApi?: { readonly api: HttpApi; readonly maxResponseBytes: number };
}

export interface UpstreamRegistryOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly credentials: UpstreamCredentials;
  readonly changes: Pick<ChangeFeed, 'publish' | 'catchUp'>;
  /** Bound on connecting and listing tools during discovery. */
  readonly discoveryTimeoutMs: number;
  /** Command lines a stdio upstream may run (checked on every write and before every start). */
  readonly allowedCommands: readonly AllowedCommand[];
  /** Bounds on `openapi` upstreams (configuration `upstreams.httpApi`); defaults when absent. */
  readonly httpApi?: HttpApiLimits;
}

export class UpstreamRegistry {
  constructor(private readonly o: UpstreamRegistryOptions) {}

  /** Registers an upstream, then discovers its tools (a discovery failure is recorded, not thrown). */
  async create(input: UpstreamInput, options: { discover?: boolean } = {}): Promise<Upstream> {
    const u = upstreamInput.parse(input);
    assertStdioAllowed(u.transport, Object.keys(u.credential?.env ?? {}), this.o.allowedCommands);
    assertHeadersOnly(u.transport, u.credential);
    // An HTTP API's description is read and compiled before anything is stored: an unusable one is
    // refused (ERR_HTTP_API_DESCRIPTION) rather than registered without tools.
    const httpApi = u.transport.type === 'openapi' ? await this.#loadHttpApi(u.transport, u.timeoutMs) : undefined;
    const now = this.o.clock.now();
    await this.#write(u.id, 'upstream', async (tx) => {
      const exists = await tx.query('SELECT id FROM upstreams WHERE id = ?', [u.id]);
      if (exists.length > 0) throw new MandateError('ERR_STORE_CONFLICT', `an upstream "${u.id}" exists`);
      await tx.run(`INSERT INTO upstreams (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)`, [
        u.id,
        u.displayName ?? u.id,
        JSON.stringify(u.transport),
        u.isolation,
        u.defaultSensitivity,
        u.timeoutMs ?? null,
        u.credential === undefined ? null : this.o.credentials.seal(u.id, u.credential),
        u.credential === undefined ? null : JSON.stringify(UpstreamCredentials.describe(u.credential)),
        now,
        now,
      ]);
      if (httpApi !== undefined) await storeHttpApi(tx, u.id, httpApi, now);
    });
    return options.discover === false || httpApi !== undefined ? this.require(u.id) : this.refresh(u.id);
  }

  async update(id: string, patch: UpstreamPatch): Promise<Upstream> {
    const p = upstreamPatch.parse(patch);
    const current = await this.connection(id, { check: false });
    const credentialEnv = p.credential === undefined ? current.credential?.env : p.credential?.env;
    assertStdioAllowed(p.transport ?? current.upstream.transport, Object.keys(credentialEnv ?? {}), this.o.allowedCommands);
    assertHeadersOnly(
      p.transport ?? current.upstream.transport,
      p.credential === undefined ? current.credential : (p.credential ?? undefined),
    );
    // A new description is read and compiled before anything changes, as at registration.
    const transport = p.transport ?? current.upstream.transport;
    const httpApi =
      p.transport?.type === 'openapi' ? await this.#loadHttpApi(p.transport, p.timeoutMs ?? current.upstream.timeoutMs) : undefined;
    const sets: string[] = ['updated_at = ?'];
    const params: (string | number | null)[] = [this.o.clock.now()];
    if (p.displayName !== undefined) sets.push('display_name = ?') && params.push(p.displayName);
    if (p.transport !== undefined) sets.push('transport = ?') && params.push(JSON.stringify(p.transport));
    if (p.isolation !== undefined) sets.push('isolation = ?') && params.push(p.isolation);
    if (p.defaultSensitivity !== undefined) sets.push('default_sensitivity = ?') && params.push(p.defaultSensitivity);
    if (p.timeoutMs !== undefined) sets.push('timeout_ms = ?') && params.push(p.timeoutMs);
    if (p.credential !== undefined) {
      sets.push('credential_sealed = ?', 'credential_names = ?');
      params.push(
        p.credential === null ? null : this.o.credentials.seal(id, p.credential),
        p.credential === null ? null : JSON.stringify(UpstreamCredentials.describe(p.credential)),
      );
    }
    await this.#write(id, 'upstream', async (tx) => {
      await tx.run(`UPDATE upstreams SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
      if (httpApi !== undefined) await storeHttpApi(tx, id, httpApi, this.o.clock.now());
    });
    // An HTTP API's tools come from its description (read above when it changed), never from its credential.
    if (transport.type === 'openapi') return this.require(id);
    // Where tools come from may have changed: discover again.
    return p.transport !== undefined || p.credential !== undefined ? this.refresh(id) : this.require(id);
  }

  async delete(id: string): Promise<boolean> {
    let deleted = false;
    await this.#write(id, 'upstream', async (tx) => {
      deleted = (await tx.run('DELETE FROM upstreams WHERE id = ?', [id])).changes > 0;
      await tx.run('DELETE FROM catalog_tools WHERE upstream = ?', [id]);
    });
    return deleted;
  }

  async get(id: string): Promise<Upstream | undefined> {
    const [row] = await this.o.store.query<UpstreamRow>(`SELECT ${COLUMNS} FROM upstreams WHERE id = ?`, [id]);
    return row === undefined ? undefined : fromRow(row);
  }

  async require(id: string): Promise<Upstream> {
    const u = await this.get(id);
    if (u === undefined) throw new MandateError('ERR_NOT_FOUND', `no upstream "${id}"`);
    return u;
  }

  async list(): Promise<Upstream[]> {
    const rows = await this.o.store.query<UpstreamRow>(`SELECT ${COLUMNS} FROM upstreams ORDER BY id`);
    return rows.map(fromRow);
  }

  /** The upstream with its credential opened. Gateway-internal: the result never leaves the process. */
  async connection(
    id: string,
    { check = true, extraEnv = [] as readonly string[], httpApi: withHttpApi = true } = {},
  ): Promise<UpstreamConnection> {
    const [row] = await this.o.store.query<UpstreamRow>(`SELECT ${COLUMNS} FROM upstreams WHERE id = ?`, [id]);
    if (row === undefined) throw new MandateError('ERR_NOT_FOUND', `no upstream "${id}"`);
    const upstream = fromRow(row);
    const credential = row.credential_sealed === null ? undefined : this.o.credentials.open(id, row.credential_sealed);
    const httpApi = upstream.transport.type === 'openapi' && withHttpApi ? await this.#httpApiOf(id) : undefined;
    // Also before every start: the allow-list may have shrunk since the upstream was registered.
    // `extraEnv`: names a lease injects beside the credential (src/leases), allowed like the credential's own.
    if (check) assertStdioAllowed(upstream.transport, [...Object.keys(credential?.env ?? {}), ...extraEnv], this.o.allowedCommands);
    return { upstream, credential, ...(httpApi === undefined ? {} : { httpApi }) };
  }

  async #httpApiOf(id: string): Promise<UpstreamConnection['httpApi']> {
    const [row] = await this.o.store.query<{ http_api: string | null }>('SELECT http_api FROM upstreams WHERE id = ?', [id]);
    // Registered but never compiled (a refresh failed before the first success): nothing to call.
    if (row?.http_api == null) throw new MandateError('ERR_NOT_FOUND', `upstream "${id}" has no compiled HTTP API`);
    return { api: JSON.parse(row.http_api) as HttpApi, maxResponseBytes: this.#httpApiLimits.maxResponseBytes };
  }

  get #httpApiLimits(): HttpApiLimits {
    return this.o.httpApi ?? DEFAULT_HTTP_API_LIMITS;
  }

  #loadHttpApi(transport: Extract<UpstreamTransport, { type: 'openapi' }>, timeoutMs: number | undefined) {
    return loadHttpApi(transport, this.#httpApiLimits, timeoutMs ?? this.o.discoveryTimeoutMs);
  }

  /**
   * Connects to the upstream, lists its tools (all pages) and replaces its catalog entries. On
   * failure the old entries are kept and the error is recorded on the upstream.
   */
  async refresh(id: string): Promise<Upstream> {
    const { upstream, credential } = await this.connection(id, { check: true, httpApi: false });
    const timeoutMs = upstream.timeoutMs ?? this.o.discoveryTimeoutMs;
    let tools: DiscoveredTool[];
    try {
      if (upstream.transport.type === 'openapi') {
        const compiled = await this.#loadHttpApi(upstream.transport, upstream.timeoutMs);
        // Published as an upstream change: pooled clients hold the old bindings and must be dropped.
        await this.#write(id, 'upstream', (tx) => storeHttpApi(tx, id, compiled, this.o.clock.now()));
        return this.require(id);
      }
      tools = await discover(upstream.transport, credential, timeoutMs);
    } catch (err) {
      const message = describeFailure(err);
      await this.#write(id, 'upstream', (tx) =>
        tx.run('UPDATE upstreams SET discovery_error = ?, updated_at = ? WHERE id = ?', [message, this.o.clock.now(), id]),
      );
      return this.require(id);
    }
    const now = this.o.clock.now();
    await this.#write(id, 'tools', async (tx) => {
      await replaceTools(tx, id, tools, now);
      await tx.run('UPDATE upstreams SET discovered_at = ?, discovery_error = NULL, updated_at = ? WHERE id = ?', [now, now, id]);
    });
    return this.require(id);
  }

  /** The effective catalog entries of one upstream (or all), read from the store. */
  tools(upstream?: string): Promise<CatalogEntry[]> {
    return readCatalog(this.o.store, upstream);
  }

  /** Sets (or with `null`, clears) operator overrides of one catalog tool. */
  async override(name: string, input: ToolOverrideInput): Promise<CatalogEntry> {
    const o = toolOverrideInput.parse(input);
    const [tool] = await this.o.store.query<{ upstream: string }>('SELECT upstream FROM catalog_tools WHERE name = ?', [name]);
    if (tool === undefined) throw new MandateError('ERR_NOT_FOUND', `no catalog tool "${name}"`);
    await this.#write(tool.upstream, 'override', async (tx) => {
      const [cur] = await tx.query<{ action_class: string | null; sensitivity: string | null; sensitive_args: string | null }>(
        'SELECT action_class, sensitivity, sensitive_args FROM catalog_overrides WHERE name = ?',
        [name],
      );
      const next = {
        action_class: o.actionClass === undefined ? (cur?.action_class ?? null) : o.actionClass,
        sensitivity: o.sensitivity === undefined ? (cur?.sensitivity ?? null) : o.sensitivity,
        sensitive_args:
          o.sensitiveArgs === undefined ? (cur?.sensitive_args ?? null) : o.sensitiveArgs === null ? null : JSON.stringify(o.sensitiveArgs),
      };
      await tx.run('DELETE FROM catalog_overrides WHERE name = ?', [name]);
      if (next.action_class !== null || next.sensitivity !== null || next.sensitive_args !== null) {
        await tx.run('INSERT INTO catalog_overrides (name, action_class, sensitivity, sensitive_args, updated_at) VALUES (?, ?, ?, ?, ?)', [
          name,
          next.action_class,
          next.sensitivity,
          next.sensitive_args,
          this.o.clock.now(),
        ]);
      }
    });
    const entry = (await this.tools(tool.upstream)).find((t) => t.name === name);
    if (entry === undefined) throw new MandateError('ERR_NOT_FOUND', `no catalog tool "${name}"`);
    return entry;
  }

  /** Writes and publishes in one transaction, then applies the change on this replica at once. */
  async #write(upstream: string, kind: CatalogChangeKind, fn: (tx: SqlExecutor) => Promise<unknown>): Promise<void> {
    await this.o.store.transaction(async (tx) => {
      await fn(tx);
      await this.o.changes.publish(tx, CATALOG_TOPIC, upstream, { kind });
    });
    await this.o.changes.catchUp();
  }
}

/** Replaces an upstream's catalog tools (inside the caller's transaction). */
async function replaceTools(tx: SqlExecutor, id: string, tools: readonly DiscoveredTool[], now: number): Promise<void> {
  await tx.run('DELETE FROM catalog_tools WHERE upstream = ?', [id]);
  for (const t of tools) {
    await tx.run(
      'INSERT INTO catalog_tools (name, upstream, upstream_tool, title, description, input_schema, annotations, discovered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [
        `${id}.${t.name}`,
        id,
        t.name,
        t.title ?? null,
        t.description ?? null,
        JSON.stringify(t.inputSchema),
        JSON.stringify(t.annotations ?? {}),
        now,
      ],
    );
  }
}

/** An HTTP API's tools and bindings, stored together so the catalog and forwarding always agree. */
async function storeHttpApi(tx: SqlExecutor, id: string, compiled: { api: HttpApi; tools: DiscoveredTool[] }, now: number): Promise<void> {
  await replaceTools(tx, id, compiled.tools, now);
  await tx.run('UPDATE upstreams SET http_api = ?, discovered_at = ?, discovery_error = NULL, updated_at = ? WHERE id = ?', [
    JSON.stringify(compiled.api),
    now,
    now,
    id,
  ]);
}

/** An HTTP API takes its credential as headers; environment variables would silently go nowhere. */
function assertHeadersOnly(transport: UpstreamTransport, credential: UpstreamCredential | undefined): void {
  if (transport.type === 'openapi' && Object.keys(credential?.env ?? {}).length > 0) {
    throw new MandateError('ERR_VALIDATION', 'an openapi upstream takes its credential as headers, not env');
  }
}

interface DiscoveredTool {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema: Record<string, unknown>;
  readonly annotations?: Record<string, unknown>;
}

// MCP tool names the gateway can namespace safely (the spec's recommended character set).
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Most tools/list pages followed; a server that pages forever is cut off, not followed. */
const MAX_TOOL_PAGES = 100;

async function discover(
  transport: UpstreamTransport,
  credential: UpstreamCredential | undefined,
  timeoutMs: number,
): Promise<DiscoveredTool[]> {
  const client = await connectUpstream({ transport, credential, timeoutMs });
  try {
    const tools: DiscoveredTool[] = [];
    const seenCursors = new Set<string>();
    const seenNames = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const res = await client.request('tools/list', cursor === undefined ? {} : { cursor }, { timeoutMs });
      // Hand-checked, not schema-parsed: a tool entry that is not what the spec says is left out (so it is denied).
      const list = Array.isArray(res.tools) ? (res.tools as unknown[]) : [];
      for (const raw of list) {
        if (typeof raw !== 'object' || raw === null) continue;
        const t = raw as Record<string, unknown>;
        // A name we could not namespace or show unambiguously is left out, so it is denied.
        if (typeof t.name !== 'string' || !TOOL_NAME.test(t.name)) continue;
        if (typeof t.inputSchema !== 'object' || t.inputSchema === null || Array.isArray(t.inputSchema)) continue;
        // A name listed twice (on one page or across pages) is kept once: the first usable entry wins.
        if (seenNames.has(t.name)) continue;
        seenNames.add(t.name);
        tools.push({
          name: t.name,
          ...(typeof t.title === 'string' ? { title: t.title } : {}),
          ...(typeof t.description === 'string' ? { description: t.description } : {}),
          inputSchema: t.inputSchema as Record<string, unknown>,
          ...(isRecord(t.annotations) ? { annotations: t.annotations } : {}),
        });
      }
      // A repeated cursor would loop: stop there.
      cursor = typeof res.nextCursor === 'string' && !seenCursors.has(res.nextCursor) ? res.nextCursor : undefined;
      if (cursor === undefined) break;
      seenCursors.add(cursor);
    }
    return tools;
  } finally {
    await client.close().catch(() => {});
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short, credential-free description of why discovery failed. */
function describeFailure(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' || typeof e.code === 'number' ? ` (${e.code})` : '';
  const msg = typeof e.message === 'string' ? e.message.split('\n')[0]?.slice(0, 200) : 'unknown error';
  return `discovery failed${code}: ${msg}`;
}
