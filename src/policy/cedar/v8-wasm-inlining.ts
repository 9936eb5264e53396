// Node 20's V8 (11.3) aborts the process ("unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when TurboFan has inlined a JS-to-Wasm call into an
// optimized function that later deoptimizes. cedar-wasm's JS glue is such a call, and a process that
// alternates hot between cedar-wasm and other optimized code (the compiled engine, the approval
// probe, a profiler attaching) hits it: reproduced 3 of 3 with both engines' property tests in one
// process, 0 of 4 with the inlining off. Turning that one optimization off keeps the process alive;
// JS-to-Wasm calls still run optimized, only without the wrapper inlined.
// Imported for its side effect before cedar-wasm is used; setting the flag twice is harmless.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-turbo-inline-js-wasm-calls');
