/**
 * TarSink: one `.tar` or `.tar.gz` per bundle, written straight into the archive.
 *
 * @module
 */

import type { WriteStream } from 'node:fs';
import {
  close as closeFd,
  createReadStream,
  constants as fsConstants,
  open as openFd,
  read,
  write,
} from 'node:fs';
import { type FileHandle, mkdir, open, rm, stat, unlink } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { crc32, createGzip, type Gzip, constants as zc } from 'node:zlib';
import { EvidenceError } from '../errors.js';
import { Sha256 } from '../util/index.js';
import { type ArtifactStore, type BundleBackend, type FailedStore, StreamingBundleWriter } from './bundle.js';
import { type AuxDigest, AuxFiles, closeStream, createExclusive, sinkRootError, writeTo } from './fsutil.js';
import {
  type ArtifactMeta,
  BUNDLE_FILES,
  type BundleInit,
  type BundleWriter,
  type EvidenceSink,
} from './types.js';

/** Options of {@link TarSink}. */
export interface TarSinkOptions {
  /** Folder that receives `<acquisitionId>.tar[.gz]` files (created when missing). */
  root: string;
  /** Write `.tar.gz` instead of `.tar`. Default false. */
  gzip?: boolean;
  /**
   * zlib level for gzip (1–9). Default 1: as fast as `gzip -1`, and evidence (binaries, logs,
   * memory) seldom shrinks much more at higher levels; 6 is gzip's own default.
   */
  gzipLevel?: number;
  /**
   * Artifacts are held in memory up to this many bytes; a larger one streams straight into the
   * archive when no other artifact is streaming there, and is otherwise spooled to a temp file in
   * `<bundle>.partial/` until its turn (tar needs every entry's size in its header). Default 1 MiB.
   */
  memoryBufferBytes?: number;
}

const BLOCK = 512;
const SLOT_BYTES = 1 << 20;
const SLOTS = 4;
const DIRECT_ALIGN = 4096;
const O_DIRECT: number | undefined = process.platform === 'linux' ? fsConstants.O_DIRECT : undefined;
/** Largest size the 11 octal digits of a ustar size field hold; larger sizes use base-256. */
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

// ---------------------------------------------------------------------------------------------
// ustar headers

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

function setChecksum(buf: Buffer): void {
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i] as number;
  buf.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  buf[154] = 0;
  buf[155] = 0x20;
}

/** One ustar header block. Sizes past 8 GiB use GNU base-256, which GNU tar and tar-stream read. */
function headerBlock(name: Buffer, type: '0' | '5' | 'x', size: number, mtime: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  name.copy(b, 0, 0, Math.min(100, name.length));
  octal(b, 100, 8, type === '5' ? 0o755 : 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  if (size <= MAX_OCTAL_SIZE) octal(b, 124, 12, size);
  else {
    b[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  octal(b, 136, 12, mtime);
  b[156] = type.charCodeAt(0);
  b.write('ustar\u000000', 257, 'latin1');
  octal(b, 329, 8, 0);
  octal(b, 337, 8, 0);
  setChecksum(b);
  return b;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const n = Buffer.byteLength(body);
  let len = n + String(n).length;
  if (String(len).length !== String(n).length) len = n + String(len).length;
  return Buffer.from(`${len}${body}`, 'utf8');
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * The blocks before an entry's data: a pax header with the full path when it does not fit the
 * 100-byte name field, then the ustar header. `main` is the offset of the ustar header in `head`.
 */
function entryHead(
  path: string,
  type: '0' | '5',
  size: number,
  mtime: number,
): { head: Buffer; main: number } {
  const name = Buffer.from(path, 'utf8');
  const main = headerBlock(name, type, size, mtime);
  if (name.length <= 100) return { head: main, main: 0 };
  const rec = paxRecord('path', path);
  const pax = headerBlock(Buffer.from('PaxHeader', 'latin1'), 'x', rec.length, mtime);
  const head = Buffer.concat([pax, rec, Buffer.alloc(padding(rec.length)), main]);
  return { head, main: head.length - BLOCK };
}

/**
 * What sits where an entry's ustar header will be while its data streams: the header with size 0
 * and a checksum that cannot match. A reader of an archive cut here (a crash) stops with a
 * checksum error instead of taking the data that follows for entries.
 */
function placeholder(block: Buffer): Buffer {
  const p = Buffer.from(block);
  p.fill(0, 124, 136);
  octal(p, 124, 12, 0);
  p.write('0000000\u0000', 148, 'latin1');
  return p;
}

/**
 * A gzip member holding `data` in one stored (uncompressed) deflate block: its bytes appear
 * verbatim in the file, so the member can be rewritten in place with other bytes of the same
 * length (and the matching CRC). 18 bytes of framing plus 5 of block header.
 */
function storedMember(data: Buffer): Buffer {
  const m = Buffer.alloc(10 + 5 + data.length + 8);
  m.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], 0);
  m[10] = 1; // BFINAL, stored
  m.writeUInt16LE(data.length, 11);
  m.writeUInt16LE(~data.length & 0xffff, 13);
  data.copy(m, 15);
  m.writeUInt32LE(crc32(data) >>> 0, 15 + data.length);
  m.writeUInt32LE(data.length, 19 + data.length);
  return m;
}

// ---------------------------------------------------------------------------------------------
// The archive file

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

function alignedMemory(bytes: number): Buffer | undefined {
  try {
    const Memory = (
      globalThis as unknown as {
        WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };
      }
    ).WebAssembly.Memory;
    const pages = Math.ceil(bytes / 65536);
    return Buffer.from(new Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
  } catch {
    return undefined;
  }
}

/**
 * The archive file, appended to from a ring of 4 × 1 MiB aligned slots: a full slot is written
 * at its (1 MiB aligned) position with `O_DIRECT` where the platform and filesystem allow it
 * (else through the page cache), up to three in flight while the next fills, so the producer
 * (hashing) and the disk overlap and the page cache is not filled. {@link Tape.flush} puts the
 * bytes of the slot being filled into the file through the page cache (an entry is in the file
 * before the journal lists it); the slot is written again, whole, once full.
 *
 * The SHA-256 of the file is computed as bytes are appended, except after {@link Tape.hold}: the
 * header of an entry whose size is not known yet will be rewritten ({@link Tape.patch}), so the
 * hash stops there, and {@link Tape.release} hashes the held range once it is final, reading the
 * slots already written back from the file (with `O_DIRECT` too).
 */
class Tape {
  readonly #fh: FileHandle;
  readonly #fd: number;
  #directFd = -1;
  readonly #slots: Buffer[];
  readonly #busy: boolean[];
  #cur = 0;
  #fill = 0;
  /** File position of the current slot's first byte. */
  #base = 0;
  /** Bytes of the current slot already written through the page cache by a flush. */
  #tailFlushed = 0;
  #inflight = 0;
  #idle: Array<() => void> = [];
  #slotWaiter: (Waiter & { chunk: Buffer }) | undefined;
  #error: Error | undefined;
  readonly #hash = new Sha256();
  /** The last hash update still running (on the worker thread); nothing reads the hash before it ends. */
  #hashing: Promise<void> | undefined;
  #holdAt: number | undefined;
  #markAt: number | undefined;
  #closed = false;

  private constructor(fh: FileHandle, memory: Buffer) {
    this.#fh = fh;
    this.#fd = fh.fd;
    this.#slots = Array.from({ length: SLOTS }, (_, i) =>
      memory.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES),
    );
    this.#busy = this.#slots.map(() => false);
  }

  /** Creates `path` exclusively (`wx+`: never overwrites, never follows a symlink at the leaf). */
  static async create(path: string): Promise<Tape> {
    const fh = await open(path, 'wx+');
    const t = new Tape(fh, alignedMemory(SLOTS * SLOT_BYTES) ?? Buffer.allocUnsafeSlow(SLOTS * SLOT_BYTES));
    if (O_DIRECT !== undefined) {
      // Re-opened through /proc/self/fd (the same inode, never the path, which could be swapped).
      t.#directFd = await new Promise<number>((res) => {
        openFd(`/proc/self/fd/${fh.fd}`, fsConstants.O_RDWR | O_DIRECT, (err, fd) => res(err ? -1 : fd));
      });
    }
    return t;
  }

  /** Bytes appended so far (the position of the next byte). */
  get pos(): number {
    return this.#base + this.#fill;
  }

  /** The first write error, if any: the archive is then unusable. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Copies `chunk` in; returns a promise only when the producer must wait for a free slot. */
  append(chunk: Buffer): Promise<void> | undefined {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) return Promise.reject(new Error('archive already closed'));
    const hashing = this.#holdAt === undefined ? this.#hashUpdate(chunk) : undefined;
    const n = this.#copyIn(chunk);
    const copying =
      n === chunk.length
        ? undefined
        : new Promise<void>((resolve, reject) => {
            this.#slotWaiter = { chunk: chunk.subarray(n), resolve, reject };
          });
    if (!hashing) return copying;
    if (!copying) return hashing;
    return Promise.all([hashing, copying]).then(() => undefined);
  }

  /** Hashes `chunk` and tracks it; a promise while the worker still reads it (the chunk must stay as it is). */
  #hashUpdate(chunk: Buffer): Promise<void> | undefined {
    const settled = this.#hashChunk(chunk);
    if (!settled) return undefined;
    const tracked = settled.then(() => {
      if (this.#hashing === tracked) this.#hashing = undefined;
    });
    this.#hashing = tracked;
    return tracked.then(() => this.#throwIfFailed());
  }

  /**
   * Every hash update goes through here: a failure (the hashing thread died) becomes the archive's
   * error, so nothing after it seals, and the promise returned never rejects: it may wait unawaited
   * behind a read, and a rejection nobody handled yet would crash the embedding process.
   */
  #hashChunk(chunk: Buffer): Promise<void> | undefined {
    let p: Promise<void> | undefined;
    try {
      p = this.#hash.update(chunk);
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
      return undefined;
    }
    return p?.then(undefined, (e: unknown) => {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    });
  }

  /** Waits for the hash to have taken everything given to it (check {@link Tape.error} after). */
  async #hashed(): Promise<void> {
    while (this.#hashing) await this.#hashing;
  }

  #copyIn(chunk: Buffer): number {
    let off = 0;
    while (off < chunk.length && !this.#busy[this.#cur]) {
      const n = Math.min(SLOT_BYTES - this.#fill, chunk.length - off);
      chunk.copy(this.#slots[this.#cur] as Buffer, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
      if (this.#fill === SLOT_BYTES) this.#submit();
    }
    return off;
  }

  #submit(): void {
    const slot = this.#cur;
    const pos = this.#base;
    this.#busy[slot] = true;
    this.#inflight++;
    this.#cur = (slot + 1) % SLOTS;
    this.#base += SLOT_BYTES;
    this.#fill = 0;
    this.#tailFlushed = 0;
    this.#writeAll(this.#slots[slot] as Buffer, pos, this.#directFd >= 0, (err) => {
      this.#busy[slot] = false;
      this.#inflight--;
      if (err) this.#fail(err);
      const w = this.#slotWaiter;
      if (w && !this.#error) {
        const n = this.#copyIn(w.chunk);
        if (n === w.chunk.length) {
          this.#slotWaiter = undefined;
          w.resolve();
        } else w.chunk = w.chunk.subarray(n);
      }
      if (this.#inflight === 0) for (const f of this.#idle.splice(0)) f();
    });
  }

  /** Writes all of `buf` at `pos`, retrying short writes; falls back to buffered on EINVAL. */
  #writeAll(buf: Buffer, pos: number, direct: boolean, done: (err?: Error) => void): void {
    const fd = direct ? this.#directFd : this.#fd;
    write(fd, buf, 0, buf.length, pos, (err, n) => {
      if (err) {
        if (direct && err.code === 'EINVAL') {
          this.#dropDirect();
          this.#writeAll(buf, pos, false, done);
        } else done(err);
      } else if (n <= 0) done(new Error('write to the archive made no progress'));
      else if (n < buf.length) this.#writeAll(buf.subarray(n), pos + n, false, done);
      else done();
    });
  }

  #dropDirect(): void {
    const fd = this.#directFd;
    this.#directFd = -1;
    if (fd >= 0) closeFd(fd, () => {});
  }

  #fail(err: Error): void {
    this.#error ??= err;
    const w = this.#slotWaiter;
    this.#slotWaiter = undefined;
    w?.reject(this.#error);
  }

  #whenIdle(): Promise<void> {
    if (this.#inflight === 0 && this.#slotWaiter === undefined) return Promise.resolve();
    return new Promise((res) => {
      const check = () => {
        if (this.#inflight === 0 && this.#slotWaiter === undefined) res();
        else this.#idle.push(check);
      };
      this.#idle.push(check);
    });
  }

  #pwrite(buf: Buffer, pos: number): Promise<void> {
    return new Promise((res, rej) => this.#writeAll(buf, pos, false, (e) => (e ? rej(e) : res())));
  }

  #throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }

  /** Everything appended so far is in the file (the page cache at least) when this resolves. */
  async flush(): Promise<void> {
    await this.#whenIdle();
    this.#throwIfFailed();
    if (this.#fill > this.#tailFlushed) {
      const from = this.#tailFlushed;
      const to = this.#fill;
      try {
        await this.#pwrite((this.#slots[this.#cur] as Buffer).subarray(from, to), this.#base + from);
      } catch (e) {
        this.#fail(e as Error);
        throw e;
      }
      this.#tailFlushed = Math.max(this.#tailFlushed, to);
    }
  }

  /** Stops hashing at the current position: what follows waits for {@link Tape.release}. */
  hold(): number {
    this.#holdAt = this.pos;
    return this.pos;
  }

  /**
   * Remembers the hash state at the current position and keeps hashing: the bytes that follow are
   * expected to be final. {@link Tape.revertToMark} turns the range since the mark into a held
   * one (when they were not); {@link Tape.dropMark} forgets it (when they were).
   */
  async mark(): Promise<number> {
    await this.#hashed();
    this.#throwIfFailed();
    this.#hash.mark();
    this.#markAt = this.pos;
    return this.pos;
  }

  /** Hashing goes back to the mark: the range since is hashed again by {@link Tape.release}. */
  async revertToMark(): Promise<void> {
    const at = this.#markAt;
    if (at === undefined || this.#holdAt !== undefined)
      throw new EvidenceError('archive: no mark to go back to');
    await this.#hashed();
    this.#throwIfFailed();
    this.#hash.revert();
    this.#holdAt = at;
    this.#markAt = undefined;
  }

  /** Forgets the mark: everything since was hashed as final. */
  dropMark(): void {
    this.#markAt = undefined;
  }

  /** Rewrites `bytes` at `at` (inside what was appended), in the file and in the slot being filled. */
  async patch(at: number, bytes: Buffer): Promise<void> {
    await this.#whenIdle();
    await this.#hashed();
    this.#throwIfFailed();
    const split = Math.max(0, Math.min(bytes.length, this.#base - at));
    try {
      if (split > 0) await this.#pwrite(bytes.subarray(0, split), at);
      if (split < bytes.length) {
        const off = at + split - this.#base;
        bytes.copy(this.#slots[this.#cur] as Buffer, off, split);
        if (off < this.#tailFlushed) {
          const end = Math.min(bytes.length, split + this.#tailFlushed - off);
          await this.#pwrite(bytes.subarray(split, end), at + split);
        }
      }
    } catch (e) {
      this.#fail(e as Error);
      throw e;
    }
  }

  /** Hashes the held range, now final, and hashes as it appends again. */
  async release(): Promise<void> {
    const from = this.#holdAt;
    if (from === undefined) return;
    await this.#whenIdle();
    await this.#hashed();
    this.#throwIfFailed();
    if (from < this.#base) await this.#hashFile(from, this.#base);
    const tail = this.#hashChunk(
      (this.#slots[this.#cur] as Buffer).subarray(Math.max(0, from - this.#base), this.#fill),
    );
    if (tail) await tail;
    this.#throwIfFailed();
    this.#holdAt = undefined;
  }

  /**
   * Hashes [from, to) of the file (`to` is slot aligned), reading into two free slots in turn: the
   * next read runs while the current slot is hashed, so the disk and SHA-256 overlap.
   */
  async #hashFile(from: number, to: number): Promise<void> {
    const bufs = [this.#slots[(this.#cur + 1) % SLOTS], this.#slots[(this.#cur + 2) % SLOTS]] as Buffer[];
    let pos = from - (from % DIRECT_ALIGN);
    let skip = from - pos;
    let turn = 0;
    const next = (at: number, buf: Buffer) => this.#read(buf, Math.min(SLOT_BYTES, to - at), at);
    let pending: Promise<number> | undefined = pos < to ? next(pos, bufs[0] as Buffer) : undefined;
    // The hash of one buffer (possibly on the worker thread) must end before the next read fills it.
    let hashing: Promise<void> | undefined;
    try {
      while (pending) {
        const buf = bufs[turn] as Buffer;
        const n = await pending;
        if (n <= skip) throw new EvidenceError('the archive file is shorter than what was written to it');
        const after = pos + n;
        turn ^= 1;
        if (hashing) await hashing;
        pending = after < to ? next(after, bufs[turn] as Buffer) : undefined;
        hashing = this.#hashChunk(buf.subarray(skip, n));
        pos = after;
        skip = 0;
      }
    } catch (e) {
      // A read failed: the hash cannot be finished, so the archive cannot be sealed.
      this.#fail(e instanceof Error ? e : new Error(String(e)));
      throw e;
    } finally {
      if (hashing) await hashing;
    }
    this.#throwIfFailed();
  }

  #read(buf: Buffer, len: number, pos: number): Promise<number> {
    const direct = this.#directFd >= 0;
    return new Promise((res, rej) => {
      read(direct ? this.#directFd : this.#fd, buf, 0, len, pos, (err, n) => {
        if (err && direct && err.code === 'EINVAL') {
          this.#dropDirect();
          this.#read(buf, len, pos).then(res, rej);
        } else if (err) rej(err);
        else res(n);
      });
    });
  }

  /** Flushes, fsyncs and closes; returns the SHA-256 of the file. */
  async close(): Promise<string> {
    this.#throwIfFailed();
    if (this.#holdAt !== undefined) throw new EvidenceError('archive closed with an entry still open');
    await this.flush();
    await this.#hashed();
    this.#throwIfFailed();
    this.#closed = true;
    await this.#fh.sync();
    await this.#closeFds();
    return this.#hash.digest();
  }

  /** Closes without writing more; never rejects. */
  async destroy(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(new Error('archive closed'));
    this.#hash.dispose();
    await this.#whenIdle().catch(() => {});
    await this.#closeFds().catch(() => {});
  }

  async #closeFds(): Promise<void> {
    this.#dropDirect();
    await this.#fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Plain or gzip output over the tape

/**
 * The archive's byte stream: tar blocks appended as they are (plain) or deflated (gzip). For
 * gzip, the archive is a series of gzip members (readers decompress them as one stream): the
 * header of an entry whose size is not known yet is a member of its own in a stored block, so it
 * can be rewritten in place; everything else is deflated in the members between such headers.
 */
class ArchiveOut {
  readonly #tape: Tape;
  readonly #level: number | undefined;
  #gz: Gzip | undefined;
  #pending: Promise<void> | undefined;
  #drained: Array<() => void> = [];
  #gzError: Error | undefined;

  constructor(tape: Tape, gzipLevel: number | undefined) {
    this.#tape = tape;
    this.#level = gzipLevel;
  }

  get error(): Error | undefined {
    return this.#tape.error ?? this.#gzError;
  }

  #throwIfFailed(): void {
    const e = this.error;
    if (e) throw e;
  }

  #segment(): Gzip {
    if (this.#gz) return this.#gz;
    const gz = createGzip({ level: this.#level, chunkSize: 256 * 1024 });
    this.#gz = gz;
    gz.on('error', (e) => {
      this.#gzError ??= e;
      for (const f of this.#drained.splice(0)) f();
    });
    const pump = () => {
      if (this.#pending) return;
      for (;;) {
        const c = gz.read() as Buffer | null;
        if (c === null) break;
        const p = this.#tape.append(c);
        if (p) {
          this.#pending = p.then(
            () => {
              this.#pending = undefined;
              pump();
            },
            (e: unknown) => {
              this.#pending = undefined;
              this.#gzError ??= e as Error;
              gz.destroy(e as Error);
              for (const f of this.#drained.splice(0)) f();
            },
          );
          return;
        }
      }
      if (gz.readableLength === 0) for (const f of this.#drained.splice(0)) f();
    };
    gz.on('readable', pump);
    gz.on('end', () => {
      for (const f of this.#drained.splice(0)) f();
    });
    return gz;
  }

  /** Resolves once the deflated output so far is in the tape. */
  #outputDone(gz: Gzip): Promise<void> {
    return new Promise((res) => {
      const check = () => {
        if (this.error || ((gz.readableLength === 0 || gz.readableEnded) && this.#pending === undefined))
          res();
        else this.#drained.push(check);
      };
      setImmediate(check);
    });
  }

  /** Appends `buf` to the archive; a promise when the producer must wait. */
  write(buf: Buffer): Promise<void> | undefined {
    if (this.#level === undefined) return this.#tape.append(buf);
    const e = this.error;
    if (e) return Promise.reject(e);
    const gz = this.#segment();
    if (gz.write(buf)) return undefined;
    return new Promise((res, rej) => {
      const done = () => {
        gz.off('drain', done);
        gz.off('error', done);
        const err = this.error;
        if (err) rej(err);
        else res();
      };
      gz.once('drain', done);
      gz.once('error', done);
    });
  }

  /** Ends the current gzip member. */
  async #endSegment(): Promise<void> {
    const gz = this.#gz;
    if (!gz) return;
    this.#gz = undefined;
    const ended = new Promise<void>((res) => {
      if (gz.readableEnded) res();
      else gz.once('end', () => res());
      gz.once('error', () => res());
    });
    gz.end();
    await ended;
    await this.#outputDone(gz);
    this.#throwIfFailed();
  }

  /**
   * Appends the head of an entry whose size is not known yet; returns where to
   * {@link ArchiveOut.patch} the real ustar header. Without `guess`, a placeholder goes there and
   * the archive's hash waits for the patch. With `guess` (the header for the size the producer
   * expects), that header goes there and hashing goes on: when the guess was right, the patch
   * rewrites nothing and the archive was hashed once, as it was written. The caller must
   * {@link ArchiveOut.revoke} the guess before writing more data than it announces.
   */
  async begin(head: Buffer, main: number, guess?: Buffer): Promise<number> {
    const before = head.subarray(0, main);
    const block = guess ?? placeholder(head.subarray(main));
    if (this.#level === undefined) {
      if (before.length) await this.#tape.append(before);
    } else {
      if (before.length) await this.write(before);
      await this.#endSegment();
    }
    const at = guess ? await this.#tape.mark() : this.#tape.hold();
    await this.#tape.append(this.#level === undefined ? block : storedMember(block));
    return at;
  }

  /**
   * Replaces a guessed header with a placeholder (the data is going to be longer than it says):
   * an archive cut after this point (a crash) ends in a header no reader accepts, never in data a
   * reader would take for entries. The archive's hash goes back to the header and waits for the patch.
   */
  async revoke(at: number, guess: Buffer): Promise<void> {
    await this.sync();
    await this.#tape.revertToMark();
    const ph = placeholder(guess);
    await this.#tape.patch(at, this.#level === undefined ? ph : storedMember(ph));
  }

  /**
   * Writes the real header over the placeholder and hashes the entry; when the header equals the
   * guess still in place, nothing is rewritten or hashed again.
   */
  async patch(at: number, header: Buffer, guess?: Buffer): Promise<void> {
    await this.sync();
    if (guess) {
      if (header.equals(guess)) {
        this.#tape.dropMark();
        return;
      }
      await this.#tape.revertToMark();
    }
    await this.#tape.patch(at, this.#level === undefined ? header : storedMember(header));
    await this.#tape.release();
  }

  /** Everything written so far is in the archive file. */
  async sync(): Promise<void> {
    const gz = this.#gz;
    if (gz) {
      await new Promise<void>((res) => gz.flush(zc.Z_SYNC_FLUSH, () => res()));
      await this.#outputDone(gz);
    }
    this.#throwIfFailed();
    await this.#tape.flush();
  }

  /** Writes the end-of-archive blocks, ends the last member, fsyncs and closes; returns the file's SHA-256. */
  async finish(): Promise<string> {
    const end = Buffer.alloc(2 * BLOCK);
    const p = this.write(end);
    if (p) await p;
    await this.#endSegment();
    return this.#tape.close();
  }

  async destroy(): Promise<void> {
    this.#gz?.destroy();
    this.#gz = undefined;
    await this.#tape.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The bundle backend

/** FIFO lock over the archive: whoever holds it is the only one appending. */
class TapeLock {
  #held = false;
  readonly #queue: Array<() => void> = [];

  /** Whether {@link TapeLock.tryAcquire} would succeed now. */
  isFree(): boolean {
    return !this.#held;
  }

  /** The lock at once, or undefined when it is held or others wait for it. */
  tryAcquire(): (() => void) | undefined {
    if (this.#held) return undefined;
    this.#held = true;
    return this.#releaser();
  }

  acquire(): Promise<() => void> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((res) => this.#queue.push(() => res(this.#releaser())));
  }

  #releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#queue.shift();
      if (next) next();
      else this.#held = false;
    };
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

class TarBackend implements BundleBackend {
  readonly kind = 'tar';
  readonly location: string;
  readonly #name: string;
  readonly #partial: string;
  readonly #out: ArchiveOut;
  readonly #lock = new TapeLock();
  readonly #memLimit: number;
  readonly #aux: AuxFiles;
  readonly #mtime = Math.floor(Date.now() / 1000);
  #ended = false;
  #spoolSeq = 0;
  #bundleSha256: string | undefined;

  private constructor(file: string, name: string, out: ArchiveOut, aux: AuxFiles, memLimit: number) {
    this.location = file;
    this.#name = name;
    this.#partial = `${file}.partial`;
    this.#out = out;
    this.#aux = aux;
    this.#memLimit = memLimit;
  }

  static async create(
    file: string,
    name: string,
    tape: Tape,
    aux: AuxFiles,
    opts: { gzipLevel: number | undefined; memLimit: number },
  ): Promise<TarBackend> {
    const out = new ArchiveOut(tape, opts.gzipLevel);
    const b = new TarBackend(file, name, out, aux, opts.memLimit);
    const dir = entryHead(`${name}/`, '5', 0, b.#mtime).head;
    await b.#lock.run(async () => {
      const p = out.write(dir);
      if (p) await p;
      await out.sync();
    });
    return b;
  }

  #check(): void {
    const e = this.#out.error;
    if (e !== undefined) {
      throw new EvidenceError(`the tar file ${this.location} cannot be written: ${e.message}`, { cause: e });
    }
  }

  /** Appends one entry of known size from memory chunks and/or a file, under the lock. */
  #addEntry(path: string, size: number, chunks: Buffer[], file: string | undefined): Promise<void> {
    return this.#lock.run(async () => {
      this.#check();
      const out = this.#out;
      const put = async (b: Buffer) => {
        const p = out.write(b);
        if (p) await p;
      };
      await put(entryHead(`${this.#name}/${path}`, '0', size, this.#mtime).head);
      let n = 0;
      for (const c of chunks) {
        await put(c);
        n += c.length;
      }
      if (file) {
        for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) {
          await put(c as Buffer);
          n += (c as Buffer).length;
        }
      }
      if (n !== size) {
        throw new EvidenceError(`${path}: ${n} bytes to archive where ${size} were announced`);
      }
      await put(Buffer.alloc(padding(size)));
      await out.sync();
    });
  }

  async openArtifact(path: string, meta: ArtifactMeta): Promise<ArtifactStore> {
    this.#check();
    // The producer's size hint: a large one streams into the archive from the first byte, under
    // a header guessed from it. Never trusted: a wrong hint only costs the second hash pass.
    const hint = meta.expectedBytes;
    const expected = typeof hint === 'number' && Number.isSafeInteger(hint) && hint >= 0 ? hint : undefined;
    const out = this.#out;
    const lock = this.#lock;
    const fullPath = `${this.#name}/${path}`;
    const mtime = this.#mtime;
    const memLimit = this.#memLimit;
    const partial = this.#partial;
    const seq = this.#spoolSeq++;
    const chunks: Buffer[] = [];
    let inMem = 0;
    let mode: 'memory' | 'archive' | 'spool' = 'memory';
    // archive mode: streaming straight into the archive, holding the lock
    let release: (() => void) | undefined;
    let headerAt = -1;
    let written = 0;
    /** The header guessed from the hint while it still holds (data written ≤ the hint). */
    let guess: Buffer | undefined;
    let streaming: Promise<void> | undefined;
    // spool mode
    let spoolPath: string | undefined;
    let spool: WriteStream | undefined;
    let spoolErr: unknown;

    const startStreaming = async (first: Buffer): Promise<void> => {
      const { head, main } = entryHead(fullPath, '0', 0, mtime);
      if (expected !== undefined && written <= expected) {
        guess = entryHead(fullPath, '0', expected, mtime).head.subarray(-BLOCK);
      }
      headerAt = await out.begin(head, main, guess);
      for (const c of chunks.splice(0)) {
        const p = out.write(c);
        if (p) await p;
      }
      const p = out.write(first);
      if (p) await p;
    };
    /** Pads and patches the header of the streamed entry; always gives the lock back. */
    const finishStreaming = async (): Promise<void> => {
      try {
        await streaming;
        const pad = out.write(Buffer.alloc(padding(written)));
        if (pad) await pad;
        await out.patch(headerAt, entryHead(fullPath, '0', written, mtime).head.subarray(-BLOCK), guess);
      } finally {
        release?.();
        release = undefined;
      }
    };
    const storeQueued = async (bytes: number): Promise<void> => {
      if (spool) await closeStream(spool);
      try {
        await this.#addEntry(path, bytes, chunks, spoolPath);
      } finally {
        if (spoolPath) await unlink(spoolPath).catch(() => {});
      }
    };

    return {
      write(chunk: Buffer): Promise<void> | undefined {
        if (spoolErr !== undefined) return Promise.reject(spoolErr);
        if (mode === 'archive') {
          written += chunk.length;
          const g = guess;
          if (g !== undefined && written > (expected ?? 0)) {
            // More data than the hint: the guessed header must go before these bytes are written.
            guess = undefined;
            return (async () => {
              await out.revoke(headerAt, g);
              const p = out.write(chunk);
              if (p) await p;
            })();
          }
          return out.write(chunk);
        }
        if (mode === 'spool')
          return spool ? writeTo(spool, chunk) : Promise.reject(new Error('spool not open'));
        // A hint past the memory limit skips buffering when the archive is free at once.
        const large = expected !== undefined && expected > memLimit && chunks.length === 0;
        if (inMem + chunk.length <= memLimit && !(large && lock.isFree())) {
          chunks.push(chunk);
          inMem += chunk.length;
          return undefined;
        }
        release = lock.tryAcquire();
        if (release) {
          mode = 'archive';
          written = inMem + chunk.length;
          streaming = startStreaming(chunk);
          return streaming;
        }
        mode = 'spool';
        return (async () => {
          spoolPath = join(partial, `spool-${seq}`);
          spool = await createExclusive(spoolPath, 4 << 20);
          spool.on('error', (e) => {
            spoolErr ??= e;
          });
          const p = writeTo(spool, chunk);
          if (p) await p;
        })();
      },
      async end(_sha256: string, bytes: number) {
        if (mode !== 'archive') {
          await storeQueued(bytes);
          return {};
        }
        await finishStreaming();
        if (written !== bytes) throw new EvidenceError(`${path}: ${written} bytes archived, ${bytes} hashed`);
        return {};
      },
      async fail(_e: unknown, sha256: string, bytes: number, producer: boolean): Promise<FailedStore> {
        if (mode === 'archive') {
          // The bytes received before the producer failed are a complete entry once the header
          // says how many there are; after a storage error the archive itself is lost.
          const ok = producer && out.error === undefined && written === bytes;
          try {
            await finishStreaming();
          } catch {
            return { kept: false };
          }
          return ok ? { kept: true, sha256, bytes } : { kept: false };
        }
        if (producer && spoolErr === undefined) {
          try {
            await storeQueued(bytes);
            return { kept: true, sha256, bytes };
          } catch {
            return { kept: false };
          }
        }
        if (spool) await closeStream(spool).catch(() => {});
        if (spoolPath) await unlink(spoolPath).catch(() => {});
        return { kept: false };
      },
    };
  }

  appendJournal(line: string): Promise<void> {
    return this.#aux.appendJournal(line);
  }

  appendLog(line: string): void {
    this.#aux.appendLog(line);
  }

  async closeAux(): Promise<{ journal: AuxDigest; log: AuxDigest }> {
    const digests = await this.#aux.close();
    const j = join(this.#partial, BUNDLE_FILES.journal);
    const l = join(this.#partial, BUNDLE_FILES.log);
    await this.#addEntry(BUNDLE_FILES.journal, (await stat(j)).size, [], j);
    await this.#addEntry(BUNDLE_FILES.log, (await stat(l)).size, [], l);
    return digests;
  }

  putFinal(name: string, data: Buffer): Promise<void> {
    return this.#addEntry(name, data.length, [data], undefined);
  }

  async #end(): Promise<string> {
    if (this.#bundleSha256 !== undefined) return this.#bundleSha256;
    if (this.#ended) throw new EvidenceError(`the tar file ${this.location} could not be closed`);
    this.#ended = true;
    this.#bundleSha256 = await this.#lock.run(() => this.#out.finish());
    return this.#bundleSha256;
  }

  async complete(): Promise<{ bundleSha256: string; sidecar: string }> {
    const bundleSha256 = await this.#end();
    const sidecar = `${this.location}.sha256`;
    const fh = await open(sidecar, 'wx');
    try {
      await fh.writeFile(`${bundleSha256}  ${basename(this.location)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rm(this.#partial, { recursive: true, force: true });
    return { bundleSha256, sidecar };
  }

  async abandon(): Promise<void> {
    try {
      if (!this.#aux.closed) await this.closeAux();
      await this.#end();
      // The journal and log are inside a properly ended tar now; the spool folder is no longer needed.
      await rm(this.#partial, { recursive: true, force: true });
    } catch {
      // Leave `<file>.partial/journal.jsonl`: the verifier reads it for a damaged tar.
      await this.#aux.closeQuietly();
      await this.#out.destroy();
    }
  }
}

/**
 * Writes each bundle as one tar file `<root>/<acquisitionId>.tar` (or `.tar.gz`) whose entries
 * sit under `<acquisitionId>/`, readable by GNU tar. The journal lives in
 * `<file>.partial/journal.jsonl` (fsynced per entry) until the tar is closed; after finalize the
 * sidecar `<file>.sha256` holds the SHA-256 of the whole tar file.
 *
 * Entries are appended one at a time. An artifact is held in memory up to `memoryBufferBytes`
 * and appended whole when it ends. A larger one streams straight into the archive behind a
 * placeholder header that is rewritten with the size once the artifact ends (or fails: the
 * bytes received are kept and the header says how many), so the bytes are written once and
 * memory stays flat. Only one artifact streams into the archive at a time: another large artifact
 * written meanwhile is spooled to `<file>.partial/` and appended when it ends and the archive is
 * free, and an artifact that ends while one streams waits for it before its `writeArtifact`
 * resolves (its bytes stay in memory or in its spool file), so memory stays bounded by the
 * number of concurrent artifacts times `memoryBufferBytes`. A producer must therefore not make
 * a large artifact's stream wait for another artifact of the same bundle to finish.
 *
 * If the process dies while an artifact streams, the archive ends in the placeholder, whose
 * checksum cannot match: readers stop there, and {@link eks-forensics!verifyEvidence} reports the bundle as
 * incomplete from the journal kept in `<file>.partial/`.
 *
 * With gzip, the archive is a series of gzip members (every gzip reader, GNU tar and Node's
 * zlib decompress them as one stream): a streamed entry's header is a small member of its own,
 * stored uncompressed so it can be rewritten in place.
 */
export class TarSink implements EvidenceSink {
  /** Always `tar`. */
  readonly kind = 'tar';
  /** Absolute root folder. */
  readonly root: string;
  readonly #gzip: boolean;
  readonly #level: number;
  readonly #mem: number;

  constructor(options: TarSinkOptions) {
    this.root = resolve(options.root);
    this.#gzip = options.gzip ?? false;
    this.#level = options.gzipLevel ?? 1;
    this.#mem = options.memoryBufferBytes ?? 1 << 20;
  }

  /** Creates the tar file exclusively; rejects with EvidenceError when it exists. */
  async open(init: BundleInit = {}): Promise<BundleWriter> {
    const { acquisitionId, name } = StreamingBundleWriter.prepare(init);
    const file = join(this.root, `${name}.tar${this.#gzip ? '.gz' : ''}`);
    let tape: Tape | undefined;
    try {
      await mkdir(this.root, { recursive: true });
    } catch (cause) {
      throw sinkRootError(this.root, cause);
    }
    try {
      tape = await Tape.create(file);
      await mkdir(`${file}.partial`);
    } catch (cause) {
      await tape?.destroy();
      const exists = (cause as NodeJS.ErrnoException).code === 'EEXIST';
      throw new EvidenceError(
        exists
          ? `bundle ${file} already exists; use a new acquisitionId`
          : `cannot create ${file}: ${(cause as Error).message}`,
        { cause },
      );
    }
    const opened = tape;
    const aux = await AuxFiles.create(`${file}.partial`, BUNDLE_FILES.journal, BUNDLE_FILES.log).catch(
      async (err: unknown) => {
        await opened.destroy();
        throw err;
      },
    );
    const backend = await TarBackend.create(file, name, opened, aux, {
      gzipLevel: this.#gzip ? this.#level : undefined,
      memLimit: this.#mem,
    });
    return StreamingBundleWriter.start(backend, acquisitionId, init);
  }
}
