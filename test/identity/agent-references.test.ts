// What an agent registration names must exist, checked by the admin API itself (so the CLI and any
// other client are refused alike): an active owner who is a human or a service, and tools that are
// in the catalog. Refused before anything is audited or stored. Real broker (demo mode: the
// helpdesk upstream fills the catalog) on both stores.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { storeFactories } from '../helpers/stores.js';

const TOOL = 'helpdesk.search_tickets';

for (const factory of await storeFactories()) {
  // Skipped only on a developer machine where PostgreSQL is unreachable (factory.skip is the reason);
  // under CI storeFactories() throws instead, so both stores always run there.
  describe(`agent registration references: ${factory.name}`, { skip: factory.skip }, () => {
    let t: TestApp;
    let alice: string;
    const body = (id: string, over: Record<string, unknown> = {}) => ({
      id,
      displayName: id,
      owner: 'bob',
      environment: 'sandbox',
      identity: { spiffeId: `spiffe://demo.mandate.local/agent/${id}` },
      ceiling: { tools: [{ tool: TOOL }], delegable: false },
      ...over,
    });
    const send = async (method: 'POST' | 'PATCH', url: string, payload: unknown) => {
      const res = await t.app.inject({ method, url, payload: payload as object, headers: { authorization: `Bearer ${alice}` } });
      return {
        status: res.statusCode,
        body: res.json() as { code?: string; message?: string; error?: string; error_description?: string },
      };
    };
    const text = (b: { message?: string; error_description?: string }) => b.error_description ?? b.message ?? '';
    const audited = async (agentId: string) => {
      const { size } = await t.broker.audit.head();
      let n = 0;
      for (let from = 0; from < size; from += 1000)
        for (const e of await t.broker.audit.entries(from, size))
          if (e.event.type === 'admin.agent.registered' && (e.event.data as { agentId?: string }).agentId === agentId) n++;
      return n;
    };

    before(async () => {
      t = await buildTestApp({ store: await factory.open() });
      alice = await t.operatorToken('alice');
      // The demo catalog comes from the helpdesk upstream (stdio): discover it now.
      await t.broker.upstreams.discoverPending();
      assert.ok(t.broker.upstreams.catalog.get(TOOL), 'the demo catalog is loaded');
    });
    after(async () => {
      await t.close();
      await factory.cleanup();
    });

    test('a known, active owner and catalog tools: registered (201)', async () => {
      const res = await send('POST', '/admin/v1/agents', body('ok-agent'));
      assert.equal(res.status, 201);
    });

    test('an unknown owner is refused (400 ERR_VALIDATION), nothing audited or stored', async () => {
      const res = await send('POST', '/admin/v1/agents', body('orphan', { owner: 'dave' }));
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'ERR_VALIDATION');
      assert.match(text(res.body), /owner "dave" is not a known principal/);
      assert.equal(await t.broker.agents.get('orphan'), undefined);
      assert.equal(await audited('orphan'), 0);
    });

    test('a disabled owner, and an agent as owner, are refused', async () => {
      await t.broker.principals.create({ id: 'gone', actorType: 'human', displayName: 'Gone', status: 'disabled' });
      const disabled = await send('POST', '/admin/v1/agents', body('a1', { owner: 'gone' }));
      assert.equal(disabled.status, 400);
      assert.match(text(disabled.body), /owner "gone" is disabled/);
      const byAgent = await send('POST', '/admin/v1/agents', body('a2', { owner: 'ok-agent' }));
      assert.equal(byAgent.status, 400);
      assert.match(text(byAgent.body), /is an agent/);
    });

    test('tools not in the catalog are refused, named exactly (encoded look-alikes too), the list bounded', async () => {
      for (const tool of ['helpdesk.serch_tickets', 'helpdesk%2Esearch_tickets', 'helpdesk.search_tickets ', 'HELPDESK.SEARCH_TICKETS']) {
        const res = await send('POST', '/admin/v1/agents', body('typo', { ceiling: { tools: [{ tool }], delegable: false } }));
        assert.equal(res.status, 400, tool);
        assert.match(text(res.body), /not in the tool catalog/);
        assert.ok(text(res.body).includes(JSON.stringify(tool)), tool);
      }
      const many = Array.from({ length: 50 }, (_, i) => ({ tool: `nope.tool_${i}` }));
      const res = await send('POST', '/admin/v1/agents', body('many', { ceiling: { tools: many, delegable: false } }));
      assert.equal(res.status, 400);
      assert.match(text(res.body), /and 40 more/);
      assert.equal(await t.broker.agents.get('typo'), undefined);
    });

    test('type confusion is refused by the schema before any lookup', async () => {
      for (const owner of [42, null, ['bob'], { id: 'bob' }]) {
        const res = await send('POST', '/admin/v1/agents', body('conf', { owner }));
        assert.equal(res.status, 400, JSON.stringify(owner));
      }
      const res = await send('POST', '/admin/v1/agents', body('conf', { ceiling: { tools: [{ tool: 7 }], delegable: false } }));
      assert.equal(res.status, 400);
    });

    test('an update to an unknown owner or tool is refused too; a valid one applies', async () => {
      const owner = await send('PATCH', '/admin/v1/agents/ok-agent', { owner: 'dave' });
      assert.equal(owner.status, 400);
      const tool = await send('PATCH', '/admin/v1/agents/ok-agent', { ceiling: { tools: [{ tool: 'nope.x' }], delegable: false } });
      assert.equal(tool.status, 400);
      assert.equal((await t.broker.agents.require('ok-agent')).principal.owner, 'bob');
      const fine = await send('PATCH', '/admin/v1/agents/ok-agent', { owner: 'carol' });
      assert.equal(fine.status, 200);
      assert.equal((await t.broker.agents.require('ok-agent')).principal.owner, 'carol');
    });
  });
}
