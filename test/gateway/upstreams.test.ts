// The upstream registry and catalog on both stores, discovering a real stdio MCP server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HELPDESK_KEY_ENV } from '../../src/demo/helpdesk-server.js';
import { systemClock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { ChangeFeed } from '../../src/store/changes.js';
import type { Store } from '../../src/store/types.js';
import { actionClassFromAnnotations, defaultSensitiveArgs } from '../../src/upstreams/catalog.js';
import { createUpstreams, demoAllowedCommands, demoHelpdeskUpstream, type Upstreams } from '../../src/upstreams/index.js';
import { storeFactories } from '../helpers/stores.js';

describe('action class from annotations', () => {
  it('maps readOnlyHint to read, destructiveHint to destructive, anything else to execute', () => {
    assert.equal(actionClassFromAnnotations({ readOnlyHint: true }), 'read');
    assert.equal(actionClassFromAnnotations({ readOnlyHint: false, destructiveHint: true }), 'destructive');
    assert.equal(actionClassFromAnnotations({ destructiveHint: false }), 'execute');
    assert.equal(actionClassFromAnnotations({}), 'execute');
  });
  it('marks secret-looking arguments sensitive by default', () => {
    assert.deepEqual(defaultSensitiveArgs({ properties: { query: {}, apiKey: {}, password: {}, tokenCount: {} } }), [
      'apiKey',
      'password',
      'tokenCount',
    ]);
  });
});

for (const factory of await storeFactories()) {
  describe(`upstream registry (${factory.name})`, { skip: factory.skip }, () => {
    let store: Store;
    let changes: ChangeFeed;
    let upstreams: Upstreams;
    const KEY = 'hd-secret-key-0123456789';

    before(async () => {
      store = await factory.open();
      changes = new ChangeFeed(store, { clock: systemClock, pollIntervalMs: 1000 });
      await changes.start();
      const secrets = new SecretBox(parseMasterKeys(generateMasterKeySpec()));
      upstreams = await createUpstreams({
        store,
        clock: systemClock,
        secrets,
        changes,
        discoveryTimeoutMs: 20_000,
        allowedCommands: [...demoAllowedCommands(), { command: process.execPath, args: ['-e', 'process.exit(3)'], env: [] }],
      });
    });
    after(async () => {
      await changes.stop();
      await factory.cleanup();
    });

    it('registers a stdio upstream and builds the namespaced catalog from its tools', async () => {
      const u = await upstreams.registry.create(demoHelpdeskUpstream(KEY));
      assert.equal(u.discoveryError, undefined);
      assert.ok(u.discoveredAt !== undefined);
      assert.deepEqual(u.credential, { headers: [], env: [HELPDESK_KEY_ENV] });
      const names = upstreams.catalog
        .list()
        .map((t) => t.name)
        .sort();
      assert.deepEqual(names, [
        'helpdesk.delete_customer',
        'helpdesk.execute_refund',
        'helpdesk.get_customer',
        'helpdesk.propose_refund',
        'helpdesk.search_tickets',
      ]);
      assert.equal(upstreams.catalog.get('helpdesk.search_tickets')?.actionClass, 'read');
      assert.equal(upstreams.catalog.get('helpdesk.delete_customer')?.actionClass, 'destructive');
      assert.equal(upstreams.catalog.get('helpdesk.execute_refund')?.actionClass, 'execute');
      assert.equal(upstreams.catalog.get('helpdesk.execute_refund')?.sensitivity, 'confidential');
      assert.equal(upstreams.catalog.get('helpdesk.nope'), undefined);
    });

    it('never stores or shows the credential in clear', async () => {
      const rows = await store.query<{ credential_sealed: string }>('SELECT credential_sealed FROM upstreams WHERE id = ?', ['helpdesk']);
      assert.ok(rows[0]?.credential_sealed.startsWith('v1.'));
      assert.ok(!rows[0]?.credential_sealed.includes(KEY));
      assert.ok(!JSON.stringify(await upstreams.registry.list()).includes(KEY));
      const { credential } = await upstreams.registry.connection('helpdesk');
      assert.equal(credential?.env?.[HELPDESK_KEY_ENV], KEY);
    });

    it('keeps operator overrides across re-discovery, and clears them with null', async () => {
      const e = await upstreams.registry.override('helpdesk.propose_refund', { actionClass: 'propose', sensitiveArgs: ['reason'] });
      assert.equal(e.actionClass, 'propose');
      assert.deepEqual(e.overridden, ['actionClass', 'sensitiveArgs']);
      await upstreams.registry.refresh('helpdesk');
      assert.equal(upstreams.catalog.get('helpdesk.propose_refund')?.actionClass, 'propose');
      assert.deepEqual(upstreams.catalog.get('helpdesk.propose_refund')?.sensitiveArgs, ['reason']);
      await upstreams.registry.override('helpdesk.propose_refund', { actionClass: null });
      assert.equal(upstreams.catalog.get('helpdesk.propose_refund')?.actionClass, 'execute');
      await assert.rejects(upstreams.registry.override('helpdesk.nope', { actionClass: 'read' }), { code: 'ERR_NOT_FOUND' });
    });

    it('records a discovery failure without losing the registration', async () => {
      const u = await upstreams.registry.create({
        id: 'broken',
        transport: { type: 'stdio', command: process.execPath, args: ['-e', 'process.exit(3)'] },
      });
      assert.match(u.discoveryError ?? '', /discovery failed/);
      assert.equal(
        upstreams.catalog.list().some((t) => t.upstream === 'broken'),
        false,
      );
      await assert.rejects(upstreams.registry.create({ id: 'broken', transport: { type: 'http', url: 'http://127.0.0.1:9/mcp' } }), {
        code: 'ERR_STORE_CONFLICT',
      });
    });

    it('refuses stdio command lines the allow-list does not name, with their environment', async () => {
      const refused = [
        { id: 'shell', transport: { type: 'stdio' as const, command: '/bin/sh', args: ['-c', 'id'] } },
        { id: 'node-e', transport: { type: 'stdio' as const, command: process.execPath, args: ['-e', 'require("fs")'] } },
        {
          id: 'opts',
          transport: {
            type: 'stdio' as const,
            command: process.execPath,
            args: ['-e', 'process.exit(3)'],
            env: { NODE_OPTIONS: '--require /tmp/x.js' },
          },
        },
        {
          id: 'credenv',
          transport: { type: 'stdio' as const, command: process.execPath, args: ['-e', 'process.exit(3)'] },
          credential: { env: { LD_PRELOAD: '/tmp/x.so' } },
        },
        { id: 'cwd', transport: { type: 'stdio' as const, command: process.execPath, args: ['-e', 'process.exit(3)'], cwd: '/tmp' } },
      ];
      for (const input of refused) {
        await assert.rejects(upstreams.registry.create(input), { code: 'ERR_STDIO_COMMAND_NOT_ALLOWED' }, input.id);
        assert.equal(await upstreams.registry.get(input.id), undefined, `${input.id} must not be stored`);
      }
      await assert.rejects(upstreams.registry.update('broken', { transport: { type: 'stdio', command: '/bin/sh', args: [] } }), {
        code: 'ERR_STDIO_COMMAND_NOT_ALLOWED',
      });
      await assert.rejects(upstreams.registry.update('broken', { credential: { env: { NODE_OPTIONS: '-r x' } } }), {
        code: 'ERR_STDIO_COMMAND_NOT_ALLOWED',
      });
      assert.deepEqual((await upstreams.registry.require('broken')).transport, {
        type: 'stdio',
        command: process.execPath,
        args: ['-e', 'process.exit(3)'],
        env: {},
      });
    });

    it('refuses to start a stored stdio upstream once the allow-list no longer names it', async () => {
      const narrower = await createUpstreams({
        store,
        clock: systemClock,
        secrets: new SecretBox(parseMasterKeys(generateMasterKeySpec())),
        changes,
        discoveryTimeoutMs: 20_000,
        allowedCommands: [],
      });
      await assert.rejects(narrower.registry.connection('broken'), { code: 'ERR_STDIO_COMMAND_NOT_ALLOWED' });
    });

    it('deletes an upstream and its tools from every catalog', async () => {
      assert.equal(await upstreams.registry.delete('helpdesk'), true);
      assert.equal(upstreams.catalog.get('helpdesk.search_tickets'), undefined);
      assert.equal(await upstreams.registry.delete('helpdesk'), false);
    });
  });
}
