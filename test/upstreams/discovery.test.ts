// Discovery (tools/list through the upstream client) into the catalog: every page followed, a
// looping cursor and the page cap end it, tool entries that are not what the spec says are left
// out (so they are denied).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { ChangeFeed } from '../../src/store/changes.js';
import type { Store } from '../../src/store/types.js';
import { createUpstreams, type Upstreams } from '../../src/upstreams/index.js';
import { storeFactories } from '../helpers/stores.js';

const RAW = fileURLToPath(new URL('./fixtures/raw-stdio-server.ts', import.meta.url));
const factory = (await storeFactories()).find((f) => f.name === 'sqlite');
if (factory === undefined) throw new Error('no sqlite store factory');

describe('discovery through the upstream client', () => {
  let store: Store;
  let changes: ChangeFeed;
  let upstreams: Upstreams;
  before(async () => {
    store = await factory.open();
    changes = new ChangeFeed(store, { clock: systemClock, pollIntervalMs: 1000 });
    await changes.start();
    upstreams = await createUpstreams({
      store,
      clock: systemClock,
      secrets: new SecretBox(parseMasterKeys(generateMasterKeySpec())),
      changes,
      discoveryTimeoutMs: 10_000,
      allowedCommands: [{ command: process.execPath, args: ['--import', 'tsx', RAW], env: [] }],
    });
  });
  after(async () => {
    await changes.stop();
    await factory.cleanup();
  });

  const register = (id: string, ...args: string[]) =>
    upstreams.registry.create({ id, transport: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', RAW, ...args] } });
  const toolsOf = (id: string): string[] =>
    upstreams.catalog
      .list()
      .filter((t) => t.upstream === id)
      .map((t) => t.name)
      .sort();

  it('follows nextCursor over every page, in either era, keeping only well-formed tools', async () => {
    for (const era of ['modern', 'legacy']) {
      const id = `paged-${era}`;
      const u = await register(id, '--era', era, '--pages', '3');
      assert.equal(u.discoveryError, undefined);
      assert.deepEqual(toolsOf(id), [`${id}.tool_0`, `${id}.tool_1`, `${id}.tool_2`]);
      assert.equal(upstreams.catalog.get(`${id}.tool_1`)?.actionClass, 'read');
      assert.equal(upstreams.catalog.get(`${id}.tool_1`)?.description, 'page 1');
    }
  });

  it('stops at a cursor it has already seen', async () => {
    const u = await register('looping', '--era', 'modern', '--pages', 'loop');
    assert.equal(u.discoveryError, undefined);
    assert.deepEqual(toolsOf('looping'), ['looping.tool_0']);
  });

  it('stops at the page cap', async () => {
    const u = await register('endless', '--era', 'legacy', '--pages', '1000');
    assert.equal(u.discoveryError, undefined);
    assert.equal(toolsOf('endless').length, 100);
  });
});
