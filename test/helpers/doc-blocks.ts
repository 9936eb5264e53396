// Fenced code blocks of a Markdown page, with their info string, so docs tests can run the
// examples they mark. The info string is the language and then words: ```sh run, ```json valid,
// ```json file=examples/agent.json (see test/docs.test.ts for what each marker asks).
export interface DocBlock {
  /** The language, e.g. `sh`, `json`, `ts`. */
  readonly lang: string;
  /** Words after the language (`run`, `valid`, …). */
  readonly words: ReadonlySet<string>;
  /** `key=value` words (`file=examples/x.json`). */
  readonly attrs: Readonly<Record<string, string>>;
  /** The content, without the fence's indentation. */
  readonly body: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

export function docBlocks(markdown: string): DocBlock[] {
  const out: DocBlock[] = [];
  for (const m of markdown.matchAll(/^( *)```(\w*)([^\n`]*)\n([\s\S]*?)^\1```[ \t]*$/gm)) {
    const [, indent = '', lang = '', rest = '', raw = ''] = m;
    const words = rest.trim().split(/\s+/).filter(Boolean);
    const attrs: Record<string, string> = {};
    for (const w of words) {
      const eq = w.indexOf('=');
      if (eq > 0) attrs[w.slice(0, eq)] = w.slice(eq + 1);
    }
    const body = raw
      .split('\n')
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .join('\n');
    out.push({ lang, words: new Set(words), attrs, body, line: markdown.slice(0, m.index).split('\n').length });
  }
  return out;
}
