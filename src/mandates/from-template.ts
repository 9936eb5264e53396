// The mandate request a profile task template (src/agents/template.ts) stands for: the same request a
// client could have sent in `authorization_details`, checked by checkAgainstProfile like any other.
import type { TaskTemplate, TemplateReference } from '../agents/template.js';
import { MANDATE_DETAILS_TYPE, type MandateRequest } from './mandate.js';

/**
 * The mandate request a profile template stands for (`environment` defaults to the agent's). A
 * reference to a template file is resolved by `resolve` (MandateService.parseRequest with the
 * loaded templates); without one it stands for nothing (undefined), e.g. for a form prefill.
 */
export function requestFromTemplate(
  template: TaskTemplate,
  agentEnvironment: string | undefined,
  resolve?: (reference: TemplateReference) => MandateRequest,
): MandateRequest | undefined {
  if ('template' in template) return resolve?.(template);
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
