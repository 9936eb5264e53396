// The demo helpdesk, driven over real stdio by the official SDK client.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { HELPDESK_KEY_ENV, HELPDESK_SERVER_PATH } from '../../src/demo/helpdesk-server.js';

async function connect(env: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'helpdesk-test', version: '1' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: ['--import', 'tsx', HELPDESK_SERVER_PATH], env, stderr: 'ignore' }),
  );
  return client;
}

const text = (r: unknown): string => ((r as { content: { text: string }[] }).content[0]?.text ?? '') as string;

describe('demo helpdesk MCP server (stdio)', () => {
  let client: Client;
  before(async () => {
    client = await connect({ [HELPDESK_KEY_ENV]: 'test-key', PATH: process.env.PATH ?? '' });
  });
  after(async () => {
    await client.close();
  });

  it('lists five tools with honest annotations', async () => {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t.annotations]));
    assert.deepEqual([...byName.keys()].sort(), ['delete_customer', 'execute_refund', 'get_customer', 'propose_refund', 'search_tickets']);
    assert.equal(byName.get('search_tickets')?.readOnlyHint, true);
    assert.equal(byName.get('get_customer')?.readOnlyHint, true);
    assert.equal(byName.get('delete_customer')?.destructiveHint, true);
    assert.equal(byName.get('execute_refund')?.readOnlyHint, false);
    assert.equal(byName.get('execute_refund')?.idempotentHint, false);
  });

  it('searches, proposes and executes a refund once', async () => {
    const found = await client.callTool({ name: 'search_tickets', arguments: { query: 'charged twice' } });
    assert.match(text(found), /T-4821/);
    const proposed = await client.callTool({
      name: 'propose_refund',
      arguments: { customerId: 'C-1009', amountCents: 24900, reason: 'duplicate charge' },
    });
    const refundId = (proposed.structuredContent as { refund: { id: string } }).refund.id;
    const executed = await client.callTool({ name: 'execute_refund', arguments: { customerId: 'C-1009', amountCents: 24900, refundId } });
    assert.equal(executed.isError, undefined);
    const again = await client.callTool({ name: 'execute_refund', arguments: { customerId: 'C-1009', amountCents: 24900, refundId } });
    assert.equal(again.isError, true);
    assert.match(text(again), /already executed/);
  });

  it('deletes a customer, after which it cannot be read', async () => {
    await client.callTool({ name: 'delete_customer', arguments: { customerId: 'C-1011' } });
    const read = await client.callTool({ name: 'get_customer', arguments: { customerId: 'C-1011' } });
    assert.equal(read.isError, true);
  });

  it('refuses every tool without its API key', async () => {
    const anonymous = await connect({ PATH: process.env.PATH ?? '' });
    try {
      const r = await anonymous.callTool({ name: 'get_customer', arguments: { customerId: 'C-1009' } });
      assert.equal(r.isError, true);
      assert.match(text(r), /not authenticated/);
    } finally {
      await anonymous.close();
    }
  });
});
