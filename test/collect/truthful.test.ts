/**
 * Truthful evidence under attack (issue 13): a container that knows the collector's source tries
 * to get an artifact recorded `complete` when it is not, to hide roots behind a flood, to leave
 * processes behind, or to make the bundle carry secrets. Each case failed on the collector before
 * the pipeline of phases.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArtifactCollector,
  type ArtifactCollectorOptions,
  type ProfileSpecInput,
  type TargetReport,
} from '../../src/collect/index.js';
import type { SandboxEntry, SandboxPath, SandboxProcessSpec } from '../../src/testing/sandbox/index.js';
import type { Logger } from '../../src/util/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  addSandboxPod,
  bundleJson,
  bundleText,
  type Env,
  filesIndex,
  sandboxMissing,
  startEnv,
} from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

type FileList = (SandboxEntry & { path: SandboxPath })[];

interface ManifestArtifact {
  path: string;
  status: string;
  reason?: string;
  bytes: number;
  exitCode?: number | null;
  source: { kind: string };
  details?: Record<string, unknown>;
}

function manifest(loc: string): ManifestArtifact[] {
  return bundleJson<{ artifacts: ManifestArtifact[] }>(loc, 'manifest.json').artifacts;
}

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

const small: ProfileSpecInput = {
  name: 'small',
  description: 'a few files',
  items: [
    { id: 'etc', kind: 'file', paths: ['/etc/passwd', '/etc/group', '/etc/hostname'] },
    { id: 'app', kind: 'file', paths: ['/srv/app/*'] },
  ],
};

describe.skipIf(skip)('truthful evidence under attack', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.close();
  }, 180_000);

  async function acquire(
    files: FileList,
    opts: Partial<ArtifactCollectorOptions> = {},
    processes: SandboxProcessSpec[] = [],
  ): Promise<{ report: TargetReport; target: { namespace: string; pod: string; container: string } }> {
    const t = await addSandboxPod(
      env,
      { preset: 'busybox', files, processes },
      { command: ['sleep', '86400'] },
    );
    const collector = new ArtifactCollector({ sink: env.sink, profiles: [small], ...opts });
    const report = await collector.acquire({ kube: env.kube, ...t });
    return { report: report.targets[0] as TargetReport, target: t };
  }

  async function psIn(t: { namespace: string; pod: string; container: string }): Promise<string> {
    const s = await env.kube.exec({ ...t, command: ['ps', '-o', 'pid,args'], stdout: true, stderr: false });
    const parts: Buffer[] = [];
    for await (const c of s.stdout) parts.push(c as Buffer);
    await s.result;
    return Buffer.concat(parts).toString('utf8');
  }

  it('every exec ends with exit 137 after perfect output: nothing it produced (or derived) is complete', async () => {
    // sh, tar, stat and date are replaced by wrappers that do the real work, then exit 137; only
    // the probe is let through so that every phase runs
    const wrap = (tool: string) => `#!/bin/busybox sh\n/bin/busybox ${tool} "$@"\nexit 137\n`;
    const files: FileList = [
      { path: '/srv/app/a.txt', content: 'alpha\n' },
      {
        path: '/usr/local/bin/sh',
        content:
          '#!/bin/busybox sh\ncase "$3" in eksf-probe) exec /bin/busybox sh "$@";; esac\n/bin/busybox sh "$@"\nexit 137\n',
        mode: 0o755,
      },
      { path: '/usr/local/bin/tar', content: wrap('tar'), mode: 0o755 },
      { path: '/usr/local/bin/stat', content: wrap('stat'), mode: 0o755 },
      { path: '/usr/local/bin/date', content: wrap('date'), mode: 0o755 },
    ];
    const { report } = await acquire(files, { profiles: ['triage'] });
    expect(report.status).toBe('partial');
    const arts = manifest(report.location as string);
    const phases: Record<string, RegExp> = {
      volatile: /^containers\/app\/(commands|proc)\//,
      metadata: /^containers\/app\/files\/(listing|stat|bodyfile|findings)/,
      content: /^containers\/app\/files\/(content-|index\.json)/,
    };
    for (const [phase, re] of Object.entries(phases)) {
      const mine = arts.filter((a) => re.test(a.path));
      expect(mine.length, phase).toBeGreaterThan(0);
      for (const a of mine) expect(a.status, `${phase} ${a.path}`).not.toBe('complete');
    }
    // API state and the probe are not from the cut execs
    expect(arts.find((a) => a.path === 'pod/pod.json')?.status).toBe('complete');
  }, 120_000);

  it('a listing whose shell is killed (exit 137) is not complete, nor is the bodyfile built from it', async () => {
    const files: FileList = [{ path: '/srv/app/a.txt', content: 'alpha\n' }];
    for (let i = 0; i < 1500; i++) files.push({ path: `/srv/app/many/f${i}`, content: 'x' });
    // a planted watcher kills the collector's listing shell as soon as it sees it
    const watcher: SandboxProcessSpec = {
      argv: [
        '/bin/sh',
        '-c',
        'while :; do for p in /proc/[0-9]*; do l=; read -r l <$p/cmdline 2>/dev/null; case "$l" in *eksf-l[i]st*) kill -9 ${p##*/} 2>/dev/null;; esac; done; done',
      ],
    };
    const { report } = await acquire(
      files,
      {
        profiles: [
          {
            name: 'list',
            description: 'listing',
            items: [{ id: 'app', kind: 'file', paths: ['/srv/app/**'], content: 'metadata' }],
          },
        ],
      },
      [watcher],
    );
    const arts = manifest(report.location as string);
    const listings = arts.filter((a) => /files\/listing/.test(a.path));
    expect(listings.length).toBeGreaterThan(0);
    expect(
      listings.some((a) => a.status !== 'complete'),
      JSON.stringify(listings),
    ).toBe(true);
    expect(arts.find((a) => a.path.endsWith('files/bodyfile.txt'))?.status).not.toBe('complete');
    expect(report.status).toBe('partial');
  }, 60_000);

  it('a stat killed by the no-progress watchdog is failed, its children are gone, and the bodyfile says so', async () => {
    const files: FileList = [
      { path: '/srv/app/a.txt', content: 'alpha\n' },
      // stat starts a helper that would outlive a plain kill, then hangs silently
      { path: '/usr/local/bin/stat', content: '#!/bin/sh\nsleep 617 &\nsleep 613\n', mode: 0o755 },
    ];
    const { report, target } = await acquire(files, { limits: { noProgressMs: 1000 } });
    const arts = manifest(report.location as string);
    const stats = arts.filter((a) => /files\/stat-/.test(a.path));
    expect(stats.length).toBeGreaterThan(0);
    for (const s of stats) {
      expect(s.status).toBe('failed');
      expect(s.reason).toMatch(/watchdog/);
    }
    expect(arts.find((a) => a.path.endsWith('files/bodyfile.txt'))?.status).not.toBe('complete');
    expect(report.status).toBe('partial');
    expect(report.reasons.join('\n')).toMatch(/stat/);
    // no process of ours survives the watchdog
    const ps = await psIn(target);
    expect(ps).not.toMatch(/sleep 61[37]/);
  }, 60_000);

  it('flooding one early root leaves every other root listed and collected', async () => {
    const files: FileList = [
      { path: '/srv/app/late.txt', content: 'late root\n' },
      { path: '/opt/tool/bin/x', content: 'opt root\n' },
    ];
    for (let i = 0; i < 1500; i++)
      files.push({ path: `/tmp/flood/${String(i).padStart(5, '0')}`, content: '' });
    const { report } = await acquire(files, {
      profiles: [
        {
          name: 'flood',
          description: 'flooded /tmp first',
          items: [
            { id: 'tmp', kind: 'file', paths: ['/tmp/**'], content: 'metadata' },
            { id: 'srv', kind: 'file', paths: ['/srv/app/*'] },
            { id: 'opt', kind: 'file', paths: ['/opt/**'] },
          ],
        },
      ],
      limits: { maxEntriesPerArtifact: 500 },
    });
    const loc = report.location as string;
    const rows = filesIndex(loc);
    expect(rows.find((r) => r.path === '/srv/app/late.txt')?.status).toBe('copied');
    expect(rows.find((r) => r.path === '/opt/tool/bin/x')?.status).toBe('copied');
    const body = bundleText(loc, 'containers/app/files/bodyfile.txt');
    expect(body).toContain('|/srv/app/late.txt|');
    expect(body).toContain('|/opt/tool/bin/x|');
    const bodyRec = manifest(loc).find((a) => a.path.endsWith('files/bodyfile.txt'));
    expect(bodyRec?.status).toBe('truncated');
    expect(bodyRec?.reason).toContain('/tmp');
    expect(report.status).toBe('partial');
    expect(report.reasons.join('\n')).toMatch(/\/tmp/);
  }, 60_000);

  it('a file name with terminal escapes does not turn a clean content tar into a failure', async () => {
    const name = '/srv/app/\x1b]0;owned\x07\x1b[31mred.txt';
    const { report } = await acquire([
      { path: '/srv/app/a.txt', content: 'alpha\n' },
      { path: name, content: 'escape\n' },
    ]);
    const loc = report.location as string;
    expect(filesIndex(loc).find((r) => r.path === name)?.status).toBe('copied');
    const tarRec = manifest(loc).find((a) => /files\/content-\d+\.tar$/.test(a.path));
    expect(tarRec?.status, tarRec?.reason).toBe('complete');
    expect(report.status, JSON.stringify(report.reasons)).toBe('complete');
  }, 60_000);

  it('a tar that sends a valid archive but exits 3 is not complete', async () => {
    const { report } = await acquire([
      { path: '/srv/app/a.txt', content: 'alpha\n' },
      { path: '/usr/local/bin/tar', content: '#!/bin/sh\n/bin/tar "$@"\nexit 3\n', mode: 0o755 },
    ]);
    const tarRec = manifest(report.location as string).find((a) => /files\/content-\d+\.tar$/.test(a.path));
    expect(tarRec?.status).not.toBe('complete');
    expect(tarRec?.exitCode).toBe(3);
    expect(report.status).toBe('partial');
  }, 60_000);

  it('pod spec env values and last-applied-configuration are hashed like environ values (kept with copySensitive)', async () => {
    const SECRET = 'hunter2-pod-spec-secret-value';
    const podName = `secret-env-${process.pid}`;
    const lastApplied = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      spec: { containers: [{ name: 'app', env: [{ name: 'DB_PASSWORD', value: SECRET }] }] },
    });
    await env.cluster.addPod({
      namespace: 'default',
      name: podName,
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied },
      containers: [
        {
          name: 'app',
          image: 'busybox:1.36',
          runtime: 'sandbox',
          options: { preset: 'busybox' },
          command: ['sleep', '86400'],
          env: { DB_PASSWORD: SECRET, PLAIN: 'visible' },
        },
      ],
    });
    const run = async (copySensitive: boolean) => {
      const c = new ArtifactCollector({ sink: env.sink, profiles: ['pod-state'], copySensitive });
      const r = (await c.acquire({ kube: env.kube, namespace: 'default', pod: podName, container: 'app' }))
        .targets[0] as TargetReport;
      return r.location as string;
    };
    const hashed = await run(false);
    for (const f of allFiles(hashed)) expect(readFileSync(f, 'latin1').includes(SECRET), f).toBe(false);
    const pod = bundleJson<{
      metadata: { annotations: Record<string, string> };
      spec: { containers: { env: { name: string; value: string }[] }[] };
    }>(hashed, 'pod/pod.json');
    const envList = pod.spec.containers[0]?.env ?? [];
    expect(envList.find((e) => e.name === 'DB_PASSWORD')?.value).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(pod.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toMatch(
      /^sha256:[0-9a-f]{64}$/,
    );
    const kept = await run(true);
    expect(bundleText(kept, 'pod/pod.json')).toContain(SECRET);
  }, 60_000);

  it('logs through the supplied logger: steps at debug, degradations at warn, secrets redacted', async () => {
    const calls: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
    const logger: Logger = {
      debug: (obj, msg) => calls.push({ level: 'debug', obj, msg }),
      info: (obj, msg) => calls.push({ level: 'info', obj, msg }),
      warn: (obj, msg) => calls.push({ level: 'warn', obj, msg }),
      error: (obj, msg) => calls.push({ level: 'error', obj, msg }),
    };
    const SECRET = 'AKIAIOSFODNN7EXAMPLE';
    await acquire(
      [
        { path: '/srv/app/a.txt', content: 'alpha\n' },
        // a hanging tar whose stderr carries a credential
        {
          path: '/usr/local/bin/tar',
          content: `#!/bin/sh\necho "aws_secret_access_key=${SECRET}" >&2\nexec sleep 600\n`,
          mode: 0o755,
        },
      ],
      { logger, limits: { noProgressMs: 1000 } },
    );
    expect(calls.filter((c) => c.level === 'debug').length).toBeGreaterThan(3);
    expect(calls.some((c) => c.level === 'warn' && JSON.stringify(c).includes('watchdog'))).toBe(true);
    expect(JSON.stringify(calls)).not.toContain(SECRET);
  }, 60_000);

  it('a pod that does not exist is failed with "pod not found"', async () => {
    const c = new ArtifactCollector({ sink: env.sink, profiles: ['triage'] });
    const r = (
      await c.acquire({ kube: env.kube, namespace: 'default', pod: 'no-such-pod', container: 'app' })
    ).targets[0] as TargetReport;
    expect(r.status).toBe('failed');
    expect(r.reasons.join('\n')).toMatch(/pod not found/);
    expect(r.reasons.join('\n')).not.toMatch(/ephemeral/);
    expect(r.needsEphemeralContainer).toBe(false);
  }, 60_000);

  it('a container that does not exist is failed with "container not found"', async () => {
    const t = await addSandboxPod(env, { preset: 'busybox' }, { command: ['sleep', '86400'] });
    const c = new ArtifactCollector({ sink: env.sink, profiles: ['triage'] });
    const r = (await c.acquire({ kube: env.kube, namespace: t.namespace, pod: t.pod, container: 'ghost' }))
      .targets[0] as TargetReport;
    expect(r.status).toBe('failed');
    expect(r.reasons.join('\n')).toMatch(/container not found/);
    expect(r.needsEphemeralContainer).toBe(false);
  }, 60_000);
});
