import { existsSync, readFileSync } from 'node:fs';
import type { Reporter } from 'vitest/reporters';

/** Prints a banner listing every test group that was skipped because a real peer was missing. */
export default class PeerReporter implements Reporter {
  onTestRunEnd(): void {
    const file = process.env.EKSF_PEER_SKIP_FILE;
    if (!file || !existsSync(file)) return;
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    if (lines.length === 0) return;
    const uniq = [...new Set(lines)].map((l) => JSON.parse(l) as { peer: string; missing: string });
    const bar = '!'.repeat(78);
    process.stdout.write(`\n${bar}\n  TESTS SKIPPED BECAUSE A REAL PEER IS MISSING (fails under CI):\n`);
    for (const s of uniq) process.stdout.write(`   - ${s.peer}: ${s.missing}\n`);
    process.stdout.write(`${bar}\n`);
  }
}
