// The reports admin API: access by role, formats, unknown names, and applying a reviewed
// least-privilege ceiling (wrong hash refused, right hash applied and audited).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';

describe('reports admin API', () => {
  let t: TestApp;
  let admin: string;
  before(async () => {
    t = await buildTestApp();
    admin = await t.operatorToken('alice');
  });
  after(() => t.close());
  const get = (url: string, token = admin) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

  it('serves every report to admins and auditors, refuses others', async () => {
    const list = await get('/admin/v1/reports');
    assert.equal(list.statusCode, 200);
    const names = list.json().reports as string[];
    assert.ok(names.includes('over-privilege') && names.includes('controls'));
    const auditor = await t.operatorToken('bob', ['auditor']);
    for (const name of names) {
      const r = await get(`/admin/v1/reports/${name}`, auditor);
      assert.equal(r.statusCode, 200, `${name}: ${r.body}`);
      assert.equal(r.json().name, name);
    }
    const html = await get('/admin/v1/reports/inventory?format=html');
    assert.match(html.headers['content-type'] as string, /^text\/html/);
    assert.match(html.body, /<style>/);
    assert.match((await get('/admin/v1/reports/controls?format=csv&framework=owasp-nhi')).body, /NHI10/);
    assert.equal((await get('/admin/v1/reports/controls?framework=nope')).statusCode, 404);
    assert.equal((await get('/admin/v1/reports/nope')).statusCode, 404);
    assert.equal((await get('/admin/v1/reports/..%2Fagents')).statusCode, 404);
    assert.equal((await get('/admin/v1/reports/inventory?format=exe')).statusCode, 400);
    assert.equal((await get('/admin/v1/reports/inventory?since=yesterday')).statusCode, 400);
    assert.equal((await get('/admin/v1/reports/inventory', await t.operatorToken('bob', ['approver']))).statusCode, 403);
    assert.equal((await t.app.inject({ method: 'GET', url: '/admin/v1/reports/inventory' })).statusCode, 401);
    const openapi = (await t.app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> };
    assert.ok(openapi.paths['/admin/v1/reports/{name}']?.get !== undefined);
    assert.ok(openapi.paths['/admin/v1/reports/over-privilege/{agentId}/apply']?.post !== undefined);
  });

  it('applies a reviewed least-privilege ceiling in one audited step', async () => {
    const reg = await t.app.inject({
      method: 'POST',
      url: '/admin/v1/agents',
      headers: { authorization: `Bearer ${admin}` },
      payload: {
        id: 'reports-agent',
        displayName: 'Reports agent',
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: 'spiffe://reports.test/agent' },
        ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.get_customer' }] },
      },
    });
    assert.equal(reg.statusCode, 201, reg.body);
    const report = (await get('/admin/v1/reports/over-privilege?agentId=reports-agent')).json() as {
      rows: { agentId: string; suggestionHash: string; unusedTools: string[] }[];
    };
    const row = report.rows.find((r) => r.agentId === 'reports-agent');
    assert.deepEqual(row?.unusedTools, ['helpdesk.search_tickets', 'helpdesk.get_customer']);
    const apply = (hash: string, token = admin) =>
      t.app.inject({
        method: 'POST',
        url: '/admin/v1/reports/over-privilege/reports-agent/apply',
        headers: { authorization: `Bearer ${token}` },
        payload: { suggestionHash: hash },
      });
    assert.equal((await apply('0'.repeat(64))).statusCode, 409);
    assert.equal((await apply(row?.suggestionHash as string, await t.operatorToken('bob', ['auditor']))).statusCode, 403);
    const ok = await apply(row?.suggestionHash as string);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json().ceiling, { tools: [], delegable: false });
    const agent = (await get('/admin/v1/agents/reports-agent')).json() as { ceiling: { tools: unknown[] } };
    assert.deepEqual(agent.ceiling.tools, []);
    const [row2] = await t.broker.store.query<{ body: string }>(
      "SELECT body FROM audit_entries WHERE type = 'admin.agent.ceiling_reduced'",
    );
    assert.match(row2?.body ?? '', /"agentId":"reports-agent"/);
  });
});
