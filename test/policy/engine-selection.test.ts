// policy.engine selects the engine a broker decides with, and the broker says which one serves:
// the compiled engine by default, cedar-wasm when configured, and cedar-wasm with a notice (and the
// reason) when the compiled engine refuses the set.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createBroker } from '../../src/broker.js';
import { buildConfig } from '../../src/config/load.js';
import { DEMO_POLICY_DIR } from '../../src/policy/source.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function brokerWith(engine: 'compiled' | 'wasm' | undefined, extraPolicy?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-engine-'));
  dirs.push(dir);
  cpSync(DEMO_POLICY_DIR, join(dir, 'policies'), { recursive: true });
  if (extraPolicy !== undefined) writeFileSync(join(dir, 'policies', '90-extra.cedar'), extraPolicy);
  const config = buildConfig(
    {
      mode: 'demo',
      dataDir: join(dir, 'data'),
      log: { level: 'silent' },
      policy: { dir: join(dir, 'policies'), ...(engine === undefined ? {} : { engine }) },
    },
    { env: {} },
  );
  return createBroker(config);
}

describe('policy.engine', () => {
  it('defaults to the compiled engine, and the broker says which serves', async () => {
    const fallback = await brokerWith(undefined);
    try {
      assert.equal(fallback.policies.current?.set.engine, 'compiled');
    } finally {
      await fallback.close();
    }
    const broker = await brokerWith('compiled');
    try {
      assert.equal(broker.policies.current?.set.engine, 'compiled');
      assert.ok(broker.notices.includes('org policy: 10 policies served by the compiled engine'), broker.notices.join('\n'));
    } finally {
      await broker.close();
    }
  });

  it('wasm: every decision through cedar-wasm', async () => {
    const broker = await brokerWith('wasm');
    try {
      assert.equal(broker.policies.current?.set.engine, 'wasm');
      assert.ok(broker.notices.includes('org policy: 10 policies served by the wasm engine'), broker.notices.join('\n'));
    } finally {
      await broker.close();
    }
  });

  it('a set the compiled engine refuses is served by cedar-wasm, with the reason in a notice', async () => {
    const huge = '@id("huge")\nforbid (principal, action == Mandate::Action::"call", resource) when { context.risk > 9007199254740993 };\n';
    const broker = await brokerWith('compiled', huge);
    try {
      assert.equal(broker.policies.current?.set.engine, 'wasm');
      const notice = broker.notices.find((n) => n.startsWith('org policy:')) ?? '';
      assert.match(
        notice,
        /11 policies served by the wasm engine \(the compiled engine refused this set \(policy huge: the number \d+ is not a safe integer\); cedar-wasm serves it\)/,
      );
      assert.deepEqual(broker.policies.current?.notices.length, 1);
    } finally {
      await broker.close();
    }
  });
});
