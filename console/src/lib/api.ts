// The admin API client: every request carries the operator's bearer token; errors keep the
// registry code and request id so the console can show them honestly.
import { useCallback, useEffect, useRef, useState } from 'react';
import { currentSession } from './auth';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

/** Raised when the session is gone or expired: the shell shows the sign-in screen. */
export const SIGNED_OUT = 'SIGNED_OUT';

type Listener = () => void;
const signedOutListeners = new Set<Listener>();
export function onSignedOut(listener: Listener): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const session = currentSession();
  if (session === undefined) {
    for (const l of signedOutListeners) l();
    throw new ApiError(401, SIGNED_OUT, 'you are signed out');
  }
  const headers: Record<string, string> = { authorization: `Bearer ${session.accessToken}`, accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const b = (body ?? {}) as { error?: string; message?: string; error_description?: string; request_id?: string };
    if (res.status === 401) for (const l of signedOutListeners) l();
    throw new ApiError(res.status, b.error ?? `HTTP_${res.status}`, b.message ?? b.error_description ?? res.statusText, b.request_id);
  }
  return body as T;
}

export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: ApiError | Error | undefined;
  readonly loading: boolean;
  reload(): void;
}

/** Loads `path` and reloads it when `deps` change or `reload()` is called; keeps old data while reloading. */
export function useApi<T>(path: string | undefined, deps: readonly unknown[] = []): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: path !== undefined });
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  const shown = useRef(path);
  // biome-ignore lint/correctness/useExhaustiveDependencies: deps and tick are the reload triggers
  useEffect(() => {
    if (path === undefined) return;
    const id = ++latest.current;
    const controller = new AbortController();
    // A reload keeps what is on screen; another resource never shows the previous one's data.
    const same = shown.current === path;
    shown.current = path;
    setState((s) => (same ? { ...s, loading: true } : { loading: true }));
    api<T>(path, { signal: controller.signal }).then(
      (data) => id === latest.current && setState({ data, loading: false }),
      (error: Error) => id === latest.current && error.name !== 'AbortError' && setState((s) => ({ ...s, error, loading: false })),
    );
    return () => controller.abort();
  }, [path, tick, ...deps]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** A list endpoint's answer: the admin API returns `{ items }`, some endpoints a bare array. */
export function itemsOf<T>(body: unknown): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body !== null && typeof body === 'object') {
    const b = body as { items?: unknown; data?: unknown };
    if (Array.isArray(b.items)) return b.items as T[];
    if (Array.isArray(b.data)) return b.data as T[];
  }
  return [];
}
