// Prints a fuzz summary: counts per target, the first examples of each finding, the RESULT line.
import type { FuzzSummary } from './campaign.js';

export function printSummary(s: FuzzSummary, out: (line: string) => void): void {
  out('per target:');
  for (const [target, counts] of Object.entries(s.perTarget)) {
    out(
      `  ${target.padEnd(8)} ${Object.entries(counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  }
  out(`  no answer (socket closed; mostly raw malformed requests): ${s.noAnswer}`);
  const causes = Object.entries(s.crashCauses);
  if (causes.length > 0) {
    out('crash causes (of the first 300 crashes, as the broker logged them):');
    for (const [cause, n] of causes.sort(([, a], [, b]) => b - a)) out(`  ${String(n).padStart(4)} × ${cause}`);
  }
  for (const [kind, list] of Object.entries(s.examples)) {
    for (const ex of list) {
      out(`\n── ${kind} #${ex.index} (${ex.target}): ${ex.reason}\n${ex.request}\n→ ${ex.response}`);
    }
  }
  if (s.brokerDied !== undefined || s.crashes > 0) out(`\nbroker stderr (tail):\n${s.brokerStderr.slice(-3000)}`);
  out(`RESULT fuzz inputs=${s.inputs} crashes=${s.crashes} leaks=${s.leaks} allows=${s.allows} duration_s=${s.durationS.toFixed(0)}`);
}
