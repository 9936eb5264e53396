// The durable MCP task model (extension `io.modelcontextprotocol/tasks`, SEP-2663) and its wire
// form. A task stands for one tools/call that waits for a human approval; see docs/approvals.md.
import { type ErrorCode, errorRegistry } from '../errors/registry.js';

/**
 * Stored statuses. `forwarding` is internal: one replica claimed the task and is forwarding the
 * call; on the wire it reads as `working`.
 */
export const taskStatuses = ['working', 'forwarding', 'completed', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** Statuses the extension defines that Mandate uses (`input_required` is not: the input comes from a human in the console). */
export type WireTaskStatus = 'working' | 'completed' | 'failed' | 'cancelled';

/** A JSON-RPC error object as the task's `error` field carries it. */
export interface TaskError {
  readonly code: number;
  readonly message: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

export interface StoredTask {
  /** `task_` + 256 random bits, base64url: unguessable, usable as a bearer handle. */
  readonly id: string;
  readonly mandateId: string;
  readonly approvalId: string;
  readonly callHash: string;
  readonly tool: string;
  /**
   * Effective status: a `working` task past its TTL, or a `forwarding` task whose claim outlived
   * its bound, reads as `failed` (with `error`) before the sweep records it.
   */
  readonly status: TaskStatus;
  readonly statusMessage: string | undefined;
  /** The CallToolResult, when `completed`. */
  readonly result: Readonly<Record<string, unknown>> | undefined;
  /** The JSON-RPC error, when `failed`. */
  readonly error: TaskError | undefined;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly ttlMs: number;
  readonly claimedBy: string | undefined;
  readonly claimedAt: number | undefined;
}

/** An alias kept for the gateway's vocabulary: what `TaskService.create` returns. */
export type McpTask = StoredTask;

export const TERMINAL_TASK_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_TASK_STATUSES.includes(status);
}

/** A task's JSON-RPC error from a registry code; `data.code` carries the Mandate code, as on /mcp. */
export function taskError(code: ErrorCode, message: string, data: Record<string, unknown> = {}): TaskError {
  const spec = errorRegistry[code];
  return { code: 'rpcCode' in spec && spec.rpcCode !== undefined ? spec.rpcCode : -32603, message, data: { ...data, code } };
}

/**
 * The extension's `Task` (resultType `task`, a CreateTaskResult) or `DetailedTask` (resultType
 * `complete`, a tasks/get result): ISO timestamps, `ttlMs`, `pollIntervalMs`, `result` when
 * completed, `error` when failed. Without `resultType` it is the `notifications/tasks` params.
 *
 * @example
 * toWireTask(task, 2000, 'complete')
 * // { resultType: 'complete', taskId: 'task_…', status: 'working', statusMessage: 'Waiting for approval …',
 * //   createdAt: '2026-11-26T14:00:00.000Z', lastUpdatedAt: '…', ttlMs: 3600000, pollIntervalMs: 2000 }
 */
export function toWireTask(task: StoredTask, pollIntervalMs: number, resultType?: 'task' | 'complete'): Record<string, unknown> {
  const status: WireTaskStatus = task.status === 'forwarding' ? 'working' : task.status;
  return {
    ...(resultType === undefined ? {} : { resultType }),
    taskId: task.id,
    status,
    ...(task.statusMessage === undefined ? {} : { statusMessage: task.statusMessage }),
    createdAt: new Date(task.createdAt).toISOString(),
    lastUpdatedAt: new Date(task.updatedAt).toISOString(),
    ttlMs: task.ttlMs,
    pollIntervalMs,
    ...(status === 'completed' && task.result !== undefined ? { result: task.result } : {}),
    ...(status === 'failed' && task.error !== undefined ? { error: task.error } : {}),
  };
}
