/**
 * ELF64 core file pieces (little endian): the header, the `PT_NOTE` content (`NT_PRSTATUS`,
 * `NT_PRPSINFO`, `NT_AUXV`, `NT_FILE`) and program headers. Pure encoders; the streaming
 * assembly lives in `memory-receive.ts`.
 *
 * Layout written by the assembler: ELF header, notes, region data from the next 4 KiB boundary
 * (each region at a fixed offset reserved by the plan), then the program headers at the end
 * (`e_phoff` points there), so each `PT_LOAD` can state the bytes actually received.
 */
import type { MapsRegion } from './memory-maps.js';

/** Architectures whose `NT_PRSTATUS` layout is known. */
export type CoreMachine = 'x86_64' | 'aarch64';

const EM: Record<CoreMachine, number> = { x86_64: 62, aarch64: 183 };
/** `struct elf_prstatus` size and the register slots of sp and pc. */
const PRSTATUS: Record<CoreMachine, { size: number; sp: number; pc: number }> = {
  x86_64: { size: 336, sp: 19, pc: 16 },
  aarch64: { size: 392, sp: 31, pc: 32 },
};
const PRSTATUS_REG_OFFSET = 112;

/** Note types. */
export const NT = { PRSTATUS: 1, PRPSINFO: 3, AUXV: 6, FILE: 0x46494c45 } as const;
/** Page size used for `NT_FILE` offsets and region alignment. */
export const CORE_PAGE = 4096;
/** Bytes of one program header. */
export const PHDR_SIZE = 56;
/** Bytes of the ELF header. */
export const EHDR_SIZE = 64;
/** Most program headers before `PN_XNUM` would be needed (kept below it). */
export const MAX_PHDRS = 65_000;

/** Process facts that go into the notes (from `/proc/<pid>/stat`, `status`, `cmdline`, `auxv`, `syscall`). */
export interface CoreProcessInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  uid: number;
  gid: number;
  /** State letter from `stat` (R, S, D, …). */
  state: string;
  nice: number;
  flags: number;
  /** `comm` (at most 15 bytes are kept). */
  comm: string;
  /** Command line with NULs turned into spaces (at most 79 bytes are kept). */
  psargs: string;
  /** Raw `/proc/<pid>/auxv`, when it was readable. */
  auxv?: Buffer | undefined;
  /** Stack pointer and program counter from `/proc/<pid>/syscall` (only when blocked in a syscall). */
  sp?: bigint | undefined;
  pc?: bigint | undefined;
}

function note(type: number, desc: Buffer): Buffer {
  const name = Buffer.from('CORE\0', 'latin1');
  const namePad = (4 - (name.length % 4)) % 4;
  const descPad = (4 - (desc.length % 4)) % 4;
  const h = Buffer.alloc(12);
  h.writeUInt32LE(name.length, 0);
  h.writeUInt32LE(desc.length, 4);
  h.writeUInt32LE(type >>> 0, 8);
  return Buffer.concat([h, name, Buffer.alloc(namePad), desc, Buffer.alloc(descPad)]);
}

function i32(v: number): number {
  return Number.isInteger(v) && v >= -2147483648 && v <= 4294967295 ? v | 0 : 0;
}

/** `NT_PRSTATUS` for one thread: ids filled, registers zero except sp/pc when known. */
export function prstatusNote(machine: CoreMachine, p: CoreProcessInfo): Buffer {
  const spec = PRSTATUS[machine];
  const d = Buffer.alloc(spec.size);
  d.writeInt32LE(i32(p.pid), 32);
  d.writeInt32LE(i32(p.ppid), 36);
  d.writeInt32LE(i32(p.pgrp), 40);
  d.writeInt32LE(i32(p.sid), 44);
  const u64 = (v: bigint | undefined, slot: number): void => {
    if (v !== undefined && v >= 0n && v < 1n << 64n) d.writeBigUInt64LE(v, PRSTATUS_REG_OFFSET + slot * 8);
  };
  u64(p.sp, spec.sp);
  u64(p.pc, spec.pc);
  return note(NT.PRSTATUS, d);
}

/** `NT_PRPSINFO` (`struct elf_prpsinfo`, 136 bytes on 64-bit Linux). */
export function prpsinfoNote(p: CoreProcessInfo): Buffer {
  const d = Buffer.alloc(136);
  const st = p.state.slice(0, 1) || '?';
  const idx = 'RSDTZW'.indexOf(st);
  d.writeUInt8(Math.max(idx, 0), 0);
  d.write(st, 1, 'latin1');
  d.writeUInt8(st === 'Z' ? 1 : 0, 2);
  d.writeInt8(Math.max(-128, Math.min(127, Math.trunc(p.nice) || 0)), 3);
  d.writeBigUInt64LE(BigInt(Math.max(0, Math.trunc(p.flags) || 0)), 8);
  d.writeUInt32LE(i32(p.uid) >>> 0, 16);
  d.writeUInt32LE(i32(p.gid) >>> 0, 20);
  d.writeInt32LE(i32(p.pid), 24);
  d.writeInt32LE(i32(p.ppid), 28);
  d.writeInt32LE(i32(p.pgrp), 32);
  d.writeInt32LE(i32(p.sid), 36);
  Buffer.from(p.comm, 'utf8').subarray(0, 15).copy(d, 40);
  Buffer.from(p.psargs, 'utf8').subarray(0, 79).copy(d, 56);
  return note(NT.PRPSINFO, d);
}

/** Most `NT_FILE` entries written. */
export const MAX_NT_FILE_ENTRIES = 16_384;

/** `NT_FILE`: the file-backed mappings (path starting with `/`, inode not 0). */
export function fileNote(regions: readonly MapsRegion[]): Buffer | undefined {
  const files = regions
    .filter((r) => r.path.startsWith('/') && r.inode !== '0')
    .slice(0, MAX_NT_FILE_ENTRIES);
  if (files.length === 0) return undefined;
  const head = Buffer.alloc(16 + files.length * 24);
  head.writeBigUInt64LE(BigInt(files.length), 0);
  head.writeBigUInt64LE(BigInt(CORE_PAGE), 8);
  files.forEach((r, i) => {
    head.writeBigUInt64LE(r.start, 16 + i * 24);
    head.writeBigUInt64LE(r.end, 24 + i * 24);
    head.writeBigUInt64LE(r.offset / BigInt(CORE_PAGE), 32 + i * 24);
  });
  const names = files.map((r) => Buffer.from(`${r.path.replace(/\0/g, '')}\0`, 'utf8'));
  return note(NT.FILE, Buffer.concat([head, ...names]));
}

/** All notes, in the order gdb's own cores use. */
export function buildCoreNotes(
  machine: CoreMachine | undefined,
  info: CoreProcessInfo,
  regions: readonly MapsRegion[],
): Buffer {
  const parts: Buffer[] = [];
  if (machine) parts.push(prstatusNote(machine, info));
  parts.push(prpsinfoNote(info));
  if (info.auxv && info.auxv.length >= 16) {
    parts.push(note(NT.AUXV, info.auxv.subarray(0, info.auxv.length - (info.auxv.length % 16))));
  }
  const f = fileNote(regions);
  if (f) parts.push(f);
  return Buffer.concat(parts);
}

/** The ELF header of a core whose program headers sit at `phoff`. */
export function elfHeader(machine: CoreMachine | undefined, phoff: bigint, phnum: number): Buffer {
  if (phnum > 0xfffe) throw new RangeError(`too many program headers (${phnum})`);
  const b = Buffer.alloc(EHDR_SIZE);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  b.writeUInt16LE(4, 16); // ET_CORE
  b.writeUInt16LE(machine ? EM[machine] : 0, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(0n, 24);
  b.writeBigUInt64LE(phoff, 32);
  b.writeBigUInt64LE(0n, 40);
  b.writeUInt32LE(0, 48);
  b.writeUInt16LE(EHDR_SIZE, 52);
  b.writeUInt16LE(PHDR_SIZE, 54);
  b.writeUInt16LE(phnum, 56);
  b.writeUInt16LE(64, 58);
  b.writeUInt16LE(0, 60);
  b.writeUInt16LE(0, 62);
  return b;
}

/** One program header. */
export interface Phdr {
  type: 'load' | 'note';
  flags: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

/** Encodes program headers. */
export function encodePhdrs(list: readonly Phdr[]): Buffer {
  const b = Buffer.alloc(list.length * PHDR_SIZE);
  list.forEach((p, i) => {
    const o = i * PHDR_SIZE;
    b.writeUInt32LE(p.type === 'load' ? 1 : 4, o);
    b.writeUInt32LE(p.flags, o + 4);
    b.writeBigUInt64LE(p.offset, o + 8);
    b.writeBigUInt64LE(p.vaddr, o + 16);
    b.writeBigUInt64LE(0n, o + 24);
    b.writeBigUInt64LE(p.filesz, o + 32);
    b.writeBigUInt64LE(p.memsz, o + 40);
    b.writeBigUInt64LE(p.align, o + 48);
  });
  return b;
}

/** `PF_R|PF_W|PF_X` from `rwxp` permissions. */
export function permFlags(perms: string): number {
  return (perms[0] === 'r' ? 4 : 0) | (perms[1] === 'w' ? 2 : 0) | (perms[2] === 'x' ? 1 : 0);
}

/** The machine named by an ELF header's `e_machine` (64-bit little-endian only), if supported. */
export function machineFromElf(head: Buffer): CoreMachine | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1)
    return undefined;
  const m = head.readUInt16LE(18);
  if (m === EM.x86_64) return 'x86_64';
  if (m === EM.aarch64) return 'aarch64';
  return undefined;
}
