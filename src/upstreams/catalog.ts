// The tool catalog: every tool the gateway can reach, namespaced `upstream.tool`, with the action
// class, sensitivity and sensitive arguments policy needs. Held in memory and reloaded on every
// `catalog` change, so a lookup on the hot path never touches the store. A tool that is not here
// does not exist for the gateway (denied).
import { z } from 'zod';
import type { Store } from '../store/types.js';
import { type ActionClass, actionClasses, type Sensitivity, sensitivities } from './upstream.js';

/** What policy needs to know about a tool (DecisionInput.tool). */
export interface CatalogTool {
  /** `upstream.tool` */
  readonly name: string;
  readonly upstream: string;
  readonly actionClass: ActionClass;
  readonly sensitivity: Sensitivity;
  readonly sensitiveArgs: readonly string[];
  /** Arguments that are file system paths: a `prefix` on them is path-aware (src/scope/path.ts). */
  readonly pathArgs: readonly string[];
}

/** MCP tool annotations as the upstream declared them (hints, not guarantees). */
export interface ToolAnnotations {
  readonly title?: string;
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly idempotentHint?: boolean;
  readonly openWorldHint?: boolean;
}

export interface CatalogEntry extends CatalogTool {
  /** The tool's name at the upstream. */
  readonly upstreamTool: string;
  readonly title: string | undefined;
  readonly description: string | undefined;
  readonly inputSchema: Readonly<Record<string, unknown>>;
  readonly annotations: ToolAnnotations;
  /** Which fields an operator override set (the rest are derived from the upstream). */
  readonly overridden: readonly ('actionClass' | 'sensitivity' | 'sensitiveArgs')[];
  /** Arguments that are money amounts, from the input schema's `x-mandate-amount` (display only). */
  readonly amountArgs: Readonly<Record<string, AmountHint>>;
}

/** JSON Schema keyword an upstream puts on an argument that is an amount of money, in minor units. */
export const AMOUNT_KEYWORD = 'x-mandate-amount';

/**
 * How to show an amount argument: an integer count of the currency's minor units (24900 with
 * `{ currency: 'USD', minorUnits: 2 }` is $249.00). A display hint for humans (approval cards,
 * the audit trail); policy and scope constraints always compare the raw integer.
 */
export const amountHint = z.strictObject({
  /** ISO 4217 alphabetic code. */
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD'),
  /** Digits after the decimal point the integer stands for (2 for cents, 0 for yen). */
  minorUnits: z.number().int().min(0).max(4),
});

export type AmountHint = z.infer<typeof amountHint>;

/**
 * Amount arguments declared in an input schema: top-level properties carrying a valid
 * `x-mandate-amount`. A malformed hint is ignored (the raw number is shown), never an error:
 * the schema comes from the upstream.
 */
export function amountArgsOf(inputSchema: Readonly<Record<string, unknown>>): Record<string, AmountHint> {
  const props = inputSchema.properties;
  if (props === null || typeof props !== 'object') return {};
  const out: Record<string, AmountHint> = {};
  for (const [name, schema] of Object.entries(props as Record<string, unknown>)) {
    if (schema === null || typeof schema !== 'object') continue;
    const hint = amountHint.safeParse((schema as Record<string, unknown>)[AMOUNT_KEYWORD]);
    // defineProperty: a property named `__proto__` is an own key, never the object's prototype.
    if (hint.success) Object.defineProperty(out, name, { value: hint.data, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Action class from MCP annotations: readOnlyHint → read, destructiveHint → destructive, anything
 * else → execute. `propose` is never inferred: only an operator can say a tool merely drafts.
 */
export function actionClassFromAnnotations(annotations: ToolAnnotations): ActionClass {
  if (annotations.readOnlyHint === true) return 'read';
  if (annotations.destructiveHint === true) return 'destructive';
  return 'execute';
}

// Argument names that almost always carry a secret: masked unless an operator says otherwise.
const SECRET_NAME = /pass(word|phrase)?|secret|token|api[-_]?key|credential|private[-_]?key/i;

/** Default sensitive arguments: properties of the input schema whose names look like secrets. */
export function defaultSensitiveArgs(inputSchema: Readonly<Record<string, unknown>>): string[] {
  const props = inputSchema.properties;
  if (props === null || typeof props !== 'object') return [];
  return Object.keys(props).filter((name) => SECRET_NAME.test(name));
}

// Argument names that name files or directories (the official filesystem server uses `path`,
// `paths`, `source`, `destination`). Marking too many is safe: a path-aware `prefix` only refuses
// more (`..`, `.`, backslashes, percent-escapes), never less.
const PATH_NAME =
  /^(path|paths|source|destination|src|dest|target|file|files|filename|filepath|file_path|dir|directory|directories|folder|cwd|root)$|(Path|Paths|_path|_paths|Dir|_dir|Directory|_directory)$/;

/**
 * Default path arguments: properties of the input schema named like paths whose type is a string
 * or an array of strings (or not declared: an undeclared type could be either).
 */
export function defaultPathArgs(inputSchema: Readonly<Record<string, unknown>>): string[] {
  const props = inputSchema.properties;
  if (props === null || typeof props !== 'object') return [];
  return Object.entries(props as Record<string, unknown>)
    .filter(([name, schema]) => PATH_NAME.test(name) && stringish(schema))
    .map(([name]) => name);
}

function stringish(schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return true;
  const s = schema as { type?: unknown; items?: unknown };
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if (types.includes(undefined) || types.includes('string')) return true;
  return types.includes('array') && stringish(s.items ?? null);
}

interface ToolRow {
  [key: string]: unknown;
  name: string;
  upstream: string;
  upstream_tool: string;
  title: string | null;
  description: string | null;
  input_schema: string;
  annotations: string;
  default_sensitivity: string;
  action_class: string | null;
  sensitivity: string | null;
  sensitive_args: string | null;
}

const oneOf = <T extends string>(values: readonly T[], v: string | null): T | undefined =>
  v !== null && (values as readonly string[]).includes(v) ? (v as T) : undefined;

function fromRow(r: ToolRow): CatalogEntry {
  const inputSchema = JSON.parse(r.input_schema) as Record<string, unknown>;
  const annotations = JSON.parse(r.annotations) as ToolAnnotations;
  const overridden: CatalogEntry['overridden'][number][] = [];
  const actionOverride = oneOf(actionClasses, r.action_class);
  const sensitivityOverride = oneOf(sensitivities, r.sensitivity);
  const sensitiveOverride = r.sensitive_args === null ? undefined : (JSON.parse(r.sensitive_args) as string[]);
  if (actionOverride !== undefined) overridden.push('actionClass');
  if (sensitivityOverride !== undefined) overridden.push('sensitivity');
  if (sensitiveOverride !== undefined) overridden.push('sensitiveArgs');
  return {
    name: r.name,
    upstream: r.upstream,
    upstreamTool: r.upstream_tool,
    title: r.title ?? annotations.title ?? undefined,
    description: r.description ?? undefined,
    inputSchema,
    annotations,
    actionClass: actionOverride ?? actionClassFromAnnotations(annotations),
    // An unknown stored sensitivity fails closed to the strictest class.
    sensitivity: sensitivityOverride ?? oneOf(sensitivities, r.default_sensitivity) ?? 'restricted',
    sensitiveArgs: sensitiveOverride ?? defaultSensitiveArgs(inputSchema),
    pathArgs: defaultPathArgs(inputSchema),
    overridden,
    amountArgs: amountArgsOf(inputSchema),
  };
}

/** Reads the effective catalog (discovered tools merged with operator overrides) from the store. */
export async function readCatalog(store: Store, upstream?: string): Promise<CatalogEntry[]> {
  const rows = await store.query<ToolRow>(
    `SELECT t.name, t.upstream, t.upstream_tool, t.title, t.description, t.input_schema, t.annotations,
            u.default_sensitivity, o.action_class, o.sensitivity, o.sensitive_args
       FROM catalog_tools t
       JOIN upstreams u ON u.id = t.upstream
       LEFT JOIN catalog_overrides o ON o.name = t.name
      ${upstream === undefined ? '' : 'WHERE t.upstream = ?'}
      ORDER BY t.name`,
    upstream === undefined ? [] : [upstream],
  );
  return rows.map(fromRow);
}

/** What the call path needs to know about an upstream, held in memory with the catalog. */
export interface UpstreamSettings {
  readonly isolation: 'mandate' | 'shared';
  readonly timeoutMs: number | undefined;
}

/** In-memory catalog of this replica; `reload()` runs at start and on every `catalog` change. */
export class Catalog {
  #tools: ReadonlyMap<string, CatalogEntry> = new Map();
  #upstreams: ReadonlyMap<string, UpstreamSettings> = new Map();
  #generation = 0;

  constructor(private readonly store: Store) {}

  /** Increments on every reload, so caches derived from the catalog know when to rebuild. */
  get generation(): number {
    return this.#generation;
  }

  async reload(): Promise<void> {
    const entries = await readCatalog(this.store);
    const rows = await this.store.query<{ id: string; isolation: 'mandate' | 'shared'; timeout_ms: number | null }>(
      'SELECT id, isolation, timeout_ms FROM upstreams',
    );
    this.#tools = new Map(entries.map((e) => [e.name, e]));
    this.#upstreams = new Map(
      rows.map((r) => [r.id, { isolation: r.isolation, timeoutMs: r.timeout_ms === null ? undefined : Number(r.timeout_ms) }]),
    );
    this.#generation++;
  }

  /** Session isolation and timeout of a registered upstream (undefined once it is removed). */
  upstream(id: string): UpstreamSettings | undefined {
    return this.#upstreams.get(id);
  }

  get(name: string): CatalogEntry | undefined {
    return this.#tools.get(name);
  }

  list(): CatalogEntry[] {
    return [...this.#tools.values()];
  }
}
