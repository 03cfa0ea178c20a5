/**
 * The whole-filesystem timeline (`wholeFilesystem` file items, in `full`): every top-level
 * directory and mount point is its own root with its own budget, pseudo filesystems stay out,
 * findings cover the whole tree, and a flooded or cut root says so.
 */
import { describe, expect, it } from 'vitest';
import {
  ArtifactCollector,
  type ArtifactCollectorOptions,
  type ProfileSpecInput,
  type TargetReport,
} from '../../src/collect/index.js';
import { applyStatOutput, type ListedEntry, renderBodyfile } from '../../src/collect/listing.js';
import { MAX_TIMELINE_ROOTS, parseMountinfo, timelineRoots } from '../../src/collect/run/phases/timeline.js';
import type { SandboxEntry, SandboxPath } from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { acquireSandbox, bundleJson, bundleText, sandboxMissing, useEnv } from './support.js';

type FileList = (SandboxEntry & { path: SandboxPath })[];

const timeline: ProfileSpecInput = {
  name: 'timeline',
  description: 'whole-filesystem bodyfile',
  items: [{ id: 'bodyfile', kind: 'file', paths: ['/'], wholeFilesystem: true, content: 'metadata' }],
};

interface BodyRecord {
  path: string;
  status: string;
  reason?: string;
  details: {
    roots: { root: string; status: string }[];
    wholeFilesystem?: { roots: string[]; excluded: { mountPoint: string; fsType: string }[] };
    incompleteRoots?: string[];
  };
}

describe('timeline pieces (pure)', () => {
  it('mountinfo: escapes decoded, hostile mount points rejected', () => {
    const text = [
      '1 0 0:1 / / rw - overlay overlay rw',
      '2 1 0:2 / /proc rw - proc proc rw',
      '3 1 0:3 / /sys ro - sysfs sysfs ro',
      '4 3 0:4 / /sys/fs/cgroup ro - cgroup2 cgroup rw',
      '5 1 0:5 / /dev rw - tmpfs tmpfs rw',
      '6 5 0:6 / /dev/pts rw - devpts devpts rw',
      '7 5 0:7 / /dev/shm rw - tmpfs shm rw',
      '8 1 8:1 / /var/www\\040html rw - ext4 /dev/sda1 rw',
      '9 1 8:1 / /../escape rw - ext4 /dev/sda1 rw',
      'garbage line',
    ].join('\n');
    const m = parseMountinfo(text);
    expect(m.map((x) => x.mountPoint)).toEqual([
      '/',
      '/proc',
      '/sys',
      '/sys/fs/cgroup',
      '/dev',
      '/dev/pts',
      '/dev/shm',
      '/var/www html',
    ]);
    expect(timelineRoots(['/bin', '/dev', '/proc', '/sys', '/usr'], m)).toEqual([
      '/bin',
      '/dev',
      '/dev/shm',
      '/usr',
      '/var/www html',
    ]);
    // without mountinfo the kernel's trees are still left out by name
    expect(timelineRoots(['/bin', '/proc', '/sys'], [])).toEqual(['/bin']);
  });

  it('birth time from GNU stat is kept; busybox (letter back) and 0 are unknown', () => {
    const e = (path: string): ListedEntry => ({ path, type: '?', requestable: true });
    const a = e('/a');
    const b = e('/b');
    const c = e('/c');
    const out = [
      '10|81a4|1|0|0|5|100|200|300|1700000000|/a',
      '11|81a4|1|0|0|5|100|200|300|W|/b',
      '12|81a4|1|0|0|5|100|200|300|0|/c',
      '',
    ].join('\n');
    expect(
      applyStatOutput(
        out,
        [a, b, c].map((entry) => ({ full: entry.path, entry })),
      ),
    ).toBe(3);
    expect(a.birth).toBe(1_700_000_000);
    expect(b.birth).toBeUndefined();
    expect(c.birth).toBeUndefined();
    expect(renderBodyfile([a, b]).split('\n')[0]).toBe('0|/a|10|-rw-r--r--|0|0|5|100|200|300|1700000000');
  });
});

const skip = skipWithoutPeer('bwrap', sandboxMissing());

describe.skipIf(skip)('whole-filesystem timeline (sandbox)', () => {
  const env = useEnv();

  async function acquire(
    files: FileList,
    opts: Partial<Omit<ArtifactCollectorOptions, 'sink'>> = {},
  ): Promise<{ report: TargetReport; loc: string; body: string; rec: BodyRecord }> {
    const r = await acquireSandbox(env, { preset: 'busybox', files }, { profiles: [timeline], ...opts });
    const rec = r.artifacts.find(
      (a) => a.path === 'containers/app/files/bodyfile.txt',
    ) as unknown as BodyRecord;
    return {
      report: r.report,
      loc: r.loc,
      body: bundleText(r.loc, 'containers/app/files/bodyfile.txt'),
      rec,
    };
  }

  const deep = `/opt/${Array.from({ length: 20 }, (_, i) => `d${i}`).join('/')}/payload`;
  const planted: FileList = [
    { path: '/usr/bin/.sshd', content: '#!/bin/sh\n', mode: 0o4755 },
    { path: '/var/www/html/uploads/shell.php', content: '<?php system($_GET["c"]); ?>\n' },
    { path: '/srv/data/open.sh', content: 'echo\n', mode: 0o777 },
    { path: deep as SandboxPath, content: 'deep\n' },
    { path: '/evil-at-root', content: 'x\n' },
  ];

  it('covers / outside pseudo filesystems: SUID in /usr/bin, a webshell, a deep file, a file at the top', async () => {
    const { report, loc, body, rec } = await acquire(planted);
    expect(rec.status, rec.reason).toBe('complete');
    expect(report.status, JSON.stringify(report.reasons)).toBe('complete');
    for (const p of [
      '/usr/bin/.sshd',
      '/var/www/html/uploads/shell.php',
      deep,
      '/evil-at-root',
      '/bin/busybox',
    ])
      expect(body).toContain(`|${p}|`);
    expect(body).not.toMatch(/\|\/proc\/\d+\//);
    expect(body).not.toMatch(/\|\/sys\//);
    const w = rec.details.wholeFilesystem;
    expect(w?.roots).toContain('/usr');
    expect(w?.roots).not.toContain('/proc');
    expect(w?.excluded.map((x) => x.mountPoint)).toContain('/proc');
    const findings = bundleJson<{ setuid: string[]; worldWritable: string[] }>(
      loc,
      'containers/app/files/findings.json',
    );
    expect(findings.setuid).toContain('/usr/bin/.sshd');
    // stat is fed on stdin (`xargs -0`): one exec for the whole tree here, not one per 8 KiB of argv
    const stats = bundleJson<{ artifacts: { path: string; argv?: string[] }[] }>(
      loc,
      'manifest.json',
    ).artifacts.filter((a) => a.path.includes('files/stat-'));
    expect(stats.length).toBe(1);
    expect(stats[0]?.argv?.slice(0, 3)).toEqual(['xargs', '-0', 'stat']);
    expect(findings.worldWritable).toContain('/srv/data/open.sh');
  }, 120_000);

  it('a flood in one top-level directory cuts only that root; the rest of the tree is listed', async () => {
    const files: FileList = [...planted];
    for (let i = 0; i < 1200; i++) files.push({ path: `/data/f${i}` as SandboxPath, content: '' });
    const { report, body, rec } = await acquire(files, { limits: { maxEntriesPerArtifact: 800 } });
    expect(rec.status).toBe('truncated');
    expect(rec.details.incompleteRoots).toEqual(['/data']);
    expect(rec.reason).toContain('/data');
    for (const p of ['/usr/bin/.sshd', '/var/www/html/uploads/shell.php', deep])
      expect(body).toContain(`|${p}|`);
    expect(report.status).toBe('partial');
  }, 120_000);

  it('a target with more names than its listing budget: the rest is recorded as not listed, never dropped', async () => {
    const files: FileList = [...planted];
    for (let i = 0; i < 600; i++) files.push({ path: `/data/f${i}` as SandboxPath, content: '' });
    const { report, rec } = await acquire(files, { limits: { maxListedEntriesPerTarget: 400 } });
    expect(rec.status).toBe('truncated');
    expect(rec.reason).toMatch(/listing budget of 400 names is spent/);
    expect((rec.details.incompleteRoots ?? []).length).toBeGreaterThan(0);
    const listed = bundleText(report.location as string, 'containers/app/files/bodyfile.txt')
      .trim()
      .split('\n');
    expect(listed.length).toBeLessThanOrEqual(400);
    expect(report.status).toBe('partial');
  }, 120_000);

  it('more top-level directories than the timeline lists roots: the rest are named, never silently left out', async () => {
    const files: FileList = [{ path: '/usr/bin/.sshd', content: '#!/bin/sh\n', mode: 0o4755 }];
    for (let i = 0; i < MAX_TIMELINE_ROOTS + 40; i++)
      files.push({ path: `/a${String(i).padStart(5, '0')}` as SandboxPath, type: 'dir' });
    const { report, rec, body } = await acquire(files);
    expect(rec.status).toBe('truncated');
    expect(rec.reason).toMatch(/top-level directories and mount points not listed \(at most 4096 roots\)/);
    expect(rec.reason).toMatch(/a0\d{4}/);
    // planted names that sort first cannot push the system's directories past the cap
    expect(body).toContain('|/usr/bin/.sshd|');
    expect(report.status).toBe('partial');
  }, 300_000);

  it('a listing shell killed after perfect output of the whole tree is not complete', async () => {
    const files: FileList = [
      ...planted,
      {
        path: '/usr/local/bin/sh',
        content:
          '#!/bin/busybox sh\nif [ "$3" = eksf-list ]; then /bin/busybox sh "$@"; exit 137; fi\nexec /bin/busybox sh "$@"\n',
        mode: 0o755,
      },
    ];
    const { report, rec } = await acquire(files);
    expect(rec.status).not.toBe('complete');
    expect(report.status).toBe('partial');
  }, 120_000);

  it('a mountinfo that cannot be read leaves /proc and /sys out by name, and the timeline truncated', async () => {
    const files: FileList = [
      ...planted,
      {
        path: '/usr/local/bin/sh',
        content: '#!/bin/busybox sh\nif [ "$3" = eksf-mounts ]; then exit 0; fi\nexec /bin/busybox sh "$@"\n',
        mode: 0o755,
      },
    ];
    const { body, rec } = await acquire(files);
    expect(rec.status).toBe('truncated');
    expect(rec.reason).toMatch(/mountinfo unreadable/);
    expect(body).not.toMatch(/\|\/proc\/\d+\//);
    expect(body).toContain('|/usr/bin/.sshd|');
  }, 120_000);

  it('`wholeFilesystem` with other paths is refused with a message that says what to write', async () => {
    expect(
      () =>
        new ArtifactCollector({
          sink: env.sink,
          profiles: [
            {
              name: 'bad',
              description: 'x',
              items: [{ id: 'b', kind: 'file', paths: ['/etc'], wholeFilesystem: true, content: 'metadata' }],
            },
          ],
        }),
    ).toThrow(/set paths to \['\/'\]/);
  });
});
