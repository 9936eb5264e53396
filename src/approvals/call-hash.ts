// The binding of an approval to one exact call: SHA-256 over the RFC 8785 canonical form of
// { mandateId, tool, args }. Any difference in any argument gives another hash, so an approval
// can never be reused for a call the human did not see.
import canonicalize from 'canonicalize';
import { MandateError } from '../errors/index.js';
import { sha256Hex } from '../lib/hash.js';

export interface CanonicalCall {
  readonly mandateId: string;
  readonly tool: string;
  readonly args: Readonly<Record<string, unknown>>;
}

/**
 * Hex SHA-256 of the RFC 8785 (JCS) canonical call.
 *
 * @example
 * callHash({ mandateId: 'm1', tool: 'helpdesk.execute_refund', args: { amountCents: 100, customerId: 'C-1' } })
 */
export function callHash(call: CanonicalCall): string {
  let text: string | undefined;
  try {
    text = canonicalize({ mandateId: call.mandateId, tool: call.tool, args: call.args });
  } catch {
    // canonicalize throws a plain Error for NaN, ±Infinity and BigInt: the same refusal, not a crash.
    text = undefined;
  }
  // canonicalize returns undefined for values JSON cannot represent; such a call cannot be bound.
  if (text === undefined) throw new MandateError('RPC_INVALID_PARAMS', 'the tool arguments are not representable as canonical JSON');
  return sha256Hex(text);
}
