// AuthZEN action.properties reach Cedar as `context.action` (Cedar actions carry no request
// attributes), projected onto the action's declared context like any other property.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningPdp, startExample } from './authzen-server.js';

describe('AuthZEN action.properties', () => {
  let pdp: RunningPdp;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-authzen-action-'));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(
      join(dir, 'docs.cedarschema'),
      `namespace Docs {
  entity User;
  entity Doc;
  action "read" appliesTo { principal: [User], resource: [Doc], context: { action?: { reason: String } } };
}
`,
    );
    writeFileSync(
      join(dir, 'policies', 'read.cedar'),
      `@id("read-for-audit")
permit (principal, action == Docs::Action::"read", resource)
when { context has action && context.action.reason == "audit" };
`,
    );
    writeFileSync(join(dir, 'entities.json'), '[]');
    writeFileSync(
      join(dir, 'config.yaml'),
      'mode: demo\nlog:\n  level: warn\npolicy:\n  dir: ./policies\n  schema: ./docs.cedarschema\n  entities: ./entities.json\n  authzen:\n    auth: "off"\n    namespace: Docs\n    types: {}\n',
    );
    pdp = await startExample(join(dir, 'config.yaml'));
  });
  after(() => pdp.close());

  const ask = (action: Record<string, unknown>, context?: Record<string, unknown>) =>
    pdp.post('/access/v1/evaluation', {
      subject: { type: 'User', id: 'u1' },
      action,
      resource: { type: 'Doc', id: 'd1' },
      ...(context ? { context } : {}),
    });

  it('allows when the action properties satisfy the policy', async () => {
    const res = await ask({ name: 'read', properties: { reason: 'audit' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.decision, true);
  });

  it('denies with other or missing properties, and they override a context.action of the caller', async () => {
    assert.equal((await ask({ name: 'read', properties: { reason: 'curiosity' } })).body.decision, false);
    assert.equal((await ask({ name: 'read' })).body.decision, false);
    assert.equal((await ask({ name: 'read', properties: { reason: 'curiosity' } }, { action: { reason: 'audit' } })).body.decision, false);
  });

  it('wrong-typed action properties make the decision false', async () => {
    assert.equal((await ask({ name: 'read', properties: { reason: 42 } })).body.decision, false);
  });
});
