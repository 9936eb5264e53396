// DEVELOPMENT ONLY: `mandate dev svid` mints a JWT-SVID from the demo's local trust domain
// (`demo.mandate.local`), as `spire-server jwt mint` does. Its key lives in the data folder.
import type { Command } from 'commander';
import { publicUrl } from '../../addresses.js';
import { ConfigError } from '../../errors/index.js';
import { DevSpiffeAuthority } from '../../identity/dev-spiffe.js';
import { type ConfigFlags, configFromFlags } from '../config-source.js';

export function registerDevSvidCommands(program: Command): void {
  const dev =
    program.commands.find((c) => c.name() === 'dev') ??
    program.command('dev').description('Development helpers (never for real deployments).');
  dev
    .command('svid')
    .description('Mint a JWT-SVID for an ID of the development trust domain (demo mode only).')
    .requiredOption('--spiffe-id <uri>', 'e.g. spiffe://demo.mandate.local/agent/support-triage')
    .option('--audience <aud>', 'audience (defaults to the broker public URL)')
    .option('--ttl <seconds>', 'lifetime', '300')
    .option('-c, --config <file>', 'configuration file of the demo broker (defaults to the demo)')
    .option('--url <url>', 'public URL of the demo broker (default: MANDATE_URL, else http://127.0.0.1:8080)')
    .option('--port <port>', 'or: port the demo broker listens on (part of the default audience)')
    .action(async (flags: ConfigFlags & { spiffeId: string; audience?: string; ttl: string }) => {
      const config = configFromFlags({ ...flags, demo: flags.config === undefined }, { followsBrokerUrl: true });
      if (config.mode !== 'demo') throw new ConfigError('ERR_CONFIG_INVALID', 'development SVIDs can only be minted in demo mode');
      const ttl = Number(flags.ttl);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw new ConfigError('ERR_CONFIG_INVALID', '--ttl must be 1..86400');
      const authority = await DevSpiffeAuthority.open(config.dataDir);
      const audience = flags.audience ?? config.identity.audience ?? publicUrl(config);
      process.stdout.write(`${await authority.mint({ spiffeId: flags.spiffeId, audience, ttlSeconds: ttl })}\n`);
    });
}
