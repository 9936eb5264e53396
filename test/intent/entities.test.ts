// Entity extraction for intent binding (src/intent/entities.ts): each kind, normalization, and the
// hostile inputs: look-alike characters, wrong IBAN checksums, huge and pathological texts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Entity,
  extractEntities,
  ibanChecksumOk,
  MAX_ENTITIES,
  normalizeDate,
  normalizeEmail,
  normalizeIban,
  normalizeUrl,
} from '../../src/intent/entities.js';

const of = (text: string, kind: Entity['kind']) =>
  extractEntities(text)
    .filter((e) => e.kind === kind)
    .map((e) => e.value);

describe('extractEntities: the kinds a request names', () => {
  it('e-mail addresses, lower-cased', () => {
    assert.deepEqual(of('Mail Bob@Example.COM and carol.x+tag@sub.example.org.', 'email'), [
      'bob@example.com',
      'carol.x+tag@sub.example.org',
    ]);
  });

  it('IBANs with and without spaces, checksum verified, compact and upper-case', () => {
    assert.deepEqual(of('Pay DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432 now', 'iban'), [
      'DE89370400440532013000',
      'GB82WEST12345698765432',
    ]);
  });

  it('an IBAN with a wrong checksum is no IBAN (and its digits are no account either)', () => {
    assert.deepEqual(of('Pay DE88 3704 0044 0532 0130 00', 'iban'), []);
    assert.equal(normalizeIban('DE88370400440532013000'), undefined);
    assert.equal(ibanChecksumOk('DE89370400440532013000'), true);
    assert.equal(ibanChecksumOk('DE89370400440532013001'), false);
  });

  it('account numbers: long digit runs and grouped digits, not dates', () => {
    assert.deepEqual(of('account 1234-5678-9012, ref 987654321, on 2024-05-19', 'account'), ['123456789012', '987654321']);
  });

  it('URLs (scheme and host lower-cased, no fragment, trailing punctuation dropped) and their hosts as domains', () => {
    assert.deepEqual(of('See https://WWW.Example.org/a?b=1#top, then www.news.example.com/x.', 'url'), [
      'https://www.example.org/a?b=1',
      'https://www.news.example.com/x',
    ]);
    assert.deepEqual(of('See https://WWW.Example.org/a?b=1#top and acme.com', 'domain'), ['www.example.org', 'acme.com']);
  });

  it('a bare domain is not the domain of an address, nor a file name', () => {
    assert.deepEqual(of('write to bob@example.com about report.pdf', 'domain'), []);
  });

  it('paths and file names', () => {
    assert.deepEqual(of('Move /home/bob//docs/./x.txt to ~/archive and share notes.md', 'path'), ['/home/bob/docs/x.txt', '~/archive']);
    assert.deepEqual(of('Move /home/bob/docs/x.txt and share Notes.md', 'file'), ['x.txt', 'notes.md']);
  });

  it('amounts with currency, before or after the number', () => {
    const amounts = extractEntities('Send $1,234.50, then 20 EUR and €7 and 3 pounds').filter((e) => e.kind === 'amount');
    assert.deepEqual(
      amounts.map((a) => [a.value, a.currency]),
      [
        ['1234.5', 'USD'],
        ['20', 'EUR'],
        ['7', 'EUR'],
        ['3', 'GBP'],
      ],
    );
  });

  it('dates: ISO, month first and day first; without a year as --MM-DD', () => {
    assert.deepEqual(of('on 2024-05-19, May 3rd, 4 June 2025 and Dec. 24, 2023', 'date').sort(), [
      '--05-03',
      '2023-12-24',
      '2024-05-19',
      '2025-06-04',
    ]);
    assert.equal(normalizeDate('2024-13-01'), undefined);
  });

  it('quoted strings of every common quote style', () => {
    assert.deepEqual(of(`Subject "Quarterly update", body “Hi all”, tag 'urgent' and \`code\``, 'quote'), [
      'Quarterly update',
      'Hi all',
      'urgent',
      'code',
    ]);
  });

  it('channel and user handles, lower-cased without the sigil; an e-mail is not a handle', () => {
    assert.deepEqual(of('Post in #General and tell @Alice, not bob@example.com', 'channel'), ['general']);
    assert.deepEqual(of('Post in #General and tell @Alice, not bob@example.com', 'user'), ['alice']);
  });
});

describe('extractEntities: hostile input', () => {
  it('a look-alike address in another script is a different value (NFKC folds width, not scripts)', () => {
    const cyrillic = 'bob@exаmple.com'; // U+0430 CYRILLIC SMALL LETTER A
    const [latin] = of('bob@example.com', 'email');
    const [lookalike] = of(cyrillic, 'email');
    assert.ok(lookalike !== undefined);
    assert.notEqual(lookalike, latin);
    assert.match(lookalike as string, /xn--/, 'the host is compared in punycode');
    // Fullwidth forms are what they look like: ＠ is @.
    assert.deepEqual(of('bob＠example.com', 'email'), ['bob@example.com']);
  });

  it('a look-alike URL host is a different domain', () => {
    const real = normalizeUrl('https://paypal.com/x');
    const fake = normalizeUrl('https://pаypal.com/x');
    assert.ok(real !== undefined && fake !== undefined);
    assert.notEqual(real.host, fake.host);
  });

  it('zero-width characters do not make two addresses equal', () => {
    assert.equal(normalizeEmail('bob\u200b@example.com'), undefined);
  });

  it('huge inputs are capped: bounded time and a bounded number of entities', () => {
    const huge = `${'a@b.co x '.repeat(200_000)}`;
    const started = performance.now();
    const out = extractEntities(huge);
    const ms = performance.now() - started;
    assert.ok(out.length <= MAX_ENTITIES);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('pathological texts for the patterns finish quickly (no catastrophic backtracking)', () => {
    for (const text of [
      '@'.repeat(60_000),
      `${'a'.repeat(60_000)}@`,
      `http://${'a.'.repeat(30_000)}`,
      `/${'a/'.repeat(30_000)}`,
      '1,'.repeat(30_000),
      `"${'x'.repeat(60_000)}`,
      `${'ab1 '.repeat(15_000)}`,
    ]) {
      const started = performance.now();
      extractEntities(text);
      const ms = performance.now() - started;
      assert.ok(ms < 1500, `${text.slice(0, 10)}… took ${ms} ms`);
    }
  });

  it('text beyond the scan limit names nothing', () => {
    const text = `${' '.repeat(70 * 1024)}eve@evil.test`;
    assert.deepEqual(of(text, 'email'), []);
  });

  it('is deterministic', () => {
    const text = 'Pay €120.50 to DE89 3704 0044 0532 0130 00 by May 3 and mail Bob@Example.com the file report.pdf';
    assert.deepEqual(extractEntities(text), extractEntities(text));
  });
});
