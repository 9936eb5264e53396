// DEVELOPMENT ONLY: `mandate dev operator-token` mints an operator token from the demo's local issuer.
import type { Command } from 'commander';
import { DEMO_HUMANS, publicUrl } from '../../addresses.js';
import { ConfigError } from '../../errors/index.js';
import { DEV_ISSUER_PATH, DevIssuer } from '../../identity/dev-issuer.js';
import { type ConfigFlags, configFromFlags } from '../config-source.js';

export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('Development helpers for the demo (never for real deployments).');
  dev
    .command('operator-token')
    .description('Mint an operator bearer token from the development issuer (demo mode only).')
    .requiredOption('--user <id>', `seeded human: ${DEMO_HUMANS.map((h) => h.id).join(', ')}`)
    .option('-c, --config <file>', 'configuration file of the demo broker (defaults to the demo)')
    .option('--url <url>', 'public URL of the demo broker (default: MANDATE_URL, else http://127.0.0.1:8080)')
    .option('--port <port>', 'or: port the demo broker listens on (part of the issuer URL)')
    .option('--ttl <seconds>', 'token lifetime', '3600')
    .action(async (flags: ConfigFlags & { user: string; ttl: string }) => {
      const config = configFromFlags({ ...flags, demo: flags.config === undefined }, { followsBrokerUrl: true });
      if (config.mode !== 'demo') throw new ConfigError('ERR_CONFIG_INVALID', 'operator tokens can only be minted in demo mode');
      const human = DEMO_HUMANS.find((h) => h.id === flags.user);
      if (human === undefined) throw new ConfigError('ERR_CONFIG_INVALID', `unknown demo user "${flags.user}"`);
      const ttl = Number(flags.ttl);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw new ConfigError('ERR_CONFIG_INVALID', '--ttl must be 1..86400');
      const issuer = await DevIssuer.open(config.dataDir, `${publicUrl(config)}${DEV_ISSUER_PATH}`);
      process.stdout.write(`${await issuer.mint({ sub: human.id, roles: [...human.roles], name: human.displayName, ttlSeconds: ttl })}\n`);
    });
}
