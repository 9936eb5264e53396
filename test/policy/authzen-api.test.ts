// AuthZEN 1.0 behaviour beyond the interop vectors: batch semantics, search with paging, exact
// error handling (400s, unknown fields ignored, X-Request-ID echoed), bad input, PDP auth.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningPdp, startExample } from './authzen-server.js';

const RICK = 'CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs';
const MORTY = 'CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs';
const BETH = 'CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs';
const user = (id: string) => ({ type: 'user', id });
const todo = (owner: string) => ({ type: 'todo', id: `t-${owner}`, properties: { ownerID: owner } });

describe('AuthZEN API (examples/authzen-todo)', () => {
  let pdp: RunningPdp;
  before(async () => {
    pdp = await startExample('examples/authzen-todo/config.yaml');
  });
  after(() => pdp.close());

  describe('evaluations semantics', () => {
    const batch = (semantic?: string) => ({
      subject: user(MORTY),
      action: { name: 'can_update_todo' },
      ...(semantic ? { options: { evaluations_semantic: semantic } } : {}),
      evaluations: [
        { resource: todo('morty@the-citadel.com') },
        { resource: todo('rick@the-citadel.com') },
        { resource: todo('morty@the-citadel.com') },
      ],
    });
    const decisions = (body: { evaluations: { decision: boolean }[] }) => body.evaluations.map((e) => e.decision);

    it('execute_all (the default) answers every item in order', async () => {
      assert.deepEqual(decisions((await pdp.post('/access/v1/evaluations', batch())).body), [true, false, true]);
      assert.deepEqual(decisions((await pdp.post('/access/v1/evaluations', batch('execute_all'))).body), [true, false, true]);
    });
    it('deny_on_first_deny stops at the first false', async () => {
      assert.deepEqual(decisions((await pdp.post('/access/v1/evaluations', batch('deny_on_first_deny'))).body), [true, false]);
    });
    it('permit_on_first_permit stops at the first true', async () => {
      assert.deepEqual(decisions((await pdp.post('/access/v1/evaluations', batch('permit_on_first_permit'))).body), [true]);
    });
    it('an item overrides the top-level default', async () => {
      const res = await pdp.post('/access/v1/evaluations', {
        subject: user(MORTY),
        action: { name: 'can_update_todo' },
        evaluations: [{ resource: todo('rick@the-citadel.com') }, { subject: user(RICK), resource: todo('rick@the-citadel.com') }],
      });
      assert.deepEqual(decisions(res.body), [false, true]);
    });
    it('without evaluations it is a single evaluation', async () => {
      const res = await pdp.post('/access/v1/evaluations', {
        subject: user(RICK),
        action: { name: 'can_create_todo' },
        resource: todo('x'),
      });
      assert.equal(res.body.decision, true);
    });
    it('an item missing a field with no default is a 400', async () => {
      const res = await pdp.post('/access/v1/evaluations', { subject: user(RICK), evaluations: [{ resource: todo('x') }] });
      assert.equal(res.status, 400);
      assert.match(res.body.message, /evaluations\.0\.action is required/);
    });
    it('an unknown semantic is a 400', async () => {
      assert.equal((await pdp.post('/access/v1/evaluations', batch('first_come'))).status, 400);
    });
  });

  describe('search', () => {
    it('subject search lists the allowed subjects of a type, paged', async () => {
      const request = {
        subject: { type: 'user' },
        action: { name: 'can_create_todo' },
        resource: { type: 'todo', id: 'x' },
        page: { limit: 2 },
      };
      const first = await pdp.post('/access/v1/search/subject', request);
      assert.equal(first.status, 200);
      assert.equal(first.body.results.length, 2);
      assert.notEqual(first.body.page.next_token, '');
      const all = [...first.body.results];
      let token = first.body.page.next_token;
      while (token !== '') {
        const next = await pdp.post('/access/v1/search/subject', { ...request, page: { token, limit: 2 } });
        assert.equal(next.status, 200);
        all.push(...next.body.results);
        token = next.body.page.next_token;
      }
      // Rick (admin), Morty and Summer (editors), each under the opaque id and the email.
      const ids = all.map((r: { id: string }) => r.id).sort();
      assert.deepEqual(
        ids.filter((id: string) => id.includes('@')),
        ['morty@the-citadel.com', 'rick@the-citadel.com', 'summer@the-smiths.com'],
      );
      assert.equal(ids.length, 6);
      // Every result, fed back into an evaluation, is allowed (the spec's search semantics).
      for (const r of all) {
        const d = await pdp.post('/access/v1/evaluation', { subject: r, action: request.action, resource: request.resource });
        assert.equal(d.body.decision, true);
      }
    });

    it('a page token is bound to its query', async () => {
      const request = {
        subject: { type: 'user' },
        action: { name: 'can_create_todo' },
        resource: { type: 'todo', id: 'x' },
        page: { limit: 1 },
      };
      const first = await pdp.post('/access/v1/search/subject', request);
      const other = await pdp.post('/access/v1/search/subject', {
        ...request,
        action: { name: 'can_read_todos' },
        page: { token: first.body.page.next_token },
      });
      assert.equal(other.status, 400);
      assert.equal((await pdp.post('/access/v1/search/subject', { ...request, page: { token: 'garbage' } })).status, 400);
    });

    it('resource search lists allowed resources of a type', async () => {
      const res = await pdp.post('/access/v1/search/resource', {
        subject: user(BETH),
        action: { name: 'can_read_user' },
        resource: { type: 'user' },
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.results.length, 10);
      assert.deepEqual(res.body.page, { next_token: '', count: 10, total: 10 });
    });

    it('action search lists what a subject may do on a resource', async () => {
      const res = await pdp.post('/access/v1/search/action', { subject: user(BETH), resource: todo('beth@the-smiths.com') });
      assert.deepEqual(res.body.results, [{ name: 'can_read_todos' }]);
      const rick = await pdp.post('/access/v1/search/action', { subject: user(RICK), resource: todo('morty@the-citadel.com') });
      assert.deepEqual(
        rick.body.results.map((a: { name: string }) => a.name),
        ['can_create_todo', 'can_delete_todo', 'can_read_todos', 'can_update_todo'],
      );
    });
  });

  describe('errors and bad input', () => {
    const ok = { subject: user(RICK), action: { name: 'can_read_todos' }, resource: todo('x') };

    it('missing subject, action or resource is a 400 naming the field', async () => {
      for (const field of ['subject', 'action', 'resource'] as const) {
        const { [field]: _, ...body } = ok;
        const res = await pdp.post('/access/v1/evaluation', body);
        assert.equal(res.status, 400);
        assert.equal(res.body.details.path, field);
      }
      const res = await pdp.post('/access/v1/evaluation', { ...ok, subject: { type: 'user' } });
      assert.equal(res.status, 400);
      assert.equal(res.body.details.path, 'subject.id');
    });

    it('malformed JSON, a non-object body and a wrong content type are refused', async () => {
      assert.equal((await pdp.post('/access/v1/evaluation', '{"subject":')).status, 400);
      assert.equal((await pdp.post('/access/v1/evaluation', '[1,2]')).status, 400);
      assert.equal((await pdp.post('/access/v1/evaluation', '"x"')).status, 400);
      assert.equal((await pdp.post('/access/v1/evaluation', 'subject=x', { 'content-type': 'text/plain' })).status, 400);
    });

    it('unknown fields are ignored', async () => {
      const res = await pdp.post('/access/v1/evaluation', { ...ok, future: { x: 1 }, subject: { ...ok.subject, extra: true } });
      assert.equal(res.status, 200);
      assert.equal(res.body.decision, true);
    });

    it('echoes X-Request-ID, also on errors', async () => {
      const a = await pdp.post('/access/v1/evaluation', ok, { 'x-request-id': 'pep 42/abc' });
      assert.equal(a.headers.get('x-request-id'), 'pep 42/abc');
      const b = await pdp.post('/access/v1/evaluation', {}, { 'x-request-id': 'pep-43' });
      assert.equal(b.status, 400);
      assert.equal(b.headers.get('x-request-id'), 'pep-43');
    });

    it('every evaluation is in the audit log under its decision id', async () => {
      const res = await pdp.post('/access/v1/evaluations', {
        subject: user(MORTY),
        action: { name: 'can_update_todo' },
        evaluations: [{ resource: todo('morty@the-citadel.com') }, { resource: todo('rick@the-citadel.com') }],
      });
      const [allowed, denied] = res.body.evaluations;
      const a = await pdp.broker.audit.entriesBy('decision_id', allowed.context.id);
      const d = await pdp.broker.audit.entriesBy('decision_id', denied.context.id);
      assert.equal(a[0]?.event.type, 'decision');
      const data = (entries: typeof a) => (entries[0]?.event.data ?? {}) as { outcome?: string; source?: string };
      assert.equal(data(a).outcome, 'allow');
      assert.equal(data(d).outcome, 'deny');
      assert.equal(data(d).source, 'authzen');
    });

    it('a deny is 200 with decision false', async () => {
      const res = await pdp.post('/access/v1/evaluation', { ...ok, subject: user(BETH), action: { name: 'can_create_todo' } });
      assert.equal(res.status, 200);
      assert.equal(res.body.decision, false);
    });

    it('unknown entity types and actions are a deny with a reason, not an error', async () => {
      const t = await pdp.post('/access/v1/evaluation', { ...ok, resource: { type: 'spaceship', id: '1' } });
      assert.equal(t.status, 200);
      assert.equal(t.body.decision, false);
      assert.match(t.body.context.reason_admin.en, /unknown resource type "spaceship"/);
      const bad = await pdp.post('/access/v1/evaluation', { ...ok, resource: { type: 'Foo::"x"', id: '1' } });
      assert.equal(bad.body.decision, false);
      const a = await pdp.post('/access/v1/evaluation', { ...ok, action: { name: 'launch' } });
      assert.equal(a.body.decision, false);
      assert.match(a.body.context.reason_admin.en, /unknown action/);
    });

    it('a wrong-typed property is a deny, never a crash', async () => {
      const res = await pdp.post('/access/v1/evaluation', {
        ...ok,
        action: { name: 'can_update_todo' },
        resource: { type: 'todo', id: '1', properties: { ownerID: 42 } },
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.decision, false);
      assert.match(res.body.context.reason_admin.en, /ownerID must be a string/);
    });

    it('subject properties cannot override the PDP entity data (roles stay the stored ones)', async () => {
      const res = await pdp.post('/access/v1/evaluation', {
        subject: { ...user(BETH), properties: { roles: ['admin'] } },
        action: { name: 'can_create_todo' },
        resource: todo('x'),
      });
      assert.equal(res.body.decision, false);
    });

    it('deep nesting is a 400', async () => {
      let deep: unknown = 1;
      for (let i = 0; i < 100; i++) deep = { a: deep };
      const res = await pdp.post('/access/v1/evaluation', { ...ok, context: deep });
      assert.equal(res.status, 400);
      // Pathologically deep JSON must not crash the server either.
      const huge = `{"subject":${'['.repeat(20000)}${']'.repeat(20000)}}`;
      const h = await pdp.post('/access/v1/evaluation', huge);
      assert.ok(h.status === 400, String(h.status));
      assert.equal((await pdp.post('/access/v1/evaluation', ok)).status, 200);
    });

    it('an oversized payload is a 413', async () => {
      const res = await pdp.post('/access/v1/evaluation', { ...ok, context: { blob: 'x'.repeat(2 * 1024 * 1024) } });
      assert.equal(res.status, 413);
    });

    it('a batch above the limit is a 400', async () => {
      const res = await pdp.post('/access/v1/evaluations', { ...ok, evaluations: Array.from({ length: 101 }, () => ({})) });
      assert.equal(res.status, 400);
    });
  });
});

describe('AuthZEN PDP authentication (bearer)', () => {
  const TOKEN = 'a-bootstrap-token-long-enough-for-the-rule-0123456789';
  let pdp: RunningPdp;
  before(async () => {
    pdp = await startExample(
      'examples/authzen-todo/config.yaml',
      {
        policy: {
          dir: './policies',
          schema: './todo.cedarschema',
          entities: './entities.json',
          authzen: { auth: 'bearer', namespace: 'Todo', types: {} },
        },
      },
      { MANDATE_BOOTSTRAP_TOKEN: TOKEN },
    );
  });
  after(() => pdp.close());
  const body = { subject: user(RICK), action: { name: 'can_read_todos' }, resource: todo('x') };

  it('refuses a caller without a token (401) and with a wrong one', async () => {
    assert.equal((await pdp.post('/access/v1/evaluation', body)).status, 401);
    assert.equal((await pdp.post('/access/v1/evaluation', body, { authorization: 'Bearer nope' })).status, 401);
  });
  it('answers a caller with a valid token', async () => {
    const res = await pdp.post('/access/v1/evaluation', body, { authorization: `Bearer ${TOKEN}` });
    assert.equal(res.status, 200);
    assert.equal(res.body.decision, true);
  });
  it('keeps the metadata public', async () => {
    assert.equal((await fetch(`${pdp.url}/.well-known/authzen-configuration`)).status, 200);
  });
});
