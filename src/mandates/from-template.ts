// The mandate request a task template (src/agents/template.ts) stands for: the same request a
// client could have sent in `authorization_details`, checked by checkAgainstProfile like any other.
import type { TaskTemplate } from '../agents/template.js';
import { MANDATE_DETAILS_TYPE, type MandateRequest } from './mandate.js';

/** The mandate request a template stands for (`environment` defaults to the agent's). */
export function requestFromTemplate(template: TaskTemplate, agentEnvironment: string | undefined): MandateRequest | undefined {
  const environment = template.environment ?? agentEnvironment;
  if (environment === undefined) return undefined;
  return {
    type: MANDATE_DETAILS_TYPE,
    purpose: template.purpose,
    taskType: template.taskType,
    environment,
    ttlSeconds: template.ttlSeconds,
    tools: template.tools,
    delegable: template.delegable,
  };
}
