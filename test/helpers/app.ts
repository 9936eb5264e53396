// Builds a broker + Fastify app on a fresh data folder (demo mode by default) for HTTP tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Broker, createBroker } from '../../src/broker.js';
import { buildConfig, type ConfigInput } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';
import type { Clock } from '../../src/lib/clock.js';
import type { Logger } from '../../src/observability/log.js';
import type { Store } from '../../src/store/types.js';

export interface TestApp {
  readonly app: FastifyInstance;
  readonly broker: Broker;
  readonly dataDir: string;
  /** A development operator token for a seeded human (alice: admin, bob/carol: approvers). */
  operatorToken(user: 'alice' | 'bob' | 'carol', roles?: string[]): Promise<string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  readonly config?: ConfigInput;
  readonly env?: Record<string, string>;
  readonly store?: Store;
  readonly clock?: Clock;
  /** The broker's logger (a pino logger on a capturing destination, to assert on log lines). */
  readonly logger?: Logger;
}

export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-app-'));
  const config = buildConfig({ mode: 'demo', log: { level: 'silent' }, ...options.config, dataDir }, { env: options.env ?? {} });
  const broker = await createBroker(config, {
    ...(options.store ? { store: options.store } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const app = await buildApp(broker);
  const roles = { alice: ['admin'], bob: ['approver', 'support-lead'], carol: ['approver', 'finance'] };
  return {
    app,
    broker,
    dataDir,
    async operatorToken(user, override) {
      if (broker.devIssuer === undefined) throw new Error('operator tokens need demo mode');
      return broker.devIssuer.mint({ sub: user, roles: override ?? roles[user] });
    },
    async close() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
