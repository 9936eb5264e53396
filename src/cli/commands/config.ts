// `mandate config check` and `mandate secrets generate-key`.
import type { Command } from 'commander';
import { systemClock } from '../../lib/clock.js';
import { loadPolicyStore } from '../../policy/wiring.js';
import { configuredMasterKeys, generateMasterKeySpec, parseMasterKeys } from '../../secrets/index.js';
import { configFromFlags } from '../config-source.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('Work with configuration files.');
  config
    .command('check')
    .argument('<file>', 'configuration file (YAML or JSON)')
    .description(
      'Check a configuration file as `serve` would (schema, secret environment variables, master key, org policy); prints "ok" or the first problem.',
    )
    .action(async (file: string) => {
      // The same steps, in the same order, that `serve` takes before it opens the store.
      const loaded = configFromFlags({ config: file });
      configuredMasterKeys(loaded);
      const policies = await loadPolicyStore(loaded, systemClock);
      const count = policies.current?.set.policies.length ?? 0;
      policies.close();
      process.stdout.write(`ok: ${file} (mode ${loaded.mode}, store ${loaded.store.driver}, ${count} policies)\n`);
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
