// The audit log over HTTP on both stores: tlog-tiles reads that reproduce the signed root the way a
// transparency-log client would, the vkey, the admin JSON API (proofs, entries, explain) and its
// permissions, and admin principal changes landing in the log.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { openCheckpoint, parseVkey } from '../../src/audit/checkpoint.js';
import { verifyExport } from '../../src/audit/export.js';
import { decomposeRange, foldRange, hashLeaf, perfectRoot, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { verifyProofBundle } from '../../src/audit/proof-bundle.js';
import { splitBundle, tileIndexPath, verifyRemoteLog } from '../../src/audit/tiles-client.js';
import { parseTilePath } from '../../src/http/routes/audit.js';
import { buildTestApp } from '../helpers/app.js';
import { storeFactories } from '../helpers/stores.js';

test('tlog-tiles paths encode and parse', () => {
  assert.equal(tileIndexPath(1234067), 'x001/x234/067');
  assert.equal(tileIndexPath(5), '005');
  assert.deepEqual(parseTilePath('0/x001/x234/067'), { level: 0, index: 1234067, width: 256 });
  assert.deepEqual(parseTilePath('entries/001.p/44'), { level: 'entries', index: 1, width: 44 });
  for (const bad of ['0/1', '0/001.p/256', '0/001.p/0', 'x/001', '0/x01/001', '99/000', '0/001/'])
    assert.equal(parseTilePath(bad), undefined, bad);
});

for (const factory of await storeFactories()) {
  describe(`audit HTTP: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('tiles, checkpoint, vkey and JSON API agree with each other and with an independent client', async () => {
      const t = await buildTestApp({ store: await factory.open() });
      try {
        const admin = { authorization: `Bearer ${await t.operatorToken('alice')}` };
        // An admin change is audited before the answer.
        const created = await t.app.inject({
          method: 'POST',
          url: '/admin/v1/principals',
          headers: admin,
          payload: { id: 'svc-1', actorType: 'service', displayName: 'Service one' },
        });
        assert.equal(created.statusCode, 201);
        const first = await t.broker.audit.entry(0);
        assert.equal(first?.event.type, 'admin.principal.created');
        assert.equal(first?.event.actors[0]?.type, 'operator');
        assert.equal(first?.event.data.principalId, 'svc-1');
        await Promise.all(Array.from({ length: 299 }, (_, i) => t.broker.audit.append({ type: 'risk.signal', actors: [], data: { i } })));

        const vkey = (await t.app.inject({ url: '/audit/log/vkey' })).body.trim();
        assert.equal(vkey, t.broker.audit.vkey);
        const note = (await t.app.inject({ url: '/audit/log/checkpoint' })).body;
        const c = openCheckpoint(note, parseVkey(vkey));
        assert.ok(typeof c !== 'string', String(c));
        assert.equal(c.size, 300);

        // What a tlog-tiles client does: fetch tiles for the checkpoint size and rebuild its root.
        const get = async (path: string, headers = {}) => t.app.inject({ url: `/audit/log/tile/${path}`, headers });
        const level0 = [(await get('0/000')).rawPayload, (await get('0/001.p/44')).rawPayload];
        assert.equal(level0[0]?.length, 256 * 32);
        assert.equal(level0[1]?.length, 44 * 32);
        const level1 = (await get('1/000.p/1')).rawPayload;
        assert.equal(level1.length, 32);
        const leafHashes = (buf: Buffer) => Array.from({ length: buf.length / 32 }, (_, i) => buf.subarray(i * 32, (i + 1) * 32));
        assert.deepEqual(level1, perfectRoot(leafHashes(level0[0] as Buffer)));
        const right = decomposeRange(256, 300).map((r) =>
          perfectRoot(leafHashes(level0[1] as Buffer).slice(r.index * 2 ** r.level - 256, (r.index + 1) * 2 ** r.level - 256)),
        );
        assert.deepEqual(foldRange([level1, ...right]), c.root);
        assert.equal((await get('0/002')).statusCode, 404);
        assert.equal((await get('0/001')).statusCode, 404, 'the full tile does not exist yet');
        assert.equal((await get('bogus')).statusCode, 404);

        // Entry bundles hold event bodies: authenticated, and each entry hashes to its tile hash.
        assert.equal((await get('entries/001.p/44')).statusCode, 401);
        const bundle = (await get('entries/001.p/44', admin)).rawPayload;
        const entries = splitBundle(bundle) ?? [];
        assert.equal(entries.length, 44);
        for (const [i, e] of entries.entries()) assert.deepEqual(hashLeaf(e), leafHashes(level0[1] as Buffer)[i]);

        // JSON API.
        const inc = await t.app.inject({ url: '/admin/v1/audit/proofs/inclusion?index=270', headers: admin });
        assert.equal(inc.statusCode, 200);
        const p = inc.json();
        const b = (s: string) => Buffer.from(s, 'base64');
        assert.equal(verifyInclusion(270, p.treeSize, b(p.leafHash), p.inclusionPath.map(b), c.root), undefined);
        assert.equal(verifyProofBundle(p.bundle, vkey).ok, true);
        await t.broker.audit.append({ type: 'risk.signal', actors: [], data: {} });
        const c2 = await t.app.inject({ method: 'POST', url: '/admin/v1/audit/checkpoint', headers: admin });
        assert.equal(c2.json().size, 301);
        const cons = (await t.app.inject({ url: '/admin/v1/audit/proofs/consistency?from=300', headers: admin })).json();
        assert.equal(verifyConsistency(300, 301, cons.consistencyPath.map(b), c.root, b(c2.json().rootHash)), undefined);
        assert.equal(verifyProofBundle(cons.bundle, vkey).ok, true);
        const page = (await t.app.inject({ url: '/admin/v1/audit/entries?from=0&limit=2', headers: admin })).json();
        assert.deepEqual(
          page.items.map((e: { seq: number }) => e.seq),
          [0, 1],
        );
        assert.equal(page.next, 2);
        const explain = await t.app.inject({ url: '/admin/v1/audit/events/0/explain', headers: admin });
        assert.equal(explain.statusCode, 200);
        assert.equal(explain.json().event.event.type, 'admin.principal.created');
        assert.equal((await t.app.inject({ url: '/admin/v1/audit/events/9999', headers: admin })).statusCode, 404);
        assert.equal((await t.app.inject({ url: '/admin/v1/audit/proofs/inclusion?index=9999', headers: admin })).statusCode, 400);

        // An auditor's client: only the vkey, a token for entry bundles, and HTTP.
        const fetchTile = (headers: Record<string, string>) => async (path: string) => {
          const r = await t.app.inject({ url: `/audit/log/${path}`, headers });
          return { status: r.statusCode, body: r.rawPayload };
        };
        const remote = await verifyRemoteLog({ vkey, fetch: fetchTile(admin), previous: note });
        assert.equal(remote.ok, true, remote.reason);
        assert.equal(remote.size, 301);
        assert.equal(remote.checkpoint, c2.json().note);
        const denied = await verifyRemoteLog({ vkey, fetch: fetchTile({}) });
        assert.equal(denied.ok, false);
        assert.match(denied.reason ?? '', /HTTP 401/);

        const exported = await t.app.inject({ url: '/admin/v1/audit/export?from=10&to=20&format=ocsf', headers: admin });
        assert.equal(exported.statusCode, 200);
        assert.equal(verifyExport(exported.body.split('\n'), vkey).entries, 10);
        assert.equal(verifyExport(exported.body.split('\n'), vkey).ok, true);
        assert.equal((await t.app.inject({ url: '/admin/v1/audit/export?from=10&to=99999', headers: admin })).statusCode, 400);

        // Permissions: approvers may not read the log; auditors may read but not sign.
        const bob = { authorization: `Bearer ${await t.operatorToken('bob')}` };
        assert.equal((await t.app.inject({ url: '/admin/v1/audit/entries', headers: bob })).statusCode, 403);
        assert.equal((await get('entries/001.p/44', bob)).statusCode, 403);
        const auditor = { authorization: `Bearer ${await t.operatorToken('carol', ['auditor'])}` };
        assert.equal((await t.app.inject({ url: '/admin/v1/audit/head', headers: auditor })).statusCode, 200);
        assert.equal((await t.app.inject({ method: 'POST', url: '/admin/v1/audit/checkpoint', headers: auditor })).statusCode, 403);

        // Admin changes: audited before acting; refused requests are not logged as changes.
        const patched = await t.app.inject({
          method: 'PATCH',
          url: '/admin/v1/principals/svc-1',
          headers: admin,
          payload: { displayName: 'One' },
        });
        assert.equal(patched.statusCode, 200);
        assert.equal(
          (await t.app.inject({ method: 'PATCH', url: '/admin/v1/principals/nobody', headers: admin, payload: {} })).statusCode,
          404,
        );
        assert.equal((await t.app.inject({ method: 'DELETE', url: '/admin/v1/principals/svc-1', headers: admin })).statusCode, 204);
        const adminEvents = async () =>
          (await t.broker.audit.entries(0, 1000)).map((e) => e.event.type).filter((type) => type.startsWith('admin.principal.'));
        assert.deepEqual(await adminEvents(), ['admin.principal.created', 'admin.principal.updated', 'admin.principal.deleted']);
        // When the log cannot append, the change does not happen.
        await t.broker.audit.close();
        const refused = await t.app.inject({
          method: 'POST',
          url: '/admin/v1/principals',
          headers: admin,
          payload: { id: 'svc-2', actorType: 'service', displayName: 'Service two' },
        });
        assert.equal(refused.statusCode, 503);
        assert.equal(refused.json().error, 'ERR_AUDIT_UNAVAILABLE');
        assert.equal(await t.broker.principals.get('svc-2'), undefined);
      } finally {
        await t.close();
      }
    });
  });
}
