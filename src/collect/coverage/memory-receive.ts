/**
 * Receiving side of process memory: decodes the info exec into core notes, and assembles the
 * ELF core while region bytes stream in (hashing each region on our side). Memory stays flat:
 * each chunk is passed on as it arrives; only the index (one record per region) is kept.
 */
import { createHash, type Hash } from 'node:crypto';
import type { FrameEvent } from '../frames.js';
import {
  buildCoreNotes,
  CORE_PAGE,
  type CoreMachine,
  type CoreProcessInfo,
  EHDR_SIZE,
  elfHeader,
  encodePhdrs,
  MAX_PHDRS,
  machineFromElf,
  type Phdr,
  permFlags,
} from './memory-core.js';
import { hex, type MapsRegion, type MemoryPlan, type ParsedMaps, parseMaps } from './memory-maps.js';

/** What became of one region. */
export type RegionStatus =
  /** every planned byte arrived and dd exited 0 */
  | 'complete'
  /** the planned (first) part arrived whole, the rest was left out by a cap */
  | 'capped'
  /** fewer bytes than planned, or dd failed after some bytes */
  | 'truncated'
  /** nothing could be read (EPERM, EIO…) */
  | 'unreadable'
  /** more bytes than planned arrived: the excess was dropped, the stream is suspect */
  | 'excess'
  /** not read on purpose (permissions, pseudo region, cap) */
  | 'skipped'
  /** its frame never arrived (stream cut or broken) */
  | 'missing';

/** Index record of one region. Addresses and sizes are hex or decimal strings (64-bit safe). */
export interface RegionRecord {
  id: number;
  start: string;
  end: string;
  perms: string;
  offset: string;
  dev: string;
  inode: string;
  path: string;
  /** Bytes planned. */
  planned: number;
  /** Bytes received and kept. */
  bytes: number;
  /** SHA-256 of the kept bytes (computed here). */
  sha256?: string | undefined;
  /** Where the kept bytes start in the core file. */
  coreOffset?: number | undefined;
  status: RegionStatus;
  /** Short reason code: EPERM, EIO, EFAULT, cap, not-readable, special, short-read… */
  reason?: string | undefined;
  /** The reader's own message (bounded, printable). */
  detail?: string | undefined;
}

/** Bytes beyond the caps read before the info exec is abandoned. */
const MAX_INFO_DROPPED = 1024 * 1024;

const INFO_CAPS: Record<string, number> = {
  maps: 8 * 1024 * 1024,
  stat: 4096,
  status: 16 * 1024,
  cmdline: 8192,
  auxv: 4096,
  syscall: 4096,
  exe: 64,
  memopen: 1024,
};

/** Decoded info exec. */
export interface ProcessMemoryInfo {
  maps: ParsedMaps;
  /** Frames that were cut by our caps or absent, with reasons. */
  problems: string[];
  process: CoreProcessInfo;
  machine: CoreMachine | undefined;
  /** Whether `/proc/<pid>/mem` could be opened; when false `memError` says why. */
  memReadable: boolean;
  memError?: string | undefined;
  /** True when decoding stopped before the stream ended (flood or broken stream): abort the exec. */
  stoppedEarly: boolean;
}

/** Turns a reader message into a reason code. */
export function classifyReadError(text: string): string | undefined {
  if (/Operation not permitted|Permission denied/i.test(text)) return 'EPERM';
  if (/Input\/output error/i.test(text)) return 'EIO';
  if (/Bad address/i.test(text)) return 'EFAULT';
  if (/No such process|No such file/i.test(text)) return 'ESRCH';
  return undefined;
}

function printable(b: Buffer, max = 300): string {
  return b
    .subarray(0, max)
    .toString('utf8')
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim();
}

/**
 * Decodes the info exec's frames. Hostile input: every frame is capped (maps at 8 MiB), unknown or
 * repeated frames are ignored and noted, numbers are checked.
 */
export async function decodeMemoryInfo(
  events: AsyncIterable<FrameEvent>,
  pid: number,
): Promise<ProcessMemoryInfo> {
  const got = new Map<string, { data: Buffer[]; bytes: number; over: number; rc: number | null }>();
  const problems: string[] = [];
  let cur: string | undefined;
  let dropped = 0;
  let stoppedEarly = false;
  for await (const ev of events) {
    if (dropped > MAX_INFO_DROPPED) {
      problems.push(`info stream: more than ${MAX_INFO_DROPPED} bytes beyond the caps, stopped reading`);
      stoppedEarly = true;
      break;
    }
    if (ev.type === 'begin') {
      const name = ev.header.join(' ');
      if (!(name in INFO_CAPS) || got.has(name)) {
        problems.push(`unexpected frame ${JSON.stringify(name.slice(0, 40))}`);
        cur = undefined;
        continue;
      }
      cur = name;
      got.set(name, { data: [], bytes: 0, over: 0, rc: null });
    } else if (ev.type === 'data' && cur) {
      const f = got.get(cur);
      if (!f) continue;
      const room = (INFO_CAPS[cur] ?? 0) - f.bytes;
      const keep = Math.max(0, Math.min(room, ev.chunk.length));
      if (keep > 0) f.data.push(Buffer.from(ev.chunk.subarray(0, keep)));
      f.bytes += keep;
      f.over += ev.chunk.length - keep;
      dropped += ev.chunk.length - keep;
    } else if (ev.type === 'data') {
      dropped += ev.chunk.length;
    } else if (ev.type === 'end') {
      const f = cur ? got.get(cur) : undefined;
      if (f) f.rc = ev.rc;
      cur = undefined;
    } else if (ev.type === 'error') {
      problems.push(`info stream: ${ev.reason}`);
      stoppedEarly = true;
      break;
    }
  }
  const text = (n: string): Buffer => Buffer.concat(got.get(n)?.data ?? []);
  for (const [n, f] of got)
    if (f.over > 0) problems.push(`${n}: ${f.over} bytes beyond the ${INFO_CAPS[n]}-byte cap dropped`);
  for (const n of Object.keys(INFO_CAPS)) if (!got.has(n)) problems.push(`${n}: frame missing`);
  const mapsFrame = got.get('maps');
  if (mapsFrame && mapsFrame.rc !== 0) problems.push(`maps: reader exited ${mapsFrame.rc}`);
  const maps = parseMaps(text('maps').toString('latin1'));
  if (mapsFrame && mapsFrame.over > 0) maps.capped = true;

  const process: CoreProcessInfo = {
    pid,
    ppid: 0,
    pgrp: 0,
    sid: 0,
    uid: 0,
    gid: 0,
    state: '?',
    nice: 0,
    flags: 0,
    comm: '',
    psargs: '',
  };
  const stat = text('stat').toString('latin1');
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open > 0 && close > open && /^\d+ $/.test(stat.slice(0, open))) {
    process.comm = stat.slice(open + 1, close).slice(0, 64);
    const f = stat
      .slice(close + 2)
      .trim()
      .split(' ');
    const num = (i: number): number => (/^-?\d{1,19}$/.test(f[i] ?? '') ? Number(f[i]) : 0);
    process.state = /^[A-Za-z]$/.test(f[0] ?? '') ? (f[0] as string) : '?';
    process.ppid = num(1);
    process.pgrp = num(2);
    process.sid = num(3);
    process.flags = num(6);
    process.nice = num(16);
  } else if (got.has('stat')) {
    problems.push('stat: not in /proc/<pid>/stat format');
  }
  for (const line of text('status').toString('latin1').split('\n')) {
    const m = /^(Uid|Gid):\t(\d{1,10})\t/.exec(line);
    if (m) process[m[1] === 'Uid' ? 'uid' : 'gid'] = Number(m[2]);
  }
  process.psargs = text('cmdline').toString('utf8').replace(/\0+$/, '').replace(/\0/g, ' ').slice(0, 200);
  const auxv = text('auxv');
  if (auxv.length >= 16) process.auxv = auxv;
  const sc = /^(-?\d+)(?: 0x[0-9a-f]+){6} (0x[0-9a-f]{1,16}) (0x[0-9a-f]{1,16})\s*$/.exec(
    text('syscall').toString('latin1'),
  );
  if (sc) {
    process.sp = BigInt(sc[2] as string);
    process.pc = BigInt(sc[3] as string);
  }
  const mem = got.get('memopen');
  const memMsg = printable(text('memopen'));
  const memReadable = mem?.rc === 0;
  return {
    maps,
    problems,
    process,
    machine: machineFromElf(text('exe')),
    memReadable,
    stoppedEarly,
    ...(memReadable
      ? {}
      : {
          memError: `${classifyReadError(memMsg) ?? 'unknown'}: ${memMsg || `frame ${mem ? `exit ${mem.rc}` : 'missing'}`}`,
        }),
  };
}

/** Result of assembling a core, available once the stream is consumed. */
export interface CoreAssemblyResult {
  regions: RegionRecord[];
  /** Bytes of the core file. */
  coreBytes: number;
  /** Problems with the stream itself (protocol errors, cuts). */
  problems: string[];
  /** True when every planned region is `complete` (skipped and capped regions aside) and the stream was clean. */
  allPlannedComplete: boolean;
}

/** Excess bytes of one region read (and dropped) before the stream is abandoned. */
const MAX_EXCESS = 1024 * 1024;

const ZERO = Buffer.alloc(64 * 1024);

function* zeros(n: number): Generator<Buffer> {
  while (n > 0) {
    const k = Math.min(n, ZERO.length);
    yield ZERO.subarray(0, k);
    n -= k;
  }
}

function baseRecord(id: number, r: MapsRegion, planned: number): RegionRecord {
  return {
    id,
    start: hex(r.start),
    end: hex(r.end),
    perms: r.perms,
    offset: hex(r.offset),
    dev: r.dev,
    inode: r.inode,
    path: r.path,
    planned,
    bytes: 0,
    status: 'missing',
  };
}

/**
 * Streams an ELF core: header, notes, each planned region at its reserved offset (bytes as they
 * arrive, a short region's gap zero-filled but NOT claimed by its `PT_LOAD`), then the program
 * headers whose `p_filesz` is what actually arrived. Consume `stream()` fully, then read `result`.
 */
export class CoreAssembler {
  private readonly records: RegionRecord[];
  private readonly notes: Buffer;
  private readonly dataStart: number;
  private readonly reserved: number[];
  private readonly problems: string[] = [];
  private done = false;
  private coreBytes = 0;
  /** True once the assembler stopped reading before the stream ended: the exec must be aborted. */
  stoppedEarly = false;

  constructor(
    private readonly machine: CoreMachine | undefined,
    info: CoreProcessInfo,
    private readonly plan: MemoryPlan,
    private readonly allRegions: readonly MapsRegion[] = plan.regions.map((p) => p.region),
  ) {
    this.notes = buildCoreNotes(machine, info, this.allRegions);
    this.dataStart = Math.ceil((EHDR_SIZE + this.notes.length) / CORE_PAGE) * CORE_PAGE;
    this.reserved = [];
    let pos = this.dataStart;
    this.records = plan.regions.map((p) => {
      const planned = p.skip ? 0 : Number(p.take);
      const rec = baseRecord(p.id, p.region, planned);
      this.reserved.push(pos);
      if (p.skip) {
        rec.status = 'skipped';
        rec.reason = p.skip;
        if (p.note) rec.detail = p.note;
      } else {
        rec.coreOffset = pos;
        if (p.note) rec.detail = p.note;
      }
      pos += planned;
      return rec;
    });
  }

  /** The result; throws if `stream()` was not consumed to the end. */
  get result(): CoreAssemblyResult {
    if (!this.done) throw new Error('CoreAssembler.result read before the stream ended');
    const allPlannedComplete =
      this.problems.length === 0 &&
      this.records.every((r) => r.status === 'complete' || r.status === 'skipped' || r.status === 'capped');
    return { regions: this.records, coreBytes: this.coreBytes, problems: this.problems, allPlannedComplete };
  }

  private phdrs(): Phdr[] {
    const out: Phdr[] = [
      {
        type: 'note',
        flags: 0,
        offset: BigInt(EHDR_SIZE),
        vaddr: 0n,
        filesz: BigInt(this.notes.length),
        memsz: 0n,
        align: 4n,
      },
    ];
    const withSkipped = this.plan.regions.length + 1 <= MAX_PHDRS;
    this.plan.regions.forEach((p, i) => {
      const rec = this.records[i] as RegionRecord;
      if (p.skip && !withSkipped) return;
      out.push({
        type: 'load',
        flags: permFlags(p.region.perms),
        offset: BigInt(this.reserved[i] as number),
        vaddr: p.region.start,
        filesz: BigInt(rec.bytes),
        memsz: p.region.end - p.region.start,
        align: BigInt(CORE_PAGE),
      });
    });
    return out;
  }

  /** Yields the core bytes while consuming the read exec's frames. */
  async *stream(events: AsyncIterable<FrameEvent>): AsyncGenerator<Buffer> {
    const planned = this.plan.regions.filter((p) => !p.skip && p.take > 0n);
    if (planned.length + 1 > MAX_PHDRS) throw new RangeError('plan has too many regions for one core file');
    const phnum =
      this.plan.regions.length + 1 <= MAX_PHDRS ? this.plan.regions.length + 1 : planned.length + 1;
    const phoff = this.dataStart + planned.reduce((s, p) => s + Number(p.take), 0);
    let pos = 0;
    const out = (b: Buffer): Buffer => {
      pos += b.length;
      return b;
    };
    yield out(elfHeader(this.machine, BigInt(phoff), phnum));
    yield out(this.notes);
    for (const z of zeros(this.dataStart - pos)) yield out(z);

    let next = 0; // index into `planned`
    let phase: 'M' | 'R' | 'idle' = 'idle';
    let cur:
      | { rec: RegionRecord; take: number; got: number; excess: number; hash: Hash; rc: number | null }
      | undefined;
    let detail: Buffer[] = [];
    let detailBytes = 0;
    const finishRegion = (): void => {
      if (!cur) return;
      const { rec, take, got, excess, rc } = cur;
      rec.bytes = got;
      rec.sha256 = cur.hash.digest('hex');
      const msg = printable(Buffer.concat(detail));
      const code = classifyReadError(msg);
      if (excess > 0) {
        rec.status = 'excess';
        rec.reason = 'excess';
        rec.detail = `${excess} bytes beyond the planned ${take} were dropped`;
      } else if (got === take && rc === 0) {
        rec.status = rec.detail ? 'capped' : 'complete';
        if (rec.detail) rec.reason = 'cap';
      } else {
        rec.status = got === 0 ? 'unreadable' : 'truncated';
        rec.reason = code ?? (rc === 0 ? 'short-read' : `exit-${rc ?? 'unknown'}`);
        rec.detail = `${got} of ${take} bytes${msg ? `; ${msg}` : ''}${rc !== 0 ? `; reader exit ${rc ?? 'unknown'}` : ''}`;
      }
      cur = undefined;
      detail = [];
      detailBytes = 0;
    };
    let broken: string | undefined;
    for await (const ev of events) {
      if (ev.type === 'error') {
        broken = ev.reason;
        break;
      }
      if (ev.type === 'begin') {
        const [idText, kind, ...rest] = ev.header;
        const want = planned[next];
        if (kind === 'M' && phase !== 'M' && rest.length === 0 && want && idText === String(want.id)) {
          if (phase === 'R' || cur) finishRegion();
          const i = this.plan.regions.indexOf(want);
          cur = {
            rec: this.records[i] as RegionRecord,
            take: Number(want.take),
            got: 0,
            excess: 0,
            hash: createHash('sha256'),
            rc: null,
          };
          phase = 'M';
          next++;
          continue;
        }
        if (kind === 'R' && phase === 'idle' && cur && rest.length === 0 && idText === String(cur.rec.id)) {
          phase = 'R';
          continue;
        }
        broken = `unexpected frame ${JSON.stringify(ev.header.join(' ').slice(0, 60))}`;
        break;
      }
      if (ev.type === 'data') {
        if (phase === 'M' && cur) {
          const room = cur.take - cur.got;
          const keep = Math.min(room, ev.chunk.length);
          if (keep > 0) {
            const piece = ev.chunk.subarray(0, keep);
            cur.hash.update(piece);
            cur.got += keep;
            yield out(piece);
          }
          cur.excess += ev.chunk.length - keep;
          if (cur.excess > MAX_EXCESS) {
            broken = `more than ${MAX_EXCESS} bytes beyond the planned size of region ${cur.rec.id}`;
            break;
          }
        } else if (phase === 'R' && detailBytes < 1024) {
          const piece = Buffer.from(ev.chunk.subarray(0, 1024 - detailBytes));
          detail.push(piece);
          detailBytes += piece.length;
        }
        continue;
      }
      // end
      if (phase === 'M' && cur) {
        cur.rc = ev.rc;
        for (const z of zeros(cur.take - cur.got)) yield out(z);
        phase = 'idle';
      } else if (phase === 'R') {
        finishRegion();
        phase = 'idle';
      }
    }
    if (cur) {
      if (phase === 'M') {
        for (const z of zeros(cur.take - cur.got)) yield out(z);
        cur.rc = null;
        if (!broken) broken = 'stream ended inside a region';
      }
      finishRegion();
    }
    if (broken) {
      this.problems.push(broken);
      this.stoppedEarly = true;
    }
    // regions whose frames never came: their reserved space is zero-filled, not claimed
    for (const p of planned.slice(next)) {
      const rec = this.records[this.plan.regions.indexOf(p)] as RegionRecord;
      rec.status = 'missing';
      rec.reason = 'missing';
      rec.detail = broken ? `stream stopped before this region: ${broken}` : 'no frame for this region';
      for (const z of zeros(Number(p.take))) yield out(z);
    }
    if (next < planned.length && !broken)
      this.problems.push(`${planned.length - next} regions never arrived`);
    if (pos !== phoff) throw new Error(`core layout error: at ${pos}, expected ${phoff}`);
    yield out(encodePhdrs(this.phdrs()));
    this.coreBytes = pos;
    this.done = true;
  }
}
