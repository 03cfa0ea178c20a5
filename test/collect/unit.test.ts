/**
 * Pure parts of the collect layer with crafted inputs: schema errors, probe/strategy, glob
 * matching, listing/stat parsing, frame demultiplexing and the hostile tar receiver.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_PROFILE_NAMES,
  BUILTIN_PROFILES,
  chooseStrategy,
  compileGlob,
  demuxFrames,
  type FrameEvent,
  filesArgv,
  jwtRecord,
  loadProfileFile,
  newFrameKey,
  parseListing,
  parseProbeOutput,
  parseProfileText,
  parseSize,
  probeArgv,
  receiveTar,
  renderBodyfile,
  transformEnviron,
  volatileArgv,
} from '../../src/collect/index.js';
import { applyStatOutput } from '../../src/collect/listing.js';
import { ValidationError } from '../../src/errors.js';
import { skipWithoutPeer } from '../support/peers.js';

const noBusybox = skipWithoutPeer(
  'busybox',
  existsSync('/usr/bin/busybox') ? undefined : '/usr/bin/busybox not found (apt-get install busybox-static)',
);

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

describe('declarative profile schema', () => {
  it('parses YAML with sizes in units', () => {
    const spec = parseProfileText(
      `name: web\ndescription: nginx\nitems:\n  - id: logs\n    kind: file\n    paths: [/var/log/nginx/*.log]\n    maxFileSize: 10MB\n  - id: ps\n    kind: command\n    argv: [ps, -ef]\n`,
      'web.yaml',
    );
    expect(spec.items[0]).toMatchObject({ kind: 'file', maxFileSize: 10 * 1024 * 1024 });
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('12 kb')).toBe(12 * 1024);
    expect(parseSize('lots')).toBeUndefined();
  });

  it('names the file, the item and the field in errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eksf-prof-'));
    try {
      const file = join(dir, 'bad.json');
      await writeFile(
        file,
        JSON.stringify({
          name: 'bad',
          description: 'x',
          items: [
            { id: 'ok', kind: 'api', resources: ['pod'] },
            { id: 'rel', kind: 'file', paths: ['etc/passwd'], maxFileSize: 'huge' },
            { id: 'ok', kind: 'command', argv: [] },
          ],
        }),
      );
      const err = await loadProfileFile(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      const msg = (err as Error).message;
      expect(msg).toContain(file);
      expect(msg).toContain('item "rel" (#2) field paths[0]: must be an absolute path');
      expect(msg).toContain('item "rel" (#2) field maxFileSize: "huge" is not a size');
      expect(msg).toContain('item "ok" (#3) field argv');
      expect(() =>
        parseProfileText(
          'name: a\ndescription: b\nitems:\n  - {id: x, kind: api, resources: [pod]}\n  - {id: x, kind: api, resources: [node]}',
          'dup.yaml',
        ),
      ).toThrow(/dup\.yaml: item "x" \(#2\) field id: duplicate item id "x"/);
      expect(() => parseProfileText('name: [unclosed', 'x.yaml')).toThrow(/x\.yaml: not valid YAML/);
      expect(() =>
        parseProfileText(
          'name: a\ndescription: b\nitems:\n  - {id: x, kind: file, paths: [/a/../b]}',
          'dd.yaml',
        ),
      ).toThrow(/dd\.yaml: item "x" \(#1\) field paths\[0\]: must not contain "\.\." segments/);
      expect(() =>
        parseProfileText('name: a\ndescription: b\nitems:\n  - {id: x, kind: nope}', 'k.yaml'),
      ).toThrow(/k\.yaml: item "x" \(#1\) field kind/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ships the six built-in profiles, validated; memory is opt-in (not in full)', () => {
    expect(BUILTIN_PROFILE_NAMES).toEqual(['pod-state', 'volatile', 'files', 'triage', 'full', 'memory']);
    expect(BUILTIN_PROFILES.full?.items.some((i) => i.kind === 'memory')).toBe(false);
    expect(BUILTIN_PROFILES.memory?.items.map((i) => i.kind)).toEqual(['proc', 'memory']);
    expect(BUILTIN_PROFILES['pod-state']?.items.every((i) => i.kind === 'api')).toBe(true);
    const triage = BUILTIN_PROFILES.triage;
    const shadow = triage?.items.find((i) => i.id === 'shadow');
    expect(shadow).toMatchObject({ content: 'hash', sensitive: true });
    expect(triage?.items.find((i) => i.id === 'tokens')).toMatchObject({ content: 'jwt' });
    const full = BUILTIN_PROFILES.full;
    expect(full?.items.find((i) => i.id === 'etc-all')).toMatchObject({
      exclude: expect.arrayContaining(['shadow']),
    });
  });
});

describe('probe and strategy', () => {
  const out = (features: Record<string, boolean>) =>
    [
      'T\tbusybox\t/bin/busybox',
      'T\ttar\t/bin/tar',
      'T\tcat\tcat',
      ...Object.entries(features).map(([k, v]) => `F\t${k}\t${v ? 1 : 0}`),
      'U\t0',
      'X\tgarbage\tline',
    ].join('\n');

  it('parses tools, features and uid, ignoring unknown lines', () => {
    const p = parseProbeOutput(out({ tar: true, 'head-c': true }), 'sh');
    expect(p.tools).toEqual({ busybox: '/bin/busybox', tar: '/bin/tar', cat: 'cat' });
    expect(p.features).toEqual({ tar: true, 'head-c': true });
    expect(p.uid).toBe(0);
  });

  it('chooses tar, framed, builtins and none', () => {
    const all = { tar: true, 'find-print0': true, 'stat-c': true, 'head-c': true, readlink: true, cat: true };
    expect(chooseStrategy(parseProbeOutput(out(all), 'sh'))).toMatchObject({
      content: 'tar',
      listing: 'find-stat',
      degraded: false,
    });
    const noTar = chooseStrategy(parseProbeOutput(out({ ...all, tar: false }), 'sh'));
    expect(noTar).toMatchObject({ content: 'framed', volatile: 'framed' });
    expect(noTar.notes.join()).toContain('no working tar');
    const shellOnly = chooseStrategy(parseProbeOutput(out({}), 'sh'));
    expect(shellOnly).toMatchObject({
      content: 'builtins',
      volatile: 'builtins',
      listing: 'shell',
      degraded: true,
    });
    const none = chooseStrategy({
      shell: undefined,
      tools: {},
      features: {},
      uid: undefined,
      shellErrors: ['sh: not found'],
    });
    expect(none.content).toBe('none');
    expect(none.notes[0]).toContain('ephemeral');
    expect(chooseStrategy(parseProbeOutput(out(all), 'sh'), 'framed').content).toBe('framed');
  });

  it('passes tool names as arguments, never inside the script', () => {
    const argv = probeArgv('/busybox/sh');
    expect(argv.slice(0, 2)).toEqual(['/busybox/sh', '-c']);
    expect(argv).toContain('tar');
    expect(argv[2]).not.toContain('"tar"');
  });
});

describe('globs, listing and stat alignment', () => {
  it('matches segment globs, ** with depth and directories', () => {
    const g = compileGlob('/home/*/.ssh/authorized_keys*', 8);
    expect(g.root).toBe('/home');
    expect(g.matches('/home/bob/.ssh/authorized_keys2')).toBe(true);
    expect(g.matches('/home/bob/x/.ssh/authorized_keys')).toBe(false);
    const s = compileGlob('/tmp/**', 2);
    expect(s.matches('/tmp/a/b')).toBe(true);
    expect(s.matches('/tmp/a/b/c')).toBe(false);
    const d = compileGlob('/etc', 1);
    expect(d.matches('/etc/passwd')).toBe(true);
    expect(d.matches('/etc/x/y')).toBe(false);
    expect(compileGlob('/root/.*history', 8).matches('/root/.ash_history')).toBe(true);
    expect(compileGlob('/etc/cron.*/*', 8).matches('/etc/cron.d/job')).toBe(true);
  });

  it('parses NUL-separated listings and refuses paths outside the root', () => {
    const raw = Buffer.concat([
      Buffer.from(
        'Tf\0/proc/7/root/etc/passwd\0/proc/7/root/tmp/new\nline\0/elsewhere\0Tl\0/proc/7/root/var/log/a.log\0',
      ),
      Buffer.from('/proc/7/root/bad-'),
      Buffer.from([0xff, 0]),
    ]);
    const p = parseListing(raw, '/proc/7/root', 100);
    expect(p.entries.map((e) => [e.path, e.type, e.requestable])).toEqual([
      ['/etc/passwd', 'f', true],
      ['/tmp/new\nline', 'f', true],
      ['/var/log/a.log', 'l', true],
      ['/bad-\ufffd', 'l', false],
    ]);
    expect(p.rejected).toBe(1);
  });

  it('accepts a stat record only for the exact expected name (no injection through names)', () => {
    const entries = parseListing(
      Buffer.from('/a\0/b\n1|81a4|1|0|0|5|0|0|0|0|/etc/shadow\0/c\0'),
      '',
      10,
    ).entries;
    const expected = entries.map((entry) => ({ full: entry.path, entry }));
    // /a vanished (no record); /b's name carries a forged record; /c is normal
    const out =
      '11|81a4|1|0|0|7|1|2|3|W|/b\n1|81a4|1|0|0|5|0|0|0|0|/etc/shadow\n12|41ed|2|0|0|4096|1|2|3|9|/c\n';
    expect(applyStatOutput(out, expected)).toBe(2);
    expect(entries[0]?.size).toBeUndefined();
    expect(entries[1]?.size).toBe(7);
    expect(entries[2]?.type).toBe('d');
    expect(renderBodyfile(entries)).toContain('0|/b\\x0a1\\x7c81a4');
  });
});

function framed(key: string, frames: { header: string; body: Buffer | string; rc?: number }[]): Buffer {
  return Buffer.concat(
    frames.flatMap((f) => [
      Buffer.from(`\n${key} B ${f.header}\n`),
      Buffer.from(f.body),
      Buffer.from(`\n${key} E ${f.rc ?? 0}\n`),
    ]),
  );
}

async function collect(src: AsyncIterable<Uint8Array>, key: string) {
  const out: { header?: string[]; body: Buffer; rc?: number | null }[] = [];
  const errors: string[] = [];
  let cur: { header?: string[]; parts: Buffer[] } | undefined;
  for await (const ev of demuxFrames(src, key) as AsyncGenerator<FrameEvent>) {
    if (ev.type === 'begin') cur = { header: ev.header, parts: [] };
    else if (ev.type === 'data') cur?.parts.push(Buffer.from(ev.chunk));
    else if (ev.type === 'end')
      out.push({ header: cur?.header, body: Buffer.concat(cur?.parts ?? []), rc: ev.rc });
    else errors.push(ev.reason);
  }
  return { out, errors };
}

describe('frame demultiplexer (hostile input)', () => {
  const key = newFrameKey();
  const body1 = Buffer.from(`line\n${key.slice(0, 10)} E 0\nnot-a-marker \n B fake\n\0\xff`);
  const stream = framed(key, [
    { header: '0 F 31', body: body1 },
    { header: '1 F 0', body: '' },
    { header: '2 L', body: '/dev/stdout\n', rc: 0 },
  ]);

  it('splits frames exactly at every chunk boundary', async () => {
    for (const size of [1, 2, 3, 7, 33, 36, 37, 40, 71, 100, 4096]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      const { out, errors } = await collect(Readable.from(chunks), key);
      expect(errors).toEqual([]);
      expect(out.map((f) => f.header?.join(' '))).toEqual(['0 F 31', '1 F 0', '2 L']);
      expect(out[0]?.body).toEqual(body1);
      expect(out[1]?.body.length).toBe(0);
      expect(out[2]?.body.toString()).toBe('/dev/stdout\n');
    }
  });

  it('stops with a reason on garbage, truncation and oversize headers', async () => {
    expect((await collect(Readable.from([Buffer.from('garbage')]), key)).errors[0]).toContain(
      'outside any frame',
    );
    expect((await collect(Readable.from([stream.subarray(0, 60)]), key)).errors[0]).toContain('truncated');
    const big = Buffer.from(`\n${key} B ${'x'.repeat(5000)}`);
    expect((await collect(Readable.from([big]), key)).errors[0]).toContain('longer than 1024');
    // a frame forged with another key is just content
    const other = framed(key, [
      { header: '0 F 9', body: framed(newFrameKey(), [{ header: '9 F 1', body: 'z' }]) },
    ]);
    const r = await collect(Readable.from([other]), key);
    expect(r.out).toHaveLength(1);
  });

  it.skipIf(noBusybox)(
    'agrees with the real framed script run by busybox sh, with awkward names',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'eksf-framed-'));
      try {
        const names = ['plain.txt', 'new\nline.txt', '$(touch pwned).txt', '-rf', "quote'.txt"];
        for (const n of names) writeFileSync(join(dir, n), `content of ${n}`);
        symlinkSync('/dev/zero', join(dir, 'zero.log'));
        const files = [...names, 'zero.log', 'missing'].map((n) => ({ path: join(dir, n), take: 1000 }));
        const argv = filesArgv('/usr/bin/busybox', 'head', files);
        const k = newFrameKey();
        const child = spawn('/usr/bin/busybox', ['sh', ...argv.slice(1)], {
          cwd: dir,
          stdio: ['pipe', 'pipe', 'ignore'],
        });
        child.stdin.end(`${k}\n`);
        const { out, errors } = await collect(child.stdout, k);
        expect(errors).toEqual([]);
        expect(out.map((f) => f.header?.[1])).toEqual(['F', 'F', 'F', 'F', 'F', 'L', 'N']);
        for (const [i, n] of names.entries()) expect(out[i]?.body.toString()).toBe(`content of ${n}`);
        expect(out[5]?.body.toString()).toBe('/dev/zero\n');
        expect(execFileSync('ls', ['-a', dir]).toString()).not.toContain('pwned\n');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('volatile argv validates field names and keeps paths positional', () => {
    expect(() =>
      volatileArgv({
        shell: 'sh',
        mode: 'head',
        readlink: true,
        procBase: '/proc',
        capPerFile: 1,
        maxProcesses: 1,
        fields: ['x; rm -rf /'],
        links: true,
        globalFiles: [],
      }),
    ).toThrow(RangeError);
  });
});

type TarEntry = {
  name: string;
  type?: 'file' | 'symlink' | 'link' | 'character-device' | 'fifo' | 'directory';
  body?: string;
  linkname?: string;
};

async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const p = tarPack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') p.entry({ name: e.name, type }, e.body ?? '');
    else p.entry({ name: e.name, type, linkname: e.linkname, size: 0 });
  }
  p.finalize();
  const parts: Buffer[] = [];
  for await (const c of p) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('tar receiver (hostile input)', () => {
  it('indexes a clean archive with per-entry and whole-stream hashes', async () => {
    const raw = await tarOf([
      { name: 'etc/passwd', body: 'root:x:0:0\n' },
      { name: 'tmp/x', body: 'X'.repeat(10_000) },
    ]);
    const r = await receiveTar(Readable.from([raw]), {
      expected: new Map([
        ['etc/passwd', '/etc/passwd'],
        ['tmp/x', '/tmp/x'],
      ]),
    });
    expect(r.ok).toBe(true);
    expect(r.streamSha256).toBe(sha(raw));
    expect(r.entries.map((e) => [e.requestedPath, e.sha256, e.bytes])).toEqual([
      ['/etc/passwd', sha('root:x:0:0\n'), 11],
      ['/tmp/x', sha('X'.repeat(10_000)), 10_000],
    ]);
    expect(r.sawEndOfArchive).toBe(true);
  });

  it('flags .., absolute names, links, devices and unexpected entries', async () => {
    const raw = await tarOf([
      { name: 'etc/passwd', body: 'ok' },
      { name: 'etc/../../../tmp/evil', body: 'x' },
      { name: '/tmp/abs', body: 'x' },
      { name: 'etc/link', type: 'symlink', linkname: '/' },
      { name: 'etc/hard', type: 'link', linkname: '/etc/shadow' },
      { name: 'dev/evil', type: 'character-device' },
      { name: 'etc/fifo', type: 'fifo' },
      { name: 'etc/unasked', body: 'u' },
    ]);
    const r = await receiveTar(Readable.from([raw]), { expected: new Map([['etc/passwd', '/etc/passwd']]) });
    expect(r.ok).toBe(false);
    expect(r.reason).toContain('suspicious');
    const f = (n: string) => r.entries.find((e) => e.name === n)?.flags;
    expect(f('etc/../../../tmp/evil')).toContain('dot-dot-name');
    expect(f('/tmp/abs')).toContain('absolute-name');
    expect(f('etc/link')).toContain('symlink-not-followed');
    expect(f('etc/hard')).toContain('link-not-followed');
    expect(f('dev/evil')).toContain('device-or-fifo');
    expect(f('etc/fifo')).toContain('device-or-fifo');
    expect(f('etc/unasked')).toContain('unexpected-entry');
  });

  it('reports truncation, lying sizes, garbage and a missing end marker', async () => {
    const raw = await tarOf([{ name: 'a', body: 'A'.repeat(3000) }]);
    expect((await receiveTar(Readable.from([raw.subarray(0, 1200)]))).reason).toMatch(
      /not a valid tar stream: Unexpected end of data/,
    );
    expect(
      (await receiveTar(Readable.from([Buffer.from('this is not a tar archive'.repeat(40))]))).reason,
    ).toMatch(/not a valid tar/);
    const noEnd = raw.subarray(0, 512 + 3072);
    expect((await receiveTar(Readable.from([noEnd]))).reason).toContain('end-of-archive');
    const liar = Buffer.from(raw);
    liar.write('77777777777\0', 124, 'latin1'); // 8 GiB claimed
    let sum = 0;
    liar.write('        ', 148, 'latin1');
    for (let i = 0; i < 512; i++) sum += liar[i] as number;
    liar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const lr = await receiveTar(Readable.from([liar]));
    expect(lr.ok).toBe(false);
  });

  it('cuts endless output at the byte cap without buffering it', async () => {
    let produced = 0;
    const endless = new Readable({
      read() {
        produced += 65536;
        this.push(Buffer.alloc(65536, 0x41));
      },
    });
    const r = await receiveTar(endless, { maxBytes: 1024 * 1024 });
    endless.destroy();
    expect(r.ok).toBe(false);
    expect(r.streamBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(produced).toBeLessThan(8 * 1024 * 1024);
  });

  it('caps entries', async () => {
    const raw = await tarOf(Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, body: 'x' })));
    const r = await receiveTar(Readable.from([raw]), { maxEntries: 10 });
    expect(r.entries).toHaveLength(10);
    expect(r.reason).toContain('more than 10 entries');
  });
});

describe('sensitive content', () => {
  it('keeps JWT claims, never the signature', () => {
    const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b({ alg: 'RS256' })}.${b({ sub: 'system:serviceaccount:ns:sa', exp: 1_900_000_000 })}.SIGNATURE`;
    const rec = jwtRecord(Buffer.from(token));
    expect(rec.claims?.sub).toBe('system:serviceaccount:ns:sa');
    expect(rec.claims?.exp_iso).toBe('2030-03-17T17:46:40.000Z');
    expect(JSON.stringify(rec)).not.toContain('SIGNATURE');
    expect(jwtRecord(Buffer.from('not a token')).error).toContain('not a JWT');
  });

  it('hashes or redacts environ values', () => {
    const raw = Buffer.from('A=1\0SECRET=hunter2\0NOVALUE\0');
    expect(transformEnviron(raw, 'hash')).toEqual([
      { name: 'A', value: `sha256:${sha('1')}` },
      { name: 'SECRET', value: `sha256:${sha('hunter2')}` },
      { name: 'NOVALUE', value: `sha256:${sha('')}` },
    ]);
    expect(JSON.stringify(transformEnviron(raw, 'redact'))).not.toContain('hunter2');
  });
});

describe('targetsFromPods', () => {
  it('keeps visible running containers of catalog listings', async () => {
    const { targetsFromPods } = await import('../../src/collect/index.js');
    const kube = {
      exec: async () => Promise.reject(new Error('unused')),
      getPod: async () => Promise.reject(new Error('unused')),
    };
    const c = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      kind: 'container',
      state: 'running',
      restartCount: 0,
      hidden: false,
      ...extra,
    });
    const pods = [
      {
        namespace: 'a',
        name: 'p1',
        computeType: 'EC2',
        labels: {},
        hidden: false,
        raw: {},
        containers: [
          c('app'),
          c('init', { kind: 'init' }),
          c('dbg', { kind: 'ephemeral' }),
          c('gone', { state: 'terminated' }),
        ],
      },
      {
        namespace: 'kube-system',
        name: 'p2',
        computeType: 'EC2',
        labels: {},
        hidden: true,
        raw: {},
        containers: [c('x')],
      },
      {
        namespace: 'b',
        name: 'p3',
        computeType: 'EC2',
        labels: {},
        hidden: false,
        raw: {},
        containers: [c('side', { kind: 'sidecar' }), c('secret', { hidden: true })],
      },
    ] as unknown as Parameters<typeof targetsFromPods>[1];
    expect(targetsFromPods(kube, pods).map((t) => `${t.namespace}/${t.pod}/${t.container}`)).toEqual([
      'a/p1/app',
      'b/p3/side',
    ]);
    expect(targetsFromPods(kube, pods, { includeInit: true })).toHaveLength(3);
  });
});
