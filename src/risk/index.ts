// Risk: behaviour signals, explainable scores and automatic responses (docs/risk.md).
export { type CallObservation, type RiskContext, RiskEngine, type RiskPath, type RiskResponse, type RiskScore } from './engine.js';
export { RiskResponder } from './responder.js';
export { DEFAULT_RISK_SETTINGS, type RiskSettings, riskSettings, SIGNALS, type SignalName } from './settings.js';
export { RISK_TOPIC, RiskSharing } from './sharing.js';
