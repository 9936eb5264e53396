// Configuration of the broker under fuzz: demo mode (seeded humans, development issuers) on a temp
// folder, quiet logs, and limits raised so that generated inputs reach the handlers instead of
// being turned away early (a 429 is never a finding, but it would hide the handler behind it).
import type { ConfigInput } from '../../src/config/load.js';

export function fuzzConfig(dataDir: string, port: number): ConfigInput {
  return {
    mode: 'demo',
    dataDir,
    log: { level: 'error' },
    // server.rateLimit: off, so floods of garbage reach the handlers (429 is not what is under test here).
    server: { port, rateLimit: { enabled: false } },
    gateway: { demoUpstreams: false, maxConcurrentCallsPerMandate: 1000 },
    // The longest token lifetime: valid credentials stay valid for a whole million-input run (< 1 h).
    identity: { tokenTtlSeconds: 3600 },
  };
}
