// node:http in front of a web-standard `fetch` handler (the MCP SDK 2.x server's
// `createMcpHandler(...).fetch`): what the benchmarks' SDK upstreams listen with.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function serveFetch(handler: { fetch(request: Request): Promise<Response> }): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
        const response = await handler.fetch(
          new Request(`http://${req.headers.host}${req.url}`, {
            method: req.method ?? 'POST',
            headers,
            ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}),
          }),
        );
        const out: Record<string, string> = {};
        response.headers.forEach((v, k) => {
          out[k] = v;
        });
        res.writeHead(response.status, out).end(Buffer.from(await response.arrayBuffer()));
      })().catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp` };
}
