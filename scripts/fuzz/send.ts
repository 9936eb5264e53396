// Sends one fuzz input. Well-formed enough requests go over a keep-alive agent (node:http); requests
// node:http refuses to write (bad method, bytes in the target or headers) and byte-mutated wire
// forms go over their own TCP connection, answered or not.
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import type { FuzzRequest, FuzzResponse } from './types.js';

/** `timeout` is only set for well-formed requests: a malformed one may leave the server rightly waiting for more bytes. */
export type SendResult = { ok: true; res: FuzzResponse } | { ok: false; error: string; timeout: boolean };

const MAX_KEEP = 64 * 1024;
/** A raw request may legitimately leave the server waiting (a Content-Length larger than the body). */
const RAW_TIMEOUT_MS = 3000;

export class Sender {
  readonly #agent: Agent;
  readonly #host: string;
  readonly #port: number;
  readonly #timeoutMs: number;

  constructor(base: string, sockets: number, timeoutMs: number) {
    const url = new URL(base);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#timeoutMs = timeoutMs;
    this.#agent = new Agent({ keepAlive: true, maxSockets: sockets });
  }

  close(): void {
    this.#agent.destroy();
  }

  send(req: FuzzRequest): Promise<SendResult> {
    if (req.raw !== undefined) return this.#raw(req.raw);
    // node:http turns a CONNECT answer into a tunnel: send it as bytes and read the answer.
    if (req.method.toUpperCase() === 'CONNECT') return this.#raw(wireForm(req, `${this.#host}:${this.#port}`));
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: SendResult) => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };
      // Node sets Content-Length itself; a lying one would desynchronize the keep-alive connection.
      const headers = req.headers.filter(([n]) => !/^(content-length|transfer-encoding|connection)$/i.test(n));
      let out: ReturnType<typeof request>;
      try {
        out = request({
          host: this.#host,
          port: this.#port,
          method: req.method,
          path: req.path,
          agent: this.#agent,
          // Raw header pairs keep repeats and order; node adds no Host header to them.
          headers: [
            ...(headers.some(([n]) => n.toLowerCase() === 'host') ? [] : ['host', `${this.#host}:${this.#port}`]),
            ...headers.flat(),
            ...(req.body === undefined ? [] : ['content-length', String(req.body.length)]),
          ],
          timeout: this.#timeoutMs,
        });
      } catch {
        // node:http will not write it: send the same request as raw bytes.
        void this.#raw(wireForm(req, `${this.#host}:${this.#port}`)).then(done);
        return;
      }
      // A hard deadline too: the socket timeout alone misses answers that trickle.
      const deadline = setTimeout(() => {
        out.destroy();
        done({ ok: false, error: 'timeout', timeout: true });
      }, this.#timeoutMs + 5000);
      out.on('close', () => {
        clearTimeout(deadline);
        done({ ok: false, error: 'closed without answer', timeout: false });
      });
      out.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        if (String(res.headers['content-type']).startsWith('text/event-stream')) {
          // An SSE stream (GET /mcp) stays open by design: judge what arrives in the first moment.
          setTimeout(() => {
            done({
              ok: true,
              res: { status: res.statusCode ?? 0, headers: JSON.stringify(res.headers), body: Buffer.concat(chunks).toString('utf8') },
            });
            out.destroy();
          }, 200);
        }
        res.on('data', (c: Buffer) => {
          if (size < MAX_KEEP) chunks.push(c);
          size += c.length;
        });
        res.on('end', () =>
          done({
            ok: true,
            res: { status: res.statusCode ?? 0, headers: JSON.stringify(res.headers), body: Buffer.concat(chunks).toString('utf8') },
          }),
        );
        res.on('error', (err) => done({ ok: false, error: String(err.message), timeout: false }));
      });
      out.on('timeout', () => {
        out.destroy();
        done({ ok: false, error: 'timeout', timeout: true });
      });
      out.on('error', (err) => done({ ok: false, error: (err as NodeJS.ErrnoException).code ?? err.message, timeout: false }));
      out.end(req.body);
    });
  }

  #raw(bytes: Buffer): Promise<SendResult> {
    return new Promise((resolve) => {
      const socket = connect(this.#port, this.#host);
      const chunks: Buffer[] = [];
      let size = 0;
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(parseRaw(Buffer.concat(chunks), true));
      }, RAW_TIMEOUT_MS);
      socket.on('data', (c: Buffer) => {
        if (size < MAX_KEEP) chunks.push(c);
        size += c.length;
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(parseRaw(Buffer.concat(chunks), false));
      });
      socket.end(bytes);
    });
  }
}

/** The request as HTTP/1.1 bytes on a connection that closes after it. */
export function wireForm(req: FuzzRequest, host: string): Buffer {
  const lines = [`${req.method} ${req.path} HTTP/1.1`];
  if (!req.headers.some(([n]) => n.toLowerCase() === 'host')) lines.push(`Host: ${host}`);
  for (const [n, v] of req.headers) lines.push(`${n}: ${v}`);
  if (!req.headers.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) lines.push(`Content-Length: ${req.body?.length ?? 0}`);
  lines.push('Connection: close', '', '');
  return Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), req.body ?? Buffer.alloc(0)]);
}

function parseRaw(data: Buffer, timedOut: boolean): SendResult {
  const text = data.toString('latin1');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (m === null) {
    return {
      ok: false,
      error: timedOut ? 'no answer to raw bytes (incomplete request?)' : data.length === 0 ? 'closed without answer' : 'unparseable answer',
      timeout: false,
    };
  }
  const split = text.indexOf('\r\n\r\n');
  return {
    ok: true,
    res: {
      status: Number(m[1]),
      headers: split < 0 ? text : text.slice(0, split),
      body: split < 0 ? '' : data.subarray(split + 4).toString('utf8'),
    },
  };
}
