// The public AuthZEN interop fixtures (test/vectors/authzen/, copied from the shared vectors) against the shipped examples,
// over HTTP: all Todo cases (40 single + 3 batch) and the API gateway scenario.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type RunningPdp, startExample } from './authzen-server.js';

const VECTORS = new URL('../vectors/authzen/', import.meta.url);
const vectors = (name: string) => JSON.parse(readFileSync(new URL(name, VECTORS), 'utf8'));

describe('AuthZEN Todo interop (examples/authzen-todo)', () => {
  const todo = vectors('todo-decisions-1_0-02.json');
  let pdp: RunningPdp;
  before(async () => {
    pdp = await startExample('examples/authzen-todo/config.yaml');
  });
  after(() => pdp.close());

  it('has 43 cases', () => {
    assert.equal(todo.evaluation.length + todo.evaluations.length, 43);
  });

  todo.evaluation.forEach((c: { request: object; expected: boolean }, i: number) => {
    it(`evaluation #${i + 1}`, async () => {
      const res = await pdp.post('/access/v1/evaluation', c.request);
      assert.equal(res.status, 200);
      assert.equal(res.body.decision, c.expected, JSON.stringify({ request: c.request, got: res.body }));
    });
  });

  todo.evaluations.forEach((c: { request: object; expected: { decision: boolean }[] }, i: number) => {
    it(`evaluations #${i + 1}`, async () => {
      const res = await pdp.post('/access/v1/evaluations', c.request);
      assert.equal(res.status, 200);
      assert.deepEqual(
        res.body.evaluations.map((e: { decision: boolean }) => ({ decision: e.decision })),
        c.expected,
      );
    });
  });
});

describe('AuthZEN API gateway interop (examples/authzen-gateway)', () => {
  const gateway = vectors('gateway-decisions.json');
  let pdp: RunningPdp;
  before(async () => {
    pdp = await startExample('examples/authzen-gateway/config.yaml');
  });
  after(() => pdp.close());

  it('decides every gateway-decisions case as expected', async () => {
    const wrong: string[] = [];
    for (const c of gateway.evaluation as { request: object; expected: boolean }[]) {
      const res = await pdp.post('/access/v1/evaluation', c.request);
      if (res.status !== 200 || res.body.decision !== c.expected) wrong.push(JSON.stringify({ request: c.request, got: res.body }));
    }
    assert.deepEqual(wrong, []);
    assert.equal(gateway.evaluation.length, 25);
  });

  it('serves PDP metadata naming itself', async () => {
    const res = await fetch(`${pdp.url}/.well-known/authzen-configuration`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.policy_decision_point, pdp.url);
    assert.equal(body.access_evaluations_endpoint, `${pdp.url}/access/v1/evaluations`);
    assert.equal(body.search_action_endpoint, `${pdp.url}/access/v1/search/action`);
  });
});
