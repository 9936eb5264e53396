// The agent SDK with an OIDC workload token file as its identity (`oidcTokenFile`: a Kubernetes
// projected service-account token, a CI job's OIDC token), against a real broker that trusts a fake
// Kubernetes-style issuer we control (test/helpers/workload-issuer.ts). The file is read each time a
// proof is needed (a rotated file opens again); an empty file or a token the broker has seen is a
// clear failure.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mandate, MandateAuthError, oidcTokenFile, textOf } from 'mandate/sdk';
import { startWorkloadIssuer, type WorkloadIssuer } from '../helpers/workload-issuer.js';
import { type Running, startBroker } from '../identity/helpers.js';

const SUBJECT = 'system:serviceaccount:support:triage';

describe('agent SDK: oidcTokenFile', () => {
  let issuer: WorkloadIssuer;
  let b: Running;
  let dir: string;
  before(async () => {
    issuer = await startWorkloadIssuer();
    b = await startBroker({ config: { identity: { oidcIssuers: [{ issuer: issuer.url, audience: 'mandate', algorithms: ['RS256'] }] } } });
    await b.broker.agents.register({
      id: 'k8s-triage',
      displayName: 'Triage (Kubernetes)',
      owner: 'alice',
      environment: 'production',
      identity: { issuer: issuer.url, subject: SUBJECT },
      ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
      templates: {
        triage: { purpose: 'Read tickets', taskType: 'support.triage', ttlSeconds: 600, tools: [{ tool: 'helpdesk.search_tickets' }] },
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'mandate-sdk-oidc-'));
  });
  after(async () => {
    await b?.close();
    await issuer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const workloadToken = () => issuer.token({ sub: SUBJECT, claims: { kubernetes: { namespace: 'support' } } });

  test('opens a mandate from a template with the token in a file, makes a governed call, completes', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, `${await workloadToken()}\n`);
    const identity = oidcTokenFile(path);
    const m = await Mandate.open({ broker: b.base, identity, template: 'triage' });
    assert.match(textOf(await m.call('helpdesk.search_tickets', { query: 'charged twice' })), /T-4821/);
    await m.complete();
    const mandate = await b.broker.mandates.get(m.id);
    assert.equal(mandate?.agentId, 'k8s-triage');
    assert.equal(mandate?.status, 'completed');
    // The kubelet has not rotated the file: the same token is a proof the broker has seen.
    const again = await Mandate.open({ broker: b.base, identity, template: 'triage' }).catch((e: unknown) => e);
    assert.ok(again instanceof MandateAuthError, String(again));
    assert.equal(again.code, 'invalid_client');
    // Rotated: the same source reads the new token and opens again.
    writeFileSync(path, await workloadToken());
    const rotated = await Mandate.open({ broker: b.base, identity, template: 'triage' });
    assert.notEqual(rotated.id, m.id);
    await rotated.complete();
  });

  test('an empty or missing token file fails with an error naming the file', async () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    await assert.rejects(Mandate.open({ broker: b.base, identity: oidcTokenFile(empty), template: 'triage' }), (err: Error) => {
      assert.match(err.message, /OIDC token file .*empty is empty/);
      return true;
    });
    await assert.rejects(Mandate.open({ broker: b.base, identity: oidcTokenFile(join(dir, 'absent')), template: 'triage' }), {
      code: 'ENOENT',
    });
  });
});
