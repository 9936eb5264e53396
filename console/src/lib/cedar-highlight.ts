// Syntax highlighting for Cedar policy source on the Policies page.
//
// Hand-written: no small, maintained browser highlighter knows Cedar (Prism and highlight.js have
// no Cedar grammar; the TextMate grammar would pull a full TextMate engine into the console). The
// tokenizer only colours: it never changes the text, and the page renders every token as a React
// text node, so a policy containing markup (`<script>`) shows as text, never as HTML.

export type CedarTokenType = 'comment' | 'string' | 'annotation' | 'effect' | 'keyword' | 'entity' | 'number' | 'operator' | 'text';

export interface CedarToken {
  readonly type: CedarTokenType;
  readonly text: string;
}

const EFFECTS = new Set(['permit', 'forbid']);
// Cedar's reserved words and scope variables (Cedar language reference, "Policy syntax").
const KEYWORDS = new Set([
  'when',
  'unless',
  'principal',
  'action',
  'resource',
  'context',
  'in',
  'has',
  'like',
  'is',
  'if',
  'then',
  'else',
  'true',
  'false',
]);

// One alternative per token kind, tried in order at each position (sticky): line comments,
// double-quoted strings with backslash escapes (an unterminated one runs to the end of the line),
// annotations, entity type paths (`Ns::Type` before `::"id"`), identifiers, integers, operators.
const TOKEN =
  /(\/\/[^\n]*)|("(?:[^"\\\n]|\\.)*"?)|(@[A-Za-z_][A-Za-z0-9_]*)|((?:[A-Za-z_][A-Za-z0-9_]*::)+(?:[A-Za-z_][A-Za-z0-9_]*)?)|([A-Za-z_][A-Za-z0-9_]*)|(\d+)|(==|!=|<=|>=|&&|\|\||[!<>+\-*])/y;

/** Splits Cedar source into tokens whose texts, joined, are exactly `source`. */
export function tokenizeCedar(source: string): CedarToken[] {
  const out: CedarToken[] = [];
  let plain = '';
  const flush = () => {
    if (plain !== '') out.push({ type: 'text', text: plain });
    plain = '';
  };
  let i = 0;
  while (i < source.length) {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(source);
    if (m === null) {
      plain += source[i];
      i++;
      continue;
    }
    const [text, comment, string, annotation, entity, ident, number] = m;
    let type: CedarTokenType;
    if (comment !== undefined) type = 'comment';
    else if (string !== undefined) type = 'string';
    else if (annotation !== undefined) type = 'annotation';
    else if (entity !== undefined) type = 'entity';
    else if (ident !== undefined) type = EFFECTS.has(ident) ? 'effect' : KEYWORDS.has(ident) ? 'keyword' : 'text';
    else if (number !== undefined) type = 'number';
    else type = 'operator';
    if (type === 'text') plain += text;
    else {
      flush();
      out.push({ type, text });
    }
    i += text.length;
  }
  flush();
  return out;
}
