// Loads an OpenAPI description once, at registration: from an http(s) URL (no redirects, size-
// capped, time-bounded) or from a file under a directory the operator allowed in configuration
// (registering an upstream must not become a way to read any file on the broker host).
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MandateError } from '../../errors/index.js';

export type DescriptionSource = { readonly url: string } | { readonly path: string };

export interface DescriptionLimits {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Directories description files may be read from (none: files are refused). */
  readonly dirs: readonly string[];
}

const invalid = (message: string): MandateError => new MandateError('ERR_HTTP_API_DESCRIPTION', message);

/** The parsed description, and the URL relative server URLs resolve against. */
export async function loadDescription(source: DescriptionSource, limits: DescriptionLimits): Promise<{ doc: unknown; baseUrl?: string }> {
  if ('url' in source) return { doc: parse(await fetchText(source.url, limits)), baseUrl: source.url };
  return { doc: parse(await readText(source.path, limits)) };
}

async function fetchText(url: string, limits: DescriptionLimits): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, {
      redirect: 'manual',
      signal: AbortSignal.timeout(limits.timeoutMs),
      headers: { accept: 'application/json, application/yaml' },
    });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    throw invalid(timedOut ? `the description was not fetched within ${limits.timeoutMs} ms` : 'the description URL cannot be reached');
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw invalid(`fetching the description answered a redirect (HTTP ${res.status}); give its final URL`);
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw invalid(`fetching the description answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > limits.maxBytes) {
    await res.body?.cancel();
    throw tooLarge(limits.maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body ?? []) {
    total += chunk.byteLength;
    if (total > limits.maxBytes) throw tooLarge(limits.maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readText(path: string, limits: DescriptionLimits): Promise<string> {
  if (!isAbsolute(path)) throw invalid('a description file path must be absolute');
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new MandateError(
      'ERR_HTTP_API_FILE_NOT_ALLOWED',
      'the description file is not under upstreams.httpApi.descriptionDirs or does not exist',
    );
  }
  // Compared after resolving symlinks and `..`, on both sides.
  const allowed = await Promise.all(limits.dirs.map((d) => realpath(d).catch(() => undefined)));
  if (!allowed.some((d) => d !== undefined && real.startsWith(d.endsWith(sep) ? d : d + sep))) {
    throw new MandateError(
      'ERR_HTTP_API_FILE_NOT_ALLOWED',
      'the description file is not under upstreams.httpApi.descriptionDirs or does not exist',
    );
  }
  const file = await open(real, 'r');
  try {
    const { size } = await file.stat();
    if (size > limits.maxBytes) throw tooLarge(limits.maxBytes);
    const buf = Buffer.alloc(size);
    await file.read(buf, 0, size, 0);
    return buf.toString('utf8');
  } finally {
    await file.close();
  }
}

const tooLarge = (max: number): MandateError =>
  invalid(`the description is larger than ${max} bytes (upstreams.httpApi.maxDescriptionBytes)`);

/** JSON, else YAML (aliases bounded); the parser's message never quotes the document. */
function parse(text: string): unknown {
  const trimmed = text.trimStart();
  try {
    if (trimmed.startsWith('{')) return JSON.parse(trimmed);
    return parseYaml(text, { maxAliasCount: 100, uniqueKeys: true, prettyErrors: false });
  } catch {
    throw invalid('the description is neither valid JSON nor valid YAML');
  }
}
