/**
 * Many containers: 50 sandbox containers with concurrency 8 all complete; an abort midway leaves
 * every unfinished bundle marked incomplete with nothing lost.
 */
import { describe, expect, it } from 'vitest';
import { ArtifactCollector, type ProgressEvent } from '../../src/collect/index.js';
import { verifyEvidence } from '../../src/evidence/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { addSandboxPod, bundleHas, sandboxMissing, useEnv } from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

describe.skipIf(skip)('collector at scale', () => {
  const env = useEnv(180_000);

  it('50 containers with concurrency 8 all complete', async () => {
    const targets = [];
    for (let i = 0; i < 50; i++) {
      const t = await addSandboxPod(
        env,
        {
          preset: 'busybox',
          files: { '/root/.ssh/authorized_keys': { content: `ssh-ed25519 AAAA key-${i}\n` } },
        },
        { command: ['sleep', '86400'] },
      );
      targets.push({ kube: env.kube, ...t });
    }
    let running = 0;
    let maxRunning = 0;
    const collector = new ArtifactCollector({ sink: env.sink, profiles: ['triage'], concurrency: 8 });
    collector.on('progress', (e: ProgressEvent) => {
      if (e.type === 'target-started') maxRunning = Math.max(maxRunning, ++running);
      if (e.type === 'target-finished') running--;
    });
    const report = await collector.acquire(targets);
    expect(report.targets).toHaveLength(50);
    expect(maxRunning).toBeLessThanOrEqual(8);
    expect(maxRunning).toBeGreaterThan(1);
    for (const [i, r] of report.targets.entries()) {
      expect(r.status, JSON.stringify(r.reasons)).toBe('complete');
      expect(r.target.pod).toBe(targets[i]?.pod);
      expect(r.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(report.status).toBe('complete');
    const v = await verifyEvidence(report.targets[49]?.location as string, { acceptUnanchored: true });
    expect(v.status).toBe('valid');
  }, 240_000);

  it('an abort midway marks every unfinished bundle incomplete and keeps what was stored', async () => {
    const targets = [];
    for (let i = 0; i < 8; i++) {
      const t = await addSandboxPod(env, { preset: 'busybox' }, { command: ['sleep', '86400'] });
      targets.push({ kube: env.kube, ...t });
    }
    const ac = new AbortController();
    const collector = new ArtifactCollector({
      sink: env.sink,
      profiles: ['triage'],
      concurrency: 8,
      signal: ac.signal,
    });
    let finished = 0;
    collector.on('progress', (e) => {
      if (e.type === 'artifact-finished' && ++finished === 40) ac.abort(new Error('operator cancelled'));
    });
    const report = await collector.acquire(targets);
    expect(report.aborted).toBe(true);
    for (const r of report.targets) {
      expect(r.finalized).toBe(false);
      expect(r.status).not.toBe('complete');
      expect(r.reasons.join('\n')).toContain('acquisition aborted: operator cancelled');
      const loc = r.location as string;
      expect(bundleHas(loc, 'manifest.json')).toBe(false);
      const v = await verifyEvidence(loc);
      expect(v.status, JSON.stringify(v.problems)).toBe('incomplete');
      expect(v.aborted).toContain('operator cancelled');
      expect(v.missing).toEqual([]);
      expect(v.modified).toEqual([]);
    }
    // something was stored before the abort, and it verified above
    expect(report.targets.reduce((a, r) => a + r.artifacts.complete, 0)).toBeGreaterThan(0);
  }, 120_000);
});
