// Durable MCP tasks (extension io.modelcontextprotocol/tasks): approval-waiting tools/call requests
// any replica can serve. Domain code only; /mcp maps tasks/get and tasks/cancel onto it.
export { type ClaimOptions, type CreateTaskInput, TASK_TOPIC, TaskService, type TaskServiceOptions } from './service.js';
export {
  isTerminal,
  type McpTask,
  type StoredTask,
  type TaskError,
  type TaskStatus,
  taskError,
  taskStatuses,
  toWireTask,
  type WireTaskStatus,
} from './task.js';
