// Request-target variants of a route path: the forms the admin bypass used (percent-encoded
// characters, absolute-form) and the other ways one path can be spelled (case, double slashes,
// dot segments, `;` parameters, backslashes, broken or overlong encodings, queries, fragments).
import { mutateString } from './mutate.js';
import type { Pools } from './pools.js';
import type { Rng } from './rng.js';

const pct = (c: string) => [...Buffer.from(c)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** Like encodeURIComponent, but lone surrogates become U+FFFD instead of throwing. */
const encodeBytes = (s: string) =>
  [...Buffer.from(s)]
    .map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`))
    .join('');

/** `path` (origin-form, starting with `/`) respelled in one to three ways. */
export function pathVariant(rng: Rng, path: string, host: string, pools: Pools): string {
  let p = path;
  for (let n = 1 + rng.int(3); n > 0; n--) p = respell(rng, p, host, pools);
  return p;
}

function respell(rng: Rng, p: string, host: string, pools: Pools): string {
  const at = rng.int(p.length);
  switch (rng.int(16)) {
    case 0: {
      // percent-encode one character (upper or lower hex)
      const c = p[at] ?? '';
      const enc = pct(c);
      return `${p.slice(0, at)}${rng.chance(0.5) ? enc : enc.toLowerCase()}${p.slice(at + 1)}`;
    }
    case 1:
      // percent-encode every character of one segment
      return p.replace(/\/([^/]+)/, (_m, seg: string) => `/${[...seg].map(pct).join('')}`);
    case 2:
      return rng.pick([
        `http://${host}${p}`,
        `https://${host}${p}`,
        `HTTP://${host.toUpperCase()}${p}`,
        `http://evil.example${p}`,
        `//${host}${p}`,
      ]);
    case 3:
      return rng.chance(0.5) ? p.toUpperCase() : p.replace(/[a-z]/g, (c) => (rng.chance(0.3) ? c.toUpperCase() : c));
    case 4:
      return p.replace('/', rng.pick(['//', '///', '/./', '/x/../', '/%2e/', '/%2e%2e/x/', '/.%2e/', '\\', '%2f', '%5c']));
    case 5:
      return `${p}${rng.pick(['/', '//', '/.', '/..', '/%2e', ';', ';x=1', ';jsessionid=1', '%00', '%20', '\u0000', '#', '#x', '?', '??', '&', '*', '%'])}`;
    case 6: {
      const segs = p.split('/');
      const i = 1 + rng.int(Math.max(1, segs.length - 1));
      segs.splice(i, 0, rng.pick(['..', '.', '%2e%2e', '%2e', '.%2e', 'x/..', 'x%2f..', '']));
      return segs.join('/');
    }
    case 7:
      return `${p.slice(0, at)}${rng.pick(['%', '%z', '%zz', '%g0', '%c0%af', '%c0%ae', '%e0%80%af', '%ff', '%u002f', '%%32%66', '%252f'])}${p.slice(at)}`;
    case 8:
      return p.replace(/\//g, (s) => (rng.chance(0.3) ? rng.pick(['%2f', '%2F', '\\', '%5c']) : s));
    case 9:
      return `${p}?${rng.pick(['a=1', 'limit=-1', 'limit=1e400', 'limit=99999999', 'status=%ff', '__proto__[x]=1', 'a[b][c]=1', `x=${'y'.repeat(9000)}`, 'agentId=%00'])}`;
    case 10:
      return `${p.slice(0, at)}${rng.pick(pools.nasty)}${p.slice(at)}`;
    case 11:
      return mutateString(rng, p, pools);
    case 12:
      return rng.pick([
        '*',
        '',
        ' ',
        p.slice(1),
        `/${'a/'.repeat(3000)}`,
        `${p}/${'x'.repeat(300)}`,
        `/${'%2e%2e/'.repeat(10)}${p.slice(1)}`,
      ]);
    case 13:
      // a path parameter replaced by hostile text
      return p.replace(/\/[^/]*$/, `/${encodeBytes(rng.pick(pools.strings))}`);
    case 14:
      return p.replace(/v1/i, rng.pick(['v%31', 'V1', 'v2', 'v0', 'v1.0', '%76%31']));
    default:
      return p;
  }
}

/** The path a lenient server could take a request target for: used only to judge answers. */
export function normalizePath(target: string): string {
  let p = target;
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(p);
  if (abs !== null) p = p.slice(abs[0].length);
  else if (p.startsWith('//')) p = p.replace(/^\/\/[^/]*/, '');
  p = p.split(/[?#]/)[0] ?? '';
  for (let i = 0; i < 3; i++) {
    p = p.replace(/%([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  }
  p = p
    .replace(/\\/g, '/')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this strips
    .replace(/[\u0000-\u001f\u007f-\uffff]/g, '')
    .replace(/;[^/]*/g, '');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`.toLowerCase();
}
