// Both in-process engines hot in one process, as a broker with `policy.engine: compiled` runs them
// (the compiled engine hands cedar-wasm what it cannot evaluate, and the approval probe): this
// aborted Node 20 with "unreachable code" in V8's deoptimizer until src/policy/cedar/v8-wasm-inlining.ts
// turned off TurboFan's JS-to-Wasm call inlining (3 of 3 runs aborted before, 0 after). A regression
// kills this test file's process, which the runner reports as a failure.
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { compiledEngine } from '../../src/policy/compiled/engine.js';
import { probeProperty } from './approval-fixtures.js';

probeProperty(compiledEngine);
probeProperty(wasmEngine);
