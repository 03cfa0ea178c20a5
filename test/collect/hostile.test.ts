/**
 * Hostile containers: every item of the receiving-side threat list gives a recorded partial or
 * failed artifact with a reason — never a crash, a hang, or a write outside the bundle.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArtifactCollector,
  type ArtifactCollectorOptions,
  type ArtifactProfile,
  type ProfileSpecInput,
  parseProfileSpec,
  type TargetReport,
} from '../../src/collect/index.js';
import {
  craftedTar,
  HOSTILE_PATHS,
  hostileFiles,
  hostileProcesses,
  type SandboxEntry,
  type SandboxPath,
} from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { addSandboxPod, bundleJson, type Env, filesIndex, sandboxMissing, startEnv } from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

type FileList = (SandboxEntry & { path: SandboxPath })[];

const small: ProfileSpecInput = {
  name: 'small',
  description: 'a few files for hostile-stream tests',
  items: [
    { id: 'etc', kind: 'file', paths: ['/etc/passwd', '/etc/group', '/etc/hostname'] },
    { id: 'app', kind: 'file', paths: ['/srv/app/*'] },
  ],
};

function fakeTar(script: string): FileList {
  return [
    { path: '/srv/app/a.txt', content: 'alpha\n' },
    { path: '/srv/app/b.txt', content: 'bravo\n' },
    { path: HOSTILE_PATHS.tar, content: `#!/bin/sh\n${script}\n`, mode: 0o755 },
  ];
}

describe.skipIf(skip)('hostile containers', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startEnv();
  }, 60_000);
  afterAll(async () => {
    const t0 = Date.now();
    await env?.close();
    process.stderr.write(`env.close took ${Date.now() - t0} ms\n`);
  }, 180_000);

  async function acquire(
    files: FileList,
    opts: Partial<ArtifactCollectorOptions> = {},
    extra: { processes?: boolean } = {},
  ): Promise<TargetReport> {
    const t = await addSandboxPod(
      env,
      { preset: 'busybox', files, ...(extra.processes ? { processes: hostileProcesses() } : {}) },
      { command: ['sleep', '86400'] },
    );
    const collector = new ArtifactCollector({ sink: env.sink, profiles: [small], ...opts });
    const started = Date.now();
    const report = await collector.acquire({ kube: env.kube, ...t });
    expect(Date.now() - started).toBeLessThan(30_000);
    return report.targets[0] as TargetReport;
  }

  it('a replaced tar emitting every extraction attack: indexed and flagged, nothing extracted', async () => {
    const files = hostileFiles({ growing: false, sparseSize: 1024 * 1024 });
    files.push({ path: '/srv/app/a.txt', content: 'alpha\n' });
    const r = await acquire(files, { profiles: [small] });
    expect(r.finalized).toBe(true);
    expect(r.status).toBe('partial');
    expect(r.reasons.join('\n')).toMatch(/tar stream .*content-001\.tar/);
    const loc = r.location as string;
    const idx = bundleJson<{
      ok: boolean;
      reason: string;
      entries: { name: string; type: string; flags: string[] }[];
      streamSha256: string;
      streamBytes: number;
    }>(loc, 'containers/app/files/content-001.index.json');
    expect(idx.ok).toBe(false);
    const flags = (name: string) => idx.entries.find((e) => e.name === name)?.flags ?? [];
    expect(flags('app/../../../../../../tmp/eksf-escape-dotdot.txt')).toContain('dot-dot-name');
    expect(flags('/tmp/eksf-escape-absolute.txt')).toContain('absolute-name');
    expect(flags('app/link-out')).toContain('symlink-not-followed');
    expect(flags('app/hard')).toContain('link-not-followed');
    expect(idx.reason).toMatch(/Unexpected end of data|truncated|not a valid tar/);
    // the raw stream is kept as received and its hash matches the index
    const manifest = bundleJson<{
      artifacts: { path: string; sha256?: string; status: string; reason?: string }[];
    }>(loc, 'manifest.json');
    const raw = manifest.artifacts.find((a) => a.path === 'containers/app/files/content-001.tar');
    expect(raw?.status).toBe('failed');
    expect(raw?.sha256).toBe(idx.streamSha256);
    // nothing escaped, on the host or in the bundle
    for (const p of [
      '/tmp/eksf-escape-dotdot.txt',
      '/tmp/eksf-escape-absolute.txt',
      '/tmp/eksf-escape-through-symlink.txt',
    ]) {
      expect(existsSync(p)).toBe(false);
      expect(existsSync(join(loc, p))).toBe(false);
    }
    const rows = filesIndex(loc);
    expect(rows.find((x) => x.path === '/etc/passwd')?.status).toBe('failed');
  });

  it('garbage instead of tar', async () => {
    const r = await acquire(fakeTar('head -c 300000 /dev/urandom'));
    expect(r.status).toBe('partial');
    const idx = bundleJson<{ ok: boolean; reason: string }>(
      r.location as string,
      'containers/app/files/content-001.index.json',
    );
    expect(idx.ok).toBe(false);
    expect(idx.reason).toMatch(/not a valid tar stream/);
  });

  it('a truncated archive', async () => {
    const archive = craftedTar([{ name: 'srv/app/a.txt', content: 'A'.repeat(5000) }]).subarray(0, 1500);
    const r = await acquire([...fakeTar('cat /srv/cut.tar'), { path: '/srv/cut.tar', content: archive }]);
    const idx = bundleJson<{
      ok: boolean;
      reason: string;
      entries: { name: string; bytes: number; flags: string[] }[];
    }>(r.location as string, 'containers/app/files/content-001.index.json');
    expect(idx.ok).toBe(false);
    expect(idx.reason).toMatch(/Unexpected end of data|truncated/);
    expect(filesIndex(r.location as string).find((x) => x.path === '/srv/app/a.txt')?.status).toBe('failed');
  });

  it('a lying header size', async () => {
    const archive = craftedTar([{ name: 'srv/app/a.txt', content: 'short', claimedSize: 10 * 1024 * 1024 }]);
    const r = await acquire([...fakeTar('cat /srv/liar.tar'), { path: '/srv/liar.tar', content: archive }]);
    const idx = bundleJson<{ ok: boolean; reason: string }>(
      r.location as string,
      'containers/app/files/content-001.index.json',
    );
    expect(idx.ok).toBe(false);
    expect(r.reasons.join('\n')).toMatch(/content-001/);
  });

  it('output that never ends is cut at the artifact cap', async () => {
    const r = await acquire(fakeTar('exec yes endless-output-endless-output'), {
      limits: { maxArtifactBytes: 2 * 1024 * 1024 },
    });
    expect(r.status).toBe('partial');
    const manifest = bundleJson<{
      artifacts: { path: string; bytes: number; status: string; reason?: string }[];
    }>(r.location as string, 'manifest.json');
    const raw = manifest.artifacts.find((a) => a.path === 'containers/app/files/content-001.tar');
    expect(raw?.bytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(['truncated', 'failed']).toContain(raw?.status);
    expect(raw?.reason).toMatch(/cap|not a valid tar/);
  });

  it('a command that hangs silently is stopped by the no-progress watchdog', async () => {
    const r = await acquire(fakeTar('exec sleep 600'), { limits: { noProgressMs: 1000 } });
    expect(r.status).toBe('partial');
    expect(r.reasons.join('\n')).toMatch(/no-progress watchdog/);
    expect(filesIndex(r.location as string).find((x) => x.path === '/srv/app/a.txt')?.status).toBe('failed');
  });

  it('the per-target byte budget stops a target and says so', async () => {
    const files: FileList = [
      { path: '/srv/app/big.bin', content: 'B'.repeat(600_000) },
      { path: '/srv/app/a.txt', content: 'alpha\n' },
    ];
    const r = await acquire(files, { limits: { maxTargetBytes: 300_000 } });
    expect(r.status).toBe('partial');
    expect(r.bytes).toBeLessThanOrEqual(300_000);
    expect(r.reasons.join('\n')).toMatch(/target budget exhausted/);
  });

  it('awkward names, FIFOs, /dev/zero links, loops, sparse and deep paths with real tools', async () => {
    const files = hostileFiles({ growing: true, sparseSize: 3 * 1024 ** 3 }).filter(
      (f) => f.path !== HOSTILE_PATHS.tar,
    );
    const names: ProfileSpecInput = {
      name: 'hostile-items',
      description: 'names, logs, loops, sparse',
      items: [
        { id: 'names', kind: 'file', paths: ['/srv/names/*'] },
        { id: 'logs', kind: 'file', paths: ['/var/log/**'], maxFileSize: '64MB' },
        { id: 'loops', kind: 'file', paths: ['/srv/loop/**', '/srv/deep/**'], maxDepth: 20 },
        { id: 'sparse', kind: 'file', paths: ['/var/lib/data/*'], maxFileSize: '20GB' },
      ],
    };
    const pwnedCheck: ArtifactProfile = {
      name: 'pwned-check',
      description: 'looks for files an injected command would have created',
      phase: 'content',
      async collect(ctx) {
        const res = await ctx.exec(['find', '/', '-xdev', '-name', 'pwned']);
        await ctx.writeArtifact('pwned-check.txt', res.stdout, { item: 'find' });
      },
    };
    const r = await acquire(
      files,
      { profiles: [parseProfileSpec(names), pwnedCheck], limits: { maxArtifactBytes: 64 * 1024 * 1024 } },
      { processes: true },
    );
    expect(r.finalized).toBe(true);
    const loc = r.location as string;
    const rows = filesIndex(loc);
    const byPath = (p: string) => rows.find((x) => x.path === p);
    for (const n of [
      'new\nline.txt',
      `quote'single.txt`,
      'quote"double.txt',
      '$(touch pwned).txt',
      '`id`.txt',
      '-rf',
      '--help',
      ' leading space',
      '*',
      'tab\there',
    ]) {
      expect(byPath(`/srv/names/${n}`)?.status, `${n} ${JSON.stringify(byPath(`/srv/names/${n}`))}`).toBe(
        'copied',
      );
      expect(byPath(`/srv/names/${n}`)?.bytes, n).toBe('hostile name\n'.length);
    }
    expect(rows.find((x) => x.path.startsWith('/srv/names/bad-'))?.reason).toContain('not valid UTF-8');
    expect(readFileSync(join(loc, 'containers/app/pwned-check.txt'), 'utf8')).toBe('');
    expect(byPath(HOSTILE_PATHS.zeroLog)?.status).toBe('link');
    expect(byPath(HOSTILE_PATHS.zeroLog)?.linkTarget).toBe('/dev/zero');
    expect(byPath(HOSTILE_PATHS.fifoLog)).toBeUndefined();
    expect(byPath('/srv/loop/a')?.status).toBe('link');
    const growing = byPath(HOSTILE_PATHS.growing);
    expect(['copied', 'truncated']).toContain(growing?.status);
    // the sparse file is cut by the artifact cap: recorded, not a hang
    const sparse = byPath(HOSTILE_PATHS.sparse);
    expect(sparse).toBeDefined();
    expect(r.status).toBe('partial');
  }, 90_000);
});
