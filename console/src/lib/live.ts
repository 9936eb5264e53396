// Live updates: reads the broker's server-sent events stream with fetch (EventSource cannot send
// an Authorization header, and tokens never go in URLs) and reconnects with backoff.
import { useEffect, useRef, useState } from 'react';
import { currentSession } from './auth';

export type LiveTopic = 'approval' | 'mandate' | 'agent' | 'audit';
export interface LiveEvent {
  readonly topic: LiveTopic;
  readonly data: { key?: string; status?: string; size?: number; seq?: number };
}

type Handler = (event: LiveEvent) => void;
const handlers = new Set<Handler>();
const statusListeners = new Set<(s: LiveStatus) => void>();
export type LiveStatus = 'connecting' | 'live' | 'offline';
let status: LiveStatus = 'connecting';
let started = false;

function setStatus(next: LiveStatus) {
  status = next;
  for (const l of statusListeners) l(next);
}

async function run(): Promise<void> {
  let delay = 1000;
  for (;;) {
    const session = currentSession();
    if (session !== undefined) {
      try {
        setStatus('connecting');
        const res = await fetch('/admin/v1/events', {
          headers: { authorization: `Bearer ${session.accessToken}`, accept: 'text/event-stream' },
          cache: 'no-store',
        });
        if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
        setStatus('live');
        delay = 1000;
        // Anything may have changed while disconnected: tell every page to refresh.
        for (const h of handlers) h({ topic: 'audit', data: {} });
        await readStream(res.body);
      } catch {
        // reconnect below
      }
    }
    setStatus('offline');
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}

async function readStream(body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
    }
  }
}

function dispatch(block: string): void {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!['approval', 'mandate', 'agent', 'audit'].includes(event)) return;
  let parsed: LiveEvent['data'] = {};
  try {
    parsed = JSON.parse(data) as LiveEvent['data'];
  } catch {
    return;
  }
  for (const h of handlers) h({ topic: event as LiveTopic, data: parsed });
}

function ensureStarted() {
  if (started) return;
  started = true;
  void run();
}

/**
 * Calls `onEvent` for live events on the given topics, at most once per `minIntervalMs` (default
 * 250 ms; expensive views such as the overview ask for more, since every audit append is an event).
 */
export function useLive(topics: readonly LiveTopic[], onEvent: () => void, minIntervalMs = 250): void {
  const callback = useRef(onEvent);
  callback.current = onEvent;
  const key = topics.join(',');
  useEffect(() => {
    ensureStarted();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const handler: Handler = (e) => {
      if (!key.split(',').includes(e.topic)) return;
      if (timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        callback.current();
      }, minIntervalMs);
    };
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [key, minIntervalMs]);
}

export function useLiveStatus(): LiveStatus {
  const [s, setS] = useState(status);
  useEffect(() => {
    ensureStarted();
    statusListeners.add(setS);
    return () => {
      statusListeners.delete(setS);
    };
  }, []);
  return s;
}
