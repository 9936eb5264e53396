// The gateway's call path on both stores: once a mandate's first call has warmed what it needs, a
// governed tools/call touches the store only through the audit log's group-committed appends — no
// read of the mandate, the agent, a budget, a token or the catalog, in either protocol revision.
// The store is the real one, wrapped to record every statement it runs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RISK_TOPIC } from '../../src/risk/sharing.js';
import type { Store } from '../../src/store/types.js';
import { storeFactories } from '../helpers/stores.js';
import { type GatewayHarness, modernRequest, startGateway } from './harness.js';

const CALLS = 10;
const AUDIT_SQL = /\baudit_(entries|head)\b/;

interface Statement {
  readonly sql: string;
  readonly params?: readonly unknown[] | undefined;
}
interface Recorded {
  readonly method: string;
  readonly statements: Statement[];
}

/** An audit append writes the entries and moves the tree head, and nothing else. */
const isAudit = (c: Recorded) => c.statements.length > 0 && c.statements.every((s) => AUDIT_SQL.test(s.sql));
/**
 * Work on timers of its own, not per call (PostgreSQL only): the risk counts a replica shares with
 * the others every `risk.shareIntervalMs`, and the change feed reading what was just published.
 */
const isBackground = (c: Recorded) =>
  c.statements.some((s) => s.sql.startsWith('INSERT INTO changes') && s.params?.[0] === RISK_TOPIC) ||
  (c.statements.length === 1 && /^SELECT .* FROM changes WHERE seq > \?/.test(c.statements[0]?.sql ?? ''));

type Sql = (sql: string, params?: readonly unknown[]) => Promise<unknown>;

/**
 * The store, with every statement its entry points run recorded while `recording` is on: the SQL
 * of query/run, of each statement of a write batch, and of each statement run inside a transaction.
 */
function recorded(store: Store) {
  const calls: Recorded[] = [];
  const state = { recording: false };
  const wrapped = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const record = (method: string, statements: Statement[]) => {
        if (state.recording) calls.push({ method, statements });
      };
      switch (prop) {
        case 'query':
        case 'run':
          return (sql: string, params?: readonly unknown[]) => {
            record(prop, [{ sql, params }]);
            return (value as Sql).call(target, sql, params);
          };
        case 'writeBatch':
          return (statements: readonly Statement[], ...rest: unknown[]) => {
            record(prop, [...statements]);
            return value.call(target, statements, ...rest);
          };
        case 'transaction':
          return (fn: (tx: unknown) => Promise<unknown>) => {
            const statements: Statement[] = [];
            record(prop, statements);
            return value.call(target, (tx: Record<string, unknown>) =>
              fn(
                new Proxy(tx, {
                  get(t, p) {
                    const v = Reflect.get(t, p, t);
                    if (p !== 'query' && p !== 'run') return typeof v === 'function' ? v.bind(t) : v;
                    return (text: string, params?: readonly unknown[]) => {
                      statements.push({ sql: text, params });
                      return (v as Sql).call(t, text, params);
                    };
                  },
                }),
              ),
            );
          };
        default:
          return value.bind(target);
      }
    },
  });
  return { store: wrapped, calls, state };
}

for (const factory of await storeFactories()) {
  // The skip is only the PostgreSQL half on a machine where PostgreSQL is unreachable (its reason is
  // the skip value, test/helpers/stores.ts); under CI (CI set) storeFactories() throws instead.
  describe(`gateway call path touches the store only to audit (${factory.name})`, { skip: factory.skip }, () => {
    let h: GatewayHarness;
    let r: ReturnType<typeof recorded>;
    before(async () => {
      r = recorded(await factory.open());
      // The change feed's catch-up poll runs on a timer of its own, not per call: once a minute here,
      // so that any read of the changes table in the window would come from the call path.
      h = await startGateway({ store: r.store, config: { changes: { pollIntervalMs: 60_000, maxStalenessMs: 120_000 } } });
    });
    after(async () => {
      await h.close();
      await factory.cleanup();
    });

    const audited = (from: number) => {
      const calls = r.calls.slice(from);
      const other = calls.filter((c) => !isAudit(c) && !isBackground(c));
      assert.deepEqual(other, [], 'store calls on the call path that are not audit appends');
      const appends = calls.filter(isAudit).length;
      assert.ok(appends >= 1, 'the audit appends went through the recorded store');
      assert.ok(appends <= 2 * CALLS, `${appends} audit commits for ${CALLS} calls`);
    };

    test('2025-11-25 (SDK client over a session)', async () => {
      const { token } = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
      const client = await h.connect(token);
      await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'warm-up' } });
      const from = r.calls.length;
      r.state.recording = true;
      try {
        for (let i = 0; i < CALLS; i++) {
          const res = await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: `charged twice ${i}` } });
          assert.notEqual(res.isError, true, JSON.stringify(res));
        }
      } finally {
        r.state.recording = false;
      }
      audited(from);
    });

    test('2026-07-28 (stateless raw JSON-RPC), including a refusal', async () => {
      const { token } = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
      const call = async (name: string, i: number) => {
        const res = await modernRequest(h.mcpUrl, token, 'tools/call', { name, arguments: { query: `refund ${i}` } }, {}, i);
        assert.equal(res.status, 200);
        return ((await res.json()) as { result: { isError?: boolean } }).result;
      };
      await call('helpdesk.search_tickets', 0);
      const from = r.calls.length;
      r.state.recording = true;
      try {
        for (let i = 1; i < CALLS; i++) assert.notEqual((await call('helpdesk.search_tickets', i)).isError, true);
        // A tool the mandate does not grant: refused from memory, the refusal audited.
        assert.equal((await call('helpdesk.execute_refund', CALLS)).isError, true);
      } finally {
        r.state.recording = false;
      }
      audited(from);
    });
  });
}
