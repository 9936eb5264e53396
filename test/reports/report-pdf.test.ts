// A report's HTML prints to PDF in Chromium (what an auditor does with "Print → Save as PDF"): a
// valid PDF, A4 landscape on every page (the report's @page rule), more than one page when the rows
// do not fit on one, and the report's title as the document title. Skipped locally without
// Chromium; under CI a missing browser fails the run (CI never skips).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { buildConfig } from '../../src/config/load.js';
import { runReport } from '../../src/reports/index.js';
import { render } from '../../src/reports/render.js';
import type { Store } from '../../src/store/types.js';
import { sqliteFactory } from '../helpers/stores.js';

const CHROMIUM = process.env.MANDATE_CHROMIUM ?? '/usr/bin/chromium';
if (process.env.CI && !existsSync(CHROMIUM)) throw new Error(`Chromium is required under CI but missing at ${CHROMIUM}`);

const NOW = Date.parse('2026-06-01T12:00:00Z');
/** A4 landscape in PDF points (297 mm × 210 mm). */
const A4_LANDSCAPE = [841.89, 595.28];

interface PdfFacts {
  pages: number;
  mediaBoxes: number[][];
  title: string | undefined;
}

/** What the test reads from a PDF's uncompressed object syntax (page objects, media boxes, Info title). */
function pdfFacts(pdf: Buffer): PdfFacts {
  const text = pdf.toString('latin1');
  const pages = (text.match(/\/Type\s*\/Page(?![s\w])/g) ?? []).length;
  const mediaBoxes = [...text.matchAll(/\/MediaBox\s*\[\s*([-\d.\s]+)\]/g)].map((m) => (m[1] as string).trim().split(/\s+/).map(Number));
  let title: string | undefined;
  const hex = /\/Title\s*<([0-9A-Fa-f\s]+)>/.exec(text);
  const literal = /\/Title\s*\(((?:\\.|[^\\)])*)\)/.exec(text);
  if (hex !== null) {
    const bytes = Buffer.from((hex[1] as string).replace(/\s/g, ''), 'hex');
    // UTF-16BE with a byte-order mark (PDF text strings), else PDFDocEncoding (latin1 for ASCII).
    title = bytes[0] === 0xfe && bytes[1] === 0xff ? Buffer.from(bytes.subarray(2)).swap16().toString('utf16le') : bytes.toString('latin1');
  } else if (literal !== null) {
    title = (literal[1] as string).replace(/\\(.)/g, '$1');
  }
  return { pages, mediaBoxes, title };
}

describe('report HTML printed to PDF by Chromium', { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, () => {
  const factory = sqliteFactory();
  let store: Store;
  let browser: Browser;

  before(async () => {
    store = await factory.open();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  });
  after(async () => {
    await browser?.close();
    await factory.cleanup();
  });

  async function printed(agents: number): Promise<{ pdf: Buffer; title: string }> {
    await store.run('DELETE FROM principals');
    for (let i = 0; i < agents; i++) {
      await store.run(
        'INSERT INTO principals (id, actor_type, display_name, owner, environment, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [`agent-${i}`, 'agent', `Agent <${i}> & "co"`, 'alice', 'production', 'active', NOW - 10 * 86_400_000, NOW],
      );
    }
    const ctx = {
      db: store,
      config: buildConfig({ mode: 'production', log: { level: 'silent' }, dataDir: '/tmp/unused' }, { env: {} }),
      now: NOW,
      catalog: [],
      policySet: undefined,
    };
    const report = await runReport('inventory', ctx, {});
    assert.equal(report.rows.length, agents);
    const page = await browser.newPage();
    try {
      await page.setContent(render(report, 'html'), { waitUntil: 'load' });
      // preferCSSPageSize: the report's own @page rule decides the paper, as in a browser's print dialog.
      return { pdf: await page.pdf({ preferCSSPageSize: true, printBackground: true }), title: report.title };
    } finally {
      await page.close();
    }
  }

  it('a long report is a valid multi-page A4 landscape PDF titled like the report', async () => {
    const { pdf, title } = await printed(120);
    assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
    assert.match(pdf.subarray(-32).toString('latin1'), /%%EOF\s*$/);
    const facts = pdfFacts(pdf);
    assert.ok(facts.pages > 1, `120 rows on ${facts.pages} page(s)`);
    assert.ok(facts.mediaBoxes.length >= 1);
    for (const box of facts.mediaBoxes) {
      const [x0, y0, x1, y1] = box as [number, number, number, number];
      assert.ok(Math.abs(x1 - x0 - (A4_LANDSCAPE[0] as number)) < 1.5, `width ${x1 - x0}`);
      assert.ok(Math.abs(y1 - y0 - (A4_LANDSCAPE[1] as number)) < 1.5, `height ${y1 - y0}`);
    }
    assert.equal(facts.title, title);
  });

  it('a short report fits on one page (the page count follows the rows)', async () => {
    const { pdf } = await printed(3);
    const one = pdfFacts(pdf).pages;
    const long = pdfFacts((await printed(240)).pdf).pages;
    assert.equal(one, 1);
    assert.ok(long > pdfFacts((await printed(120)).pdf).pages, 'twice the rows, more pages');
  });
});
