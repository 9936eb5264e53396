// AuthZEN 1.0 search paging: `page.total` is the number of results of the whole query (not of
// candidates), `page.count` the results on the page, and the last page is the one whose
// `next_token` is empty. Expected results come from the interop vectors' users and roles
// (test/vectors/authzen/todo-users.json, a copy of the shared interop vectors, and the rules their README spells out); the vectors
// themselves hold no search cases.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type RunningPdp, startExample } from './authzen-server.js';

const users = JSON.parse(readFileSync(new URL('../vectors/authzen/todo-users.json', import.meta.url), 'utf8')) as Record<
  string,
  { id: string; roles: string[] }
>;
/** Which roles may do what on a todo owned by someone else (README of the vectors). */
const GRANTS: Record<string, string[]> = {
  can_read_todos: ['viewer', 'editor', 'admin', 'evil_genius'],
  can_create_todo: ['editor', 'admin', 'evil_genius'],
  can_update_todo: ['evil_genius'],
  can_delete_todo: ['admin'],
};
/** Every user entity allowed the action: each user is an entity under its opaque id and under its email. */
const expectedSubjects = (action: string) =>
  Object.entries(users)
    .filter(([, u]) => u.roles.some((r) => GRANTS[action]?.includes(r)))
    .flatMap(([pid, u]) => [pid, u.id])
    .sort();

describe('AuthZEN search page.total (examples/authzen-todo)', () => {
  let pdp: RunningPdp;
  before(async () => {
    pdp = await startExample('examples/authzen-todo/config.yaml');
  });
  after(() => pdp.close());

  const request = (action: string, limit?: number) => ({
    subject: { type: 'user' },
    action: { name: action },
    resource: { type: 'todo', id: 't-1', properties: { ownerID: 'nobody@example.com' } },
    ...(limit === undefined ? {} : { page: { limit } }),
  });
  const candidates = Object.keys(users).length * 2;

  for (const action of Object.keys(GRANTS)) {
    it(`${action}: total counts results, the same on every page, and paging stops at the last result`, async () => {
      const expected = expectedSubjects(action);
      // The bug counted candidates; the expected totals differ from the candidate count but for read.
      if (action !== 'can_read_todos') assert.ok(expected.length < candidates);
      const whole = await pdp.post('/access/v1/search/subject', request(action));
      assert.equal(whole.status, 200);
      assert.deepEqual(whole.body.page, { next_token: '', count: expected.length, total: expected.length });
      assert.deepEqual(whole.body.results.map((r: { id: string }) => r.id).sort(), expected);

      const seen: string[] = [];
      let body = (await pdp.post('/access/v1/search/subject', request(action, 1))).body;
      let pages = 1;
      for (;;) {
        assert.equal(body.page.total, expected.length, `page ${pages}`);
        assert.equal(body.page.count, body.results.length);
        seen.push(...body.results.map((r: { id: string }) => r.id));
        if (body.page.next_token === '') break;
        assert.equal(body.results.length, 1, 'a page with a next page is full');
        body = (await pdp.post('/access/v1/search/subject', { ...request(action), page: { token: body.page.next_token, limit: 1 } })).body;
        pages++;
        assert.ok(pages <= candidates, 'paging ends');
      }
      assert.equal(pages, expected.length, 'no trailing empty page');
      assert.deepEqual(seen.sort(), expected);
    });
  }

  it('a query with no result has total 0 and no next page', async () => {
    const res = await pdp.post('/access/v1/search/action', {
      subject: { type: 'user', id: 'nobody-at-all' },
      resource: { type: 'todo', id: 't-1', properties: { ownerID: 'nobody@example.com' } },
      page: { limit: 1 },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { results: [], page: { next_token: '', count: 0, total: 0 } });
  });

  it('action search totals the allowed actions', async () => {
    const beth = Object.entries(users).find(([, u]) => u.id === 'beth@the-smiths.com')?.[0] ?? '';
    const res = await pdp.post('/access/v1/search/action', {
      subject: { type: 'user', id: beth },
      resource: { type: 'todo', id: 't-1', properties: { ownerID: 'nobody@example.com' } },
      page: { limit: 1 },
    });
    assert.deepEqual(res.body.results, [{ name: 'can_read_todos' }]);
    assert.deepEqual(res.body.page, { next_token: '', count: 1, total: 1 });
  });
});
