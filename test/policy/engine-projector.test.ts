// The compiled request projector (src/policy/cedar/projector.ts) answers exactly what shape.ts
// project() answers: the same Cedar JSON, or the same error, on generated values of every type.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import fc from 'fast-check';
import { projectFast } from '../../src/policy/cedar/projector.js';
import { indexSchema, project } from '../../src/policy/cedar/shape.js';
import { REPO_ROOT } from './cedar-vectors.js';

function shapesOf(path: string) {
  const r = cedar.schemaToJsonWithResolvedTypes(readFileSync(join(REPO_ROOT, path), 'utf8'));
  assert.equal(r.type, 'success');
  return indexSchema(r.type === 'success' ? r.json : ({} as never));
}

const outcome = (f: () => unknown) => {
  try {
    return { ok: f() };
  } catch (err) {
    return { error: `${(err as Error).constructor.name}: ${(err as Error).message}` };
  }
};

const leaf = fc.oneof(
  fc.string({ maxLength: 4 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc
    .constantFrom('Mandate::Human', 'Mandate::Mandate', 'Records::user')
    .chain((type) =>
      fc.oneof(
        fc.record({ type: fc.constant(type), id: fc.string({ maxLength: 3 }) }),
        fc.record({ __entity: fc.record({ type: fc.constant(type), id: fc.oneof(fc.string({ maxLength: 3 }), fc.integer()) }) }),
      ),
    ),
);
const names = [
  'args',
  'environment',
  'risk',
  'approval',
  'delegationDepth',
  'purpose',
  'taskType',
  'mandate',
  'onBehalfOf',
  'amountCents',
  'customerId',
  'id',
  'approverId',
  'approverRole',
  'approver',
  'owner',
  'actorType',
  'status',
  'actionClass',
  'sensitivity',
  'upstream',
  'depth',
  'role',
  'action',
  'soft',
  'x',
];
const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...names), tie('v'), { maxKeys: 8 }),
  ),
})).v;

describe('projectFast ≡ project (shape.ts)', () => {
  for (const path of [
    'policies/mandate.cedarschema',
    'examples/authzen-certification/records.cedarschema',
    'examples/authzen-todo/todo.cedarschema',
  ]) {
    it(`every entity type and action context of ${path}`, () => {
      const shapes = shapesOf(path);
      const types = [...[...shapes.entities.values()], ...[...shapes.actions.values()].map((a) => a.context)];
      let fitted = 0;
      fc.assert(
        fc.property(fc.constantFrom(...types.keys()), value, (i, v) => {
          const t = types[i];
          const expected = outcome(() => project(shapes, t, v, 'x'));
          if ('ok' in expected) fitted += 1;
          assert.deepEqual(
            outcome(() => projectFast(shapes, t, v, 'x')),
            expected,
          );
        }),
        { numRuns: 3000, seed: 3 },
      );
      assert.ok(fitted > 30, `only ${fitted} values fitted`);
    });
  }
});
