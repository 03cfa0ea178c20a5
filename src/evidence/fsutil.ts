/**
 * Small file helpers shared by the local sinks.
 *
 * @internal
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream, write, writev } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

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
    const log = await createExclusive(logPath, 64 * 1024);
    return new AuxFiles(journal, log, logPath);
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
    await closeStream(this.#log);
    await syncPath(this.#logPath);
    await this.#journal.sync();
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

/**
 * Appends buffers to a file opened with exclusive create, keeping one write (or `writev` of
 * everything queued meanwhile) in flight at a time. `write` returns a promise only while more
 * than `limit` bytes are queued or in flight, and that promise resolves as soon as the backlog is
 * under the limit again, so the disk never waits for the producer and memory stays bounded by
 * about `limit` plus one chunk. The buffers are only read, never kept after their write.
 *
 * With `syncEvery`, a background `fdatasync` is started each time that many bytes have been
 * written since the last one, so the disk writes back while the producer streams and the final
 * fsync of {@link FileAppender.close} has little left to do.
 */
export class FileAppender {
  readonly #fd: number;
  readonly #handle: FileHandle;
  readonly #limit: number;
  readonly #syncEvery: number;
  #queue: Buffer[] = [];
  #queued = 0;
  /** Bytes of the write syscall in flight (0: none). */
  #inflight = 0;
  #error: Error | undefined;
  #waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  #idle: (() => void) | undefined;
  #sinceSync = 0;
  #syncing: Promise<void> | undefined;
  #closed = false;

  private constructor(handle: FileHandle, limit: number, syncEvery: number) {
    this.#handle = handle;
    this.#fd = handle.fd;
    this.#limit = limit;
    this.#syncEvery = syncEvery;
  }

  /** Creates `path` exclusively (`wx`: never overwrites, never follows a symlink at the leaf). */
  static async create(
    path: string,
    opts: { limit?: number; syncEvery?: number } = {},
  ): Promise<FileAppender> {
    const handle = await open(path, 'wx');
    return new FileAppender(handle, Math.max(1, opts.limit ?? 1 << 20), opts.syncEvery ?? 0);
  }

  /** The first write (or background sync) error, if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Queues `chunk`; returns a promise only when the producer must wait (rejects on a write error). */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) return Promise.reject(new Error('file already closed'));
    if (chunk.length === 0) return undefined;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#inflight === 0) this.#pump();
    if (this.#queued + this.#inflight <= this.#limit && this.#queue.length < MAX_QUEUED_CHUNKS)
      return undefined;
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  #pump(): void {
    const bufs = this.#queue;
    const total = this.#queued;
    this.#queue = [];
    this.#queued = 0;
    this.#inflight = total;
    const done = (err: NodeJS.ErrnoException | null, written: number): void => {
      this.#inflight = 0;
      if (err) this.#fail(err);
      else if (this.#error === undefined) {
        if (written < total) {
          // Short write (e.g. the disk filled up): write the rest; a second failure reports the cause.
          if (written <= 0) this.#fail(new Error(`write to file made no progress (${total} bytes left)`));
          else {
            this.#queue = [...remainder(bufs, written), ...this.#queue];
            this.#queued += total - written;
          }
        }
        this.#sinceSync += Math.max(0, written);
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
        if (this.#queued > 0 && this.#error === undefined) this.#pump();
      }
      while (this.#waiters.length > 0 && this.#queued + this.#inflight <= this.#limit) {
        this.#waiters.shift()?.resolve();
      }
      if (this.#inflight === 0) this.#idle?.();
    };
    if (bufs.length === 1) {
      const b = bufs[0] as Buffer;
      write(this.#fd, b, 0, b.length, null, done);
    } else writev(this.#fd, bufs, null, done);
  }

  /** Records the first error and fails every waiter; a write in flight still completes. */
  #fail(err: Error): void {
    this.#error ??= err;
    this.#queue = [];
    this.#queued = 0;
    for (const w of this.#waiters.splice(0)) w.reject(this.#error);
  }

  #settled(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((res) => {
      this.#idle = () => {
        this.#idle = undefined;
        res();
      };
    });
  }

  /** Writes what is queued, optionally fsyncs, and closes; rejects with the first write error. */
  async close(fsync: boolean): Promise<void> {
    if (this.#closed) throw new Error('file already closed');
    this.#closed = true;
    try {
      while (this.#inflight > 0) await this.#settled();
      await this.#syncing;
      if (this.#error) throw this.#error;
      if (fsync) await this.#handle.sync();
    } finally {
      await this.#handle.close();
    }
    if (this.#error) throw this.#error;
  }

  /** Drops what is queued, waits for the write in flight and closes; never rejects. */
  async destroy(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(this.#error ?? new Error('file closed'));
    await this.#settled();
    await this.#syncing?.catch(() => {});
    await this.#handle.close().catch(() => {});
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
