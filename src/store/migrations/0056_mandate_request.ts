// Mandates keep the human's request text (intent binding, src/intent/) and the task template they
// were opened from (name, version, validated parameters, approval defaults; src/templates/).
// Both nullable: mandates opened before, or without either, have none.
import type { Migration } from './index.js';

export const m0056MandateRequest: Migration = {
  id: 56,
  name: 'mandate_request',
  up: () => `
    ALTER TABLE mandates ADD COLUMN request_text TEXT;
    ALTER TABLE mandates ADD COLUMN template TEXT;
  `,
};
