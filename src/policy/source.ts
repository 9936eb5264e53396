// Reads a policy directory: every `*.cedar` file below it (sorted, so ids and errors are stable),
// every task template file beside them (`*.template.yaml|yml|json`, src/templates/), the schema, and
// an optional Cedar JSON entities file (data for AuthZEN subjects and resources).
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEMPLATE_FILE } from '../templates/registry.js';
import type { PolicyFile } from './engine.js';

/** The Cedar schema shipped with Mandate (policies/mandate.cedarschema). */
export const SHIPPED_SCHEMA = fileURLToPath(new URL('../../policies/mandate.cedarschema', import.meta.url));
/** The demo org policies for the helpdesk scenario (policies/demo/). */
export const DEMO_POLICY_DIR = fileURLToPath(new URL('../../policies/demo/', import.meta.url));

const MAX_FILES = 1000;
const MAX_FILE_BYTES = 1024 * 1024;
// Entity data can be large (one entity per subject/resource); it is parsed once per load.
const MAX_ENTITIES_BYTES = 256 * 1024 * 1024;

export interface PolicySource {
  readonly schema: PolicyFile;
  readonly files: PolicyFile[];
  readonly entities: PolicyFile | undefined;
  /** Task template files (src/templates/registry.ts), sorted by path; absent: none. */
  readonly templates?: readonly PolicyFile[];
}

/** Reads the sources; throws with the path when something cannot be read. */
export async function readPolicySource(dir: string | undefined, schemaPath: string, entitiesPath?: string): Promise<PolicySource> {
  const files: PolicyFile[] = [];
  const templates: PolicyFile[] = [];
  if (dir !== undefined) {
    const root = resolve(dir);
    const listed = await listFiles(root);
    for (const path of listed.cedar.sort()) {
      files.push({ path: relative(process.cwd(), path) || path, text: await readLimited(path) });
    }
    for (const path of listed.templates.sort()) {
      templates.push({ path: relative(process.cwd(), path) || path, text: await readLimited(path) });
    }
  }
  const schema = { path: relative(process.cwd(), resolve(schemaPath)) || schemaPath, text: await readLimited(schemaPath) };
  const entities =
    entitiesPath === undefined ? undefined : { path: entitiesPath, text: await readLimited(entitiesPath, MAX_ENTITIES_BYTES) };
  return { schema, files, entities, templates };
}

async function listFiles(dir: string): Promise<{ cedar: string[]; templates: string[] }> {
  const out: string[] = [];
  const templates: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p, depth + 1);
      else if (entry.isFile() && entry.name.endsWith('.cedar')) out.push(p);
      else if (entry.isFile() && TEMPLATE_FILE.test(entry.name)) templates.push(p);
      if (out.length + templates.length > MAX_FILES) throw new Error(`more than ${MAX_FILES} policy and template files under ${dir}`);
    }
  };
  await walk(dir, 0);
  return { cedar: out, templates };
}

async function readLimited(path: string, limit = MAX_FILE_BYTES): Promise<string> {
  const buf = await readFile(path);
  if (buf.length > limit) throw new Error(`${path} is larger than ${limit} bytes`);
  return buf.toString('utf8');
}
