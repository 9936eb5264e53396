// A long agent session must not keep what each of its requests left behind: the MCP SDK (v1.x,
// JSON response mode) never released a request's stream entry, so a session held every HTTP
// request it served (~22 KB per tools/call; the soak bench's heap grew without bound).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type GatewayHarness, startGateway, text } from './harness.js';

const CALLS = 120;

describe('MCP session memory', () => {
  let h: GatewayHarness;
  before(async () => {
    h = await startGateway();
  });
  after(async () => {
    await h?.close();
  });

  it('answered requests are released: held streams stay bounded over many calls in one session', async () => {
    const { token } = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
    const client = await h.connect(token);
    const sessions = h.broker.gateway.sessions;
    for (let i = 0; i < CALLS; i++) {
      const r = (await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } })) as CallToolResult;
      assert.notEqual(r.isError, true, text(r));
      // Refused calls and tools/list are answered through the same transport path.
      if (i % 10 === 0) await assert.rejects(client.callTool({ name: 'helpdesk.delete_customer', arguments: { id: 'c1' } }));
      if (i % 10 === 5) assert.equal((await client.listTools()).tools.length, 1);
    }
    await new Promise((r) => setTimeout(r, 50));
    const held = sessions.heldStreams;
    // Before the fix this was one per request ever served (>= CALLS + 24); now nothing answered is held.
    assert.equal(held, 0, `${held} answered requests still held after ${CALLS} calls`);
  });

  it('requests in flight at the same time in one session are all answered (release drops only answered ones)', async () => {
    const { token } = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
    const client = await h.connect(token);
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(
        Array.from(
          { length: 16 },
          (_, i) =>
            client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: `charged twice ${round}-${i}` } }, undefined, {
              timeout: 5000,
            }) as Promise<CallToolResult>,
        ),
      );
      assert.equal(results.filter((r) => r.isError !== true).length, 16);
    }
    // Each request releases its own entry after its answer is written, which may trail the answer's arrival.
    await new Promise((r) => setTimeout(r, 50));
    const held = h.broker.gateway.sessions.heldStreams;
    assert.equal(held, 0, `${held} answered requests still held`);
  });
});
