import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  compareIntegrity,
  decodeExecutableList,
  decodePackageDb,
  decodePulledFiles,
  emptyPackageDb,
  integrityPullArgv,
  normalizeDbPath,
  type PulledFile,
  parseApkInstalled,
  parseDpkgStatus,
  parseMd5sums,
  planIntegrityPull,
} from '../../src/collect/coverage/index.js';
import type { FrameEvent } from '../../src/collect/index.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function pulled(path: string, content: string | null, extra: Partial<PulledFile> = {}): PulledFile {
  if (content === null) return { path, kind: 'absent', bytes: 0, whole: true };
  return {
    path,
    kind: 'file',
    bytes: content.length,
    md5: md5(content),
    sha1: sha1(content),
    sha256: sha256(content),
    whole: true,
    ...extra,
  };
}

describe('package database parsers (hostile)', () => {
  it('dpkg status: installed stanzas and conffiles; not-installed and nameless stanzas', () => {
    const db = emptyPackageDb();
    parseDpkgStatus(
      [
        'Package: procps',
        'Status: install ok installed',
        'Version: 2:4.0.2-3',
        'Conffiles:',
        ` /etc/sysctl.conf ${md5('x')}`,
        ' /etc/old.conf 0123 obsolete',
        '',
        'Package: removed',
        'Status: deinstall ok config-files',
        '',
        'Version: 1',
        '',
        'garbage line',
      ].join('\n'),
      'dpkg:status',
      db,
    );
    expect(db.packages.map((p) => p.name)).toEqual(['procps']);
    expect(db.files.get('/etc/sysctl.conf')?.digest).toBe(md5('x'));
    expect(db.rejected.map((r) => r.reason)).toEqual(
      expect.arrayContaining(['malformed Conffiles line', 'stanza without Package', 'not a field line']),
    );
  });

  it('md5sums: traversal, pseudo filesystems, bad digests and double claims are rejected', () => {
    const db = emptyPackageDb();
    parseMd5sums(
      [
        `${md5('ps')}  usr/bin/ps`,
        `${md5('a')}  ../../etc/shadow`,
        `${md5('a')}  usr/bin/../../etc/passwd`,
        `${md5('a')}  proc/self/environ`,
        `${md5('a')}  usr//bin/x`,
        'zz  usr/bin/y',
        `${md5('a')}  usr/bin/ps`,
      ].join('\n'),
      'procps',
      'dpkg:procps.md5sums',
      db,
    );
    expect([...db.files.keys()]).toEqual(['/usr/bin/ps']);
    const reasons = db.rejected.map((r) => r.reason);
    expect(reasons.filter((r) => r === 'path traversal (..)')).toHaveLength(2);
    expect(reasons).toContain('points into a pseudo filesystem');
    expect(reasons).toContain('non-canonical path (. or //)');
    expect(reasons).toContain('malformed md5sums line');
    expect(reasons.some((r) => r.startsWith('claimed again'))).toBe(true);
    expect(normalizeDbPath('a\nb')).toEqual({ reason: 'control character in path' });
  });

  it('an md5sums file listing a million files is capped, fast, and says so', () => {
    const db = emptyPackageDb();
    const digest = md5('same');
    const line = (i: number) => `${digest}  usr/lib/x/${i}`;
    const text = Array.from({ length: 1_000_000 }, (_, i) => line(i)).join('\n');
    const t0 = Date.now();
    parseMd5sums(text, 'huge', 'dpkg:huge.md5sums', db, { maxFiles: 50_000 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(db.files.size).toBe(50_000);
    expect(db.capped.join()).toMatch(/more than 50000 file entries/);
    const r = compareIntegrity(db, []);
    expect(r.report.status).toBe('partial');
  });

  it('apk installed: Q1 base64 SHA-1 per R: under F:', () => {
    const db = emptyPackageDb();
    const q1 = (s: string) => `Q1${createHash('sha1').update(s).digest('base64')}`;
    parseApkInstalled(
      [
        'C:Q1abc=',
        'P:busybox',
        'V:1.36.1-r5',
        'F:bin',
        'R:busybox',
        `Z:${q1('bb')}`,
        'F:etc',
        'R:securetty',
        'Z:Q1notbase64!!',
        '',
        'P:evil',
        'F:../../root',
        'R:.ssh',
        `Z:${q1('k')}`,
      ].join('\n'),
      db,
    );
    expect(db.packages.map((p) => p.name)).toEqual(['busybox', 'evil']);
    expect(db.files.get('/bin/busybox')).toMatchObject({
      algo: 'sha1',
      digest: sha1('bb'),
      package: 'busybox',
    });
    expect(db.rejected.map((r) => r.reason)).toEqual(
      expect.arrayContaining(['Z: is not Q1 + base64 SHA-1', 'path traversal (..)']),
    );
  });
});

describe('comparison', () => {
  it('modified, missing, symlink, unpackaged, cut reads never ok; usr-merge aliases', async () => {
    const db = emptyPackageDb();
    parseMd5sums(
      [
        `${md5('real ps')}  usr/bin/ps`,
        `${md5('top')}  usr/bin/top`,
        `${md5('gone')}  usr/bin/gone`,
        `${md5('ls')}  bin/ls`,
        `${md5('big')}  usr/lib/libbig.so`,
        `${md5('kill')}  usr/bin/kill`,
      ].join('\n'),
      'procps',
      'dpkg:procps.md5sums',
      db,
    );
    const { report, findings } = compareIntegrity(db, [
      pulled('/usr/bin/ps', 'trojan ps'),
      pulled('/usr/bin/top', 'top'),
      pulled('/usr/bin/gone', null),
      pulled('/usr/bin/ls', 'ls'),
      pulled('/usr/lib/libbig.so', 'bi', { whole: false, reason: 'cut at the cap' }),
      { path: '/usr/bin/kill', kind: 'symlink', bytes: 0, whole: true },
      pulled('/usr/bin/.hidden-miner', 'xmrig'),
    ]);
    const v = Object.fromEntries(report.rows.map((r) => [r.path, r.verdict]));
    expect(v).toEqual({
      '/usr/bin/ps': 'modified',
      '/usr/bin/gone': 'missing',
      '/usr/lib/libbig.so': 'not-checked',
      '/usr/bin/kill': 'replaced-by-symlink',
      '/usr/bin/.hidden-miner': 'unpackaged-executable',
    });
    expect(report.counts.ok).toBe(2);
    expect(report.status).toBe('partial');
    expect(findings.filter((f) => f.severity === 'high').map((f) => f.path)).toEqual([
      '/usr/bin/ps',
      '/usr/bin/kill',
    ]);
    expect(report.rows.find((r) => r.path === '/usr/bin/ps')?.sha256).toBe(sha256('trojan ps'));
  });

  it('the pull plan: bin/lib files of the db, then unclaimed executables; capped', () => {
    const db = emptyPackageDb();
    parseMd5sums(
      [`${md5('a')}  usr/bin/a`, `${md5('b')}  etc/b.conf`, `${md5('c')}  bin/c`].join('\n'),
      'p',
      's',
      db,
    );
    const plan = planIntegrityPull(db, ['/usr/bin/a', '/usr/bin/c', '/usr/bin/new'], { maxFiles: 2 });
    expect(plan.pull).toEqual(['/usr/bin/a', '/bin/c']);
    expect(plan.notChecked).toEqual(['/usr/bin/new']);
    expect(() => integrityPullArgv('sh', ['/usr/bin/../x'])).toThrow(RangeError);
    const batches = integrityPullArgv(
      'sh',
      Array.from({ length: 5000 }, (_, i) => `/usr/lib/${'x'.repeat(50)}${i}`),
    );
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) expect(b.slice(5).join(' ').length).toBeLessThanOrEqual(96 * 1024);
  });
});

describe('stream decoders (hostile)', () => {
  it('a pull that breaks inside a file claims no digest and no wholeness for it', async () => {
    async function* events(): AsyncGenerator<FrameEvent> {
      yield { type: 'begin', header: ['0', 'F'], offset: 0 };
      yield { type: 'data', chunk: Buffer.from('ELF prefix') };
      yield { type: 'error', reason: 'stream cut', offset: 30 };
    }
    const got = await decodePulledFiles(events(), ['/usr/bin/ps'], 1 << 20);
    expect(got.problem).toBe('stream cut');
    expect(got.files[0]).toMatchObject({ path: '/usr/bin/ps', whole: false, bytes: 10 });
    expect(got.files[0]?.md5).toBeUndefined();
    expect(got.files[0]?.sha256).toBeUndefined();
  });

  async function* ev(list: FrameEvent[]): AsyncGenerator<FrameEvent> {
    yield* list;
  }
  it('the database stream: a flood of database files is capped and abandoned', async () => {
    async function* flood(): AsyncGenerator<FrameEvent> {
      for (let i = 0; ; i++) {
        yield { type: 'begin', header: ['M'], offset: 0 };
        yield {
          type: 'data',
          chunk: Buffer.from(`/var/lib/dpkg/info/p${i}.md5sums\0${md5('x')}  usr/bin/p${i}\n`),
        };
        yield { type: 'end', rc: 0, offset: 0, contentBytes: 0 };
      }
    }
    const r = await decodePackageDb(flood(), { maxDbFiles: 1000 });
    expect(r.stoppedEarly).toBe(true);
    expect(r.db.files.size).toBe(1000);
    expect(r.db.capped.join()).toMatch(/more than 1000 database files/);
    const bad = await decodePackageDb(ev([{ type: 'begin', header: ['X'], offset: 0 }]));
    expect(bad.stoppedEarly).toBe(true);
  });

  it('the executable listing: NUL-separated, capped, rejects odd names', async () => {
    async function* src(): AsyncGenerator<Buffer> {
      yield Buffer.from('/usr/bin/a\0/usr/bin/../../x\0/usr/b');
      yield Buffer.from('in/b\0');
      for (;;) yield Buffer.from('/usr/bin/z\0'.repeat(1000));
    }
    const r = await decodeExecutableList(src(), 5000);
    expect(r.paths.slice(0, 2)).toEqual(['/usr/bin/a', '/usr/bin/b']);
    expect(r.rejected).toBe(1);
    expect(r.capped).toBe(true);
    expect(r.paths).toHaveLength(5000);
  });
});
