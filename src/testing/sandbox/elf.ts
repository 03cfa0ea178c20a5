/**
 * A tiny static ELF executable that ignores its arguments and sleeps forever (a `pause()` loop).
 * It stands in for an application binary in `none` / `shell-only` images and for planted
 * processes (a "miner", an implant) whose command line is whatever the test wants.
 */
import { arch } from 'node:process';

const BASE = 0x400000n;
const HEADER = 64 + 56;

/** Machine code per architecture: loop forever on a blocking syscall. */
const CODE: Readonly<Record<string, { machine: number; code: readonly number[] }>> = {
  // loop: mov eax, 34 (pause); syscall; jmp loop
  x64: { machine: 0x3e, code: [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7] },
  // loop: x0..x3 = 0; x8 = 73 (ppoll); svc #0; b loop   (not exercised in CI)
  arm64: {
    machine: 0xb7,
    code: [
      0x00, 0x00, 0x80, 0xd2, 0x01, 0x00, 0x80, 0xd2, 0x02, 0x00, 0x80, 0xd2, 0x03, 0x00, 0x80, 0xd2, 0x28,
      0x09, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0xfa, 0xff, 0xff, 0x17,
    ],
  },
};

/** True when {@link sleeperElf} can build a binary for this machine. */
export function sleeperSupported(): boolean {
  return CODE[arch] !== undefined;
}

/** Builds the sleeper binary for the current architecture (x86_64, arm64). */
export function sleeperElf(): Buffer {
  const spec = CODE[arch];
  if (!spec) throw new Error(`no sleeper binary for architecture ${arch}`);
  const size = HEADER + spec.code.length;
  const b = Buffer.alloc(size);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(spec.machine, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BASE + BigInt(HEADER), 24); // entry
  b.writeBigUInt64LE(64n, 32); // phoff
  b.writeBigUInt64LE(0n, 40); // shoff
  b.writeUInt32LE(0, 48);
  b.writeUInt16LE(64, 52); // ehsize
  b.writeUInt16LE(56, 54); // phentsize
  b.writeUInt16LE(1, 56); // phnum
  b.writeUInt16LE(0, 58);
  b.writeUInt16LE(0, 60);
  b.writeUInt16LE(0, 62);
  // PT_LOAD, R+X, whole file at BASE
  b.writeUInt32LE(1, 64);
  b.writeUInt32LE(5, 68);
  b.writeBigUInt64LE(0n, 72);
  b.writeBigUInt64LE(BASE, 80);
  b.writeBigUInt64LE(BASE, 88);
  b.writeBigUInt64LE(BigInt(size), 96);
  b.writeBigUInt64LE(BigInt(size), 104);
  b.writeBigUInt64LE(0x1000n, 112);
  b.set(spec.code, HEADER);
  return b;
}
