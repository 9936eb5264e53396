// Builds the policy store from configuration at start: the configured (or, in demo mode, the
// shipped demo) policy directory, validated against the schema. A broker never starts on an
// invalid policy set.
import type { Config } from '../config/load.js';
import { ConfigError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { authzenEngineFromConfig } from './authzen-engine.js';
import { wasmEngine } from './cedar/engine.js';
import { compiledEngine } from './compiled/engine.js';
import type { PolicyEngine, PolicyProblem } from './engine.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from './source.js';
import { PolicyStore } from './store.js';

/** `file:line:column: message`, one per line: what editors and CI annotate. */
export function formatProblems(problems: readonly PolicyProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n');
}

/** The engine configured by `policy.engine`. */
export function configuredEngine(name: 'compiled' | 'wasm' | undefined): PolicyEngine {
  return name === 'wasm' ? wasmEngine : compiledEngine;
}

/** Which engine serves the active set, and why not the configured one: for start-up and /health. */
export function engineNotice(store: PolicyStore): string {
  const bundle = store.current;
  if (bundle === undefined) return 'org policy: no set loaded';
  const why = bundle.notices.length > 0 ? ` (${bundle.notices.join('; ')})` : '';
  return `org policy: ${bundle.set.policies.length} policies served by the ${bundle.set.engine} engine${why}`;
}

export async function loadPolicyStore(config: Config, clock: Clock): Promise<PolicyStore> {
  const store = new PolicyStore({
    // An external PDP needs its URL and credentials from the configuration; the others only a name.
    engine:
      config.policy.engine === 'authzen' ? authzenEngineFromConfig(config, () => clock.now()) : configuredEngine(config.policy.engine),
    dir: config.policy.dir ?? (config.mode === 'demo' ? DEMO_POLICY_DIR : undefined),
    schemaPath: config.policy.schema ?? SHIPPED_SCHEMA,
    entitiesPath: config.policy.entities,
    now: () => clock.now(),
  });
  const report = await store.load();
  if (!report.ok) {
    throw new ConfigError('ERR_POLICY_INVALID', `the org policy set is invalid:\n${formatProblems(report.problems)}`);
  }
  return store;
}
