// The broker's addresses and the demo's seeded humans: what CLI commands need from the broker's
// configuration without loading the broker (src/broker.ts re-exports them).
import type { Config } from './config/load.js';

/** Base URL the broker is reachable at (configured, or derived from host and port). */
export function publicUrl(config: Config): string {
  const scheme = config.server.tls === undefined ? 'http' : 'https';
  return (config.server.publicUrl ?? `${scheme}://${config.server.host}:${config.server.port}`).replace(/\/$/, '');
}

/** Checkpoint origin: configured, or HOST/audit of the public URL (C2SP origins carry no scheme). */
export function auditOrigin(config: Config): string {
  return config.audit.origin ?? `${new URL(publicUrl(config)).host}/audit`;
}

export const DEMO_HUMANS = [
  { id: 'alice', displayName: 'Alice Admin', roles: ['admin'] },
  { id: 'bob', displayName: 'Bob Support Lead', roles: ['approver', 'support-lead'] },
  { id: 'carol', displayName: 'Carol Finance', roles: ['approver', 'finance'] },
] as const;
