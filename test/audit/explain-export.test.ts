// explain walks an event back to the human, mandates, decision, policies and approval; exports
// (JSONL and OCSF) verify offline with only the vkey; proof bundles verify offline too.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { explainEvent, renderExplanation } from '../../src/audit/explain.js';
import { exportLog, verifyExport } from '../../src/audit/export.js';
import type { AuditService } from '../../src/audit/log.js';
import { verifyProofBundle } from '../../src/audit/proof-bundle.js';
import { storeFactories } from '../helpers/stores.js';
import { openAudit } from './helpers.js';

const alice = { type: 'human' as const, id: 'alice' };
const planner = { type: 'agent' as const, id: 'planner' };
const refunder = { type: 'agent' as const, id: 'refunder' };

/** A small story: alice's planner opens a mandate, delegates to refunder, who calls a tool after approval. */
async function story(audit: AuditService): Promise<{ forwarded: string; revoked: string }> {
  // As the token endpoint writes it: before the mandate exists, so without mandateId.
  await audit.append({ type: 'identity.verified', actors: [planner], data: { identity: 'spiffe://acme/planner', proofId: 'jti-1' } });
  await audit.append({ type: 'identity.verified', actors: [refunder], data: { identity: 'spiffe://acme/refunder', proofId: 'jti-2' } });
  await audit.append({
    type: 'mandate.opened',
    actors: [alice, planner],
    mandateId: 'm-root',
    environment: 'production',
    data: { purpose: 'Resolve ticket T-4821', taskType: 'support.refund', onBehalfOf: 'alice', proofId: 'jti-1' },
  });
  await audit.append({
    type: 'mandate.delegated',
    actors: [alice, planner, refunder],
    mandateId: 'm-child',
    environment: 'production',
    data: { parentMandateId: 'm-root', purpose: 'Issue the refund', taskType: 'support.refund' },
  });
  for (let i = 0; i < 10; i++) await audit.append({ type: 'risk.signal', actors: [refunder], mandateId: 'm-child', data: { i } });
  await audit.append({ type: 'approval.requested', actors: [refunder], mandateId: 'm-child', data: { approvalId: 'ap-1' } });
  await audit.append({
    type: 'approval.decided',
    actors: [{ type: 'human', id: 'carol' }],
    data: { approvalId: 'ap-1', approverId: 'carol', decision: 'approved' },
  });
  await audit.append({
    type: 'decision',
    actors: [alice, planner, refunder],
    mandateId: 'm-child',
    data: {
      decisionId: 'dec-9',
      outcome: 'allow',
      policies: ['large-refund-needs-finance', 'active-agents-within-mandate'],
      reasons: ['approved by finance'],
      grant: { mandateId: 'm-child', index: 0, tool: 'helpdesk.execute_refund' },
      approvalId: 'ap-1',
    },
  });
  const forwarded = await audit.append({
    type: 'tool.forwarded',
    actors: [alice, planner, refunder],
    mandateId: 'm-child',
    data: { decisionId: 'dec-9', tool: 'helpdesk.execute_refund', args: { amountCents: 15000 } },
  });
  const revoked = await audit.append({ type: 'mandate.revoked', actors: [alice], mandateId: 'm-root', data: { reason: 'task done' } });
  return { forwarded: forwarded.id, revoked: revoked.id };
}

for (const factory of await storeFactories()) {
  describe(`explain and export: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('explain walks from a tool call to the human, both mandates, decision, policies and approval', async () => {
      const audit = await openAudit(await factory.open());
      const { forwarded, revoked } = await story(audit);
      const x = await explainEvent(audit, forwarded);
      assert.equal(x.decision?.event.data.decisionId, 'dec-9');
      assert.deepEqual(x.policies, ['large-refund-needs-finance', 'active-agents-within-mandate']);
      assert.deepEqual(x.grant, { mandateId: 'm-child', index: 0, tool: 'helpdesk.execute_refund' });
      assert.deepEqual(
        x.mandates.map((m) => [m.mandateId, m.agent, m.purpose]),
        [
          ['m-child', 'refunder', 'Issue the refund'],
          ['m-root', 'planner', 'Resolve ticket T-4821'],
        ],
      );
      assert.equal(x.onBehalfOf, 'alice');
      assert.deepEqual(
        x.approvals.map((a) => a.event.type),
        ['approval.requested', 'approval.decided'],
      );
      assert.equal(x.mandates[1]?.identity?.event.type, 'identity.verified');
      assert.equal(x.mandates[1]?.identityMatch, 'proofId');
      assert.equal(x.mandates[1]?.identity?.event.data.proofId, 'jti-1');
      assert.equal(x.mandates[0]?.identityMatch, 'agent');
      assert.equal(x.mandates[0]?.identity?.event.data.proofId, 'jti-2');
      assert.equal(x.mandates[1]?.ended?.id, revoked);
      assert.equal(x.mandates[0]?.ended, undefined);
      const text = renderExplanation(x);
      assert.match(text, /determining policies: large-refund-needs-finance, active-agents-within-mandate/);
      assert.match(text, /approval #\d+ .* approval\.decided by carol \(approved\)/);
      assert.match(text, /on behalf of: alice/);
      await assert.rejects(explainEvent(audit, '999999'), { code: 'ERR_NOT_FOUND' });
      await assert.rejects(explainEvent(audit, 'nonsense'), { code: 'ERR_NOT_FOUND' });
      await audit.close();
    });

    test('exports verify offline with only the vkey; a changed line names its index', async () => {
      const audit = await openAudit(await factory.open());
      await story(audit);
      for (let i = 0; i < 300; i++) await audit.append({ type: 'risk.signal', actors: [], data: { i } });
      const collect = async (options: Parameters<typeof exportLog>[1]) => {
        const lines: string[] = [];
        for await (const line of exportLog(audit, options)) lines.push(line);
        return lines;
      };
      const all = await collect({});
      assert.equal(all.length, 319 + 1);
      assert.deepEqual(verifyExport(all, audit.vkey), { ok: true, entries: 319 });
      for (const [from, to] of [
        [5, 20],
        [0, 1],
        [256, 319],
        [17, 17],
      ] as const) {
        const part = await collect({ from, to, format: 'ocsf' });
        assert.equal(verifyExport(part, audit.vkey).ok, true, `[${from}, ${to})`);
      }
      const range = await collect({ from: 5, to: 20 });
      const tampered = [...range];
      tampered[3] = (tampered[3] ?? '').replace('"i":', '"j":');
      const bad = verifyExport(tampered, audit.vkey);
      assert.equal(bad.ok, false);
      const dropped = verifyExport([...range.slice(0, 3), ...range.slice(4)], audit.vkey);
      assert.equal(dropped.ok, false);
      const other = await openAudit(await factory.open());
      assert.equal(verifyExport(range, other.vkey).ok, false);
      await Promise.all([audit.close(), other.close()]);
    });

    test('proof bundles verify offline and fail when altered', async () => {
      const audit = await openAudit(await factory.open());
      await story(audit);
      const first = await audit.checkpoint();
      for (let i = 0; i < 40; i++) await audit.append({ type: 'risk.signal', actors: [], data: { i } });
      const inclusion = await audit.inclusionBundle(7);
      assert.equal(verifyProofBundle(inclusion, audit.vkey).ok, true);
      assert.equal(verifyProofBundle({ ...inclusion, index: 8 }, audit.vkey).ok, false);
      assert.equal(verifyProofBundle({ ...inclusion, entry: inclusion.entry.replace('risk', 'fisk') }, audit.vkey).ok, false);
      await audit.checkpoint();
      const consistency = await audit.consistencyBundle(first.size);
      assert.ok(consistency.proof.length > 0);
      assert.equal(verifyProofBundle(consistency, audit.vkey).ok, true, verifyProofBundle(consistency, audit.vkey).reason);
      assert.equal(verifyProofBundle({ ...consistency, proof: consistency.proof.slice(1) }, audit.vkey).ok, false);
      assert.equal(verifyProofBundle({ kind: 'nope' }, audit.vkey).ok, false);
      await audit.close();
    });
  });
}
