// The webhook sender against a real HTTP receiver that verifies with the standardwebhooks library:
// signatures, retries on failure with backoff, giving up, and the delivery log on both stores.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { systemClock } from '../../src/lib/clock.js';
import type { Store } from '../../src/store/types.js';
import {
  backoffMs,
  type DeliveryOutcome,
  generateWebhookSecret,
  isWebhookSecret,
  WebhookDeliveries,
  WebhookSender,
} from '../../src/webhooks/index.js';
import { storeFactories } from '../helpers/stores.js';

const SECRET = generateWebhookSecret();

interface Hit {
  readonly path: string;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  readonly at: number;
}

/** A receiver whose answer per request path is scripted: a list of statuses, the last one repeated. */
async function receiver(script: Record<string, number[]>): Promise<{ server: Server; base: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const path = req.url ?? '/';
      hits.push({ path, body, headers: req.headers, at: Date.now() });
      if (path === '/hang') return; // never answers
      const statuses = script[path] ?? [204];
      const n = hits.filter((h) => h.path === path).length;
      const status = statuses[Math.min(n, statuses.length) - 1] ?? 204;
      if (status === 302) res.setHeader('location', '/ok');
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { server, base: `http://127.0.0.1:${port}`, hits };
}

const verify = (hit: Hit, secret = SECRET) =>
  new Webhook(secret).verify(hit.body, hit.headers as Record<string, string>) as { type: string; timestamp: string; data: unknown };

describe('webhook secrets', () => {
  it('accepts whsec_ + base64 of 24 to 64 bytes and nothing else', () => {
    assert.equal(isWebhookSecret(generateWebhookSecret()), true);
    assert.equal(isWebhookSecret(`whsec_${Buffer.alloc(24, 1).toString('base64')}`), true);
    assert.equal(isWebhookSecret(`whsec_${Buffer.alloc(64, 1).toString('base64')}`), true);
    for (const bad of [
      '',
      'whsec_',
      `whsec_${Buffer.alloc(23, 1).toString('base64')}`,
      `whsec_${Buffer.alloc(65, 1).toString('base64')}`,
      Buffer.alloc(32, 1).toString('base64'),
      `whsec_${Buffer.alloc(32, 1).toString('base64url')}-_`,
      `whsec_${Buffer.alloc(32, 1).toString('base64')} `,
      'webhook-secret-that-is-at-least-32-chars',
    ]) {
      assert.equal(isWebhookSecret(bad), false, JSON.stringify(bad));
    }
  });

  it('refuses to build a sender with a malformed secret', async () => {
    const deliveries = new WebhookDeliveries({} as Store);
    assert.throws(
      () =>
        new WebhookSender({ name: 'test', url: 'http://127.0.0.1:9/', secret: 'short', timeoutMs: 100, deliveries, clock: systemClock }),
      TypeError,
    );
  });

  it('backs off exponentially up to the cap', () => {
    const policy = { maxAttempts: 10, initialDelayMs: 100, maxDelayMs: 1000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffMs(policy, n)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });
});

for (const factory of await storeFactories()) {
  describe(`webhook sender (${factory.name})`, { skip: factory.skip }, () => {
    let store: Store;
    let deliveries: WebhookDeliveries;
    let rx: Awaited<ReturnType<typeof receiver>>;
    const outcomes: DeliveryOutcome[] = [];
    const sender = (path: string, over: { maxAttempts?: number; timeoutMs?: number } = {}) =>
      new WebhookSender({
        name: 'approvals',
        url: `${rx.base}${path}`,
        secret: SECRET,
        timeoutMs: over.timeoutMs ?? 2000,
        retry: { maxAttempts: over.maxAttempts ?? 4, initialDelayMs: 40, maxDelayMs: 200 },
        deliveries,
        clock: systemClock,
        onOutcome: (o) => outcomes.push(o),
      });

    before(async () => {
      store = await factory.open();
      deliveries = new WebhookDeliveries(store);
      rx = await receiver({
        '/ok': [204],
        '/flaky': [500, 503, 200],
        '/down': [500],
        '/gone': [410],
        '/moved': [302],
        '/recover': [500, 200],
      });
    });
    after(async () => {
      rx.server.closeAllConnections();
      rx.server.close();
      await store.close();
      await factory.cleanup();
    });

    it('delivers a message the standardwebhooks verifier accepts, and logs it delivered', async () => {
      const out = await sender('/ok').send('approval.requested', { approval: { id: 'a-1' } });
      assert.equal(out.status, 'delivered');
      assert.equal(out.attempts, 1);
      const hit = rx.hits.find((h) => h.headers['webhook-id'] === out.id);
      assert.ok(hit);
      assert.match(out.id, /^msg_[A-Za-z0-9_-]{22}$/);
      assert.equal(hit.headers['content-type'], 'application/json');
      const body = verify(hit);
      assert.equal(body.type, 'approval.requested');
      assert.deepEqual(body.data, { approval: { id: 'a-1' } });
      assert.ok(Math.abs(Date.parse(body.timestamp) - Date.now()) < 60_000);
      const row = await deliveries.get(out.id);
      assert.equal(row?.status, 'delivered');
      assert.equal(row?.attempts, 1);
      assert.equal(row?.lastStatus, 204);
      assert.equal(row?.lastError, undefined);
      assert.equal(row?.payload, hit.body);
      assert.equal(row?.endpoint, rx.base);
    });

    it('names the receiver by its origin only: a credential in its path or query stays out of the log', async () => {
      const out = await sender('/services/T000/B000/s3cretPath?token=s3cretQuery').send('approval.requested', {});
      assert.equal(out.status, 'delivered');
      assert.equal(out.endpoint, rx.base);
      const row = await deliveries.get(out.id);
      assert.equal(row?.endpoint, rx.base);
      assert.doesNotMatch(JSON.stringify([row, outcomes.filter((o) => o.id === out.id)]), /s3cret/);
    });

    it('is rejected by a verifier with another secret, and for a tampered body or id', async () => {
      const out = await sender('/ok').send('approval.decided', { approval: { id: 'a-2', status: 'approved' } });
      const hit = rx.hits.find((h) => h.headers['webhook-id'] === out.id);
      assert.ok(hit);
      assert.throws(() => verify(hit, generateWebhookSecret()), /No matching signature/);
      assert.throws(() => verify({ ...hit, body: hit.body.replace('approved', 'denied') }), /No matching signature/);
      assert.throws(() => verify({ ...hit, headers: { ...hit.headers, 'webhook-id': 'msg_other' } }), /No matching signature/);
      const old = String(Math.floor(Date.now() / 1000) - 600);
      assert.throws(() => verify({ ...hit, headers: { ...hit.headers, 'webhook-timestamp': old } }), /too old/);
    });

    it('retries a failing receiver with backoff, same id, freshly signed, until it answers 2xx', async () => {
      const out = await sender('/flaky').send('approval.requested', { approval: { id: 'a-3' } });
      assert.equal(out.status, 'delivered');
      assert.equal(out.attempts, 3);
      const hits = rx.hits.filter((h) => h.path === '/flaky');
      assert.equal(hits.length, 3);
      for (const h of hits) {
        assert.equal(h.headers['webhook-id'], out.id);
        assert.equal(verify(h).type, 'approval.requested');
      }
      // 40 ms then 80 ms between attempts (timers may run late, never early).
      assert.ok((hits[1]?.at ?? 0) - (hits[0]?.at ?? 0) >= 35);
      assert.ok((hits[2]?.at ?? 0) - (hits[1]?.at ?? 0) >= 75);
      const row = await deliveries.get(out.id);
      assert.equal(row?.status, 'delivered');
      assert.equal(row?.attempts, 3);
      assert.equal(row?.lastStatus, 200);
      assert.deepEqual(
        outcomes.filter((o) => o.id === out.id).map((o) => [o.status, o.lastStatus]),
        [
          ['pending', 500],
          ['pending', 503],
          ['delivered', 200],
        ],
      );
    });

    it('gives up after maxAttempts, and the log says failed with the last answer', async () => {
      const out = await sender('/down', { maxAttempts: 3 }).send('approval.withdrawn', { approval: { id: 'a-4' } });
      assert.equal(out.status, 'failed');
      assert.equal(rx.hits.filter((h) => h.headers['webhook-id'] === out.id).length, 3);
      const row = await deliveries.get(out.id);
      assert.equal(row?.status, 'failed');
      assert.equal(row?.attempts, 3);
      assert.equal(row?.lastStatus, 500);
      assert.equal(row?.lastError, 'HTTP 500');
      assert.equal(row?.nextAttemptAt, undefined);
      assert.deepEqual(
        (await deliveries.list({ status: 'failed' })).map((d) => d.id),
        [out.id],
      );
      assert.equal(outcomes.filter((o) => o.id === out.id).at(-1)?.status, 'failed');
    });

    it('treats a redirect as a failure and never follows it', async () => {
      const before = rx.hits.filter((h) => h.path === '/ok').length;
      const out = await sender('/moved', { maxAttempts: 1 }).send('approval.requested', {});
      assert.equal(out.status, 'failed');
      assert.equal(rx.hits.filter((h) => h.path === '/ok').length, before);
      assert.equal((await deliveries.get(out.id))?.lastStatus, undefined);
    });

    it('records timeouts and refused connections, and never throws', async () => {
      const slow = await sender('/hang', { maxAttempts: 1, timeoutMs: 150 }).send('approval.requested', {});
      assert.equal(slow.status, 'failed');
      assert.equal((await deliveries.get(slow.id))?.lastError, 'timed out');
      const refused = await new WebhookSender({
        name: 'approvals',
        url: 'http://127.0.0.1:9/hook',
        secret: SECRET,
        timeoutMs: 1000,
        retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 10 },
        deliveries,
        clock: systemClock,
      }).send('approval.requested', {});
      assert.equal(refused.status, 'failed');
      assert.equal(refused.attempts, 2);
      assert.match((await deliveries.get(refused.id))?.lastError ?? '', /fetch failed/);
    });

    it('still delivers when the delivery log is unavailable, and says so in every outcome', async () => {
      const broken = await factory.open();
      await broken.close();
      const seen: DeliveryOutcome[] = [];
      const out = await new WebhookSender({
        name: 'approvals',
        url: `${rx.base}/flaky-log`,
        secret: SECRET,
        timeoutMs: 1000,
        retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 10 },
        deliveries: new WebhookDeliveries(broken),
        clock: systemClock,
        onOutcome: (o) => seen.push(o),
      }).send('approval.requested', { approval: { id: 'a-9' } });
      assert.equal(out.status, 'delivered');
      assert.equal(rx.hits.filter((h) => h.headers['webhook-id'] === out.id).length, 1);
      assert.equal(seen.length, 1, 'one outcome per attempt');
      assert.match(seen[0]?.logError ?? '', /^delivery log unavailable: /);
      assert.equal(await deliveries.get(out.id), undefined);
    });

    it('sends nothing once closed', async () => {
      const s = sender('/ok');
      await s.close();
      const before = rx.hits.length;
      const out = await s.send('approval.requested', {});
      assert.equal(out.status, 'pending');
      assert.equal(out.attempts, 0);
      assert.equal(rx.hits.length, before);
    });

    it('stops retrying on close and leaves the message pending with its next attempt time', async () => {
      const s = new WebhookSender({
        name: 'approvals',
        url: `${rx.base}/down`,
        secret: SECRET,
        timeoutMs: 1000,
        retry: { maxAttempts: 5, initialDelayMs: 60_000, maxDelayMs: 60_000 },
        deliveries,
        clock: systemClock,
      });
      const pending = s.send('approval.requested', {});
      for (let i = 0; i < 100 && (await deliveries.list({ status: 'pending' })).every((d) => d.attempts === 0); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const started = Date.now();
      await s.close();
      const out = await pending;
      assert.ok(Date.now() - started < 5000);
      assert.equal(out.status, 'pending');
      const row = await deliveries.get(out.id);
      assert.equal(row?.status, 'pending');
      assert.equal(row?.attempts, 1);
      assert.ok((row?.nextAttemptAt ?? 0) > Date.now() + 30_000);
    });

    describe('durable retries', () => {
      const hitsOf = (id: string) => rx.hits.filter((h) => h.headers['webhook-id'] === id);
      const settled = async (id: string) => {
        for (let i = 0; i < 250; i++) {
          const row = await deliveries.get(id);
          if (row !== undefined && row.status !== 'pending') return row;
          await new Promise((r) => setTimeout(r, 20));
        }
        return deliveries.get(id);
      };
      /** A pending message as a stopped sender leaves it: `attempts` made, next attempt due `dueIn` ms from now. */
      const leftPending = async (path: string, attempts: number, dueIn: number, sender = 'approvals') => {
        const id = `msg_left_${path.slice(1)}_${Math.random().toString(36).slice(2)}`;
        const now = Date.now();
        const payload = JSON.stringify({ type: 'approval.requested', timestamp: new Date(now).toISOString(), data: { n: 1 } });
        await deliveries.create({ id, sender, endpoint: rx.base, eventType: 'approval.requested', payload, at: now, claimedUntil: now });
        await deliveries.recordAttempt(id, {
          status: 'pending',
          attempts,
          lastStatus: 500,
          lastError: 'HTTP 500',
          at: now,
          nextAttemptAt: now + dueIn,
        });
        return id;
      };
      const resumer = (path: string, over: { maxAttempts?: number; name?: string; delayMs?: number; onOutcome?: () => void } = {}) =>
        new WebhookSender({
          name: over.name ?? 'approvals',
          url: `${rx.base}${path}`,
          secret: SECRET,
          timeoutMs: 2000,
          retry: { maxAttempts: over.maxAttempts ?? 4, initialDelayMs: over.delayMs ?? 40, maxDelayMs: over.delayMs ?? 200 },
          deliveries,
          clock: systemClock,
          ...(over.onOutcome === undefined ? {} : { onOutcome: over.onOutcome }),
        });

      it('a message a stopped sender left pending is resumed by the next one: same webhook-id, attempts go on', async () => {
        let attempted!: () => void;
        const firstAttempt = new Promise<void>((r) => {
          attempted = r;
        });
        const first = resumer('/recover', { delayMs: 200, onOutcome: () => attempted() });
        const pending = first.send('approval.requested', { approval: { id: 'a-r' } });
        await firstAttempt;
        await first.close(); // the replica stops between two attempts
        const left = await pending;
        assert.equal(left.status, 'pending');
        assert.equal((await deliveries.get(left.id))?.attempts, 1);
        const next = resumer('/recover');
        assert.equal(await next.resume(), 0, 'not before its next attempt is due');
        await new Promise((r) => setTimeout(r, 250));
        assert.equal(await next.resume(), 1);
        const row = await settled(left.id);
        assert.equal(row?.status, 'delivered');
        assert.equal(row?.attempts, 2);
        const hits = hitsOf(left.id);
        assert.equal(hits.length, 2, 'one attempt per sender, no double delivery');
        for (const h of hits) verify(h); // each attempt freshly signed, same id
        await next.close();
      });

      it('two replicas resuming at once: exactly one attempts the message', async () => {
        const id = await leftPending('/ok', 1, -1);
        const a = resumer('/ok');
        const b = resumer('/ok');
        const taken = (await Promise.all([a.resume(), b.resume()])).reduce((x, y) => x + y, 0);
        assert.equal(taken, 1);
        assert.equal((await settled(id))?.status, 'delivered');
        assert.equal(hitsOf(id).length, 1);
        await Promise.all([a.close(), b.close()]);
      });

      it('an attempt whose replica died mid-way is resumed once its claim lapses, not before', async () => {
        const now = Date.now();
        const id = `msg_claimed_${Math.random().toString(36).slice(2)}`;
        const payload = JSON.stringify({ type: 'approval.requested', timestamp: new Date(now).toISOString(), data: {} });
        await deliveries.create({
          id,
          sender: 'approvals',
          endpoint: rx.base,
          eventType: 'approval.requested',
          payload,
          at: now,
          claimedUntil: now + 300,
        });
        const s = resumer('/ok');
        assert.equal(await s.resume(), 0, 'claimed by the replica attempting it');
        await new Promise((r) => setTimeout(r, 350));
        assert.equal(await s.resume(), 1);
        const row = await settled(id);
        assert.equal(row?.status, 'delivered');
        assert.equal(row?.attempts, 1);
        await s.close();
      });

      it("leaves another sender's messages alone, and gives up at the last attempt", async () => {
        const risk = await leftPending('/ok', 1, -1, 'risk');
        const id = await leftPending('/down', 3, -1);
        const s = resumer('/down', { maxAttempts: 4 });
        assert.equal(await s.resume(), 1, 'only its own');
        const row = await settled(id);
        assert.equal(row?.status, 'failed');
        assert.equal(row?.attempts, 4);
        assert.equal((await deliveries.get(risk))?.status, 'pending');
        assert.equal(hitsOf(risk).length, 0);
        const over = await leftPending('/ok', 4, -1);
        assert.equal(await s.resume(), 1);
        const exhausted = await settled(over);
        assert.equal(exhausted?.status, 'failed', 'no attempts left under the current limit');
        assert.equal(hitsOf(over).length, 0);
        await s.close();
        assert.equal(await resumer('/ok', { name: 'risk' }).resume(), 1);
        assert.equal((await settled(risk))?.status, 'delivered');
      });

      it('resumes on its own every resumeEveryMs, and stops when closed', async () => {
        const id = await leftPending('/ok', 1, -1);
        const s = new WebhookSender({
          name: 'approvals',
          url: `${rx.base}/ok`,
          secret: SECRET,
          timeoutMs: 2000,
          deliveries,
          clock: systemClock,
          resumeEveryMs: 50,
        });
        assert.equal((await settled(id))?.status, 'delivered');
        await s.close();
        const later = await leftPending('/ok', 1, -1);
        await new Promise((r) => setTimeout(r, 200));
        assert.equal((await deliveries.get(later))?.status, 'pending', 'a closed sender resumes nothing');
        await resumer('/ok').resume();
        await settled(later);
      });
    });
  });
}
