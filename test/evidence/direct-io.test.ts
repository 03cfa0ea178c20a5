/**
 * Direct I/O (O_DIRECT) for large artifacts in DirectorySink / FileAppender.
 *
 * `node:fs` is wrapped (vi.mock) so the tests can see which writes went to a descriptor opened with
 * O_DIRECT (the kernel's flags for it are read back from /proc/self/fdinfo, so "direct" means the
 * kernel accepted it), and can inject an open refusal, EINVAL, short writes and I/O errors.
 */
import { createHash } from 'node:crypto';
import type * as Fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DirectIoOptions, FileAppender } from '../../src/evidence/fsutil.js';
import { DirectorySink, verifyEvidence } from '../../src/evidence/index.js';
import { pattern, sha256 } from './helpers.js';

type WriteCb = (err: NodeJS.ErrnoException | null, written: number, buf?: Buffer) => void;
type OpenCb = (err: NodeJS.ErrnoException | null, fd: number) => void;
type CloseCb = (err: NodeJS.ErrnoException | null) => void;

/** One positional write as FileAppender issues it. */
interface WriteCall {
  fd: number;
  direct: boolean;
  buf: Buffer;
  off: number;
  len: number;
  pos: number | null;
}

const io = vi.hoisted(() => ({
  /** Descriptors opened with O_DIRECT whose kernel flags really carry O_DIRECT, still open. */
  directFds: new Set<number>(),
  directOpens: 0,
  directCloses: 0,
  /** Bytes written through O_DIRECT descriptors (successful writes). */
  directBytes: 0,
  /** Refuse the O_DIRECT re-open (as a filesystem without O_DIRECT does). */
  refuseOpen: false,
  /** Replaces a write: return true when it called `cb` itself. */
  hook: undefined as
    | undefined
    | ((call: WriteCall, real: (len?: number, report?: number) => void, cb: WriteCb) => boolean),
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof Fs>();
  const errno = (code: string, syscall: string): NodeJS.ErrnoException =>
    Object.assign(new Error(`${code}: injected (${syscall})`), { code, syscall });
  const open = (path: string, flags: unknown, ...rest: unknown[]): void => {
    const cb = rest[rest.length - 1] as OpenCb;
    if (typeof flags !== 'number' || (flags & fs.constants.O_DIRECT) === 0) {
      (fs.open as (...a: unknown[]) => void)(path, flags, ...rest);
      return;
    }
    if (io.refuseOpen) {
      process.nextTick(cb, errno('EINVAL', 'open'), -1);
      return;
    }
    fs.open(path, flags, (err, fd) => {
      if (!err) {
        const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
        const kflags = Number.parseInt(/flags:\s*([0-7]+)/.exec(info)?.[1] ?? '0', 8);
        if ((kflags & fs.constants.O_DIRECT) !== 0) io.directFds.add(fd);
        io.directOpens++;
      }
      cb(err, fd);
    });
  };
  const write = (...args: unknown[]): void => {
    const [fd, buf, off, len, pos, cb] = args as [number, Buffer, number, number, number | null, WriteCb];
    if (args.length !== 6 || typeof cb !== 'function' || !Buffer.isBuffer(buf)) {
      (fs.write as (...a: unknown[]) => void)(...args);
      return;
    }
    const direct = io.directFds.has(fd);
    const done: WriteCb = (err, written) => {
      if (!err && direct) io.directBytes += written;
      cb(err, written, buf);
    };
    /** The real write of `n` bytes, reported as `report` bytes written (a short write). */
    const real = (n = len, report?: number) =>
      fs.write(fd, buf, off, n, pos, (err, written) => done(err, err ? written : (report ?? written)));
    if (io.hook?.({ fd, direct, buf, off, len, pos }, real, cb)) return;
    real();
  };
  const close = (fd: number, cb: CloseCb): void => {
    if (io.directFds.delete(fd)) io.directCloses++;
    fs.close(fd, cb);
  };
  return { ...fs, default: { ...fs, open, write, close }, open, write, close };
});

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small geometry so every boundary is cheap to reach: switch at 64 KiB, ring of 4 × 64 KiB. */
const SMALL: Required<DirectIoOptions> = { after: 64 * KiB, slots: 4, slotBytes: 64 * KiB };
const RING = SMALL.slots * SMALL.slotBytes;
const EXT4_SUPER_MAGIC = 0xef53;

let root: string;
let seq = 0;
/** The test folder accepts O_DIRECT (ext4, xfs… yes; some tmpfs no): only then must direct I/O be seen. */
let directSupported = false;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'eksf-direct-io-'));
  const f = await FileAppender.create(join(root, 'probe'), { direct: { after: 0 } });
  await f.write(Buffer.alloc(8192, 1));
  await f.close(false);
  directSupported = io.directBytes > 0;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(() => {
  io.refuseOpen = false;
  io.hook = undefined;
});

/** Resets the counters; returns a reader of what happened since. */
function track() {
  io.directBytes = 0;
  io.directOpens = 0;
  io.directCloses = 0;
  return () => ({ directBytes: io.directBytes, directOpens: io.directOpens, directCloses: io.directCloses });
}

function bytesOf(size: number, seed = 7): Buffer {
  return Buffer.concat([...pattern(size, 256 * KiB, seed)], size);
}

/** Feeds `data` in chunks cycling through `sizes`, awaiting only when `write` asks to. */
async function feed(file: FileAppender, data: Buffer, sizes: number[]): Promise<void> {
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length] as number, data.length - off);
    const p = file.write(data.subarray(off, off + n));
    off += n;
    if (p) await p;
  }
}

async function roundTrip(
  data: Buffer,
  sizes: number[],
  direct: DirectIoOptions | false = SMALL,
  fsync = false,
): Promise<Buffer> {
  const path = join(root, `f-${seq++}`);
  const file = await FileAppender.create(path, { direct, limit: 64 * KiB });
  await feed(file, data, sizes);
  await file.close(fsync);
  expect(file.error).toBeUndefined();
  const got = await readFile(path);
  await rm(path);
  return got;
}

const expectSame = (got: Buffer, data: Buffer): void => {
  expect(got.length).toBe(data.length);
  expect(sha256(got)).toBe(createHash('sha256').update(data).digest('hex'));
  expect(got.equals(data)).toBe(true);
};

it('on ext4 the files really switch to O_DIRECT (the kernel flags of the descriptor say so)', async (ctx) => {
  if (process.platform !== 'linux' || (await statfs(root)).type !== EXT4_SUPER_MAGIC) ctx.skip();
  expect(directSupported).toBe(true);
});

describe('FileAppender direct I/O: exact bytes at every boundary', () => {
  const A = SMALL.after;
  const sizes: Array<[string, number]> = [
    ['0', 0],
    ['1', 1],
    ['4095', 4095],
    ['4096', 4096],
    ['4097', 4097],
    ['directAfter-1', A - 1],
    ['directAfter', A],
    ['directAfter+1', A + 1],
    ['directAfter+4097', A + 4097],
    ['directAfter+ring', A + RING],
    ['3 rings+123', 3 * RING + 123],
  ];
  const chunkings: Array<[string, number[]]> = [
    ['1', [1]],
    ['7', [7]],
    ['65535', [65535]],
    ['1 MiB+3', [MiB + 3]],
    ['mixed', [1, 7, 65535, MiB + 3, 4096, 3]],
  ];
  for (const [label, size] of sizes) {
    it.each(chunkings)(`${label} bytes in chunks of %s`, async (_name, chunks) => {
      const data = bytesOf(size, size + 1);
      const seen = track();
      expectSame(await roundTrip(data, chunks), data);
      const s = seen();
      if (size <= A) expect(s.directOpens).toBe(0);
      else if (directSupported) {
        expect(s.directOpens).toBe(1);
        expect(s.directCloses).toBe(1);
        // Everything past the switch point except the unaligned tail went direct.
        expect(s.directBytes).toBe(Math.floor((size - A) / 4096) * 4096);
      }
    });
  }

  it('an unaligned directAfter is rounded up so the switch point is aligned', async () => {
    const data = bytesOf(200 * KiB + 5, 3);
    const seen = track();
    expectSame(await roundTrip(data, [1000, 33], { ...SMALL, after: 10_000 }), data);
    if (directSupported) expect(seen().directBytes).toBe(Math.floor((data.length - 12_288) / 4096) * 4096);
  });

  it('direct: false never opens an O_DIRECT descriptor', async () => {
    const data = bytesOf(RING * 2 + 77);
    const seen = track();
    expectSame(await roundTrip(data, [MiB + 3], false, true), data);
    expect(seen().directOpens).toBe(0);
  });

  it('many large files at once (more than the ring pool holds) stay exact', async () => {
    const datas = Array.from({ length: 6 }, (_, i) => bytesOf(2 * RING + 999 * i, 100 + i));
    const gots = await Promise.all(
      datas.map((d, i) => roundTrip(d, [4096 * (i + 1) + i], SMALL, i % 2 === 0)),
    );
    gots.forEach((g, i) => {
      expectSame(g, datas[i] as Buffer);
    });
  });

  it('reuses staging rings across files instead of allocating one per file', async () => {
    type MemoryCtor = new (d: { initial: number; maximum?: number }) => object;
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: MemoryCtor } }).WebAssembly;
    const Memory = wasm.Memory;
    let made = 0;
    wasm.Memory = class extends Memory {
      constructor(d: { initial: number; maximum?: number }) {
        super(d);
        made++;
      }
    };
    try {
      const geometry = { after: 0, slots: 3, slotBytes: 8192 }; // a geometry no other test uses
      for (let i = 0; i < 3; i++) {
        const data = bytesOf(50_000, i);
        const seen = track();
        expectSame(await roundTrip(data, [999], geometry), data);
        if (directSupported) expect(seen().directBytes).toBeGreaterThan(0);
      }
      expect(made).toBe(1);
    } finally {
      wasm.Memory = Memory;
    }
  });
});

describe('FileAppender direct I/O: fallback and errors', () => {
  const data = bytesOf(3 * RING + 123, 42);

  it('falls back to buffered when the O_DIRECT re-open is refused, bytes exact', async () => {
    io.refuseOpen = true;
    const seen = track();
    expectSame(await roundTrip(data, [65535, 7]), data);
    expect(seen()).toEqual({ directBytes: 0, directOpens: 0, directCloses: 0 });
  });

  it('re-opens the same inode through /proc/self/fd: a path swapped meanwhile is not written', async () => {
    const path = join(root, `inode-${seq++}`);
    const file = await FileAppender.create(path, { direct: SMALL });
    await feed(file, data.subarray(0, 1000), [1000]);
    // Swap the path before the switch to direct I/O: the artifact file moves away, a decoy takes its name.
    await rename(path, `${path}.moved`);
    await writeFile(path, 'decoy');
    const seen = track();
    await feed(file, data.subarray(1000), [MiB + 3]);
    await file.close(true);
    expectSame(readFileSync(`${path}.moved`), data);
    expect(readFileSync(path, 'utf8')).toBe('decoy');
    if (directSupported) expect(seen().directBytes).toBeGreaterThan(0);
  });

  it('falls back when the first direct write fails with EINVAL: that slot and the rest go buffered', async () => {
    let refused = 0;
    io.hook = (call, _real, cb) => {
      if (!call.direct) return false;
      refused++;
      process.nextTick(cb, Object.assign(new Error('EINVAL: injected'), { code: 'EINVAL' }), 0);
      return true;
    };
    const seen = track();
    expectSame(await roundTrip(data, [1, 7, 65535, MiB + 3]), data);
    const s = seen();
    expect(s.directBytes).toBe(0);
    if (directSupported) {
      // Only the writes already in flight when the first one failed were tried direct.
      expect(refused).toBeGreaterThanOrEqual(1);
      expect(refused).toBeLessThanOrEqual(SMALL.slots - 1);
      expect(s.directCloses).toBe(1);
    }
  });

  it('EINVAL after a direct write succeeded is an error, not a refusal', async () => {
    if (!directSupported) return;
    track();
    io.hook = (call, _real, cb) => {
      if (!call.direct || io.directBytes === 0) return false; // once a direct write has completed
      process.nextTick(cb, Object.assign(new Error('EINVAL: injected late'), { code: 'EINVAL' }), 0);
      return true;
    };
    const file = await FileAppender.create(join(root, `late-${seq++}`), { direct: SMALL });
    await expect(feed(file, data, [65535])).rejects.toThrow('EINVAL: injected late');
    expect(file.error?.message).toBe('EINVAL: injected late');
    await expect(file.close(false)).rejects.toThrow('EINVAL: injected late');
  });

  it('continues short writes from where they stopped (aligned: direct; unaligned: buffered)', async () => {
    let n = 0;
    let short = 0;
    io.hook = (call, real) => {
      if (call.len <= 8192 || n++ % 3 === 2) return false;
      short++;
      // An aligned short write, or an unaligned one (O_DIRECT writes whole blocks, so an unaligned
      // count is simulated by writing the aligned part and reporting 100 bytes less; the 100 bytes
      // are written again, identically, from where the count says the write stopped).
      if (n % 2 === 0) real(call.len - 4096);
      else if (call.direct) real(call.len - 4096, call.len - 4096 - 100);
      else real(call.len - 100);
      return true;
    };
    const seen = track();
    expectSame(await roundTrip(data, [1, 7, 65535, MiB + 3], SMALL, true), data);
    expect(short).toBeGreaterThan(4);
    if (directSupported) expect(seen().directBytes).toBeGreaterThan(RING);
  });

  it('a direct write error fails the producer, close rejects with it, and both descriptors close', async () => {
    if (!directSupported) return;
    let direct = 0;
    io.hook = (call, _real, cb) => {
      if (!call.direct || ++direct < 2) return false;
      process.nextTick(cb, Object.assign(new Error('EIO: injected'), { code: 'EIO' }), 0);
      return true;
    };
    const seen = track();
    const file = await FileAppender.create(join(root, `eio-${seq++}`), { direct: SMALL });
    await expect(feed(file, data, [7, 65535])).rejects.toThrow('EIO: injected');
    expect(file.error?.message).toBe('EIO: injected');
    await expect(file.write(Buffer.alloc(1))).rejects.toThrow('EIO: injected');
    await expect(file.close(true)).rejects.toThrow('EIO: injected');
    expect(seen().directCloses).toBe(1);
  });

  it('keeps a prefix when a failed slot write is overtaken by later ones (no gap of zeros)', async () => {
    if (!directSupported) return;
    let direct = 0;
    io.hook = (call, _real, cb) => {
      if (!call.direct || ++direct > 1) return false;
      // The first direct slot fails, but only after the next slots have landed.
      setTimeout(() => cb(Object.assign(new Error('EIO: injected slow'), { code: 'EIO' }), 0), 50);
      return true;
    };
    const path = join(root, `gap-${seq++}`);
    const file = await FileAppender.create(path, { direct: SMALL });
    await expect(feed(file, data, [65535])).rejects.toThrow('EIO: injected slow');
    await expect(file.close(false)).rejects.toThrow('EIO: injected slow');
    const got = await readFile(path);
    expect(got.length).toBe(SMALL.after); // cut where the failed slot began
    expect(got.equals(data.subarray(0, got.length))).toBe(true);
  });

  it('destroy() with direct writes in flight never rejects, waits for them and closes both descriptors', async () => {
    io.hook = (call, real) => {
      if (!call.direct) return false;
      setTimeout(() => real(), 20);
      return true;
    };
    const seen = track();
    const path = join(root, `destroy-${seq++}`);
    const file = await FileAppender.create(path, { direct: SMALL });
    await feed(file, data.subarray(0, 2 * RING + 5000), [65535]);
    const fds = [...io.directFds];
    await file.destroy();
    await file.destroy();
    expect(file.error?.message).toBe('file closed');
    expect(seen().directCloses).toBe(seen().directOpens);
    for (const fd of fds) expect(io.directFds.has(fd)).toBe(false);
    // Whatever reached the disk is a prefix of the data.
    const got = await readFile(path);
    expect(got.equals(data.subarray(0, got.length))).toBe(true);
    if (directSupported) expect(got.length).toBeGreaterThan(SMALL.after);
  });
});

describe('DirectorySink with direct I/O', () => {
  async function artifact(
    opts: { directIo?: boolean; fsyncArtifacts?: boolean },
    data: Buffer,
    chunk: number,
  ) {
    const sink = new DirectorySink({ root: join(root, `sink-${seq++}`), ...opts });
    const w = await sink.open({});
    const rec = await w.writeArtifact('mem/core.bin', Readable.from(pattern(data.length, chunk, 9)), {
      source: { kind: 'exec' },
    });
    const fin = await w.finalize();
    return { w, rec, fin, onDisk: await readFile(join(w.location, rec.path)) };
  }

  for (const fsyncArtifacts of [true, false]) {
    it(`a 64 MiB artifact is exact and goes direct after 8 MiB (fsyncArtifacts: ${fsyncArtifacts})`, async () => {
      const size = 64 * MiB + 4097;
      const data = Buffer.concat([...pattern(size, 1_000_003, 9)], size);
      const seen = track();
      const { w, rec, onDisk } = await artifact({ fsyncArtifacts }, data, 1_000_003);
      expect(rec).toMatchObject({ status: 'complete', stored: true, bytes: size });
      expect(rec.sha256).toBe(sha256(data));
      expectSame(onDisk, data);
      if (directSupported) {
        expect(seen().directBytes).toBe(Math.floor((size - 8 * MiB) / 4096) * 4096);
        expect(seen().directCloses).toBe(1);
      }
      expect((await verifyEvidence(w.location, { acceptUnanchored: true })).status).toBe('valid');
    });
  }

  it('directIo: false writes buffered only', async () => {
    const size = 12 * MiB + 1;
    const data = Buffer.concat([...pattern(size, 65536, 9)], size);
    const seen = track();
    const { rec, onDisk } = await artifact({ directIo: false }, data, 65536);
    expect(rec.sha256).toBe(sha256(data));
    expectSame(onDisk, data);
    expect(seen().directOpens).toBe(0);
  });

  it('an injected direct write error: artifact failed, bytes kept and re-hashed from disk, bundle valid', async () => {
    if (!directSupported) return;
    let direct = 0;
    io.hook = (call, _real, cb) => {
      if (!call.direct || ++direct < 3) return false;
      process.nextTick(cb, Object.assign(new Error('EIO: i/o error (injected)'), { code: 'EIO' }), 0);
      return true;
    };
    const size = 16 * MiB;
    const data = Buffer.concat([...pattern(size, 65536, 9)], size);
    const { w, rec, fin, onDisk } = await artifact({}, data, 65536);
    expect(rec).toMatchObject({ status: 'failed', stored: true });
    expect(rec.reason).toContain('EIO: i/o error (injected)');
    expect(rec.bytes).toBe(onDisk.length);
    expect(rec.sha256).toBe(sha256(onDisk));
    expect(rec.bytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(rec.bytes).toBeLessThan(size);
    expect(fin.manifest.counts.failed).toBe(1);
    expect((await verifyEvidence(w.location, { acceptUnanchored: true })).status).toBe('valid');
  });

  it('falls back when the filesystem refuses O_DIRECT, bytes exact', async () => {
    io.refuseOpen = true;
    const size = 20 * MiB + 3;
    const data = Buffer.concat([...pattern(size, 65536, 9)], size);
    const seen = track();
    const { rec, onDisk } = await artifact({}, data, 65536);
    expect(rec).toMatchObject({ status: 'complete', bytes: size, sha256: sha256(data) });
    expectSame(onDisk, data);
    expect(seen().directBytes).toBe(0);
  });
});
