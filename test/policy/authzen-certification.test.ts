// The AuthZEN certification scenario, basic level (test/vectors/authzen/README.md), over HTTP against a
// real broker serving examples/authzen-certification: every required outcome, and the request checks.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CaseRunner, readCases } from '../../src/policy/cases.js';
import { PolicyStore } from '../../src/policy/store.js';
import { type RunningPdp, startExample } from './authzen-server.js';

const user = (id: string, properties?: Record<string, unknown>) => ({ type: 'user', id, ...(properties ? { properties } : {}) });
const record = (id: string, properties?: Record<string, unknown>) => ({ type: 'record', id, ...(properties ? { properties } : {}) });

describe('AuthZEN certification, basic level (examples/authzen-certification)', () => {
  let pdp: RunningPdp;
  before(async () => {
    pdp = await startExample('examples/authzen-certification/config.yaml');
  });
  after(() => pdp.close());

  const decide = async (subject: object, action: object, resource: object, extra: object = {}) => {
    const res = await pdp.post('/access/v1/evaluation', { subject, action, resource, ...extra });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof res.body.decision, 'boolean');
    return res.body.decision as boolean;
  };

  // [subject, action, action properties, resource, expected]
  const required: [string, string, Record<string, unknown> | undefined, string, boolean][] = [
    ['alice', 'read', undefined, 'record-1', true],
    ['alice', 'write', undefined, 'record-1', true],
    ['bob', 'read', undefined, 'record-1', true],
    ['bob', 'write', undefined, 'record-1', false],
    // Nobody but an admin (bob) writes an archived record.
    ['alice', 'write', undefined, 'record-2', false],
    ['bob', 'write', undefined, 'record-2', true],
    // Soft deletes are allowed, hard deletes denied, for everyone.
    ['alice', 'delete', { soft: true }, 'record-1', true],
    ['bob', 'delete', { soft: true }, 'record-2', true],
    ['alice', 'delete', { soft: false }, 'record-1', false],
    ['bob', 'delete', { soft: false }, 'record-2', false],
  ];
  for (const [subject, action, properties, resource, expected] of required) {
    const label = `${subject} ${action}${properties ? ` ${JSON.stringify(properties)}` : ''} ${resource} → ${expected}`;
    it(label, async () => {
      assert.equal(await decide(user(subject), { name: action, ...(properties ? { properties } : {}) }, record(resource)), expected);
    });
  }

  it('answers the same outcomes in one batch (evaluations)', async () => {
    const res = await pdp.post('/access/v1/evaluations', {
      evaluations: required.map(([s, a, p, r]) => ({
        subject: user(s),
        action: { name: a, ...(p ? { properties: p } : {}) },
        resource: record(r),
      })),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.evaluations.map((e: { decision: boolean }) => e.decision),
      required.map((c) => c[4]),
    );
  });

  it('a delete without soft, or with soft as a string, is denied', async () => {
    assert.equal(await decide(user('alice'), { name: 'delete' }, record('record-1')), false);
    assert.equal(await decide(user('bob'), { name: 'delete', properties: { soft: 'true' } }, record('record-1')), false);
    assert.equal(await decide(user('bob'), { name: 'delete', properties: { soft: 1 } }, record('record-1')), false);
  });

  it('the PDP data wins over properties the PEP claims', async () => {
    // alice claiming the admin role, or record-2 claimed active, does not let alice write it.
    assert.equal(await decide(user('alice', { role: 'admin' }), { name: 'write' }, record('record-2')), false);
    assert.equal(await decide(user('alice'), { name: 'write' }, record('record-2', { status: 'active' })), false);
    // bob claiming to own record-1 does not let him write it.
    assert.equal(await decide(user('bob'), { name: 'write' }, record('record-1', { owner: { type: 'Records::user', id: 'bob' } })), false);
  });

  it('unknown subjects, actions and resource types are denied, not errors', async () => {
    // A user the entities file does not know has no role: the schema requires one, so no decision applies.
    assert.equal(await decide(user('mallory'), { name: 'write' }, record('record-2')), false);
    assert.equal(await decide(user('alice'), { name: 'archive' }, record('record-1')), false);
    assert.equal(await decide(user('alice'), { name: 'read' }, { type: 'folder', id: 'f1' }), false);
  });

  for (const missing of ['subject', 'action', 'resource'] as const) {
    it(`400 for a missing ${missing}`, async () => {
      const body: Record<string, unknown> = { subject: user('alice'), action: { name: 'read' }, resource: record('record-1') };
      delete body[missing];
      const res = await pdp.post('/access/v1/evaluation', body);
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'ERR_BAD_REQUEST');
      assert.equal(res.body.details?.path, missing);
      assert.equal(res.body.decision, undefined);
    });
  }

  it('400 for a subject without id and an action without name', async () => {
    const noId = await pdp.post('/access/v1/evaluation', {
      subject: { type: 'user' },
      action: { name: 'read' },
      resource: record('record-1'),
    });
    assert.equal(noId.status, 400);
    assert.equal(noId.body.details?.path, 'subject.id');
    const noName = await pdp.post('/access/v1/evaluation', { subject: user('alice'), action: {}, resource: record('record-1') });
    assert.equal(noName.status, 400);
    assert.equal(noName.body.details?.path, 'action.name');
  });

  it('400 for malformed JSON and for a body that is not an object', async () => {
    for (const raw of ['{"subject": {"type": "user", "id": "alice"', 'not json', '[]', '"text"', 'null']) {
      const res = await pdp.post('/access/v1/evaluation', raw);
      assert.equal(res.status, 400, raw);
      assert.equal(typeof res.body.error, 'string', raw);
      assert.equal(res.body.decision, undefined, raw);
    }
  });

  it('ignores unknown fields everywhere', async () => {
    const res = await pdp.post('/access/v1/evaluation', {
      subject: { ...user('alice'), nickname: 'al' },
      action: { name: 'write', verb: 'PUT' },
      resource: { ...record('record-1'), etag: 'x' },
      context: { time: '2026-01-01T00:00:00Z' },
      extension: { vendor: true },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.decision, true);
    // And they grant nothing: the same unknown fields on a denied request still deny.
    const denied = await pdp.post('/access/v1/evaluation', {
      subject: { ...user('bob'), admin: true },
      action: { name: 'write', force: true },
      resource: record('record-1'),
      extension: { decision: true },
    });
    assert.equal(denied.status, 200);
    assert.equal(denied.body.decision, false);
  });

  it('echoes X-Request-ID on decisions and on 400s', async () => {
    const ok = await pdp.post(
      '/access/v1/evaluation',
      { subject: user('alice'), action: { name: 'read' }, resource: record('record-1') },
      { 'X-Request-ID': 'cert-42' },
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-request-id'), 'cert-42');
    const bad = await pdp.post('/access/v1/evaluation', '{', { 'X-Request-ID': 'cert-43' });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('x-request-id'), 'cert-43');
    const missing = await pdp.post('/access/v1/evaluation', { action: { name: 'read' } }, { 'X-Request-ID': 'cert-44' });
    assert.equal(missing.status, 400);
    assert.equal(missing.headers.get('x-request-id'), 'cert-44');
  });
});

describe('examples/authzen-certification/cases.yaml (the policy CLI cases)', () => {
  it('covers every required outcome and passes against the example, naming the deciding policies', async () => {
    const store = new PolicyStore({
      dir: 'examples/authzen-certification/policies',
      schemaPath: 'examples/authzen-certification/records.cedarschema',
      entitiesPath: 'examples/authzen-certification/entities.json',
      now: () => 0,
    });
    assert.ok((await store.load()).ok);
    const runner = new CaseRunner({ policies: store, approverRoles: [], namespace: 'Records', types: {}, now: 0 });
    const [file] = await readCases('examples/authzen-certification/cases.yaml');
    assert.equal(file?.cases.length, 8);
    const failed = (file?.cases ?? []).map((c) => runner.run(file?.file as string, c)).filter((r) => !r.ok);
    assert.deepEqual(failed, []);
  });
});
