// Turns an OpenAPI 3.0/3.1 description into catalog tools (one per operation) and the bindings the
// gateway needs to forward a tools/call as that operation's HTTP request. Everything about the
// request except the agent's argument values is fixed here, at registration: the server URL, the
// method, the path template and which arguments go to the path, the query, headers or the body.
import { MandateError } from '../../errors/index.js';
import { pointerTarget, type RefBudget, resolveRefs } from './refs.js';

/** Where one argument goes in the request. */
export interface HttpParam {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  /** Arrays in the query: repeated `k=a&k=b` (true, the OpenAPI default) or `k=a,b`. */
  readonly explode: boolean;
  /**
   * A query parameter's OpenAPI `style` other than `form`: arrays joined by spaces or pipes, or an
   * object as `k[prop]=v` (deepObject). Absent: form (and `simple` in paths and headers).
   */
  readonly style?: QueryStyle;
}

export type QueryStyle = 'spaceDelimited' | 'pipeDelimited' | 'deepObject';

/** Styles the gateway serializes, per location (OpenAPI 3 §4.8.12.4); anything else is refused at registration. */
const STYLES: Readonly<Record<'path' | 'query' | 'header', readonly string[]>> = {
  path: ['simple'],
  query: ['form', 'spaceDelimited', 'pipeDelimited', 'deepObject'],
  header: ['simple'],
};

/** How one tool becomes an HTTP request. */
export interface HttpOperation {
  readonly method: string;
  /** The path template as the description writes it (`/customers/{id}`), below the server URL. */
  readonly path: string;
  readonly params: readonly HttpParam[];
  /** A JSON request body, taken from the `body` argument. */
  readonly body: { readonly required: boolean; readonly contentType: string } | undefined;
  /** The tool's input schema (JSON Schema 2020-12), checked before anything is sent. */
  readonly inputSchema: Readonly<Record<string, unknown>>;
}

/** What registration stores beside the catalog (the `http_api` column of the upstream). */
export interface HttpApi {
  /** Absolute http(s) URL every request goes to: from configuration, else the description. */
  readonly serverUrl: string;
  readonly operations: Readonly<Record<string, HttpOperation>>;
}

/** A catalog tool as discovery produces it. */
export interface HttpApiTool {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema: Record<string, unknown>;
  readonly annotations: Record<string, unknown>;
}

export interface CompileOptions {
  /** Overrides the description's `servers`. */
  readonly serverUrl?: string | undefined;
  /** Where the description was fetched from (resolves a relative server URL). */
  readonly baseUrl?: string | undefined;
  readonly maxOperations: number;
}

/** Methods that become tools. TRACE is left out: it echoes the request, credentials included. */
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

/**
 * Headers an argument never sets: hop-by-hop and framing headers, Host, credentials and cookies.
 * (OpenAPI itself says header parameters named Accept, Content-Type or Authorization are ignored.)
 */
const FORBIDDEN_HEADERS = new Set([
  'accept',
  'authorization',
  'connection',
  'content-length',
  'content-type',
  'cookie',
  'expect',
  'host',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-http-method-override',
]);

export function isForbiddenHeader(name: string): boolean {
  const n = name.toLowerCase();
  return FORBIDDEN_HEADERS.has(n) || n.startsWith('sec-') || n.startsWith('proxy-');
}

const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
/** The `body` argument carries the request body, so no parameter may take that name. */
const BODY_ARG = 'body';
const MAX_TEXT = 4096;

const invalid = (message: string): MandateError => new MandateError('ERR_HTTP_API_DESCRIPTION', message);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Compiles a parsed description; throws ERR_HTTP_API_DESCRIPTION naming what cannot be used. */
export function compileDescription(doc: unknown, o: CompileOptions): { api: HttpApi; tools: HttpApiTool[] } {
  if (!isRecord(doc)) throw invalid('the description is not a JSON or YAML object');
  const version = typeof doc.openapi === 'string' ? doc.openapi : undefined;
  if (version === undefined || !/^3\.[01]\.\d+$/.test(version)) {
    throw invalid(
      `only OpenAPI 3.0 and 3.1 descriptions are supported (openapi: ${JSON.stringify(doc.openapi ?? doc.swagger ?? null)?.slice(0, 40)})`,
    );
  }
  const v30 = version.startsWith('3.0.');
  const paths = isRecord(doc.paths) ? doc.paths : {};
  // Counted before anything is resolved, so a huge description is refused cheaply.
  let count = 0;
  for (const raw of Object.values(paths)) {
    const item = pathItem(doc, raw);
    if (isRecord(item)) count += METHODS.filter((m) => isRecord(item[m])).length;
  }
  if (count > o.maxOperations) {
    throw invalid(`the description has ${count} operations, over the limit of ${o.maxOperations} (upstreams.httpApi.maxOperations)`);
  }
  const serverUrl = chooseServer(doc, o);
  const budget: RefBudget = { nodes: 200_000 + 2_000 * count, maxDepth: 64 };
  const tools: HttpApiTool[] = [];
  const operations: Record<string, HttpOperation> = {};
  const origin = new Map<string, string>();
  for (const [path, rawItem] of Object.entries(paths)) {
    if (!path.startsWith('/')) throw invalid(`path "${path.slice(0, 200)}" does not start with /`);
    // Only what becomes a request is resolved (parameters, request bodies): a recursive response
    // schema, which many APIs have, is never needed and must not refuse the description.
    const item = pathItem(doc, rawItem);
    if (!isRecord(item)) continue;
    const resolvedShared = resolveRefs(doc, item.parameters ?? [], budget);
    const shared = Array.isArray(resolvedShared) ? resolvedShared : [];
    for (const method of METHODS) {
      const raw = item[method];
      if (!isRecord(raw)) continue;
      const op: Record<string, unknown> = {
        ...raw,
        parameters: resolveRefs(doc, raw.parameters ?? [], budget),
        requestBody: resolveRefs(doc, raw.requestBody, budget),
      };
      const where = `${method.toUpperCase()} ${path}`.slice(0, 200);
      const name = toolName(op.operationId, method, path);
      const earlier = origin.get(name);
      if (earlier !== undefined)
        throw invalid(`operations ${earlier} and ${where} both become tool "${name}"; give them distinct operationIds`);
      origin.set(name, where);
      const compiled = compileOperation(method, path, shared, op, v30, where);
      operations[name] = compiled;
      const summary = typeof op.summary === 'string' ? op.summary.slice(0, 200) : undefined;
      const description = typeof op.description === 'string' ? op.description : summary;
      tools.push({
        name,
        ...(summary === undefined ? {} : { title: summary }),
        ...(description === undefined ? {} : { description: description.slice(0, MAX_TEXT) }),
        inputSchema: compiled.inputSchema as Record<string, unknown>,
        annotations: annotationsFor(method),
      });
    }
  }
  return { api: { serverUrl, operations }, tools };
}

/** A path item, following `$ref`s to other path items in this document (3.1 components.pathItems). */
function pathItem(doc: unknown, raw: unknown): unknown {
  let item = raw;
  const seen: string[] = [];
  while (isRecord(item) && typeof item.$ref === 'string') {
    if (seen.includes(item.$ref) || seen.length >= 8) throw invalid(`path item $ref "${item.$ref.slice(0, 200)}" does not end`);
    seen.push(item.$ref);
    item = pointerTarget(doc, item.$ref);
  }
  return item;
}

/**
 * MCP annotations from the HTTP method, which the catalog turns into action classes: GET, HEAD and
 * OPTIONS read; DELETE is destructive; POST, PUT and PATCH execute. An operator override wins.
 */
function annotationsFor(method: string): Record<string, unknown> {
  if (method === 'get' || method === 'head' || method === 'options')
    return { readOnlyHint: true, idempotentHint: true, openWorldHint: true };
  if (method === 'delete') return { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true };
  return { readOnlyHint: false, destructiveHint: false, idempotentHint: method === 'put', openWorldHint: true };
}

/** The operationId made safe for a tool name, else `<method>_<path>`; deterministic. */
function toolName(operationId: unknown, method: string, path: string): string {
  const raw = typeof operationId === 'string' && operationId.trim() !== '' ? operationId : `${method}_${path}`;
  const name = raw
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 64);
  if (name === '') throw invalid(`operation ${method.toUpperCase()} ${path.slice(0, 200)} has no usable name`);
  return name;
}

function chooseServer(doc: Record<string, unknown>, o: CompileOptions): string {
  let url = o.serverUrl;
  if (url === undefined) {
    const first = Array.isArray(doc.servers) ? doc.servers[0] : undefined;
    if (!isRecord(first) || typeof first.url !== 'string') throw invalid('the description names no server; set transport.serverUrl');
    // Server variables take their defaults: the URL is fixed at registration, never by an agent.
    const vars = isRecord(first.variables) ? first.variables : {};
    url = first.url.replace(/\{([^}]+)\}/g, (_, v: string) => {
      const d = isRecord(vars[v]) ? vars[v].default : undefined;
      if (typeof d !== 'string') throw invalid(`server variable {${v.slice(0, 64)}} has no default; set transport.serverUrl`);
      return d;
    });
  }
  let parsed: URL;
  try {
    parsed = o.baseUrl === undefined ? new URL(url) : new URL(url, o.baseUrl);
  } catch {
    throw invalid(`server URL "${url.slice(0, 200)}" is not an absolute URL; set transport.serverUrl`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalid('the server URL must be http or https');
  if (parsed.username !== '' || parsed.password !== '')
    throw invalid('the server URL must not carry credentials; use the upstream credential');
  if (parsed.search !== '' || parsed.hash !== '') throw invalid('the server URL must not have a query or fragment');
  return parsed.href.replace(/\/+$/, '');
}

function compileOperation(
  method: string,
  path: string,
  shared: unknown[],
  op: Record<string, unknown>,
  v30: boolean,
  where: string,
): HttpOperation {
  // Operation parameters override path-item ones with the same name and location.
  const byKey = new Map<string, Record<string, unknown>>();
  for (const p of [...shared, ...(Array.isArray(op.parameters) ? op.parameters : [])]) {
    if (!isRecord(p) || typeof p.name !== 'string' || typeof p.in !== 'string')
      throw invalid(`${where}: a parameter has no name or location`);
    byKey.set(`${p.in}\0${p.name}`, p);
  }
  const params: HttpParam[] = [];
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  const taken = new Map<string, string>();
  for (const p of byKey.values()) {
    const name = p.name as string;
    const location = p.in as string;
    if (location === 'cookie') {
      if (p.required === true) throw invalid(`${where}: required cookie parameter "${name.slice(0, 64)}" is not supported`);
      continue;
    }
    if (location !== 'path' && location !== 'query' && location !== 'header')
      throw invalid(`${where}: parameter location "${location.slice(0, 32)}" is unknown`);
    if (location === 'header') {
      if (!HEADER_TOKEN.test(name)) throw invalid(`${where}: header parameter "${name.slice(0, 64)}" is not a valid header name`);
      if (isForbiddenHeader(name)) {
        if (p.required === true)
          throw invalid(`${where}: required header parameter "${name}" is one the gateway never lets an argument set`);
        continue;
      }
    }
    if (location === 'path' && !path.includes(`{${name}}`))
      throw invalid(`${where}: path parameter "${name.slice(0, 64)}" is not in the path`);
    if (name === BODY_ARG || name.length > 128) throw invalid(`${where}: parameter name "${name.slice(0, 64)}" cannot be a tool argument`);
    // One argument per name; header names are also unique regardless of case (HTTP ignores it).
    const other = taken.get(name) ?? (location === 'header' ? taken.get(`header\0${name.toLowerCase()}`) : undefined);
    if (other !== undefined) {
      throw invalid(
        `${where}: parameter "${name.slice(0, 64)}" is named in both ${other} and ${location}; tool arguments must have distinct names`,
      );
    }
    taken.set(name, location);
    if (location === 'header') taken.set(`header\0${name.toLowerCase()}`, location);
    const schema = parameterSchema(p, v30, where);
    const description = typeof p.description === 'string' ? p.description.slice(0, MAX_TEXT) : undefined;
    properties[name] = description === undefined || 'description' in schema ? schema : { ...schema, description };
    if (location === 'path' || p.required === true) required.push(name);
    const style = p.style === undefined ? (location === 'query' ? 'form' : 'simple') : String(p.style);
    if (!STYLES[location].includes(style)) {
      throw invalid(
        `${where}: ${location} parameter "${name.slice(0, 64)}" has style "${style.slice(0, 32)}", which the gateway does not serialize (${STYLES[location].join(', ')})`,
      );
    }
    const explode = typeof p.explode === 'boolean' ? p.explode : style === 'form';
    if (style === 'deepObject' && !explode) throw invalid(`${where}: deepObject parameter "${name.slice(0, 64)}" must explode`);
    params.push(
      style === 'spaceDelimited' || style === 'pipeDelimited' || style === 'deepObject'
        ? { name, in: location, explode, style }
        : { name, in: location, explode },
    );
  }
  for (const m of path.matchAll(/\{([^}]*)\}/g)) {
    if (!params.some((p) => p.in === 'path' && p.name === m[1]))
      throw invalid(`${where}: path template {${(m[1] ?? '').slice(0, 64)}} has no path parameter`);
  }
  let body: HttpOperation['body'];
  const rb = op.requestBody;
  if (isRecord(rb)) {
    const content = isRecord(rb.content) ? rb.content : {};
    const contentType = Object.keys(content).find((t) => /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i.test(t));
    if (contentType === undefined) {
      if (rb.required === true) throw invalid(`${where}: only JSON request bodies are supported`);
    } else {
      const media = content[contentType];
      const schema = isRecord(media) && isRecord(media.schema) ? toJsonSchema(media.schema, v30) : {};
      properties[BODY_ARG] = schema;
      if (rb.required === true) required.push(BODY_ARG);
      body = { required: rb.required === true, contentType: contentType.split(';')[0]?.trim() ?? 'application/json' };
    }
  }
  const inputSchema = {
    type: 'object',
    properties,
    ...(required.length === 0 ? {} : { required }),
    additionalProperties: false,
  };
  return { method: method.toUpperCase(), path, params, body, inputSchema };
}

function parameterSchema(p: Record<string, unknown>, v30: boolean, where: string): Record<string, unknown> {
  if (isRecord(p.schema)) return toJsonSchema(p.schema, v30);
  if (isRecord(p.content)) {
    const media = Object.values(p.content)[0];
    if (isRecord(media) && isRecord(media.schema)) return toJsonSchema(media.schema, v30);
  }
  if (p.schema === undefined && p.content === undefined) return {};
  throw invalid(`${where}: parameter "${String(p.name).slice(0, 64)}" has a schema that is not an object`);
}

// OpenAPI-only keywords, and identifiers that would make a validator look for other documents
// (every $ref is already resolved, so none is needed).
const DROPPED = new Set(['discriminator', 'xml', 'externalDocs', '$schema', '$id', '$anchor', '$dynamicAnchor', '$comment']);
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
const VALUE_KEYWORDS = new Set(['enum', 'const', 'default', 'examples', 'required', 'description', 'title', 'dependentRequired']);

/**
 * An OpenAPI schema as JSON Schema 2020-12 (what MCP tool input schemas are). 3.1 schemas already
 * are; 3.0 ones get `nullable` as a `null` type, boolean exclusive bounds as numbers, and
 * `example` as `examples`. OpenAPI-only keywords (discriminator, xml, externalDocs) and schema
 * identifiers ($schema, $id, anchors) are dropped.
 */
export function toJsonSchema(schema: unknown, v30: boolean): Record<string, unknown> {
  const walk = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(walk);
    if (!isRecord(s)) return s;
    const out: [string, unknown][] = [];
    for (const [k, v] of Object.entries(s)) {
      if (DROPPED.has(k)) continue;
      if (v30 && (k === 'nullable' || k === 'example' || k === 'exclusiveMinimum' || k === 'exclusiveMaximum')) continue;
      if (SCHEMA_MAPS.has(k) && isRecord(v)) {
        // Keys of these are names (a property may well be called `example`), values are schemas.
        out.push([k, Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, walk(sub)]))]);
      } else {
        // Keyword values that are not schemas are copied as they are.
        out.push([k, VALUE_KEYWORDS.has(k) ? v : walk(v)]);
      }
    }
    const o = Object.fromEntries(out);
    if (v30) {
      if (s.nullable === true) {
        if (typeof o.type === 'string') o.type = [o.type, 'null'];
        if (Array.isArray(o.enum) && !o.enum.includes(null)) o.enum = [...o.enum, null];
      }
      if (s.example !== undefined && o.examples === undefined) o.examples = [s.example];
      if (s.exclusiveMinimum === true && typeof s.minimum === 'number') {
        o.exclusiveMinimum = s.minimum;
        delete o.minimum;
      }
      if (s.exclusiveMaximum === true && typeof s.maximum === 'number') {
        o.exclusiveMaximum = s.maximum;
        delete o.maximum;
      }
    }
    return o;
  };
  return walk(schema) as Record<string, unknown>;
}
