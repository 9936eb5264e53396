// The approval probe on random policy sets, compiled engine (one engine per process: see approval-fixtures.ts).
import { compiledEngine } from '../../src/policy/compiled/engine.js';
import { probeProperty } from './approval-fixtures.js';

probeProperty(compiledEngine);
