// The policy store: the one active, validated policy set of this replica (plus the entity data
// AuthZEN requests may refer to). A new set replaces it only when it compiles and validates as a
// whole; otherwise the previous set keeps serving. Reloads are announced on the change feed
// (topic `policy`) so every replica reloads its own copy of the directory.
import { type FSWatcher, watch } from 'node:fs';
import type { Store } from '../store/types.js';
import { loadTemplates, type TemplateRegistry } from '../templates/registry.js';
import { wasmEngine } from './cedar/engine.js';
import { project, type SchemaShapes, ShapeError } from './cedar/shape.js';
import type { CedarValueJson, EntityJson, EntityUidJson, LoadedPolicySet, PolicyEngine, PolicyFile, PolicyProblem } from './engine.js';
import { type PolicySource, readPolicySource } from './source.js';

/** The part of the change feed (src/store/changes.ts) the policy store uses. */
export interface PolicyChangeFeed {
  publish(tx: import('../store/types.js').SqlExecutor, topic: string, key: string, data?: Record<string, unknown>): Promise<void>;
  subscribe(topic: string, handler: (change: { key: string; data: Readonly<Record<string, unknown>> }) => void | Promise<void>): () => void;
  catchUp(): Promise<void>;
}

/** The active policy set and the entities it may be evaluated with. */
export interface PolicyBundle {
  readonly set: LoadedPolicySet;
  /** Why the configured engine does not serve this set (it fell back to another), if it does not. */
  readonly notices: readonly string[];
  /** `Type::"id"` → entity, from the configured entities file. */
  readonly entities: ReadonlyMap<string, EntityJson>;
  /** The task templates loaded with the set (src/templates/), validated with it, all or nothing. */
  readonly templates: TemplateRegistry;
  readonly loadedAt: number;
}

export type LoadReport =
  | { ok: true; version: string; policies: number; changed: boolean; engine: string; notices: readonly string[] }
  | { ok: false; problems: PolicyProblem[]; serving: string | undefined };

export interface PolicyStoreOptions {
  /** Directory of `.cedar` files; undefined: no policies (every call is denied). */
  readonly dir: string | undefined;
  readonly schemaPath: string;
  readonly entitiesPath?: string | undefined;
  readonly now: () => number;
  /** The engine that loads and evaluates sets (default: cedar-wasm, the reference). */
  readonly engine?: PolicyEngine;
}

const MAX_ENTITIES = 1_000_000;

export function entityKey(type: string, id: string): string {
  return `${type}::${JSON.stringify(id)}`;
}

export class PolicyStore {
  readonly #options: PolicyStoreOptions;
  #current: PolicyBundle | undefined;
  #unsubscribe: (() => void) | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #lastProblems: PolicyProblem[] = [];

  constructor(options: PolicyStoreOptions) {
    this.#options = options;
  }

  /** The set decisions use now; undefined only before the first successful load. */
  get current(): PolicyBundle | undefined {
    return this.#current;
  }

  /** Problems of the last rejected load (empty when the last load succeeded). */
  get lastProblems(): readonly PolicyProblem[] {
    return this.#lastProblems;
  }

  /** Reads and compiles the configured sources; swaps them in only if all of it is valid. */
  async load(): Promise<LoadReport> {
    let source: PolicySource;
    try {
      source = await readPolicySource(this.#options.dir, this.#options.schemaPath, this.#options.entitiesPath);
    } catch (err) {
      const problems = [{ file: this.#options.dir ?? this.#options.schemaPath, line: 1, column: 1, message: (err as Error).message }];
      this.#lastProblems = problems;
      return { ok: false, problems, serving: this.#current?.set.version };
    }
    return this.loadSource(source);
  }

  /** Compiles sources given in memory (CLI, tests) and swaps them in when valid. */
  loadSource(source: PolicySource): LoadReport {
    const compiled = compileBundle(source, this.#options.now(), this.#options.engine);
    if (!compiled.ok) {
      this.#lastProblems = compiled.problems;
      return { ok: false, problems: compiled.problems, serving: this.#current?.set.version };
    }
    const changed = bundleVersion(this.#current) !== bundleVersion(compiled.bundle);
    if (changed) this.#current = compiled.bundle;
    this.#lastProblems = [];
    const { set, notices } = compiled.bundle;
    return {
      ok: true,
      version: bundleVersion(compiled.bundle) as string,
      policies: set.policies.length,
      changed,
      engine: set.engine,
      notices,
    };
  }

  /**
   * Reloads from disk and, when the set changed, tells every replica to reload (topic `policy`).
   */
  async reload(store: Store, changes: PolicyChangeFeed | undefined): Promise<LoadReport> {
    const report = await this.load();
    if (report.ok && report.changed && changes !== undefined) {
      await store.transaction((tx) => changes.publish(tx, 'policy', report.version, { version: report.version }));
      await changes.catchUp();
    }
    return report;
  }

  /** Follows `policy` changes published by other replicas. */
  follow(changes: PolicyChangeFeed): void {
    this.#unsubscribe?.();
    this.#unsubscribe = changes.subscribe('policy', async (change) => {
      if (change.key === bundleVersion(this.#current)) return;
      await this.load();
    });
  }

  /**
   * Reloads (and announces) whenever a file under the policy directory changes, debounced so an
   * editor's save or a `git pull` is one reload. A bad edit is refused like any other reload.
   */
  watch(store: Store, changes: PolicyChangeFeed | undefined, onReport: (report: LoadReport) => void = () => {}, debounceMs = 250): void {
    if (this.#options.dir === undefined || this.#watcher !== undefined) return;
    this.#watcher = watch(this.#options.dir, { recursive: true, persistent: false }, () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => {
        this.reload(store, changes).then(onReport, () => {});
      }, debounceMs);
      this.#debounce.unref();
    });
  }

  close(): void {
    this.#unsubscribe?.();
    this.#watcher?.close();
    clearTimeout(this.#debounce);
  }
}

/**
 * The version of what a bundle serves: the policy set's, with the templates' appended when there
 * are any (a change to a template alone is a reload every replica follows).
 */
export function bundleVersion(bundle: PolicyBundle | undefined): string | undefined {
  if (bundle === undefined) return undefined;
  return bundle.templates.version === '' ? bundle.set.version : `${bundle.set.version}+t${bundle.templates.version.slice(0, 16)}`;
}

/** Compiles a policy source (policies, schema, entities) into a bundle, or lists its problems. */
export function compileBundle(
  source: PolicySource,
  now: number,
  engine: PolicyEngine = wasmEngine,
): { ok: true; bundle: PolicyBundle } | { ok: false; problems: PolicyProblem[] } {
  const compiled = engine.load(source.schema, source.files);
  if (!compiled.ok) return compiled;
  const templates = loadTemplates(source.templates ?? []);
  if (!templates.ok) return templates;
  const entities = new Map<string, EntityJson>();
  if (source.entities !== undefined) {
    const parsed = parseEntities(source.entities, compiled.set.shapes);
    if (!parsed.ok) return parsed;
    for (const e of parsed.entities) {
      const uid = uidOf(e.uid);
      entities.set(entityKey(uid.type, uid.id), e);
    }
  }
  return { ok: true, bundle: { set: compiled.set, notices: compiled.notices, entities, templates: templates.registry, loadedAt: now } };
}

function parseEntities(
  file: PolicyFile,
  shapes: SchemaShapes,
): { ok: true; entities: EntityJson[] } | { ok: false; problems: PolicyProblem[] } {
  const fail = (message: string) => ({ ok: false as const, problems: [{ file: file.path, line: 1, column: 1, message }] });
  let value: unknown;
  try {
    value = JSON.parse(file.text);
  } catch (err) {
    return fail(`not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(value)) return fail('must be a JSON array of Cedar entities ({ uid, attrs, parents })');
  if (value.length > MAX_ENTITIES) return fail(`more than ${MAX_ENTITIES} entities`);
  // Checked against the schema with the same projection requests use (cedar-wasm's own entity
  // check costs ~0.25 ms per entity and has crashed V8 on very large inputs).
  const out: EntityJson[] = [];
  for (const [i, e] of (value as unknown[]).entries()) {
    const entity = e as Partial<EntityJson> | null;
    const uid = entity?.uid === undefined ? undefined : uidOf(entity.uid);
    if (uid === undefined || typeof uid.type !== 'string' || typeof uid.id !== 'string')
      return fail(`entity #${i} has no uid { type, id }`);
    if (!shapes.entities.has(uid.type)) return fail(`entity #${i} (${uid.type}::"${uid.id}"): unknown entity type`);
    const parents = entity?.parents ?? [];
    if (!Array.isArray(parents) || parents.some((p) => typeof uidOf(p)?.type !== 'string' || typeof uidOf(p)?.id !== 'string')) {
      return fail(`entity #${i} (${uid.type}::"${uid.id}"): parents must be a list of { type, id }`);
    }
    try {
      const attrs = project(shapes, shapes.entities.get(uid.type), entity?.attrs ?? {}, `${uid.type}::"${uid.id}"`) as Record<
        string,
        CedarValueJson
      >;
      out.push({ uid, attrs, parents: parents.map(uidOf) });
    } catch (err) {
      if (err instanceof ShapeError) return fail(`entity #${i}: ${err.message}`);
      throw err;
    }
  }
  return { ok: true, entities: out };
}

function uidOf(uid: EntityUidJson): { type: string; id: string } {
  return uid !== null && typeof uid === 'object' && '__entity' in uid ? uid.__entity : (uid as { type: string; id: string });
}
