// Which tool arguments are targets: where a call sends something or what it acts on (a recipient,
// an address, a URL, an account, a path, a channel, a user). Decided by the argument's name, so it
// works for tools Mandate has never seen; an argument whose value is itself an address, URL, IBAN
// or path counts too (src/intent/binding.ts).

/** Name words that make an argument a target (matched against the words of its name). */
export const TARGET_WORDS: ReadonlySet<string> = new Set([
  'recipient',
  'recipients',
  'to',
  'cc',
  'bcc',
  'url',
  'urls',
  'uri',
  'link',
  'links',
  'email',
  'emails',
  'mail',
  'iban',
  'account',
  'accounts',
  'path',
  'paths',
  'file',
  'files',
  'filename',
  'filepath',
  'dir',
  'directory',
  'folder',
  'channel',
  'channels',
  'user',
  'users',
  'username',
  'member',
  'members',
  'participant',
  'participants',
  'attendee',
  'attendees',
  'invitee',
  'invitees',
  'domain',
  'host',
  'hostname',
  'destination',
  'dest',
  'receiver',
  'receivers',
  'target',
  'address',
  'addresses',
  'phone',
  'webhook',
  'endpoint',
]);

/** The words of an argument name: camelCase, snake_case, kebab-case and dotted names split, lower-cased. */
export function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/gu, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/gu, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/u)
    .filter((w) => w !== '');
}

const cache = new Map<string, boolean>();
const MAX_CACHED = 10_000;

/**
 * Whether an argument named `name` is a target by its name: one of its words is a target word
 * (`recipient`, `to`, `url`, `email`, `iban`, `path`, `channel`, `user`, …).
 *
 * @example
 * isTargetName('recipientIban') // true
 * isTargetName('subject')       // false
 */
export function isTargetName(name: string): boolean {
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  const target = name.length <= 128 && nameWords(name).some((w) => TARGET_WORDS.has(w));
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(name, target);
  return target;
}
