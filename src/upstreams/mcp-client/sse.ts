// A minimal, bounded Server-Sent Events parser (WHATWG event-stream format), fed text as it
// arrives: it hands over the `data` of each event. Comments, `event`, `id` and `retry` fields are
// ignored (MCP needs none of them; a 2026-07-28 stream is not resumable).
import { UpstreamCallError } from './errors.js';

export class SseParser {
  readonly #max: number;
  readonly #onEvent: (data: string) => void;
  #buf = '';
  #data: string[] = [];
  #dataLength = 0;

  constructor(maxEventBytes: number, onEvent: (data: string) => void) {
    this.#max = maxEventBytes;
    this.#onEvent = onEvent;
  }

  /** Feeds decoded text; throws (kind 'rpc') when one event exceeds the bound. */
  push(text: string): void {
    const buf = this.#buf + text;
    let start = 0;
    for (;;) {
      // A line ends at CR, LF or CRLF.
      let end = start;
      while (end < buf.length && buf.charCodeAt(end) !== 10 && buf.charCodeAt(end) !== 13) end++;
      if (end >= buf.length) break;
      // A CR at the end of what arrived may be half of a CRLF: decide when more arrives.
      if (buf.charCodeAt(end) === 13 && end + 1 === buf.length) break;
      const line = buf.slice(start, end);
      start = buf.charCodeAt(end) === 13 && buf.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
      this.#line(line);
    }
    this.#buf = start === 0 ? buf : buf.slice(start);
    if (this.#buf.length + this.#dataLength > this.#max) {
      throw new UpstreamCallError('rpc', `an event from the upstream exceeds the ${this.#max}-byte limit`);
    }
  }

  /** The stream ended: a last event without its blank line still counts. */
  end(): void {
    if (this.#buf.length > 0) this.#line(this.#buf.charCodeAt(this.#buf.length - 1) === 13 ? this.#buf.slice(0, -1) : this.#buf);
    this.#buf = '';
    this.#line('');
  }

  #line(line: string): void {
    if (line.length === 0) {
      if (this.#data.length > 0) {
        const data = this.#data.join('\n');
        this.#data = [];
        this.#dataLength = 0;
        this.#onEvent(data);
      }
      return;
    }
    if (!line.startsWith('data')) return;
    if (line.length === 4) this.#data.push('');
    else if (line.charCodeAt(4) === 58 /* : */) this.#data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
    else return;
    this.#dataLength += line.length;
  }
}
