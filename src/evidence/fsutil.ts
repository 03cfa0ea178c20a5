/**
 * Small file helpers shared by the local sinks.
 *
 * @internal
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import {
  close as closeFd,
  constants,
  createWriteStream,
  open as openFd,
  type WriteStream,
  write,
  writev,
} from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { EvidenceError } from '../errors.js';

/** `, uid N` where the platform has uids (for permission messages). */
export function uidText(): string {
  return typeof process.getuid === 'function' ? `, uid ${process.getuid()}` : '';
}

/** The error for a sink root that cannot be used as a folder. */
export function sinkRootError(root: string, cause: unknown): EvidenceError {
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    return new EvidenceError(
      `the sink root ${root} is not a folder (a file is in the way at it or at one of its parents); pass a folder as root`,
      { cause },
    );
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new EvidenceError(
      `cannot create the sink root ${root} (${code}${uidText()}); pass a root folder this process can write`,
      { cause },
    );
  }
  return new EvidenceError(`cannot create the sink root ${root}: ${(cause as Error).message}`, { cause });
}

/** Opens `path` for writing with exclusive create (`wx`); resolves once the file exists. */
export function createExclusive(path: string, highWaterMark = 1 << 20): Promise<WriteStream> {
  return new Promise((res, rej) => {
    const ws = createWriteStream(path, { flags: 'wx', highWaterMark });
    ws.once('error', rej);
    ws.once('ready', () => {
      ws.off('error', rej);
      res(ws);
    });
  });
}

/** Ends a stream and waits until its file is closed. */
export function closeStream(ws: WriteStream): Promise<void> {
  return new Promise((res, rej) => {
    if (ws.closed) {
      if (ws.errored) rej(ws.errored);
      else res();
      return;
    }
    ws.once('error', rej);
    ws.once('close', () => {
      ws.off('error', rej);
      if (ws.errored) rej(ws.errored);
      else res();
    });
    ws.end();
  });
}

/** fsyncs a file (or folder) by path. Folders that refuse fsync are ignored. */
export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL' && (e as NodeJS.ErrnoException).code !== 'EISDIR')
      throw e;
  } finally {
    await fh.close();
  }
}

/** Digest and size of one auxiliary file as written. */
export interface AuxDigest {
  /** Hex SHA-256. */
  sha256: string;
  /** Bytes written. */
  bytes: number;
}

/**
 * The journal (fsynced after every line, so an interrupted bundle keeps it) and the acquisition
 * log of a bundle being written on local disk, each hashed as it is written.
 */
export class AuxFiles {
  readonly #journal: FileHandle;
  readonly #journalHash: Hash = createHash('sha256');
  #journalBytes = 0;
  readonly #log: WriteStream;
  readonly #logPath: string;
  readonly #logHash: Hash = createHash('sha256');
  #logBytes = 0;
  #closed = false;

  private constructor(journal: FileHandle, log: WriteStream, logPath: string) {
    this.#journal = journal;
    this.#log = log;
    this.#logPath = logPath;
    this.#log.on('error', () => {});
  }

  /** Creates `journalName` and `logName` in `dir`, both exclusively (`wx`). */
  static async create(dir: string, journalName: string, logName: string): Promise<AuxFiles> {
    const journal = await open(join(dir, journalName), 'wx');
    const logPath = join(dir, logName);
    try {
      const log = await createExclusive(logPath, 64 * 1024);
      return new AuxFiles(journal, log, logPath);
    } catch (err) {
      await journal.close().catch(() => {});
      throw err;
    }
  }

  /** True once `close()` or `closeQuietly()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Appends a journal line and fsyncs it before resolving. */
  async appendJournal(line: string): Promise<void> {
    const buf = Buffer.from(line, 'utf8');
    await this.#journal.write(buf);
    await this.#journal.datasync();
    this.#journalHash.update(buf);
    this.#journalBytes += buf.length;
  }

  /** Appends a log line (buffered; dropped after close). */
  appendLog(line: string): void {
    if (this.#closed) return;
    const buf = Buffer.from(line, 'utf8');
    this.#logHash.update(buf);
    this.#logBytes += buf.length;
    this.#log.write(buf);
  }

  /** Closes both files after fsyncing them; returns their digests. */
  async close(): Promise<{ journal: AuxDigest; log: AuxDigest }> {
    this.#closed = true;
    try {
      await closeStream(this.#log);
      await syncPath(this.#logPath);
      await this.#journal.sync();
    } catch (err) {
      // Whatever failed, no descriptor may outlive the bundle (a responder host runs for long).
      this.#log.destroy();
      await this.#journal.close().catch(() => {});
      throw err;
    }
    await this.#journal.close();
    return {
      journal: { sha256: this.#journalHash.digest('hex'), bytes: this.#journalBytes },
      log: { sha256: this.#logHash.digest('hex'), bytes: this.#logBytes },
    };
  }

  /** Best-effort close for an abandoned bundle; never throws, no-op when already closed. */
  async closeQuietly(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeStream(this.#log).catch(() => {});
    await syncPath(this.#logPath).catch(() => {});
    await this.#journal.sync().catch(() => {});
    await this.#journal.close().catch(() => {});
  }
}

/** Writes a chunk; returns a promise only when the producer must wait (buffer full). */
export function writeTo(ws: Writable, chunk: Buffer): Promise<void> | undefined {
  if (ws.destroyed) return Promise.reject(ws.errored ?? new Error('stream closed'));
  if (ws.write(chunk)) return undefined;
  return new Promise((res, rej) => {
    const done = (e?: unknown) => {
      ws.off('drain', done);
      ws.off('error', done);
      ws.off('close', onClose);
      if (e) rej(e);
      else res();
    };
    const onClose = () => done(ws.errored ?? new Error('stream closed'));
    ws.once('drain', done);
    ws.once('error', done);
    ws.once('close', onClose);
  });
}

/** Chunks queued before the producer waits, however small they are (bounds the `writev` list). */
const MAX_QUEUED_CHUNKS = 1024;

/** O_DIRECT needs the file offset, the length and the buffer address aligned to this. */
const DIRECT_ALIGN = 4096;

/**
 * `O_DIRECT`, where a file can be re-opened with it through `/proc/self/fd` (Linux); otherwise
 * undefined and every file is written buffered.
 */
const O_DIRECT: number | undefined = process.platform === 'linux' ? constants.O_DIRECT : undefined;

/** Staging rings kept for reuse by later artifacts (each `slots × slotBytes`, 4 MiB by default). */
const MAX_POOLED_RINGS = 2;

/** How {@link FileAppender} switches a large file to direct I/O (`O_DIRECT`). */
export interface DirectIoOptions {
  /**
   * Bytes written buffered before the switch (rounded up to a multiple of 4096, so the switch
   * point is aligned). Default 8 MiB: small files never see direct I/O.
   */
  after?: number;
  /** Aligned staging slots in the ring; at most `slots - 1` writes are in flight. Default 4. */
  slots?: number;
  /** Bytes per slot (rounded up to a multiple of 4096). Default 1 MiB. */
  slotBytes?: number;
}

/** One block of aligned staging memory, cut into equal slots. */
interface Ring {
  readonly slotBytes: number;
  readonly slots: readonly Buffer[];
}

const ringPool: Ring[] = [];

interface WasmMemoryCtor {
  new (desc: { initial: number; maximum?: number }): { readonly buffer: ArrayBuffer };
}

/**
 * A pooled ring, or a new one carved from a `WebAssembly.Memory` (its buffer is 64 KiB aligned,
 * unlike malloc'd Node Buffers, so `O_DIRECT` accepts it). Undefined when it cannot be allocated.
 */
function takeRing(slots: number, slotBytes: number): Ring | undefined {
  const i = ringPool.findIndex((r) => r.slots.length === slots && r.slotBytes === slotBytes);
  if (i >= 0) return ringPool.splice(i, 1)[0];
  try {
    const Memory = (globalThis as unknown as { WebAssembly: { Memory: WasmMemoryCtor } }).WebAssembly.Memory;
    const pages = Math.ceil((slots * slotBytes) / 65536);
    const all = Buffer.from(new Memory({ initial: pages, maximum: pages }).buffer);
    return {
      slotBytes,
      slots: Array.from({ length: slots }, (_, k) => all.subarray(k * slotBytes, (k + 1) * slotBytes)),
    };
  } catch {
    return undefined;
  }
}

function giveRing(ring: Ring): void {
  ringPool.push(ring);
  if (ringPool.length > MAX_POOLED_RINGS) ringPool.shift();
}

const alignUp = (n: number): number => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;

/** A range of one ring slot to write at a file position. */
interface SlotWrite {
  slot: number;
  /** Offset in the slot. */
  off: number;
  len: number;
  /** File position. */
  pos: number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * Appends buffers to a file opened with exclusive create.
 *
 * **Buffered** (every file starts so): one write (or `writev` of everything queued meanwhile) in
 * flight at a time. `write` returns a promise only while more than `limit` bytes are queued or in
 * flight, and that promise resolves as soon as the backlog is under the limit again, so the disk
 * never waits for the producer and memory stays bounded by about `limit` plus one chunk. The
 * buffers are only read, never kept after their write. With `syncEvery`, a background
 * `fdatasync` is started each time that many bytes have been written since the last one, so the
 * disk writes back while the producer streams and the final fsync has little left to do.
 *
 * **Direct** (Linux, unless `direct: false`): once `direct.after` bytes (4096-aligned) have been
 * accepted, the buffered writes are drained and a second descriptor on the same inode is opened
 * with `O_WRONLY | O_DIRECT` through `/proc/self/fd/<fd>` (never by path, which could have been
 * swapped). From then on `write` copies each chunk into a ring of aligned slots and a full slot is
 * written positionally with `O_DIRECT` (at most `slots - 1` in flight); the promise `write`
 * returns (only when the ring is full) resolves when a slot frees up. The page cache is neither
 * filled nor faulted in, and a written slot is on the device. {@link FileAppender.close} writes
 * the whole 4096-byte blocks of the last slot with `O_DIRECT` and the tail (under 4096 bytes)
 * through the buffered descriptor at its position: no padding, so the file never holds a byte
 * that is not the artifact's, and no `ftruncate`. After a write error the file is cut at the
 * first byte not written (a later slot may have landed after the failed one), so what is kept is
 * a prefix of the artifact, as with sequential writes.
 *
 * Fallback: if the ring cannot be allocated, the re-open fails (e.g. a filesystem refusing
 * `O_DIRECT`) or the first direct write fails with `EINVAL`, the staged bytes are written through
 * the buffered descriptor at the same positions and the file stays buffered. Nothing is logged:
 * it is a performance path only, the bytes are the same.
 */
export class FileAppender {
  readonly #fd: number;
  readonly #handle: FileHandle;
  readonly #limit: number;
  readonly #syncEvery: number;
  /** Bytes accepted so far (queued, staged or written): the file position of the next byte. */
  #pos = 0;
  #error: Error | undefined;
  /** Lowest file position of accepted bytes that were not written (after an error). */
  #lostAt = Number.POSITIVE_INFINITY;
  #closed = false;
  #idle: Array<{ when: () => boolean; resolve: () => void }> = [];

  // Buffered path.
  #queue: Buffer[] = [];
  #queued = 0;
  /** Bytes of the buffered write in flight (0: none). */
  #inflight = 0;
  /** File position of the buffered write in flight, or of the first queued byte. */
  #bufPos = 0;
  #waiters: Waiter[] = [];
  #sinceSync = 0;
  #syncing: Promise<void> | undefined;

  // Direct path.
  readonly #slots: number;
  readonly #slotBytes: number;
  /** Position where the file switches to direct I/O (infinite: never). */
  #switchAt: number;
  #ring: Ring | undefined;
  /** New bytes go into the ring (direct mode, or waiting for the direct descriptor). */
  #staging = false;
  /** Draining the buffered writes and opening the direct descriptor; slot writes wait. */
  #opening: Promise<void> | undefined;
  #directFd = -1;
  /** Direct I/O refused: remaining slot writes go through the buffered descriptor. */
  #fallback = false;
  /** A direct write succeeded (a later EINVAL is an error, not a refusal). */
  #directOk = false;
  /** Slot being filled, bytes in it and the file position of its first byte. */
  #cur = 0;
  #fill = 0;
  #fillPos = 0;
  /** Writes pending (ready or in flight) per slot; a slot is refilled only at 0. */
  #slotJobs: number[] = [];
  #ready: SlotWrite[] = [];
  #ringInflight = 0;
  /** The part of a chunk that did not fit in the ring, and its producer. */
  #parked: (Waiter & { chunk: Buffer }) | undefined;

  private constructor(handle: FileHandle, limit: number, syncEvery: number, direct: DirectIoOptions | false) {
    this.#handle = handle;
    this.#fd = handle.fd;
    this.#limit = limit;
    this.#syncEvery = syncEvery;
    this.#slots = direct ? Math.max(2, Math.floor(direct.slots ?? 4)) : 0;
    this.#slotBytes = direct ? alignUp(Math.max(1, direct.slotBytes ?? 1 << 20)) : 0;
    this.#switchAt =
      direct && O_DIRECT !== undefined
        ? alignUp(Math.max(0, direct.after ?? 8 << 20))
        : Number.POSITIVE_INFINITY;
  }

  /**
   * Creates `path` exclusively (`wx`: never overwrites, never follows a symlink at the leaf).
   * `direct` (default on, with the defaults of {@link DirectIoOptions}) or `false`.
   */
  static async create(
    path: string,
    opts: { limit?: number; syncEvery?: number; direct?: DirectIoOptions | false } = {},
  ): Promise<FileAppender> {
    const handle = await open(path, 'wx');
    return new FileAppender(
      handle,
      Math.max(1, opts.limit ?? 1 << 20),
      opts.syncEvery ?? 0,
      opts.direct ?? {},
    );
  }

  /** The first write (or background sync) error, if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  /**
   * Queues `chunk` (buffered) or copies it into the ring (direct); returns a promise only when the
   * producer must wait (rejects on a write error). In direct mode the chunk is not referenced
   * after `write` returns, unless the ring was full: then until the promise resolves.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) return Promise.reject(new Error('file already closed'));
    if (chunk.length === 0) return undefined;
    if (this.#staging) return this.#stage(chunk);
    if (this.#pos + chunk.length > this.#switchAt) {
      const head = this.#switchAt - this.#pos;
      if (head > 0) this.#enqueue(chunk.subarray(0, head));
      if (this.#engage()) return this.#stage(chunk.subarray(head)) ?? this.#backpressure();
      this.#switchAt = Number.POSITIVE_INFINITY;
      this.#enqueue(chunk.subarray(head));
    } else this.#enqueue(chunk);
    return this.#backpressure();
  }

  // ---- buffered path ----

  #enqueue(chunk: Buffer): void {
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#pos += chunk.length;
    if (this.#inflight === 0) this.#pump();
  }

  #backpressure(): Promise<void> | undefined {
    if (this.#queued + this.#inflight <= this.#limit && this.#queue.length < MAX_QUEUED_CHUNKS)
      return undefined;
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  #pump(): void {
    const bufs = this.#queue;
    const total = this.#queued;
    const pos = this.#bufPos;
    this.#queue = [];
    this.#queued = 0;
    this.#inflight = total;
    const done = (err: NodeJS.ErrnoException | null, written: number): void => {
      this.#inflight = 0;
      if (err) this.#fail(err, pos);
      else if (this.#error === undefined) {
        if (written <= 0) this.#fail(new Error(`write to file made no progress (${total} bytes left)`), pos);
        else {
          this.#bufPos = pos + written;
          // Short write (e.g. the disk filled up): write the rest; a second failure reports the cause.
          if (written < total) {
            this.#queue = [...remainder(bufs, written), ...this.#queue];
            this.#queued += total - written;
          }
          this.#wroteBuffered(written);
          if (this.#queued > 0) this.#pump();
        }
      } else if (written < total) this.#lostAt = Math.min(this.#lostAt, pos + Math.max(0, written));
      while (this.#waiters.length > 0 && this.#queued + this.#inflight <= this.#limit) {
        this.#waiters.shift()?.resolve();
      }
      this.#check();
    };
    if (bufs.length === 1) {
      const b = bufs[0] as Buffer;
      write(this.#fd, b, 0, b.length, pos, done);
    } else writev(this.#fd, bufs, pos, done);
  }

  /** Counts bytes written through the page cache; starts a background fdatasync every `syncEvery`. */
  #wroteBuffered(bytes: number): void {
    this.#sinceSync += bytes;
    if (this.#syncEvery > 0 && this.#sinceSync >= this.#syncEvery && this.#syncing === undefined) {
      this.#sinceSync = 0;
      this.#syncing = this.#handle.datasync().then(
        () => {
          this.#syncing = undefined;
        },
        (e: unknown) => {
          this.#syncing = undefined;
          this.#fail(e instanceof Error ? e : new Error(String(e)));
        },
      );
    }
  }

  // ---- direct path ----

  /** Takes a ring and starts opening the direct descriptor; false when no ring can be had. */
  #engage(): boolean {
    const ring = takeRing(this.#slots, this.#slotBytes);
    if (ring === undefined) return false;
    this.#ring = ring;
    this.#staging = true;
    this.#cur = 0;
    this.#fill = 0;
    this.#fillPos = this.#pos;
    this.#slotJobs = Array.from({ length: this.#slots }, () => 0);
    this.#opening = this.#openDirect();
    return true;
  }

  /** Drains the buffered writes, then re-opens the same inode with O_DIRECT (or falls back). */
  async #openDirect(): Promise<void> {
    await this.#when(() => this.#inflight === 0 && this.#queued === 0);
    let fd = -1;
    if (this.#error === undefined) {
      fd = await new Promise<number>((res) => {
        openFd(`/proc/self/fd/${this.#fd}`, constants.O_WRONLY | (O_DIRECT ?? 0), (err, f) =>
          res(err ? -1 : f),
        );
      });
    }
    this.#opening = undefined;
    if (fd >= 0) this.#directFd = fd;
    else if (this.#error === undefined) this.#fallBack();
    this.#kick();
    this.#check();
  }

  /** Copies `chunk` into the ring; returns a promise when part of it has to wait for a free slot. */
  #stage(chunk: Buffer): Promise<void> | undefined {
    const n = this.#copyIn(chunk);
    if (n === chunk.length) return undefined;
    return new Promise((resolve, reject) => {
      this.#parked = { chunk: chunk.subarray(n), resolve, reject };
    });
  }

  /** Copies as much of `chunk` as free slots take, submitting each slot it fills; returns the bytes taken. */
  #copyIn(chunk: Buffer): number {
    const ring = this.#ring as Ring;
    let off = 0;
    while (off < chunk.length && this.#slotJobs[this.#cur] === 0) {
      const n = Math.min(this.#slotBytes - this.#fill, chunk.length - off);
      chunk.copy(ring.slots[this.#cur] as Buffer, this.#fill, off, off + n);
      this.#fill += n;
      this.#pos += n;
      off += n;
      if (this.#fill === this.#slotBytes) this.#submitFill(false);
    }
    return off;
  }

  /**
   * Queues the write of the slot being filled and moves on to the next slot. With `split`, the
   * whole 4096-byte blocks and the tail are two writes (the tail cannot go direct).
   */
  #submitFill(split: boolean): void {
    const slot = this.#cur;
    const aligned = split ? this.#fill - (this.#fill % DIRECT_ALIGN) : this.#fill;
    if (aligned > 0) this.#push({ slot, off: 0, len: aligned, pos: this.#fillPos });
    if (aligned < this.#fill)
      this.#push({ slot, off: aligned, len: this.#fill - aligned, pos: this.#fillPos + aligned });
    this.#fillPos += this.#fill;
    this.#fill = 0;
    this.#cur = (this.#cur + 1) % this.#slots;
    this.#kick();
  }

  #push(job: SlotWrite): void {
    this.#slotJobs[job.slot] = (this.#slotJobs[job.slot] ?? 0) + 1;
    this.#ready.push(job);
  }

  #slotDone(slot: number): void {
    this.#slotJobs[slot] = (this.#slotJobs[slot] ?? 1) - 1;
  }

  /** Starts ready slot writes, up to `slots - 1` in flight, once the descriptor question is settled. */
  #kick(): void {
    if (this.#opening !== undefined || this.#error !== undefined) return;
    while (this.#ready.length > 0 && this.#ringInflight < this.#slots - 1) {
      this.#slotWrite(this.#ready.shift() as SlotWrite);
    }
  }

  #slotWrite(job: SlotWrite): void {
    const buf = (this.#ring as Ring).slots[job.slot] as Buffer;
    const direct =
      this.#directFd >= 0 &&
      !this.#fallback &&
      job.off % DIRECT_ALIGN === 0 &&
      job.len % DIRECT_ALIGN === 0 &&
      job.pos % DIRECT_ALIGN === 0;
    this.#ringInflight++;
    write(direct ? this.#directFd : this.#fd, buf, job.off, job.len, job.pos, (err, written) => {
      this.#ringInflight--;
      if (err) {
        if (
          direct &&
          err.code === 'EINVAL' &&
          this.#error === undefined &&
          (!this.#directOk || this.#fallback)
        ) {
          // O_DIRECT refused at the first write: this slot and everything after go buffered.
          this.#fallBack();
          this.#ready.unshift(job);
        } else {
          this.#slotDone(job.slot);
          this.#fail(err, job.pos);
        }
      } else if (this.#error === undefined && written <= 0) {
        this.#slotDone(job.slot);
        this.#fail(new Error(`write to file made no progress (${job.len} bytes left)`), job.pos);
      } else {
        if (direct) this.#directOk = true;
        else if (this.#error === undefined) this.#wroteBuffered(written);
        // Short write: the rest from where it stopped (direct again only if still aligned).
        if (written < job.len && this.#error === undefined)
          this.#ready.unshift({
            ...job,
            off: job.off + written,
            len: job.len - written,
            pos: job.pos + written,
          });
        else {
          if (written < job.len) this.#lostAt = Math.min(this.#lostAt, job.pos + Math.max(0, written));
          this.#slotDone(job.slot);
        }
      }
      this.#kick();
      this.#refill();
      this.#check();
    });
  }

  /** Moves the parked part of a chunk into slots that freed up; resolves its producer once all fit. */
  #refill(): void {
    const p = this.#parked;
    if (p === undefined || !this.#staging || this.#error !== undefined) return;
    const n = this.#copyIn(p.chunk);
    if (n < p.chunk.length) p.chunk = p.chunk.subarray(n);
    else {
      this.#parked = undefined;
      p.resolve();
    }
  }

  /** Stays buffered for the rest of the file; staged bytes are written through the buffered descriptor. */
  #fallBack(): void {
    if (this.#fallback) return;
    this.#fallback = true;
    this.#switchAt = Number.POSITIVE_INFINITY;
    if (!this.#staging) return;
    this.#staging = false;
    if (this.#fill > 0) this.#submitFill(false);
    // The buffered queue is empty (drained before the switch); it continues after the staged bytes.
    this.#bufPos = this.#pos;
    const p = this.#parked;
    if (p !== undefined) {
      this.#parked = undefined;
      this.#enqueue(p.chunk);
      if (this.#queued + this.#inflight <= this.#limit) p.resolve();
      else this.#waiters.push(p);
    }
  }

  // ---- common ----

  /**
   * Records the first error, drops what is not yet written (noting where the first unwritten byte
   * is: `lostAt`, the failed write's position) and fails every waiter; writes in flight still complete.
   */
  #fail(err: Error, lostAt = Number.POSITIVE_INFINITY): void {
    this.#error ??= err;
    let lost = lostAt;
    if (this.#queued > 0) lost = Math.min(lost, this.#bufPos + this.#inflight);
    if (this.#staging && this.#fill > 0) lost = Math.min(lost, this.#fillPos);
    for (const job of this.#ready) {
      lost = Math.min(lost, job.pos);
      this.#slotDone(job.slot);
    }
    this.#lostAt = Math.min(this.#lostAt, lost);
    this.#queue = [];
    this.#queued = 0;
    this.#ready = [];
    const p = this.#parked;
    this.#parked = undefined;
    p?.reject(this.#error);
    for (const w of this.#waiters.splice(0)) w.reject(this.#error);
    this.#check();
  }

  #when(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idle.push({ when: cond, resolve });
    });
  }

  #check(): void {
    if (this.#idle.length === 0) return;
    const waiting = this.#idle;
    this.#idle = [];
    for (const w of waiting) {
      if (w.when()) w.resolve();
      else this.#idle.push(w);
    }
  }

  /** Nothing queued, staged for writing or in flight, and the descriptor question settled. */
  #drained(): boolean {
    return (
      this.#opening === undefined &&
      this.#inflight === 0 &&
      this.#queued === 0 &&
      this.#ringInflight === 0 &&
      this.#ready.length === 0
    );
  }

  /**
   * After an error, cuts the file at the first byte that was not written: slot writes run
   * concurrently, so a later slot may have landed after a failed one, and the file kept must be
   * a prefix of the artifact (as with sequential writes), not one with a gap of zeros.
   */
  async #trimToPrefix(): Promise<void> {
    if (!Number.isFinite(this.#lostAt)) return;
    try {
      if ((await this.#handle.stat()).size > this.#lostAt) await this.#handle.truncate(this.#lostAt);
    } catch {
      // best effort: the partial file is re-hashed as it is
    }
  }

  /** Closes the direct descriptor, then the file; returns the ring to the pool when no write uses it. */
  async #closeFds(): Promise<void> {
    await this.#opening;
    if (this.#error !== undefined && this.#ringInflight === 0 && this.#inflight === 0)
      await this.#trimToPrefix();
    const fd = this.#directFd;
    this.#directFd = -1;
    let error: unknown;
    if (fd >= 0) {
      await new Promise<void>((res) => {
        closeFd(fd, (e) => {
          error = e ?? undefined;
          res();
        });
      });
    }
    try {
      await this.#handle.close();
    } catch (e) {
      error ??= e;
    }
    if (this.#ring !== undefined && this.#ringInflight === 0) {
      giveRing(this.#ring);
      this.#ring = undefined;
    }
    if (error !== undefined) throw error;
  }

  /**
   * Writes what is queued or staged, optionally fsyncs, and closes both descriptors; rejects with
   * the first write error.
   */
  async close(fsync: boolean): Promise<void> {
    if (this.#closed) throw new Error('file already closed');
    this.#closed = true;
    try {
      await this.#when(() => this.#parked === undefined);
      if (this.#staging && this.#fill > 0 && this.#error === undefined) this.#submitFill(true);
      await this.#when(() => this.#drained());
      await this.#syncing;
      if (this.#error) throw this.#error;
      if (fsync) await this.#handle.sync();
    } finally {
      await this.#closeFds();
    }
    if (this.#error) throw this.#error;
  }

  /** Drops what is queued or staged, waits for the writes in flight and closes; never rejects. */
  async destroy(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(this.#error ?? new Error('file closed'));
    await this.#when(() => this.#opening === undefined && this.#inflight === 0 && this.#ringInflight === 0);
    await this.#syncing?.catch(() => {});
    await this.#closeFds().catch(() => {});
  }
}

function remainder(bufs: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const b of bufs) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
