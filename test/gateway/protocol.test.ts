// The MCP 2026-07-28 request checks as pure functions: header values (Base64 sentinel),
// `x-mcp-header` parameters, and the `_meta`/header/body agreement, adversarially.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MandateError } from '../../src/errors/index.js';
import { checkModernRequest, checkParamHeaders, decodeHeaderValue, mirroredParams } from '../../src/gateway/protocol.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof MandateError) return err.code;
    throw err;
  }
  return 'accepted';
};

const headers = (h: Record<string, string>) => (name: string) => h[name];

describe('MCP 2026-07-28 request checks', () => {
  it('decodes the Base64 sentinel as UTF-8 and refuses malformed encodings', () => {
    assert.equal(decodeHeaderValue('us-west1'), 'us-west1');
    assert.equal(decodeHeaderValue('=?base64?SGVsbG8sIOS4lueVjA==?='), 'Hello, 世界');
    assert.equal(decodeHeaderValue('=?base64?IHBhZGRlZCA=?='), ' padded ');
    assert.equal(decodeHeaderValue('=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?='), '=?base64?literal?=');
    assert.equal(decodeHeaderValue('=?base64?!!!?='), undefined);
    assert.equal(decodeHeaderValue('=?base64?abc?='), undefined, 'not a multiple of 4');
    assert.equal(decodeHeaderValue(`=?base64?${Buffer.from([0xff, 0xfe]).toString('base64')}?=`), undefined, 'not UTF-8');
    // The markers are case-sensitive: anything else is a plain value.
    assert.equal(decodeHeaderValue('=?BASE64?SGk=?='), '=?BASE64?SGk=?=');
  });

  it('finds x-mcp-header only through chains of properties, never through items, $ref or composition', () => {
    const schema = {
      type: 'object',
      properties: {
        region: { type: 'string', 'x-mcp-header': 'Region' },
        nested: { type: 'object', properties: { tenant: { type: 'string', 'x-mcp-header': 'Tenant' } } },
        list: { type: 'array', items: { type: 'object', properties: { x: { type: 'string', 'x-mcp-header': 'X' } } } },
        either: { oneOf: [{ properties: { y: { 'x-mcp-header': 'Y' } } }] },
        bad: { type: 'string', 'x-mcp-header': 'Bad Header\r\n' },
      },
    };
    assert.deepEqual(
      mirroredParams(schema).sort((a, b) => a.header.localeCompare(b.header)),
      [
        { header: 'Region', path: ['region'] },
        { header: 'Tenant', path: ['nested', 'tenant'] },
      ],
    );
  });

  it('requires a mirrored parameter header when the argument is present, and compares it after decoding', () => {
    const mirrored = [
      { header: 'Region', path: ['region'] },
      { header: 'Count', path: ['count'] },
      { header: 'Flag', path: ['flag'] },
    ];
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { region: 'eu' }, headers({ 'mcp-param-region': 'eu' }))),
      'accepted',
    );
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { region: 'eu' }, headers({}))),
      'RPC_HEADER_MISMATCH',
    );
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { region: 'eu' }, headers({ 'mcp-param-region': 'us' }))),
      'RPC_HEADER_MISMATCH',
    );
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { region: 'é' }, headers({ 'mcp-param-region': '=?base64?w6k=?=' }))),
      'accepted',
    );
    // Integers compare numerically; booleans as lowercase words; null or absent needs no header.
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { count: 42 }, headers({ 'mcp-param-count': '42.0' }))),
      'accepted',
    );
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { count: 42 }, headers({ 'mcp-param-count': '' }))),
      'RPC_HEADER_MISMATCH',
    );
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { flag: true }, headers({ 'mcp-param-flag': 'TRUE' }))),
      'RPC_HEADER_MISMATCH',
    );
    assert.equal(
      codeOf(() => checkParamHeaders(mirrored, { region: null }, headers({}))),
      'accepted',
    );
  });

  it('checks _meta before the headers, then version, method and name, in that order', () => {
    const message = (meta: Record<string, unknown>) => ({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'a.b', arguments: {}, _meta: meta },
    });
    const good = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
    const h = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'a.b' };
    assert.equal(
      codeOf(() => checkModernRequest(message(good), headers(h))),
      'accepted',
    );
    assert.equal(
      codeOf(() => checkModernRequest(message({ ...good, 'io.modelcontextprotocol/protocolVersion': 5 }), headers(h))),
      'RPC_META_INVALID',
    );
    assert.equal(
      codeOf(() => checkModernRequest(message({ ...good, 'io.modelcontextprotocol/clientCapabilities': null }), headers(h))),
      'RPC_META_INVALID',
    );
    assert.equal(
      codeOf(() => checkModernRequest(message(good), headers({ ...h, 'mcp-name': 'a.c' }))),
      'RPC_HEADER_MISMATCH',
    );
    assert.equal(
      codeOf(() => checkModernRequest(message(good), headers({ ...h, 'mcp-method': 'tools/list' }))),
      'RPC_HEADER_MISMATCH',
    );
    const old = { ...good, 'io.modelcontextprotocol/protocolVersion': '2025-11-25' };
    assert.equal(
      codeOf(() => checkModernRequest(message(old), headers({ ...h, 'mcp-protocol-version': '2025-11-25' }))),
      'RPC_UNSUPPORTED_PROTOCOL_VERSION',
    );
    // Type confusion: a header naming the body's value is not enough when the body holds another type.
    const numeric = { ...message(good), params: { name: 5, _meta: good } };
    assert.equal(
      codeOf(() => checkModernRequest(numeric, headers({ ...h, 'mcp-name': '5' }))),
      'RPC_HEADER_MISMATCH',
    );
    const tasks = checkModernRequest(
      message({ ...good, 'io.modelcontextprotocol/clientCapabilities': { extensions: { 'io.modelcontextprotocol/tasks': {} } } }),
      headers(h),
    );
    assert.equal(tasks.tasks, true);
  });
});
