// Renders docs/configuration.md from the schema, so the reference cannot drift from validation.
import { z } from 'zod';
import { configSchema, secretEnv } from './schema.js';

interface JsonSchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  minimum?: number;
  maximum?: number;
  format?: string;
  pattern?: string;
}

function typeOf(node: JsonSchemaNode): string {
  if (node.enum !== undefined) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (node.anyOf !== undefined) return node.anyOf.map(typeOf).join(' \\| ');
  if (node.type === 'array') return `${node.items === undefined ? 'unknown' : typeOf(node.items)}[]`;
  const base = [node.type ?? 'any'].flat().join(' \\| ');
  if (node.format !== undefined) return `${base} (${node.format})`;
  const max = node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER ? node.maximum : undefined;
  if (node.minimum !== undefined || max !== undefined) return `${base} (${node.minimum ?? ''}..${max ?? ''})`;
  return base;
}

function rows(node: JsonSchemaNode, prefix: string, out: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (child.type === 'object' && child.properties !== undefined) {
      out.push(`| \`${path}\` | object | | ${child.description ?? ''} |`);
      rows(child, path, out);
      continue;
    }
    const def = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    out.push(`| \`${path}\` | ${typeOf(child)} | ${def} | ${(child.description ?? '').replace(/\|/g, '\\|')} |`);
  }
}

export function renderConfigReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const out = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`. Do not edit by hand; a test fails when it is stale. -->',
    '',
    'Mandate reads one YAML or JSON file (`mandate serve --config FILE`), validates it once at start and refuses',
    'unknown keys (the error names the key path). Check a file without starting: `mandate config check FILE`.',
    '',
    '| key | type | default | meaning |',
    '| --- | --- | --- | --- |',
  ];
  rows(schema, '', out);
  out.push(
    '',
    '## Secrets from the environment',
    '',
    'Only secrets are read from the environment; everything else comes from the file.',
    '',
  );
  out.push('| variable | meaning |', '| --- | --- |');
  for (const [name, meaning] of Object.entries(secretEnv)) out.push(`| \`${name}\` | ${meaning} |`);
  return `${out.join('\n')}\n`;
}
