import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CoreAssembler,
  type CoreProcessInfo,
  decodeMemoryInfo,
  memoryInfoArgv,
  memoryReadArgv,
  memoryReadInput,
  parseMaps,
  planMemoryRead,
} from '../../src/collect/coverage/index.js';
import { demuxFrames, type FrameEvent } from '../../src/collect/index.js';

const INFO: CoreProcessInfo = {
  pid: 7,
  ppid: 1,
  pgrp: 7,
  sid: 7,
  uid: 0,
  gid: 0,
  state: 'S',
  nice: 0,
  flags: 0,
  comm: 'victim',
  psargs: 'victim -x',
};

const MAPS = [
  '00400000-00401000 r--p 00000000 08:01 123                                /app/victim',
  '00401000-00403000 r-xp 00001000 08:01 123                                /app/victim',
  '00403000-00404000 ---p 00000000 00:00 0 ',
  '01000000-01002000 rw-p 00000000 00:00 0                                  [heap]',
  '7ffd00000000-7ffd00001000 r--p 00000000 00:00 0                          [vvar]',
  '7ffd00001000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]',
  'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
].join('\n');

async function* events(list: FrameEvent[]): AsyncGenerator<FrameEvent> {
  for (const e of list) yield e;
}
const begin = (...header: string[]): FrameEvent => ({ type: 'begin', header, offset: 0 });
const data = (b: Buffer | string): FrameEvent => ({ type: 'data', chunk: Buffer.from(b) });
const end = (rc: number | null): FrameEvent => ({ type: 'end', rc, offset: 0, contentBytes: 0 });

async function assemble(
  plan: ReturnType<typeof planMemoryRead>,
  ev: FrameEvent[],
): Promise<{ core: Buffer; asm: CoreAssembler }> {
  const asm = new CoreAssembler('x86_64', INFO, plan);
  const parts: Buffer[] = [];
  for await (const c of asm.stream(events(ev))) parts.push(Buffer.from(c));
  return { core: Buffer.concat(parts), asm };
}

function page(fill: string, pages = 1): Buffer {
  return Buffer.alloc(4096 * pages, fill);
}

describe('maps parsing (hostile)', () => {
  it('parses real lines, paths with spaces and (deleted)', () => {
    const lines = MAPS.split('\n');
    lines.splice(6, 0, '7ffe00000000-7ffe00001000 r-xp 00000000 08:01 9  /tmp/my lib.so (deleted)');
    const p = parseMaps(`${lines.join('\n')}\n`);
    expect(p.rejected).toEqual([]);
    expect(p.regions).toHaveLength(8);
    expect(p.regions[6]?.path).toBe('/tmp/my lib.so (deleted)');
    expect(p.regions[7]?.path).toBe('[vsyscall]');
    expect(p.regions[2]?.path).toBe('');
  });

  it('rejects lying lines with reasons', () => {
    const p = parseMaps(
      [
        '00500000-00400000 rw-p 00000000 00:00 0', // start > end
        '00400001-00401000 rw-p 00000000 00:00 0', // unaligned
        '00400000-00401000 rwzp 00000000 00:00 0', // perms
        '00400000-00401000 rw-p 00000000 00:00 0 /a',
        '00400000-00402000 rw-p 00000000 00:00 0 /overlap',
        'fffffffffffff000-10000000000000000 rw-p 00000000 00:00 0', // 17 hex digits
        '7fffffffffff000-7fffffffffff1000 rw-p 00000000 00:00 0', // end beyond 2^57
        'ff00000000000000-ff00000000001000 rw-p 00000000 00:00 0', // beyond user space
        'x'.repeat(10_000),
        'garbage',
      ].join('\n'),
    );
    expect(p.regions.map((r) => r.path)).toEqual(['/a']);
    const reasons = p.rejected.map((r) => r.reason).join('\n');
    expect(reasons).toMatch(/not below end/);
    expect(reasons).toMatch(/page aligned/);
    expect(reasons).toMatch(/overlaps/);
    expect(reasons).toMatch(/beyond the user address space/);
    expect(reasons).toMatch(/longer than/);
    expect(reasons).toMatch(/not a maps line/);
  });

  it('caps a flood of millions of lines without parsing them all', () => {
    const line = '00400000-00401000 r--p 00000000 00:00 0 /x\n';
    const text = line.repeat(2_000_000);
    const t0 = Date.now();
    const p = parseMaps(text, { maxLines: 65_536 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(p.capped).toBe(true);
    expect(p.linesNotParsed).toBe(2_000_000 - 65_536);
    expect(p.regions).toHaveLength(1); // the rest overlap the first
    expect(p.rejected.length).toBeLessThanOrEqual(101);
  });
});

describe('read plan', () => {
  it('skips unreadable and special regions, caps bytes per process and per target', () => {
    const regions = parseMaps(MAPS).regions;
    const all = planMemoryRead(regions);
    expect(all.regions.map((r) => r.skip ?? 'read')).toEqual([
      'read',
      'read',
      'not-readable',
      'read',
      'special',
      'read',
      'not-readable',
    ]);
    expect(all.plannedBytes).toBe(BigInt(4096 * 6));
    const capped = planMemoryRead(regions, { maxProcessBytes: 4096n * 2n + 100n });
    expect(capped.plannedBytes).toBe(8192n);
    expect(capped.regions[1]?.take).toBe(4096n);
    expect(capped.regions[1]?.note).toMatch(/byte cap/);
    expect(capped.regions[3]?.skip).toBe('process-cap');
    const target = planMemoryRead(regions, { targetBytesLeft: 4096n });
    expect(target.plannedBytes).toBe(4096n);
    const few = planMemoryRead(regions, { maxRegions: 1 });
    expect(few.regions.filter((r) => r.skip === 'region-cap')).toHaveLength(3);
  });

  it('builds argv without target strings and the plan as stdin lines', () => {
    const argv = memoryReadArgv('sh', 42);
    expect(argv.slice(3)).toEqual(['eksf-memread', '42']);
    expect(() => memoryReadArgv('sh', -1)).toThrow(RangeError);
    expect(() => memoryInfoArgv('sh', 1.5)).toThrow(RangeError);
    const plan = planMemoryRead(parseMaps(MAPS).regions);
    expect(memoryReadInput('ab'.repeat(16), plan).split('\n')).toEqual([
      'ab'.repeat(16),
      '0 1024 1',
      '1 1025 2',
      '3 4096 2',
      '5 34356592641 1',
      '.',
      '',
    ]);
  });
});

describe('core assembly (hostile streams)', () => {
  const plan = planMemoryRead(parseMaps(MAPS).regions);
  const good = (id: number, bytes: Buffer): FrameEvent[] => [
    begin(String(id), 'M'),
    data(bytes),
    end(0),
    begin(String(id), 'R'),
    data('2+0 records in\n'),
    end(0),
  ];

  it('a clean stream: every planned region complete, readelf agrees with the index', async () => {
    const ev = [
      ...good(0, page('a')),
      ...good(1, page('b', 2)),
      ...good(3, page('c', 2)),
      ...good(5, page('d')),
    ];
    const { core, asm } = await assemble(plan, ev);
    const r = asm.result;
    expect(r.allPlannedComplete).toBe(true);
    expect(r.coreBytes).toBe(core.length);
    const heap = r.regions[3];
    expect(heap?.status).toBe('complete');
    expect(core.subarray(heap?.coreOffset ?? 0, (heap?.coreOffset ?? 0) + 8).toString()).toBe('cccccccc');
    const dir = mkdtempSync(join(tmpdir(), 'eksf-core-unit-'));
    try {
      writeFileSync(join(dir, 'core'), core);
      const out = execFileSync('readelf', ['-lnW', join(dir, 'core')], { encoding: 'utf8' });
      expect(out).toMatch(/CORE \(Core file\)/);
      expect(out).toMatch(/LOAD\s+0x0*[0-9a-f]+\s+0x0*1000000\s+0x0+\s+0x002000\s+0x002000\s+RW/);
      expect(out).toMatch(/NT_PRSTATUS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('short read, EIO, excess bytes and a cut stream are each recorded, never complete', async () => {
    const ev = [
      begin('0', 'M'),
      data(page('a').subarray(0, 100)),
      end(0),
      begin('0', 'R'),
      end(0),
      begin('1', 'M'),
      end(1),
      begin('1', 'R'),
      data("dd: can't read /proc/7/mem: Input/output error\n"),
      end(0),
      begin('3', 'M'),
      data(page('c', 3)),
      end(0),
      begin('3', 'R'),
      end(0),
      begin('5', 'M'),
      data('ddd'),
    ];
    const { core, asm } = await assemble(plan, ev);
    const r = asm.result;
    expect(r.allPlannedComplete).toBe(false);
    expect(r.coreBytes).toBe(core.length);
    const [a, b, , c, , d] = r.regions;
    expect([a?.status, a?.reason, a?.bytes]).toEqual(['truncated', 'short-read', 100]);
    expect([b?.status, b?.reason]).toEqual(['unreadable', 'EIO']);
    expect(b?.detail).toMatch(/Input\/output error/);
    expect([c?.status, c?.bytes]).toEqual(['excess', 8192]);
    expect([d?.status, d?.bytes]).toEqual(['truncated', 3]);
    expect(r.problems.join()).toMatch(/stream ended inside a region/);
    // the PT_LOAD of the short region claims only what arrived
    const phoff = Number(core.readBigUInt64LE(32));
    const firstLoad = phoff + 56; // after PT_NOTE
    expect(core.readBigUInt64LE(firstLoad + 32)).toBe(100n); // p_filesz
    expect(core.readBigUInt64LE(firstLoad + 40)).toBe(4096n); // p_memsz
  });

  it('out-of-order or forged frames stop the stream; the rest is missing', async () => {
    const ev = [...good(0, page('a')), begin('3', 'M'), data(page('x')), end(0)];
    const { asm } = await assemble(plan, ev);
    const r = asm.result;
    expect(r.regions[0]?.status).toBe('complete');
    expect(r.regions[1]?.status).toBe('missing');
    expect(r.regions[3]?.status).toBe('missing');
    expect(r.problems.join()).toMatch(/unexpected frame/);
    expect(asm.stoppedEarly).toBe(true);
  });

  it('an endless region is abandoned after the excess cap', async () => {
    async function* flood(): AsyncGenerator<FrameEvent> {
      yield begin('0', 'M');
      for (;;) yield data(page('z', 16));
    }
    const asm = new CoreAssembler('x86_64', INFO, plan);
    let n = 0;
    for await (const c of asm.stream(flood())) n += c.length;
    expect(asm.result.regions[0]?.status).toBe('excess');
    expect(asm.stoppedEarly).toBe(true);
    expect(n).toBe(asm.result.coreBytes);
  });

  it('frames through the real demultiplexer', async () => {
    const key = `${'c0ffee'.repeat(5)}aa`;
    const frame = (h: string, body: Buffer | string, rc: number) =>
      Buffer.concat([Buffer.from(`\n${key} B ${h}\n`), Buffer.from(body), Buffer.from(`\n${key} E ${rc}\n`)]);
    const small = planMemoryRead(parseMaps('00400000-00401000 r--p 00000000 00:00 0 /x').regions);
    // the region content contains a forged end marker with a wrong key: kept as data
    const content = Buffer.concat([Buffer.from(`\n${'0'.repeat(32)} E 0\n`), page('q')]).subarray(0, 4096);
    const stream = Buffer.concat([frame('0 M', content, 0), frame('0 R', '', 0)]);
    async function* src(): AsyncGenerator<Buffer> {
      for (let i = 0; i < stream.length; i += 777) yield stream.subarray(i, i + 777);
    }
    const asm = new CoreAssembler('x86_64', INFO, small);
    const parts: Buffer[] = [];
    for await (const c of asm.stream(demuxFrames(src(), key))) parts.push(Buffer.from(c));
    expect(asm.result.regions[0]?.status).toBe('complete');
    const off = asm.result.regions[0]?.coreOffset ?? 0;
    expect(
      Buffer.concat(parts)
        .subarray(off, off + 4096)
        .equals(content),
    ).toBe(true);
  });
});

describe('info decoding (hostile)', () => {
  it('decodes stat, status, cmdline, syscall and the machine; records a failed mem open', async () => {
    const elf = Buffer.alloc(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
    elf.writeUInt16LE(183, 18);
    const info = await decodeMemoryInfo(
      events([
        begin('maps'),
        data(MAPS),
        end(0),
        begin('stat'),
        data('7 (evil) name) S 1 7 7 0 -1 4194560 0 0 0 0 0 0 0 0 20 -5 1 0'),
        end(0),
        begin('status'),
        data('Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t2000\t2000\t2000\t2000\n'),
        end(0),
        begin('cmdline'),
        data('victim\0-x\0'),
        end(0),
        begin('auxv'),
        end(1),
        begin('syscall'),
        data('7 0x1 0x2 0x3 0x4 0x5 0x6 0x7ffd0000fff0 0x401234\n'),
        end(0),
        begin('exe'),
        data(elf),
        end(0),
        begin('memopen'),
        data("dd: can't open '/proc/7/mem': Permission denied"),
        end(1),
      ]),
      7,
    );
    expect(info.process).toMatchObject({
      comm: 'evil) name',
      ppid: 1,
      uid: 1000,
      gid: 2000,
      nice: -5,
      psargs: 'victim -x',
    });
    expect(info.process.pc).toBe(0x401234n);
    expect(info.machine).toBe('aarch64');
    expect(info.memReadable).toBe(false);
    expect(info.memError).toMatch(/^EPERM: /);
    expect(info.problems).toEqual([]);
  });

  it('an endless maps frame is capped and abandoned', async () => {
    async function* flood(): AsyncGenerator<FrameEvent> {
      yield begin('maps');
      for (;;) yield data('00400000-00401000 r--p 00000000 00:00 0 /lie\n'.repeat(1000));
    }
    const info = await decodeMemoryInfo(flood(), 7);
    expect(info.stoppedEarly).toBe(true);
    expect(info.problems.join('\n')).toMatch(/beyond the caps, stopped reading/);
    expect(info.problems.join('\n')).toMatch(/maps: .* bytes beyond the 8388608-byte cap/);
    expect(info.memReadable).toBe(false);
  });
});

describe('core assembly memory', () => {
  it('streams a 256 MiB region without holding it', async () => {
    const size = 256 * 1024 * 1024;
    const plan = planMemoryRead(
      parseMaps(`7f0000000000-${(0x7f0000000000 + size).toString(16)} rw-p 00000000 00:00 0`).regions,
    );
    const chunk = Buffer.alloc(256 * 1024, 7);
    async function* src(): AsyncGenerator<FrameEvent> {
      yield begin('0', 'M');
      for (let n = 0; n < size; n += chunk.length) yield data(chunk);
      yield end(0);
      yield begin('0', 'R');
      yield end(0);
    }
    global.gc?.();
    const before = process.memoryUsage();
    let peak = 0;
    let bytes = 0;
    const asm = new CoreAssembler('x86_64', INFO, plan);
    for await (const c of asm.stream(src())) {
      bytes += c.length;
      if ((bytes & 0xffffff) === 0) {
        const m = process.memoryUsage();
        peak = Math.max(
          peak,
          m.heapUsed + m.external + m.arrayBuffers - before.heapUsed - before.external - before.arrayBuffers,
        );
      }
    }
    expect(asm.result.regions[0]?.status).toBe('complete');
    expect(bytes).toBe(asm.result.coreBytes);
    expect(peak).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);
});
