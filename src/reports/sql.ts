// The few SQL expressions that differ between SQLite and PostgreSQL for the reports: reading a JSON
// field of an audit leaf, iterating a JSON object, and percentiles by nearest rank.
import type { Dialect, SqlExecutor, SqlValue } from '../store/types.js';

/** Text of the JSON value at `path` (keys) inside the column holding JSON text. */
export function jsonText(d: Dialect, column: string, path: readonly string[]): string {
  return d === 'sqlite' ? `json_extract(${column}, '$.${path.join('.')}')` : `(${column}::jsonb #>> '{${path.join(',')}}')`;
}

/**
 * A FROM-clause item iterating the members of the JSON object at `path` as (key, num, str):
 * `num` is the value when it is a number, `str` when it is a string, else NULL.
 */
export function jsonMembers(
  d: Dialect,
  column: string,
  path: readonly string[],
  alias: string,
): { from: string; key: string; num: string; str: string } {
  if (d === 'sqlite') {
    return {
      from: `json_each(${column}, '$.${path.join('.')}') ${alias}`,
      key: `${alias}.key`,
      num: `(CASE WHEN ${alias}.type IN ('integer', 'real') THEN ${alias}.value END)`,
      str: `(CASE WHEN ${alias}.type = 'text' THEN ${alias}.value END)`,
    };
  }
  const obj = `(${column}::jsonb #> '{${path.join(',')}}')`;
  return {
    from: `LATERAL jsonb_each(CASE WHEN jsonb_typeof(${obj}) = 'object' THEN ${obj} ELSE '{}'::jsonb END) ${alias}`,
    key: `${alias}.key`,
    num: `(CASE WHEN jsonb_typeof(${alias}.value) = 'number' THEN (${alias}.value #>> '{}')::float8 END)`,
    str: `(CASE WHEN jsonb_typeof(${alias}.value) = 'string' THEN ${alias}.value #>> '{}' END)`,
  };
}

/** A FROM-clause item iterating the elements of the JSON array at `path` as `value` (text). */
export function jsonElements(d: Dialect, column: string, path: readonly string[], alias: string): { from: string; value: string } {
  if (d === 'sqlite') return { from: `json_each(${column}, '$.${path.join('.')}') ${alias}`, value: `${alias}.value` };
  const arr = `(${column}::jsonb #> '{${path.join(',')}}')`;
  return {
    from: `LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(${arr}) = 'array' THEN ${arr} ELSE '[]'::jsonb END) ${alias}(value)`,
    value: `${alias}.value`,
  };
}

/** Nearest-rank percentiles of `expr` over `fromWhere` (everything after SELECT … ), plus the count. */
export async function percentiles(
  db: SqlExecutor,
  expr: string,
  fromWhere: string,
  params: readonly SqlValue[],
  ps: readonly number[],
): Promise<{ count: number; values: (number | null)[] }> {
  const [row] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n ${fromWhere}`, params);
  const count = Number(row?.n ?? 0);
  const values: (number | null)[] = [];
  for (const p of ps) {
    if (count === 0) {
      values.push(null);
      continue;
    }
    const offset = Math.max(0, Math.ceil(p * count) - 1);
    const [r] = await db.query<{ v: number }>(`SELECT ${expr} AS v ${fromWhere} ORDER BY v LIMIT 1 OFFSET ?`, [...params, offset]);
    values.push(r === undefined ? null : Number(r.v));
  }
  return { count, values };
}

export const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * `audit_entries` for a scan of decision events by time. SQLite is told to use the decision index
 * (migration 0062): its expressions then come from the index, not from parsing each body.
 */
export function decisionsTable(d: Dialect): string {
  return d === 'sqlite' ? 'audit_entries INDEXED BY audit_decisions' : 'audit_entries';
}

/**
 * A subquery of the decision events created at or after `?`, with `mandate_id`, `seq` and one text
 * column per named JSON field. SQLite reads the fields from the covering decision index (fenced,
 * so the planner does not flatten it into the aggregate around it); PostgreSQL parses each body
 * as cheaply as it can (`OFFSET 0` keeps the jsonb cast from being inlined once per field).
 */
export function decisionRows(d: Dialect, fields: Readonly<Record<string, readonly string[]>>): string {
  const cols = Object.entries(fields);
  if (d === 'sqlite') {
    const list = cols.map(([alias, path]) => `${jsonText(d, 'body', path)} AS ${alias}`).join(', ');
    return `(SELECT seq, mandate_id, ${list} FROM audit_entries INDEXED BY audit_decisions WHERE type = 'decision' AND created_at >= ? LIMIT -1)`;
  }
  // Measured on 1,000,000 events: reading two fields from `json` (a lazy scan of the text) beats
  // building a jsonb tree; for more fields one jsonb parse per body wins.
  if (cols.length <= 2) {
    const list = cols.map(([alias, path]) => `(body::json #>> '{${path.join(',')}}') AS ${alias}`).join(', ');
    return `(SELECT seq, mandate_id, ${list} FROM audit_entries WHERE type = 'decision' AND created_at >= ?)`;
  }
  const list = cols.map(([alias, path]) => `(j #>> '{${path.join(',')}}') AS ${alias}`).join(', ');
  return `(SELECT seq, mandate_id, ${list} FROM (SELECT seq, mandate_id, body::jsonb AS j FROM audit_entries WHERE type = 'decision' AND created_at >= ? OFFSET 0) p)`;
}

export const DECISION_FIELDS = {
  outcome: ['event', 'data', 'outcome'],
  tool: ['event', 'data', 'tool'],
  cls: ['event', 'data', 'actionClass'],
  env: ['event', 'environment'],
  approval: ['event', 'data', 'approvalId'],
  policies: ['event', 'data', 'policies'],
} as const;
