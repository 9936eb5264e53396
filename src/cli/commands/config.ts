// `mandate config check` and `mandate secrets generate-key`.
import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load.js';
import { generateMasterKeySpec, parseMasterKeys } from '../../secrets/index.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('Work with configuration files.');
  config
    .command('check')
    .argument('<file>', 'configuration file (YAML or JSON)')
    .description('Validate a configuration file and its secret environment variables; prints "ok" or the first problem.')
    .action((file: string) => {
      const loaded = loadConfigFile(file, { env: process.env });
      if (loaded.secrets.masterKey !== undefined) parseMasterKeys(loaded.secrets.masterKey);
      process.stdout.write(`ok: ${file} (mode ${loaded.mode}, store ${loaded.store.driver})\n`);
    });

  const secrets = program.command('secrets').description('Secrets at rest.');
  secrets
    .command('generate-key')
    .option('--kid <kid>', 'key id', 'k1')
    .description('Print a new master key for MANDATE_MASTER_KEY (kid:base64). Prepend new keys to rotate.')
    .action((flags: { kid: string }) => {
      const spec = generateMasterKeySpec(flags.kid);
      parseMasterKeys(spec);
      process.stdout.write(`${spec}\n`);
    });
}
