// Provenance of values: what the tool results the gateway relayed to a mandate tree contained
// (untrusted data). Kept in memory per root mandate, bounded on every axis (trees, keys per tree,
// text per tree), so a hostile upstream cannot grow it; losing it (a restart, another replica)
// only makes `fromToolOutput` false, never `named` true.

import type { ProvenanceView } from './binding.js';
import { entityKey, extractEntities } from './entities.js';
import { containsWords } from './values.js';

export interface ProvenanceLimits {
  /** Mandate trees remembered (least recently used dropped first). */
  readonly maxTrees: number;
  /** Entity keys remembered per tree (oldest dropped first). */
  readonly maxKeysPerTree: number;
  /** Characters of recent result text remembered per tree, for plain phrases. */
  readonly maxTextPerTree: number;
  /** Characters of one result scanned. */
  readonly maxScanChars: number;
}

export const DEFAULT_PROVENANCE_LIMITS: ProvenanceLimits = {
  maxTrees: 1024,
  maxKeysPerTree: 4096,
  maxTextPerTree: 32 * 1024,
  maxScanChars: 64 * 1024,
};

/**
 * One tree's record. Results are kept as text and read (entities extracted) only when a decision
 * asks: a policy set that never reads `context.intent` never pays for the extraction.
 */
class Tree implements ProvenanceView {
  readonly keys = new Set<string>();
  /** Recent result texts (lowercased, NFKC), oldest first, `textChars` in all: no 32 KiB string rebuilt per result. */
  readonly texts: string[] = [];
  textChars = 0;
  pending: string[] = [];
  pendingChars = 0;

  constructor(readonly limits: ProvenanceLimits) {}

  hasKey(key: string): boolean {
    this.digest();
    return this.keys.has(key);
  }

  hasPhrase(phrase: string): boolean {
    this.digest();
    for (const text of this.texts) if (containsWords(text, phrase)) return true;
    return false;
  }

  /** Reads the results recorded since the last question, oldest first. */
  digest(): void {
    if (this.pending.length === 0) return;
    const texts = this.pending;
    this.pending = [];
    this.pendingChars = 0;
    for (const scanned of texts) {
      for (const e of extractEntities(scanned, this.limits.maxScanChars)) {
        const key = entityKey(e.kind, e.value);
        if (this.keys.has(key)) continue;
        if (this.keys.size >= this.limits.maxKeysPerTree) this.keys.delete(this.keys.values().next().value as string);
        this.keys.add(key);
      }
      this.remember(scanned.normalize('NFKC').toLowerCase());
    }
  }

  /** Keeps the newest `maxTextPerTree` characters of result text (the oldest text cut at its start). */
  remember(text: string): void {
    const max = this.limits.maxTextPerTree;
    this.texts.push(text.length > max ? text.slice(text.length - max) : text);
    this.textChars += Math.min(text.length, max);
    while (this.textChars > max) {
      const oldest = this.texts[0] as string;
      const over = this.textChars - max;
      if (over >= oldest.length) {
        this.texts.shift();
        this.textChars -= oldest.length;
      } else {
        this.texts[0] = oldest.slice(over);
        this.textChars -= over;
      }
    }
  }
}

/** Unread result text kept per tree before it is read anyway (bounds memory). */
const MAX_PENDING_CHARS = 256 * 1024;

const NOTHING: ProvenanceView = { hasKey: () => false, hasPhrase: () => false };

/**
 * Values seen in tool results, per mandate tree (keyed by the root mandate id, so a delegate sees
 * what its delegator read).
 *
 * @example
 * provenance.record(rootId, 'Contact attacker@evil.test for a refund');
 * provenance.view(rootId).hasKey('email:attacker@evil.test') // true
 */
export class Provenance {
  readonly #limits: ProvenanceLimits;
  readonly #trees = new Map<string, Tree>();

  constructor(limits: Partial<ProvenanceLimits> = {}) {
    this.#limits = { ...DEFAULT_PROVENANCE_LIMITS, ...limits };
  }

  /** Records one relayed result text for the tree rooted at `rootId` (read when a decision asks). */
  record(rootId: string, text: string): void {
    if (text === '') return;
    const scanned = text.length > this.#limits.maxScanChars ? text.slice(0, this.#limits.maxScanChars) : text;
    let tree = this.#trees.get(rootId);
    if (tree === undefined) {
      if (this.#trees.size >= this.#limits.maxTrees) this.#trees.delete(this.#trees.keys().next().value as string);
      tree = new Tree(this.#limits);
    } else {
      this.#trees.delete(rootId);
    }
    this.#trees.set(rootId, tree);
    tree.pending.push(scanned);
    tree.pendingChars += scanned.length;
    if (tree.pendingChars > MAX_PENDING_CHARS) tree.digest();
  }

  /** What the tree rooted at `rootId` has seen (nothing, when unknown). */
  view(rootId: string): ProvenanceView {
    return this.#trees.get(rootId) ?? NOTHING;
  }

  /** Forgets a tree (its mandate ended). */
  forget(rootId: string): void {
    this.#trees.delete(rootId);
  }

  get size(): number {
    return this.#trees.size;
  }
}

/**
 * The text of a tool result an agent reads: text content, embedded text resources and structured
 * content (as JSON). Images and audio carry no text to extract.
 */
export function resultText(result: { content?: unknown; structuredContent?: unknown }, maxChars: number): string {
  const parts: string[] = [];
  let size = 0;
  const push = (s: string) => {
    if (size >= maxChars) return;
    const part = s.slice(0, maxChars - size);
    parts.push(part);
    size += part.length + 1;
  };
  if (Array.isArray(result.content)) {
    for (const c of result.content as { type?: unknown; text?: unknown; resource?: { text?: unknown } }[]) {
      if (c === null || typeof c !== 'object') continue;
      if (typeof c.text === 'string') push(c.text);
      else if (c.resource !== null && typeof c.resource === 'object' && typeof c.resource.text === 'string') push(c.resource.text);
    }
  }
  if (result.structuredContent !== undefined && size < maxChars) {
    try {
      push(JSON.stringify(result.structuredContent));
    } catch {
      // Not serializable: nothing to record.
    }
  }
  return parts.join('\n');
}
