// Admin API of org policy over HTTP on both stores: list the set, reload without restart, a bad
// set refused as a whole (422) while the previous one keeps deciding, and permissions.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type Broker, createBroker } from '../../src/broker.js';
import { buildConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';
import { DEMO_POLICY_DIR } from '../../src/policy/source.js';
import { storeFactories } from '../helpers/stores.js';

const TOKEN = 'policy-admin-bootstrap-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

for (const factory of await storeFactories()) {
  describe(`policy admin API (${factory.name})`, { skip: factory.skip }, () => {
    let app: FastifyInstance;
    let broker: Broker;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'mandate-policy-admin-'));
      cpSync(DEMO_POLICY_DIR, join(dir, 'policies'), { recursive: true });
      const config = buildConfig(
        { mode: 'demo', dataDir: join(dir, 'data'), log: { level: 'silent' }, policy: { dir: join(dir, 'policies') } },
        { env: { MANDATE_BOOTSTRAP_TOKEN: TOKEN } },
      );
      broker = await createBroker(config, { store: await factory.open() });
      app = await buildApp(broker);
    });
    after(async () => {
      await app.close();
      await factory.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('lists the active set with file and line of each policy', async () => {
      const res = await app.inject({ method: 'GET', url: '/admin/v1/policies', headers: auth });
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.policies.length, 10);
      const p = body.policies.find((x: { id: string }) => x.id === 'large-refund-needs-finance');
      assert.match(p.file, /10-helpdesk\.cedar$/);
      assert.equal(p.effect, 'forbid');
      assert.deepEqual(body.lastProblems, []);
    });

    it('needs an operator with policy permissions', async () => {
      assert.equal((await app.inject({ method: 'GET', url: '/admin/v1/policies' })).statusCode, 401);
      assert.equal((await app.inject({ method: 'POST', url: '/admin/v1/policies/reload' })).statusCode, 401);
    });

    it('refuses a bad set as a whole (422, with file:line:column) and keeps serving the previous one', async () => {
      const before = broker.policies.current?.set.version;
      writeFileSync(
        join(dir, 'policies', '50-typo.cedar'),
        '@id("typo")\nforbid (principal, action, resource)\nwhen { resource.actionClas == "read" };\n',
      );
      const res = await app.inject({ method: 'POST', url: '/admin/v1/policies/reload', headers: auth });
      assert.equal(res.statusCode, 422);
      assert.equal(res.json().error, 'ERR_POLICY_INVALID');
      assert.match(res.json().message, /50-typo\.cedar:3:\d+/);
      assert.equal(broker.policies.current?.set.version, before);
      const listed = (await app.inject({ method: 'GET', url: '/admin/v1/policies', headers: auth })).json();
      assert.equal(listed.lastProblems.length > 0, true);
    });

    it('reloads a valid set without restart, and decisions follow it at once', async () => {
      writeFileSync(
        join(dir, 'policies', '50-typo.cedar'),
        '@id("no-searching")\nforbid (principal, action == Mandate::Action::"call", resource == Mandate::Tool::"helpdesk.search_tickets");\n',
      );
      const res = await app.inject({ method: 'POST', url: '/admin/v1/policies/reload', headers: auth });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().changed, true);
      assert.equal(res.json().policies, 11);
      const m = {
        id: 'm-admin',
        agentId: 'a1',
        purpose: 'p',
        taskType: 't',
        environment: 'production',
        scope: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
        depth: 0,
        status: 'active',
      };
      const d = await broker.decisions.decide({
        mandate: m,
        chain: [m],
        agent: { id: 'a1', actorType: 'agent', owner: 'o', environment: 'production', status: 'active' },
        tool: { name: 'helpdesk.search_tickets', upstream: 'helpdesk', actionClass: 'read', sensitivity: 'internal', sensitiveArgs: [] },
        args: {},
      });
      assert.equal(d.outcome, 'deny');
      assert.deepEqual(d.policies, ['no-searching']);
    });
  });
}
