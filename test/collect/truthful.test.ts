/**
 * Truthful evidence under attack (issue 13): a container that knows the collector's source tries
 * to get an artifact recorded `complete` when it is not, to hide roots behind a flood, to leave
 * processes behind, or to make the bundle carry secrets. Each case failed on the collector before
 * the pipeline of phases.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ArtifactCollector,
  type ArtifactCollectorOptions,
  type ProfileSpecInput,
  type TargetReport,
} from '../../src/collect/index.js';
import type { SandboxEntry, SandboxPath, SandboxProcessSpec } from '../../src/testing/sandbox/index.js';
import type { Logger } from '../../src/util/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { addSandboxPod, bundleJson, bundleText, filesIndex, sandboxMissing, useEnv } from './support.js';

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
  const env = useEnv(180_000);

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

  /** A `sh` first in PATH that runs the real shell, except for the payload it targets. */
  function shWrapper(when: string, then: string): FileList[number] {
    return {
      path: '/usr/local/bin/sh',
      content: `#!/bin/busybox sh\nif [ "$3" = eksf-run ] && ${when}; then ${then}; fi\nexec /bin/busybox sh "$@"\n`,
      mode: 0o755,
    };
  }

  it('a listing whose shell is killed (exit 137) after all its output is not complete, nor the bodyfile', async () => {
    const { report } = await acquire(
      [
        { path: '/srv/app/a.txt', content: 'alpha\n' },
        shWrapper('[ "$8" = eksf-list ]', '/bin/busybox sh "$@"; exit 137'),
      ],
      {
        profiles: [
          {
            name: 'list',
            description: 'listing',
            items: [{ id: 'app', kind: 'file', paths: ['/srv/app/**'], content: 'metadata' }],
          },
        ],
      },
    );
    const arts = manifest(report.location as string);
    const listings = arts.filter((a) => /files\/listing\//.test(a.path));
    expect(listings.length).toBeGreaterThan(0);
    for (const l of listings) {
      expect(l.status).toBe('truncated');
      expect(l.exitCode).toBe(137);
    }
    expect(arts.find((a) => a.path.endsWith('files/bodyfile.txt'))?.status).toBe('truncated');
    expect(report.status).toBe('partial');
    expect(report.reasonDetails.map((r) => r.code)).toContain('listing-root-truncated');
  }, 60_000);

  const hashing = (maxHashBytes?: number): ProfileSpecInput => ({
    name: 'exe-hashes',
    description: 'executable hashes only',
    items: [
      {
        id: 'procs',
        kind: 'proc',
        perProcess: {
          fields: ['comm'],
          exe: 'none',
          hashMapped: true,
          ...(maxHashBytes ? { maxHashBytes } : {}),
        },
      },
    ],
  });
  interface ExeDoc {
    hashes: { sha256?: string; whole: boolean; reason?: string }[];
    notHashed: unknown[];
    reasons: string[];
  }

  it('executable hashes cut in the middle of a file (clean exit 0) are truncated, the cut hash marked a prefix', async () => {
    const { report } = await acquire(
      [shWrapper('[ "$8" = eksf-exepull ]', '/bin/busybox sh "$@" | /bin/busybox head -c 100000; exit 0')],
      { profiles: [hashing()] },
    );
    const a = manifest(report.location as string).find(
      (x) => x.path === 'containers/app/proc/exe-hashes.json',
    );
    expect(a?.status).toBe('truncated');
    const doc = bundleJson<ExeDoc>(report.location as string, 'containers/app/proc/exe-hashes.json');
    const cut = doc.hashes.filter((h) => !h.whole);
    expect(cut.length, JSON.stringify(doc).slice(0, 1500)).toBe(1);
    expect(cut[0]?.sha256).toBeUndefined();
    expect(doc.reasons.join(' ')).toMatch(/stream ended inside a frame/);
    expect(report.status).toBe('partial');
  }, 60_000);

  it('executable hashes over their byte budget are truncated, never complete, and say what was left out', async () => {
    const { report } = await acquire([], { profiles: [hashing(64 * 1024)] });
    const a = manifest(report.location as string).find(
      (x) => x.path === 'containers/app/proc/exe-hashes.json',
    );
    expect(a?.status).toBe('truncated');
    expect(a?.reason).toMatch(/byte cap of 65536 reached/);
    const doc = bundleJson<ExeDoc>(report.location as string, 'containers/app/proc/exe-hashes.json');
    const prefix = doc.hashes.filter((h) => !h.whole);
    expect(prefix.length).toBe(1);
    expect(prefix[0]?.reason).toMatch(/budget/);
  }, 60_000);

  it('an environment policy variable never exposes a proxy password; other values stay hashed', async () => {
    const { report } = await acquire([], { profiles: ['triage'] }, [
      {
        argv: ['/tmp/.x/sleep', '3600'],
        binary: 'busybox',
        env: {
          HTTPS_PROXY: 'http://user:hunter2-proxy-pass@203.0.113.9:3128',
          NODE_OPTIONS: '--require /tmp/.x/hook.js',
          DB_PASSWORD: 'db-password-never-stored',
        },
      },
    ]);
    const loc = report.location as string;
    const flags = bundleJson<{ variables: { name: string; value: string; category: string }[] }>(
      loc,
      'containers/app/proc/environment-findings.json',
    );
    expect(flags.variables).toContainEqual(
      expect.objectContaining({
        name: 'NODE_OPTIONS',
        value: '--require /tmp/.x/hook.js',
        category: 'runtime-option',
      }),
    );
    const proxy = flags.variables.find((v) => v.name === 'HTTPS_PROXY');
    expect(proxy?.category).toBe('proxy');
    expect(proxy?.value).toContain('203.0.113.9:3128');
    for (const f of allFiles(loc)) {
      const text = readFileSync(f, 'latin1');
      expect(text, f).not.toContain('hunter2-proxy-pass');
      expect(text, f).not.toContain('db-password-never-stored');
    }
  }, 60_000);

  it('a stat that hangs silently is ended by the no-progress watchdog, failed, and the bodyfile says so', async () => {
    const { report } = await acquire(
      [
        { path: '/srv/app/a.txt', content: 'alpha\n' },
        shWrapper('{ [ "$5" = stat ] || [ "$5" = xargs ]; }', 'exec sleep 613'),
      ],
      { limits: { noProgressMs: 1000 } },
    );
    const arts = manifest(report.location as string);
    const stats = arts.filter((a) => /files\/stat-/.test(a.path));
    expect(stats.length).toBeGreaterThan(0);
    for (const s of stats) {
      expect(s.status).toBe('failed');
      expect(s.bytes).toBe(0);
      expect(s.reason).toMatch(/watchdog/);
    }
    expect(arts.find((a) => a.path.endsWith('files/bodyfile.txt'))?.status).toBe('failed');
    expect(report.status).toBe('partial');
    const codes = report.reasonDetails.map((r) => r.code);
    expect(codes).toContain('watchdog');
    // the hijacked shell never said which process group it ran: the report and custody do not pretend
    expect(codes).toContain('cleanup-not-guaranteed');
    expect(bundleText(report.location as string, 'custody.json')).toMatch(/processes may survive/);
  }, 60_000);

  it('after a watchdog, nothing the collector started is left running in the target', async () => {
    const { report, target } = await acquire([{ path: '/srv/app/a.txt', content: 'alpha\n' }], {
      limits: { noProgressMs: 1000 },
      profiles: [
        {
          name: 'spawner',
          description: 'a command that starts a child and goes silent',
          phase: 'volatile',
          async collect(ctx) {
            const r = await ctx.exec(['sh', '-c', 'sleep 617 & sleep 613']);
            await ctx.writeArtifact('spawner.out', r.stdout, { from: [r] });
          },
        },
      ],
    });
    const ps = await psIn(target);
    expect(ps, ps).not.toMatch(/sleep 61[37]/);
    expect(report.reasonDetails.map((r) => r.code)).not.toContain('cleanup-not-guaranteed');
    const out = manifest(report.location as string).find((a) => a.path.endsWith('spawner.out'));
    expect(out?.status).toBe('failed');
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
      shWrapper('[ "$5" = tar ]', '/bin/busybox sh "$@"; exit 3'),
    ]);
    const tarRec = manifest(report.location as string).find((a) => /files\/content-\d+\.tar$/.test(a.path));
    expect(tarRec?.status).not.toBe('complete');
    expect(tarRec?.exitCode).toBe(3);
    expect(report.status).toBe('partial');
  }, 60_000);

  it('a tar that leaves out a requested file but ends cleanly: the row, the index and the target say so', async () => {
    const { report } = await acquire([
      { path: '/srv/app/a.txt', content: 'alpha\n' },
      // a valid archive of something else, exit 0
      shWrapper('[ "$5" = tar ]', 'exec /bin/busybox tar cf - -- /etc/hostname 2>/dev/null'),
    ]);
    const loc = report.location as string;
    expect(filesIndex(loc).find((r) => r.path === '/srv/app/a.txt')?.status).toBe('failed');
    const idx = manifest(loc).find((a) => a.path === 'containers/app/files/index.json');
    expect(idx?.status).toBe('truncated');
    expect(report.status).toBe('partial');
    expect(report.reasonDetails.map((r) => r.code)).toContain('artifact-failed');
  }, 60_000);

  /**
   * A busybox pod whose entrypoint runs `script` (which writes `marker` when it is done) before
   * sleeping; resolves with the marker's text once it is there.
   */
  async function preparedPod(
    script: string,
    marker: string,
  ): Promise<{ t: { namespace: string; pod: string; container: string }; value: string }> {
    const t = await addSandboxPod(
      env,
      { preset: 'busybox', files: [{ path: '/srv/app/a.txt', content: 'alpha\n' }] },
      { command: ['sh', '-c', `${script}; exec sleep 86400`] },
    );
    for (let i = 0; i < 100; i++) {
      const s = await env.kube.exec({ ...t, command: ['cat', marker], stdout: true, stderr: false });
      const parts: Buffer[] = [];
      for await (const c of s.stdout) parts.push(c as Buffer);
      await s.result.catch(() => undefined);
      const value = Buffer.concat(parts).toString().trim();
      if (value) return { t, value };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the pod never wrote ${marker}: ${script}`);
  }

  /** A pod whose entrypoint hides a sleeper by mounting `over` on its /proc directory. */
  async function hidingPod(
    over: string,
  ): Promise<{ t: { namespace: string; pod: string; container: string }; pid: string }> {
    const { t, value } = await preparedPod(
      `sleep 86401 & p=$!; mkdir -p /tmp/hide; mount --bind ${over} /proc/$p && echo $p > /tmp/hidden`,
      '/tmp/hidden',
    );
    if (!/^\d+$/.test(value)) throw new Error(`not a pid: ${value}`);
    return { t, pid: value };
  }

  it('a process shown as another by a bind over its /proc directory: its files failed, the table and the target not complete', async () => {
    const { t, pid } = await hidingPod('/proc/1');
    const memory: ProfileSpecInput = {
      name: 'mem',
      description: 'the memory of the hidden pid, asked for by pid',
      items: [{ id: 'memory', kind: 'memory', select: 'none', pids: [Number(pid)] }],
    };
    const collector = new ArtifactCollector({ sink: env.sink, profiles: ['triage', memory] });
    const report = (await collector.acquire({ kube: env.kube, ...t })).targets[0] as TargetReport;
    const loc = report.location as string;
    const arts = manifest(loc);
    const table = arts.find((a) => a.path === 'containers/app/proc/processes.json');
    expect(table?.status).toBe('truncated');
    expect(table?.reason).toContain(`a mount covers process ${pid}'s /proc directory (/proc/${pid} (proc `);
    const doc = bundleJson<{ mountsOverProc: { mountPoint: string; pid?: string }[] }>(
      loc,
      'containers/app/proc/processes.json',
    );
    expect(doc.mountsOverProc).toEqual([expect.objectContaining({ mountPoint: `/proc/${pid}`, pid })]);
    // what was read under /proc/<pid> is pid 1's, recorded for the responder but never complete
    const mine = arts.filter((a) => a.path.startsWith(`containers/app/proc/${pid}/`));
    expect(mine.length).toBeGreaterThan(0);
    for (const a of mine) expect(a.status, a.path).toBe('failed');
    // the other processes' files are untouched; documents over every process are not complete
    expect(arts.find((a) => a.path === 'containers/app/proc/1/status')?.status).toBe('complete');
    for (const doc of ['proc/exe-hashes.json', 'proc/environment-findings.json']) {
      const rec = arts.find((a) => a.path === `containers/app/${doc}`);
      expect(rec, doc).toBeDefined();
      expect(rec?.status, doc).not.toBe('complete');
    }
    expect(report.status).toBe('partial');
    expect(
      report.reasonDetails.some((r) => r.code === 'volatile-anomaly' && r.text.includes(`/proc/${pid}`)),
    ).toBe(true);
    // /proc/<pid>/mem there is pid 1's memory: never stored as this pid's core
    expect(arts.some((a) => a.path === `containers/app/memory/${pid}.core`)).toBe(false);
    const sel = bundleJson<{ processes: { pid: number; status: string; reason?: string }[] }>(
      loc,
      'containers/app/memory/selection.json',
    );
    expect(sel.processes).toEqual([
      expect.objectContaining({
        pid: Number(pid),
        status: 'not-read',
        reason: 'a mount covers its /proc directory',
      }),
    ]);
    expect(arts.find((a) => a.path === 'containers/app/memory/selection.json')?.status).not.toBe('complete');
  }, 60_000);

  it('a process hidden by an empty directory over its /proc directory: the table is not complete', async () => {
    const { t, pid } = await hidingPod('/tmp/hide');
    const collector = new ArtifactCollector({ sink: env.sink, profiles: ['triage'] });
    const report = (await collector.acquire({ kube: env.kube, ...t })).targets[0] as TargetReport;
    const table = manifest(report.location as string).find(
      (a) => a.path === 'containers/app/proc/processes.json',
    );
    expect(table?.status).toBe('truncated');
    expect(table?.reason).toContain(`/proc/${pid}`);
    expect(report.status).toBe('partial');
  }, 60_000);

  it('a tmpfs over /proc with a forged process directory: the process table is never complete', async () => {
    const { t } = await preparedPod(
      'mount -t tmpfs none /proc && mkdir -p /proc/1 && printf "Name:\\tinit\\nPid:\\t1\\n" > /proc/1/status && echo ok > /tmp/forged',
      '/tmp/forged',
    );
    const collector = new ArtifactCollector({ sink: env.sink, profiles: ['triage'] });
    const report = (await collector.acquire({ kube: env.kube, ...t })).targets[0] as TargetReport;
    const table = manifest(report.location as string).find(
      (a) => a.path === 'containers/app/proc/processes.json',
    );
    // the tmpfs has no self/mountinfo: the check cannot be made, so the table cannot be complete
    // (was: complete, with the forged pid 1 as the only process)
    expect(table?.status).toBe('truncated');
    expect(table?.reason).toMatch(/mounts over \/proc could not be checked/);
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
        shWrapper('[ "$5" = tar ]', `echo "aws_secret_access_key=${SECRET}" >&2; exec sleep 600`),
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
