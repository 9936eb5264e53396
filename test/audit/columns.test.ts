// The decision columns the audit log stores beside each leaf (migration 0063) on both stores: they
// say exactly what the leaf says (also after redaction, elision and type confusion), they are not
// part of the leaf (leaf hashes and the tree are as before, verify passes), other event types leave
// them NULL, and upgrading a log written before 0063 backfills them to what the log writes today.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { columnsOf, decodeLeaf, encodeEvent, leafBytes, MAX_EVENT_BYTES } from '../../src/audit/event.js';
import { readEntryRows } from '../../src/audit/log.js';
import { hashLeaf } from '../../src/audit/merkle.js';
import { verifyLog } from '../../src/audit/verify.js';
import { m0062DecisionIndex } from '../../src/store/migrations/0062_decision_index.js';
import { sqlTypes } from '../../src/store/migrations/index.js';
import type { Store } from '../../src/store/types.js';
import { storeFactories } from '../helpers/stores.js';
import { openAudit } from './helpers.js';

const actors = [
  { type: 'human' as const, id: 'alice' },
  { type: 'agent' as const, id: 'agent-1' },
];

/** Decision events of every shape the columns must survive, and events of other types. */
const events = [
  {
    type: 'decision',
    actors,
    mandateId: 'm-1',
    environment: 'production',
    data: {
      decisionId: 'd-1',
      outcome: 'allow',
      tool: 'shop.refund',
      actionClass: 'execute',
      args: { amountCents: 100 },
      reasons: ['ok'],
      policies: ['p-1', 'p "two"', 'é\u2028'],
      approvalId: 'ap-1',
    },
  },
  // A refusal before any decision: no action class, no policies matched, no environment.
  { type: 'decision', actors, mandateId: 'm-2', data: { decisionId: 'd-2', outcome: 'deny', tool: 'nope', reasons: ['x'], policies: [] } },
  // Type confusion: values that are not strings / not a list of strings.
  {
    type: 'decision',
    actors,
    environment: 'staging',
    data: { decisionId: 7, outcome: ['allow'], tool: { name: 't' }, actionClass: null, policies: [1, { b: 1, a: 2 }] },
  },
  { type: 'decision', actors, data: { outcome: 'allow', policies: 'p-1' } },
  // A huge tool name is elided in the leaf: the column must not claim the original.
  { type: 'decision', actors, data: { decisionId: 'd-5', outcome: 'allow', tool: 'x'.repeat(MAX_EVENT_BYTES) } },
  // Other types carry decision-looking fields that are not decisions.
  {
    type: 'tool.forwarded',
    actors,
    mandateId: 'm-1',
    environment: 'production',
    data: { decisionId: 'd-1', tool: 'shop.refund', outcome: 'allow', policies: ['p'] },
  },
  {
    type: 'approval.decided',
    actors,
    data: { approvalId: 'ap-1', decisionId: 'd-1', outcome: 'approved', tool: 'shop.refund' },
  },
];

type ColumnRow = {
  seq: number;
  type: string;
  decision_id: string | null;
  approval_id: string | null;
  outcome: string | null;
  tool: string | null;
  action_class: string | null;
  environment: string | null;
  policies: string | null;
};

async function columnRows(store: Store): Promise<ColumnRow[]> {
  return (
    await store.query<ColumnRow>(
      'SELECT seq, type, decision_id, approval_id, outcome, tool, action_class, environment, policies FROM audit_entries ORDER BY seq',
    )
  ).map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** What the columns must hold, computed independently from a stored leaf. */
function expectedFromLeaf(body: string): Omit<ColumnRow, 'seq' | 'type'> {
  const { event } = decodeLeaf(body);
  const d = event.data as Record<string, unknown>;
  const s = (v: unknown) => (typeof v === 'string' ? v : null);
  const id = (v: unknown) => (typeof v === 'string' && v.length <= 255 ? v : null);
  const isDecision = event.type === 'decision';
  // The list as it appears in the canonical leaf text (RFC 8785: what the body holds, byte for byte).
  const listText = () => {
    if (!Array.isArray(d.policies)) return null;
    const at = body.indexOf('"policies":');
    let depth = 0;
    for (let i = at + 11; i < body.length; i++) {
      if (body[i] === '"') {
        for (i++; body[i] !== '"'; i++) if (body[i] === '\\') i++;
      } else if (body[i] === '[' || body[i] === '{') depth++;
      else if (body[i] === ']' || body[i] === '}') {
        depth--;
        if (depth === 0) return body.slice(at + 11, i + 1);
      }
    }
    throw new Error('unterminated list');
  };
  return {
    decision_id: id(d.decisionId),
    approval_id: id(d.approvalId),
    outcome: isDecision ? s(d.outcome) : null,
    tool: isDecision ? s(d.tool) : null,
    action_class: isDecision ? s(d.actionClass) : null,
    environment: isDecision ? (event.environment ?? null) : null,
    policies: isDecision ? listText() : null,
  };
}

test('columnsOf reads the built event, not the input: a redacted or elided value is what the column holds', () => {
  const e = encodeEvent(events[4] as never, Date.UTC(2026, 0, 1), (x) => `hmac-sha256:${x.length}`);
  assert.equal(typeof (e.event.data as { tool: unknown }).tool, 'object', 'the huge tool name was elided in the leaf');
  assert.equal(columnsOf(e.event).tool, null);
  assert.equal(columnsOf(e.event).outcome, 'allow');
  const first = encodeEvent(events[0] as never, Date.UTC(2026, 0, 1));
  assert.deepEqual(columnsOf(first.event), {
    decisionId: 'd-1',
    approvalId: 'ap-1',
    outcome: 'allow',
    tool: 'shop.refund',
    actionClass: 'execute',
    environment: 'production',
    policies: '["p-1","p \\"two\\"","é\u2028"]',
  });
  // The columns are not in the leaf: the canonical event has exactly the input's keys.
  assert.deepEqual(Object.keys(JSON.parse(leafBytes(first.canonical, 0)).event).sort(), [
    'actors',
    'data',
    'environment',
    'mandateId',
    'time',
    'type',
    'v',
  ]);
});

for (const factory of await storeFactories()) {
  // Skipped only on a developer machine where PostgreSQL is unreachable (factory.skip is the reason);
  // under CI storeFactories() throws instead, so both stores always run there.
  describe(`audit decision columns: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('each row holds the columns its leaf implies; leaves and tree unchanged; verify passes', async () => {
      const store = await factory.open();
      const audit = await openAudit(store);
      for (const e of events) await audit.append(e as never);
      const rows = await columnRows(store);
      const leaves = await readEntryRows(store, 0, events.length);
      assert.equal(rows.length, events.length);
      for (const [i, r] of rows.entries()) {
        const leaf = leaves[i];
        assert.ok(leaf !== undefined);
        assert.deepEqual({ ...r, seq: undefined, type: undefined }, { ...expectedFromLeaf(leaf.body), seq: undefined, type: undefined });
        // The stored leaf hash is the RFC 9162 hash of the body alone.
        assert.deepEqual(Buffer.from(leaf.leaf_hash), hashLeaf(leaf.body));
      }
      assert.equal(rows[0]?.policies, '["p-1","p \\"two\\"","é\u2028"]');
      assert.equal(rows[1]?.action_class, null);
      assert.equal(rows[1]?.policies, '[]');
      assert.equal(rows[2]?.outcome, null, 'a list is not an outcome');
      assert.equal(rows[2]?.tool, null);
      assert.equal(rows[2]?.decision_id, null, 'a number is not an id');
      assert.equal(rows[2]?.policies, '[1,{"a":2,"b":1}]', 'a list of non-strings is kept in its canonical form');
      assert.equal(rows[3]?.policies, null, 'a string is not a list of policies');
      assert.equal(rows[4]?.tool, null, 'an elided tool name is not claimed');
      assert.equal(rows[5]?.outcome, null, 'not a decision');
      assert.equal(rows[5]?.decision_id, 'd-1', 'ids are indexed for every type');
      assert.equal(rows[6]?.approval_id, 'ap-1');
      await audit.checkpoint();
      const report = await verifyLog(store, { vkey: audit.vkey });
      assert.equal(report.ok, true, report.failure?.reason);
      await audit.close();
    });

    test('upgrading a log written before migration 0063 backfills the columns to what the log writes now', async () => {
      const store = await factory.open();
      const audit = await openAudit(store);
      for (let round = 0; round < 3; round++) for (const e of events) await audit.append(e as never);
      const written = await columnRows(store);
      assert.ok(written.some((r) => r.outcome !== null));
      await audit.checkpoint();
      // Back to the schema before 0063: the columns and the rebuilt index gone, 0062's index back.
      await store.run('DROP INDEX audit_decisions');
      for (const c of ['outcome', 'tool', 'action_class', 'environment', 'policies']) {
        await store.run(`ALTER TABLE audit_entries DROP COLUMN ${c}`);
      }
      for (const statement of m0062DecisionIndex.up(sqlTypes(store.dialect)).split(';')) {
        if (statement.trim() !== '') await store.run(statement);
      }
      await store.run('DELETE FROM schema_migrations WHERE id = 63');
      assert.deepEqual(await store.migrate(), [63]);
      assert.deepEqual(await columnRows(store), written);
      const report = await verifyLog(store, { vkey: audit.vkey });
      assert.equal(report.ok, true, report.failure?.reason);
      // And the log goes on appending with the columns after the upgrade.
      await audit.append(events[0] as never);
      const [last] = await store.query<{ outcome: string }>('SELECT outcome FROM audit_entries ORDER BY seq DESC LIMIT 1');
      assert.equal(last?.outcome, 'allow');
      await audit.close();
    });
  });
}
