// Engines that answer over the network (an external AuthZEN PDP) cannot answer synchronously: their
// sets add `authorizeAsync`, and callers on an async path ask through `authorizeAny`.
import type { EngineAnswer, EngineRequest, LoadedPolicySet } from './engine.js';

/** A loaded set whose decisions come from elsewhere; its sync `authorize` fails closed. */
export interface AsyncPolicySet extends LoadedPolicySet {
  authorizeAsync(request: EngineRequest): Promise<EngineAnswer>;
}

export function isAsyncSet(set: LoadedPolicySet | undefined): set is AsyncPolicySet {
  return typeof (set as Partial<AsyncPolicySet> | undefined)?.authorizeAsync === 'function';
}

/** The answer of any set: awaits an engine over the network, calls an in-process engine directly. */
export async function authorizeAny(set: LoadedPolicySet, request: EngineRequest): Promise<EngineAnswer> {
  return isAsyncSet(set) ? set.authorizeAsync(request) : set.authorize(request);
}
