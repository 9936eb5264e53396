// Starts an example PDP (examples/authzen-*/config.yaml) in-process on a free loopback port, with
// its data folder moved to a temporary directory so tests leave the example untouched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Broker, createBroker } from '../../src/broker.js';
import { buildConfig, readConfigFile } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';

export interface RunningPdp {
  readonly url: string;
  readonly broker: Broker;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field in tests
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function startExample(
  configPath: string,
  overrides: Record<string, unknown> = {},
  env: Record<string, string> = {},
): Promise<RunningPdp> {
  const file = resolve(configPath);
  const raw = readConfigFile(file);
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-authzen-'));
  const config = buildConfig(
    { ...raw, ...overrides, dataDir, server: { ...(raw.server as object), port: 0 } },
    { cwd: dirname(file), env },
    file,
  );
  const broker = await createBroker(config);
  const app = await buildApp(broker);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return {
    url,
    broker,
    async post(path, body, headers = {}) {
      const res = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
