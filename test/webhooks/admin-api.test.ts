// The webhook delivery log through the broker: an approval notification to a failing receiver ends
// `failed` after its attempts and is visible at GET /admin/v1/webhooks/deliveries to admins and
// auditors only; a secret that is not a Standard Webhooks secret is refused at configuration time.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { ApprovalContext } from '../../src/approvals/approval.js';
import { callHash } from '../../src/approvals/call-hash.js';
import { buildConfig } from '../../src/config/load.js';
import type { WebhookDelivery } from '../../src/webhooks/index.js';
import { generateWebhookSecret } from '../../src/webhooks/index.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const SECRET = generateWebhookSecret();

describe('webhook delivery log (admin API)', () => {
  let t: TestApp;
  let receiver: Server;
  const bodies: { body: string; headers: Record<string, string> }[] = [];

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        bodies.push({ body, headers: req.headers as Record<string, string> });
        res.statusCode = 503;
        res.end('down for maintenance');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const { port } = receiver.address() as { port: number };
    t = await buildTestApp({
      config: {
        gateway: {
          approvals: { webhook: { url: `http://127.0.0.1:${port}/hook`, maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 10 } },
        },
      },
      env: { MANDATE_APPROVAL_WEBHOOK_SECRET: SECRET },
    });
  });
  after(async () => {
    await t.close();
    receiver.close();
  });

  const list = async (query: string, token?: string) =>
    t.app.inject({
      method: 'GET',
      url: `/admin/v1/webhooks/deliveries${query}`,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });

  it('logs a notification the receiver keeps refusing as failed, with its attempts and last answer', async () => {
    const mandateId = 'mnd_webhook_log';
    const args = { customerId: 'C-1009', amountCents: 4900 };
    const { approval } = await t.broker.approvals.request({
      callHash: callHash({ mandateId, tool: 'helpdesk.execute_refund', args }),
      mandateId,
      tool: 'helpdesk.execute_refund',
      agentId: 'support-triage',
      onBehalfOf: 'bob',
      requiredRoles: ['finance'],
      forbiddenApprovers: ['support-triage', 'bob'],
      decisionId: 'dec_webhook_log',
      reasons: ['production-refund-needs-approval'],
      context: { purpose: 'refund', args } as unknown as ApprovalContext,
      environment: 'production',
      actors: [{ type: 'agent', id: 'support-triage' }],
    });
    const admin = await t.operatorToken('alice');
    let failed: WebhookDelivery | undefined;
    for (let i = 0; i < 200 && failed === undefined; i++) {
      const res = await list('?status=failed', admin);
      assert.equal(res.statusCode, 200);
      failed = (res.json() as { items: WebhookDelivery[] }).items.find((d) => d.payload.includes(approval.id));
      if (failed === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(failed, 'the delivery ended failed');
    assert.equal(failed.eventType, 'approval.requested');
    assert.equal(failed.attempts, 2);
    assert.equal(failed.lastStatus, 503);
    assert.equal(failed.lastError, 'HTTP 503');
    // Both attempts reached the receiver, signed for the same message id.
    const attempts = bodies.filter((b) => b.headers['webhook-id'] === failed.id);
    assert.equal(attempts.length, 2);
    for (const a of attempts) {
      const event = new Webhook(SECRET).verify(a.body, a.headers) as { data: { approval: { id: string } } };
      assert.equal(event.data.approval.id, approval.id);
    }
  });

  it('is readable by admins and auditors only, and validates its query', async () => {
    assert.equal((await list('')).statusCode, 401);
    assert.equal((await list('', await t.operatorToken('bob'))).statusCode, 403);
    assert.equal((await list('', await t.operatorToken('carol', ['auditor']))).statusCode, 200);
    const admin = await t.operatorToken('alice');
    assert.equal((await list('?status=lost', admin)).statusCode, 400);
    assert.equal((await list('?limit=0', admin)).statusCode, 400);
    assert.equal((await list('?limit=1001', admin)).statusCode, 400);
    assert.equal((await list('?status=failed&status=delivered', admin)).statusCode, 400);
    assert.equal((await list('?unknown=1', admin)).statusCode, 400);
    const delivered = await list('?status=delivered', admin);
    assert.deepEqual((delivered.json() as { items: unknown[] }).items, []);
  });
});

describe('webhook secret configuration', () => {
  const input = { mode: 'demo' as const, gateway: { approvals: { webhook: { url: 'https://hooks.example.com/mandate' } } } };

  it('refuses a webhook without a Standard Webhooks secret', () => {
    for (const secret of [
      undefined,
      'webhook-secret-that-is-at-least-32-chars',
      `whsec_${Buffer.alloc(16).toString('base64')}`,
      'whsec_not base64!',
    ]) {
      assert.throws(
        () => buildConfig(input, { env: secret === undefined ? {} : { MANDATE_APPROVAL_WEBHOOK_SECRET: secret } }),
        (err: { code?: string; message?: string }) =>
          err.code === 'ERR_CONFIG_INVALID' && /MANDATE_APPROVAL_WEBHOOK_SECRET/.test(err.message ?? ''),
        String(secret),
      );
    }
  });

  it('accepts one, with the default retry settings', () => {
    const config = buildConfig(input, { env: { MANDATE_APPROVAL_WEBHOOK_SECRET: SECRET } });
    assert.equal(config.secrets.approvalWebhookSecret, SECRET);
    assert.equal(config.gateway.approvals.webhook?.maxAttempts, 5);
  });
});
