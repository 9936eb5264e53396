// The risk engine's tunables: every signal's window, thresholds and weight, and the automatic
// responses with their hysteresis. Defaults are documented signal by signal in docs/risk.md; the
// config file (`risk:` in src/config/schema.ts) overrides any of them.

import { RISK_SIGNALS } from '../config/schema.js';

/** Every signal the engine computes (docs/risk.md explains each), in a fixed order. */
export const SIGNALS = RISK_SIGNALS;
export type SignalName = (typeof SIGNALS)[number];

/**
 * How one signal's measured value becomes points: none at or below `warn`, `points` at or above
 * `max`, linear between. A disabled signal contributes nothing and costs nothing to report.
 */
export interface SignalSettings {
  readonly enabled: boolean;
  readonly warn: number;
  readonly max: number;
  readonly points: number;
}

export type Subject = 'mandate' | 'tree' | 'agent';
export type ResponseAction = 'require_approval' | 'notify_owner' | 'revoke' | 'quarantine';

/** One automatic response: fires when `subject`'s score reaches `at`, clears below `clearBelow` after `holdMs`. */
export interface ResponseRule {
  readonly action: ResponseAction;
  readonly subject: Subject;
  readonly at: number;
  readonly clearBelow: number;
  readonly holdMs: number;
}

export interface RiskSettings {
  readonly enabled: boolean;
  /** The window every per-subject count is kept over (ms). */
  readonly windowMs: number;
  /** An agent's own call-rate baseline: calls per window averaged over this longer span (ms). */
  readonly baselineMs: number;
  /** The baseline never counts as lower than this many calls per window (a quiet agent may burst a little). */
  readonly baselineFloor: number;
  /** `deny_rate` is not measured before this many calls in the window. */
  readonly denyRateMinCalls: number;
  /** `first_tool_use` counts only for agents with at least this many calls on record (new agents try tools). */
  readonly firstToolUseAfterCalls: number;
  readonly signals: Readonly<Record<SignalName, SignalSettings>>;
  readonly responses: readonly ResponseRule[];
  /** Most subjects of each kind held in memory (least recently seen dropped first). */
  readonly maxSubjects: number;
}

const signal = (warn: number, max: number, points: number): SignalSettings => ({ enabled: true, warn, max, points });

export const DEFAULT_RISK_SETTINGS: RiskSettings = {
  enabled: true,
  windowMs: 60_000,
  baselineMs: 3_600_000,
  baselineFloor: 120,
  denyRateMinCalls: 5,
  firstToolUseAfterCalls: 200,
  signals: {
    // ratio of calls in the window to the agent's own baseline per window
    call_rate: signal(3, 10, 25),
    // share of the window's calls that were refused
    deny_rate: signal(0.25, 0.75, 20),
    // calls outside the mandate's scope or constraints, and ceiling refusals at the token endpoint
    scope_probe: signal(2, 10, 50),
    // approvals a human denied
    approval_denied: signal(0, 2, 30),
    // tools this (established) agent had never called before
    first_tool_use: signal(2, 8, 15),
    // calls that can send data out after a confidential or restricted read in the same delegation tree
    read_then_send: signal(0, 2, 20),
    // bytes of tool results relayed
    result_volume: signal(1 << 20, 16 << 20, 40),
    // client keys or addresses beyond the first one a mandate's tokens were used from
    new_client: signal(0, 2, 30),
    // child mandates of one mandate
    delegation_fanout: signal(5, 20, 20),
    // delegation depth below the root
    delegation_depth: signal(3, 6, 20),
  },
  responses: [
    { action: 'require_approval', subject: 'tree', at: 40, clearBelow: 25, holdMs: 60_000 },
    { action: 'notify_owner', subject: 'agent', at: 50, clearBelow: 30, holdMs: 300_000 },
    { action: 'revoke', subject: 'tree', at: 70, clearBelow: 0, holdMs: 0 },
    { action: 'quarantine', subject: 'agent', at: 90, clearBelow: 0, holdMs: 0 },
  ],
  maxSubjects: 100_000,
};

/** The parts of the `risk:` configuration section the engine reads (src/config/schema.ts validates them). */
export interface RiskConfig {
  readonly enabled: boolean;
  readonly windowSeconds: number;
  readonly baselineSeconds: number;
  readonly baselineFloor: number;
  readonly denyRateMinCalls: number;
  readonly firstToolUseAfterCalls: number;
  readonly signals: Partial<Record<SignalName, Partial<SignalSettings>>>;
  readonly responses?:
    | readonly { action: ResponseAction; subject: Subject; at: number; clearBelow: number; holdSeconds: number }[]
    | undefined;
}

/** The engine's settings: the defaults, with the configuration's overrides. */
export function riskSettings(config: RiskConfig): RiskSettings {
  const signals = { ...DEFAULT_RISK_SETTINGS.signals };
  for (const name of SIGNALS) {
    const o = config.signals[name];
    if (o === undefined) continue;
    const merged = { ...signals[name], ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
    if (!(merged.max > merged.warn)) throw new RangeError(`risk.signals.${name}: max (${merged.max}) must be above warn (${merged.warn})`);
    signals[name] = merged;
  }
  return {
    ...DEFAULT_RISK_SETTINGS,
    enabled: config.enabled,
    windowMs: config.windowSeconds * 1000,
    baselineMs: config.baselineSeconds * 1000,
    baselineFloor: config.baselineFloor,
    denyRateMinCalls: config.denyRateMinCalls,
    firstToolUseAfterCalls: config.firstToolUseAfterCalls,
    signals,
    responses:
      config.responses === undefined
        ? DEFAULT_RISK_SETTINGS.responses
        : config.responses.map((r) => ({
            action: r.action,
            subject: r.subject,
            at: r.at,
            clearBelow: r.clearBelow,
            holdMs: r.holdSeconds * 1000,
          })),
  };
}
