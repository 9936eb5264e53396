// How the benchmark's orchestrator opens a mandate from a user prompt alone: a rule-based,
// deterministic classifier of the prompt into task categories (policies/injection/categories/),
// each of which says which state-changing tools such a task may use by what they are called, not
// by name; read-only tools are always granted. The categories a prompt falls into are instantiated
// as one task template (src/templates/ format) for the upstream's actual tools, and the mandate is
// opened from that template with the prompt as the human's request text. Nothing here reads a
// trace's calls, and no rule names a benchmark's values.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';

/** The shipped task-category templates. */
export const CATEGORY_DIR = fileURLToPath(new URL('../../policies/injection/categories/', import.meta.url));

const entityKind = z.enum(['iban', 'email', 'url', 'file']);

export const categorySchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  taskType: z.string().min(1).max(128),
  purpose: z.string().min(1).max(500),
  ttlSeconds: z.number().int().min(10).max(86_400),
  recognise: z.array(z.string().min(1)).max(20),
  recogniseEntities: z.array(entityKind).max(4).optional(),
  /** A regular expression over a tool name's words (`send_money` → "send money"): the state-changing tools this kind of task may use. */
  tools: z.string().min(1),
  /** Granted to every task (its calls are left to org policy's intent rules), whatever the prompt says. */
  always: z.boolean().default(false),
  /** Calls of each of its state-changing tools a request for one thing gets (template parameter `<name>_calls`). */
  budget: z.number().int().min(1).max(1000).optional(),
  /** A request matching this asks for several things: the budget is `MANY_CALLS` instead. */
  plural: z.string().min(1).optional(),
  /** Its tools whose name words match this always wait for a human (the template's `approval.tools`). */
  approve: z.string().min(1).optional(),
});

export type Category = z.infer<typeof categorySchema> & {
  readonly cues: RegExp[];
  readonly toolPattern: RegExp;
  readonly pluralPattern: RegExp | undefined;
  readonly approvePattern: RegExp | undefined;
};

/** The budget of a category whose request asks for several things. */
export const MANY_CALLS = 100;

/** Loads and validates every `*.yaml` under `dir`; throws naming the file on the first bad one. */
export function loadCategories(dir = CATEGORY_DIR): Category[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const parsed = categorySchema.safeParse(parse(readFileSync(join(dir, f), 'utf8')));
      if (!parsed.success) throw new Error(`${f}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const c = parsed.data;
      if (`${c.name}.yaml` !== f) throw new Error(`${f}: name ${c.name} does not match the file name`);
      return {
        ...c,
        cues: c.recognise.map((r) => new RegExp(r, 'i')),
        toolPattern: new RegExp(c.tools, 'i'),
        pluralPattern: c.plural === undefined ? undefined : new RegExp(c.plural, 'i'),
        approvePattern: c.approve === undefined ? undefined : new RegExp(c.approve, 'i'),
      };
    });
}

// Entity shapes the classifier looks for (the same kinds the intent extractor binds).
const ENTITY: Record<z.infer<typeof entityKind>, RegExp> = {
  iban: /\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b/,
  email: /\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b/,
  url: /\b(https?:\/\/|www\.)\S+/i,
  file: /\b[\w.-]+\.(txt|docx?|xlsx?|pdf|csv|md|json|pptx?)\b/i,
};

/** The categories a prompt asks for, in file order (possibly none: a read-only task). */
export function classify(prompt: string, categories: readonly Category[]): Category[] {
  return categories.filter((c) => c.cues.some((re) => re.test(prompt)) || (c.recogniseEntities ?? []).some((k) => ENTITY[k].test(prompt)));
}

/** A tool as the catalog describes it. */
export interface ToolInfo {
  readonly name: string;
  readonly readOnly: boolean;
}

/** The tools a mandate for `chosen` grants: every read-only tool, and the state-changing tools a chosen category matches. */
export function toolsFor(chosen: readonly Category[], tools: readonly ToolInfo[], all: readonly Category[] = []): string[] {
  const grants = [...chosen, ...all.filter((c) => c.always)];
  return tools.filter((t) => t.readOnly || grants.some((c) => c.toolPattern.test(nameWords(t.name)))).map((t) => t.name);
}

/** A tool name's words, lower-case and space-separated: `send_money`, `sendMoney` and `send-money` are "send money". */
export function nameWords(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '')
    .join(' ');
}

/** The task type of a mandate for the chosen categories (a delegated task is only that). */
export function taskTypeOf(chosen: readonly Category[]): string {
  const delegated = chosen.find((c) => c.name === 'delegated');
  if (delegated !== undefined) return delegated.taskType;
  if (chosen.length === 0) return 'task.read';
  return chosen
    .map((c) => c.taskType)
    .join('+')
    .slice(0, 128);
}

/** The name of the template for `chosen` on `upstream` (`<upstream>.<category>-<category>…`, or `.read`). */
export function templateName(upstream: string, chosen: readonly Category[]): string {
  const kinds = chosen.some((c) => c.name === 'delegated') ? 'delegated' : chosen.map((c) => c.name).join('-') || 'read';
  return `${upstream}.${kinds}`.slice(0, 128);
}

/** The template parameter holding a category's budget. */
export const budgetParam = (c: Category) => `${c.name.replace(/[^A-Za-z0-9]/g, '_')}_calls`;

/**
 * The task template (src/templates/template.ts file format) the chosen categories stand for on one
 * upstream: its read-only tools and the state-changing tools the categories (and those granted to
 * every task, `all` with `always`) match, namespaced. A state-changing tool of a category with a
 * budget gets `maxCalls: $params.<category>_calls`; tools a category's `approve` matches are the
 * template's `approval.tools`.
 */
export function instantiate(
  upstream: string,
  chosen: readonly Category[],
  tools: readonly ToolInfo[],
  all: readonly Category[] = [],
): Record<string, unknown> {
  const granted = toolsFor(chosen, tools, all);
  const params: Record<string, unknown> = {};
  const grants = granted.map((name) => {
    const info = tools.find((t) => t.name === name);
    const by = info?.readOnly === false ? chosen.filter((c) => c.toolPattern.test(nameWords(name))) : [];
    // Budgeted only when every category that grants it has a budget (the first one's parameter counts).
    const budgeted = by.length > 0 && by.every((c) => c.budget !== undefined) ? by[0] : undefined;
    if (budgeted === undefined) return { tool: `${upstream}.${name}` };
    params[budgetParam(budgeted)] = { type: 'integer', min: 1, max: MANY_CALLS, description: `calls of each ${budgeted.name} tool` };
    return { tool: `${upstream}.${name}`, maxCalls: `$params.${budgetParam(budgeted)}` };
  });
  // A category's `approve` covers the state-changing tools it grants itself.
  const approve = granted.filter((name) => {
    const words = nameWords(name);
    return (
      tools.find((t) => t.name === name)?.readOnly === false &&
      chosen.some((c) => c.toolPattern.test(words) && c.approvePattern?.test(words) === true)
    );
  });
  return {
    name: templateName(upstream, chosen),
    version: 1,
    description: `Generated from the task categories ${chosen.map((c) => c.name).join(', ') || '(none: read only)'} for the tools of ${upstream}.`,
    purpose: chosen.map((c) => c.purpose).join(' ') || 'Answer from what the human may read.',
    taskType: taskTypeOf(chosen),
    ttlSeconds: Math.max(300, ...chosen.map((c) => c.ttlSeconds)),
    params,
    // A template grants at least one tool; a catalog without read-only tools gets its first tool, which org policy still decides.
    tools: grants.length > 0 ? grants : tools.slice(0, 1).map((t) => ({ tool: `${upstream}.${t.name}` })),
    delegable: false,
    approval: { tools: approve.map((t) => `${upstream}.${t}`), unnamedTargets: false },
  };
}

/** The template parameters a prompt gives: per budgeted category, one call, or `MANY_CALLS` when the prompt asks for several. */
export function paramsFor(prompt: string, chosen: readonly Category[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of chosen) {
    if (c.budget === undefined) continue;
    out[budgetParam(c)] = c.pluralPattern?.test(prompt) === true ? MANY_CALLS : c.budget;
  }
  return out;
}
