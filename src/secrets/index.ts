// Resolves the master key for this process: from MANDATE_MASTER_KEY, or in demo mode from a key
// file in the data folder that is generated on first start (and announced loudly).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/load.js';
import { ConfigError } from '../errors/index.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from './secret-box.js';

export { generateMasterKeySpec, parseMasterKeys, SecretBox } from './secret-box.js';

export interface MasterKeyResolution {
  readonly box: SecretBox;
  /** Set when demo mode generated or reused a development key file. */
  readonly demoKeyFile?: string;
}

/**
 * The configured master keys, or undefined when demo mode will use its development key file.
 * Throws what the broker would refuse to start with; no side effects (`mandate config check` runs it).
 */
export function configuredMasterKeys(config: Config): ReturnType<typeof parseMasterKeys> | undefined {
  const spec = config.secrets.masterKey;
  if (spec !== undefined) return parseMasterKeys(spec);
  if (config.mode !== 'demo') {
    throw new ConfigError(
      'ERR_MASTER_KEY_MISSING',
      'MANDATE_MASTER_KEY is not set; generate one with `mandate secrets generate-key` (demo mode generates its own)',
    );
  }
  return undefined;
}

export function resolveSecretBox(config: Config): MasterKeyResolution {
  const keys = configuredMasterKeys(config);
  if (keys !== undefined) return { box: new SecretBox(keys) };
  const file = join(config.dataDir, 'demo-master.key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, `${generateMasterKeySpec('demo')}\n`, { mode: 0o600 });
  }
  return { box: new SecretBox(parseMasterKeys(readFileSync(file, 'utf8').trim())), demoKeyFile: file };
}
