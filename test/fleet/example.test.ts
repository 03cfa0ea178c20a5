/** examples/fleet-sweep runs end to end with --local: queue, 2 worker processes, verified report. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { motoServerMissing } from '../../src/testing/index.js';
import { skipWithoutPeer } from '../support/peers.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

describe.skipIf(skipWithoutPeer('moto_server', motoServerMissing()))('examples/fleet-sweep --local', () => {
  it('plans 4 clusters, 2 workers acquire every target once, the report verifies', {
    timeout: 150_000,
  }, async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(
        join(repo, 'node_modules/.bin/tsx'),
        ['examples/fleet-sweep/index.ts', '--local', '--workers', '2', '--pods', '1'],
        { cwd: repo, encoding: 'utf8', timeout: 140_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } },
        (err, stdout, stderr) =>
          done({ code: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, stdout, stderr }),
      );
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1] ?? '{}') as {
      targets: number;
      counts: Record<string, number>;
      problems: string[];
      workers: { id: number; exit: number; summary: { outcomes: Record<string, number> } }[];
    };
    expect(summary.targets).toBe(4);
    expect(summary.counts.finalized).toBe(4);
    expect(summary.problems).toEqual([]);
    expect(summary.workers).toHaveLength(2);
    const finalized = summary.workers.reduce((n, w) => n + (w.summary?.outcomes?.finalized ?? 0), 0);
    expect(finalized).toBe(4);
    expect(lines.filter((l) => l.startsWith('finalized     complete valid attempts=1 '))).toHaveLength(4);
    expect(r.stderr).toMatch(/plan: 4 targets in 4 clusters/);
    expect(r.stderr).toMatch(/progress: 4\/4 finalized/);
  });
});
