// Shared setup for audit tests: a real AuditService on a real store, with a throwaway master key.
import { AuditService } from '../../src/audit/log.js';
import type { Clock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import type { Store } from '../../src/store/types.js';

export const TEST_ORIGIN = 'audit.test/log';

/** A fixed clock that tests move by hand. */
export function fakeClock(start = Date.UTC(2026, 0, 1)): Clock & { advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => (now += ms) };
}

export function testSecrets(): SecretBox {
  return new SecretBox(parseMasterKeys(generateMasterKeySpec('t1')));
}

export async function openAudit(store: Store, secrets: SecretBox = testSecrets(), clock: Clock = fakeClock()): Promise<AuditService> {
  return AuditService.open({ store, secrets, clock, origin: TEST_ORIGIN, maxBatch: 512 });
}
