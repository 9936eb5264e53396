// The approval probe on random policy sets, wasm engine (one engine per process: see approval-fixtures.ts).
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { probeProperty } from './approval-fixtures.js';

probeProperty(wasmEngine);
