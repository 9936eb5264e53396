// Shared fixtures of the intent tests: a policy directory with intent-reading policies and task templates.
import { fileURLToPath } from 'node:url';

export const FIXTURE_POLICIES = fileURLToPath(new URL('./fixtures/policies/', import.meta.url));
