// A minimal, bounded Server-Sent Events reader (WHATWG event-stream format): yields the `data` of
// each event. Comments, `event`, `id` and `retry` fields are ignored (MCP needs none of them; a
// 2026-07-28 stream is not resumable).
import { UpstreamCallError } from './errors.js';

/** Yields each event's data; throws (kind 'rpc') when one event exceeds `maxEventBytes`. */
export async function* sseEvents(body: ReadableStream<Uint8Array>, maxEventBytes: number): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buf = '';
  let data: string[] = [];
  let dataLength = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        // A line ends at CR, LF or CRLF.
        let end = start;
        while (end < buf.length && buf.charCodeAt(end) !== 10 && buf.charCodeAt(end) !== 13) end++;
        if (end >= buf.length) break;
        // A CR at the end of the buffer may be half of a CRLF: decide when more arrives.
        if (buf.charCodeAt(end) === 13 && end + 1 === buf.length && !done) break;
        const line = buf.slice(start, end);
        start = buf.charCodeAt(end) === 13 && buf.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
        if (line.length === 0) {
          if (data.length > 0) yield data.join('\n');
          data = [];
          dataLength = 0;
        } else if (line.startsWith('data')) {
          if (line.length === 4) data.push('');
          else if (line.charCodeAt(4) === 58 /* : */) data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
          else continue;
          dataLength += line.length;
        }
      }
      buf = start === 0 ? buf : buf.slice(start);
      if (buf.length + dataLength > maxEventBytes)
        throw new UpstreamCallError('rpc', `an event from the upstream exceeds the ${maxEventBytes}-byte limit`);
      if (done) {
        if (data.length > 0) yield data.join('\n');
        return;
      }
    }
  } finally {
    // Leaving early (the response arrived, or the caller gave up) closes the stream.
    reader.cancel().catch(() => {});
  }
}
