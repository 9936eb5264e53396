// The loaded task templates: every `*.template.yaml` / `.yml` / `.json` file under the policy
// directory, parsed, validated (schema and references) all or nothing with the policy set, and
// swapped in with it (src/policy/store.ts). Several versions of one name may be loaded side by side.
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { MandateError } from '../errors/index.js';
import type { PolicyFile, PolicyProblem } from '../policy/engine.js';
import { type ResolvedTemplate, resolveTemplate, type TemplateRequest } from './resolve.js';
import { type TemplateFile, templateFileSchema, templateProblem } from './template.js';

/** File names that hold a template (read beside the `.cedar` files). */
export const TEMPLATE_FILE = /\.template\.(?:ya?ml|json)$/u;
/** Most templates in one policy directory. */
export const MAX_TEMPLATES = 1000;

export type TemplateLoad = { ok: true; registry: TemplateRegistry } | { ok: false; problems: PolicyProblem[] };

/**
 * Task templates by name and version (immutable once loaded).
 *
 * @example
 * const t = registry.get('payments.transfer');        // the highest version
 * const r = registry.resolve({ template: 'payments.transfer', params: { iban, amount } });
 */
export class TemplateRegistry {
  /** name → versions, highest first. */
  readonly #byName: ReadonlyMap<string, readonly TemplateFile[]>;
  /** SHA-256 over the template files' paths and texts ('' when there are none). */
  readonly version: string;

  constructor(templates: readonly TemplateFile[], version: string) {
    const byName = new Map<string, TemplateFile[]>();
    for (const t of templates)
      byName.set(
        t.name,
        [...(byName.get(t.name) ?? []), t].sort((a, b) => b.version - a.version),
      );
    this.#byName = byName;
    this.version = version;
  }

  /** The template `name` at `version` (default: the highest loaded), or undefined. */
  get(name: string, version?: number): TemplateFile | undefined {
    const versions = this.#byName.get(name);
    if (versions === undefined) return undefined;
    return version === undefined ? versions[0] : versions.find((t) => t.version === version);
  }

  /** Every loaded template, by name then version (highest first). */
  list(): TemplateFile[] {
    return [...this.#byName.keys()].sort().flatMap((n) => this.#byName.get(n) ?? []);
  }

  get size(): number {
    let n = 0;
    for (const v of this.#byName.values()) n += v.length;
    return n;
  }

  /**
   * Resolves a request naming a template: ERR_TEMPLATE_UNKNOWN when no such template (or version)
   * is loaded, ERR_TEMPLATE_PARAMS when the parameters do not fit its declarations.
   */
  resolve(req: Omit<TemplateRequest, 'type'>): ResolvedTemplate {
    const t = this.get(req.template, req.version);
    if (t === undefined) {
      const loaded = this.#byName.get(req.template)?.map((v) => v.version);
      throw new MandateError(
        'ERR_TEMPLATE_UNKNOWN',
        loaded === undefined
          ? `no task template "${req.template}" is loaded`
          : `task template "${req.template}" has no version ${req.version} loaded (loaded: ${loaded.join(', ')})`,
        { details: { template: req.template, ...(req.version === undefined ? {} : { version: req.version }) } },
      );
    }
    return resolveTemplate(t, req);
  }
}

export const EMPTY_TEMPLATES = new TemplateRegistry([], '');

/** Parses and validates template files; any problem in any file refuses them all. */
export function loadTemplates(files: readonly PolicyFile[]): TemplateLoad {
  if (files.length === 0) return { ok: true, registry: EMPTY_TEMPLATES };
  const problems: PolicyProblem[] = [];
  const templates: TemplateFile[] = [];
  const seen = new Map<string, string>();
  const hash = createHash('sha256');
  if (files.length > MAX_TEMPLATES) return { ok: false, problems: [at(files[0]?.path ?? '', `more than ${MAX_TEMPLATES} template files`)] };
  for (const file of files) {
    hash.update(`${file.path}\0${file.text}\0`);
    let raw: unknown;
    try {
      raw = file.path.endsWith('.json') ? JSON.parse(file.text) : parseYaml(file.text, { maxAliasCount: 100 });
    } catch (err) {
      const pos = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0];
      problems.push({
        file: file.path,
        line: pos?.line ?? 1,
        column: pos?.col ?? 1,
        message: `not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`,
      });
      continue;
    }
    const parsed = templateFileSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues.slice(0, 5)) {
        problems.push(at(file.path, `${issue.path.map(String).join('.') || '(template)'}: ${issue.message}`));
      }
      continue;
    }
    const problem = templateProblem(parsed.data);
    if (problem !== undefined) {
      problems.push(at(file.path, `${problem.path}: ${problem.message}`));
      continue;
    }
    const id = `${parsed.data.name}@${parsed.data.version}`;
    const other = seen.get(id);
    if (other !== undefined) {
      problems.push(at(file.path, `template ${parsed.data.name} version ${parsed.data.version} is also defined in ${other}`));
      continue;
    }
    seen.set(id, file.path);
    templates.push(parsed.data);
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, registry: new TemplateRegistry(templates, hash.digest('hex')) };
}

function at(file: string, message: string): PolicyProblem {
  return { file, line: 1, column: 1, message };
}
