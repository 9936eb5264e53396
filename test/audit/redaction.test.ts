// Secret redaction on both stores: tokens and credentials sent through every event type (explicitly
// redacted, or under secret-looking keys the log redacts itself) leave none of their bytes in the
// store files/rows or in the export, while equal secrets stay correlatable.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportLog } from '../../src/audit/export.js';
import { auditEventTypes } from '../../src/audit/types.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { dropSchema, freshSchema, POSTGRES_URL, storeFactories } from '../helpers/stores.js';
import { openAudit } from './helpers.js';

// Every event type Mandate writes, plus an admin change.
const EVENT_TYPES = [...Object.keys(auditEventTypes), 'admin.upstream.created'];

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
});

for (const factory of await storeFactories()) {
  test(`no secret bytes reach the store or the export (${factory.name})`, { skip: factory.skip }, async () => {
    let store: Store;
    let dir: string | undefined;
    if (factory.name === 'sqlite') {
      dir = mkdtempSync(join(tmpdir(), 'mandate-redact-'));
      store = openSqliteStore({ path: join(dir, 'm.db') });
      const d = dir;
      cleanups.push(async () => rmSync(d, { recursive: true, force: true }));
    } else {
      const schema = freshSchema();
      store = openPostgresStore({ url: POSTGRES_URL, schema });
      cleanups.push(() => dropSchema(schema));
    }
    await store.migrate();
    const audit = await openAudit(store);
    const secrets: string[] = [];
    const secret = (label: string) => {
      const s = `${label}-${randomBytes(12).toString('hex')}`;
      secrets.push(s);
      return s;
    };
    const shared = secret('shared-api-key');
    for (const type of EVENT_TYPES) {
      await audit.append({
        type,
        actors: [{ type: 'agent', id: 'agent-1' }],
        mandateId: 'm-1',
        data: {
          // The caller redacted explicitly …
          tokenHash: audit.redact(secret(`${type}-jwt`)),
          sharedRef: audit.redact(shared),
          // … or forgot: the log redacts values under secret-looking keys at any depth.
          subject_token: secret(`${type}-subject`),
          upstream: { clientSecret: secret(`${type}-client`), headers: [{ authorization: `Bearer ${secret(`${type}-bearer`)}` }] },
          args: { password: secret(`${type}-pw`), customerId: 'C-1009' },
          dpop: secret(`${type}-dpop`),
          tokenId: 'tok-visible',
        },
      });
    }
    await audit.checkpoint();
    await audit.close();
    const exported: string[] = [];
    for await (const line of exportLog(audit, {})) exported.push(line);
    for await (const line of exportLog(audit, { format: 'ocsf' })) exported.push(line);

    let stored: string;
    if (dir !== undefined) {
      await store.close();
      stored = readdirSync(dir)
        .map((f) => readFileSync(join(dir as string, f)).toString('latin1'))
        .join('\n');
    } else {
      const rows = await store.query<{ t: string }>(
        "SELECT (SELECT string_agg(body, '') FROM audit_entries) || (SELECT string_agg(value, '') FROM audit_meta) AS t",
      );
      stored = rows[0]?.t ?? '';
      await store.close();
    }
    const everything = `${stored}\n${exported.join('\n')}`;
    assert.ok(everything.includes('tok-visible') && everything.includes('C-1009'), 'non-secret values are recorded');
    for (const s of secrets) assert.ok(!everything.includes(s), `secret ${s.split('-')[0]} leaked`);
    // Equal secrets stay correlatable: the shared key's HMAC appears once per event type.
    const sharedHmac = exported[0] === undefined ? '' : (JSON.parse(exported[0]).event.data.sharedRef as string);
    assert.match(sharedHmac, /^hmac-sha256:/);
    assert.equal(exported.filter((l) => l.includes(sharedHmac)).length, EVENT_TYPES.length * 2);
  });
}
