// The few SQL expressions that differ between SQLite and PostgreSQL for the reports: iterating a
// JSON object or array of an audit leaf, percentiles by nearest rank, and the scan of decision
// events (whose fields the reports read from columns, not from the leaf).
import type { Dialect, SqlExecutor, SqlValue } from '../store/types.js';

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
 * (migrations 0062/0063): every column the reports read is in it, so no table row is visited.
 */
export function decisionsTable(d: Dialect): string {
  return d === 'sqlite' ? 'audit_entries INDEXED BY audit_decisions' : 'audit_entries';
}

/**
 * A subquery of the decision events created at or after `?`, with the columns the audit log
 * derives from each decision at append (migration 0063): `seq`, `mandate_id`, `outcome`, `tool`,
 * `cls` (action class), `env` (environment), `approval` (approval id) and `policies` (JSON text of
 * the determining policy ids). No event body is parsed.
 */
export function decisionRows(d: Dialect): string {
  return `(SELECT seq, mandate_id, outcome, tool, action_class AS cls, environment AS env, approval_id AS approval, policies
     FROM ${decisionsTable(d)} WHERE type = 'decision' AND created_at >= ?)`;
}
