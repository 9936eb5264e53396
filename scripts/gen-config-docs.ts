// Writes docs/configuration.md from the configuration schema.
import { writeFileSync } from 'node:fs';
import { renderConfigReference } from '../src/config/reference.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigReference());
process.stdout.write('wrote docs/configuration.md\n');
