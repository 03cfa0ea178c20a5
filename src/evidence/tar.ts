/**
 * TarSink: one `.tar` or `.tar.gz` per bundle, streamed with tar-stream.
 *
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type WriteStream } from 'node:fs';
import { mkdir, open, rm, stat, unlink } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip, type Gzip } from 'node:zlib';
import { type Pack, pack as tarPack } from 'tar-stream';
import { EvidenceError } from '../errors.js';
import { type ArtifactStore, type BundleBackend, type FailedStore, StreamingBundleWriter } from './bundle.js';
import {
  type AuxDigest,
  AuxFiles,
  closeStream,
  createExclusive,
  sinkRootError,
  syncPath,
  writeTo,
} from './fsutil.js';
import { BUNDLE_FILES, type BundleInit, type BundleWriter, type EvidenceSink } from './types.js';

/** Options of {@link TarSink}. */
export interface TarSinkOptions {
  /** Folder that receives `<acquisitionId>.tar[.gz]` files (created when missing). */
  root: string;
  /** Write `.tar.gz` instead of `.tar`. Default false. */
  gzip?: boolean;
  /** zlib level for gzip (1–9). Default 6. */
  gzipLevel?: number;
  /**
   * Artifacts whose size is unknown are held in memory up to this many bytes, then spooled to a
   * temp file in `<bundle>.partial/` (tar needs every entry's size before its data). Default 1 MiB.
   */
  memoryBufferBytes?: number;
}

class Mutex {
  #tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn);
    this.#tail = p.then(
      () => {},
      () => {},
    );
    return p;
  }
}

class TarBackend implements BundleBackend {
  readonly kind = 'tar';
  readonly location: string;
  readonly #name: string;
  readonly #partial: string;
  readonly #pack: Pack;
  readonly #out: Promise<void>;
  readonly #ws: WriteStream;
  readonly #fileHash: Hash = createHash('sha256');
  readonly #lock = new Mutex();
  readonly #memLimit: number;
  readonly #aux: AuxFiles;
  #outError: unknown;
  readonly #hashTap: Transform;
  readonly #gz: Gzip | undefined;
  #ended = false;
  #spoolSeq = 0;
  readonly #mtime = new Date();

  constructor(
    file: string,
    name: string,
    ws: WriteStream,
    aux: AuxFiles,
    opts: { gzip: boolean; level: number; memLimit: number },
  ) {
    this.location = file;
    this.#name = name;
    this.#partial = `${file}.partial`;
    this.#ws = ws;
    this.#aux = aux;
    this.#memLimit = opts.memLimit;
    this.#pack = tarPack();
    const fileHash = this.#fileHash;
    const hashTap = new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _enc, cb) {
        fileHash.update(chunk);
        cb(null, chunk);
      },
    });
    this.#hashTap = hashTap;
    this.#gz = opts.gzip ? createGzip({ level: opts.level }) : undefined;
    this.#out = (
      this.#gz ? pipeline(this.#pack, this.#gz, hashTap, ws) : pipeline(this.#pack, hashTap, ws)
    ).catch((e: unknown) => {
      this.#outError = e;
      throw e;
    });
    this.#out.catch(() => {});
    this.#pack.entry({ name: `${name}/`, type: 'directory', mode: 0o755, mtime: this.#mtime });
  }

  #header(path: string, size: number) {
    return { name: `${this.#name}/${path}`, size, mode: 0o644, mtime: this.#mtime, type: 'file' as const };
  }

  #check(): void {
    if (this.#outError !== undefined) {
      throw new EvidenceError(
        `the tar file ${this.location} cannot be written: ${(this.#outError as Error).message}`,
        {
          cause: this.#outError,
        },
      );
    }
  }

  /** Adds one entry from memory chunks and/or a spool file, under the lock. */
  #addEntry(path: string, size: number, chunks: Buffer[], spool: string | undefined): Promise<void> {
    return this.#lock.run(async () => {
      this.#check();
      let entryErr: unknown;
      const done = new Promise<void>((res, rej) => {
        const entry = this.#pack.entry(this.#header(path, size), (err) => {
          if (err) rej(err);
          else res();
        });
        void (async () => {
          try {
            for (const c of chunks) {
              const p = writeTo(entry as unknown as Writable, c);
              if (p) await p;
            }
            if (spool) {
              for await (const c of createReadStream(spool, { highWaterMark: 1 << 20 })) {
                const p = writeTo(entry as unknown as Writable, c as Buffer);
                if (p) await p;
              }
            }
            (entry as unknown as Writable).end();
          } catch (e) {
            entryErr = e;
            entry.destroy(e as Error);
            rej(e);
          }
        })();
      });
      await done;
      if (entryErr) throw entryErr;
      await this.#flushOut();
    });
  }

  /**
   * Pushes a finished entry through gzip and into the file, so an artifact is on disk (page
   * cache) before the journal lists it.
   */
  async #flushOut(): Promise<void> {
    const gz = this.#gz;
    if (gz) await new Promise<void>((res) => gz.flush(constants.Z_SYNC_FLUSH, () => res()));
    for (let i = 0; i < 1000 && this.#outError === undefined; i++) {
      const pending = (this.#pack as unknown as { readableLength?: number }).readableLength ?? 0;
      const rest =
        (gz?.writableLength ?? 0) +
        (gz?.readableLength ?? 0) +
        this.#hashTap.writableLength +
        this.#hashTap.readableLength +
        this.#ws.writableLength;
      if (pending + rest === 0 && !this.#ws.pending) return;
      await new Promise((r) => setImmediate(r));
    }
  }

  async openArtifact(path: string): Promise<ArtifactStore> {
    this.#check();
    const chunks: Buffer[] = [];
    let inMem = 0;
    let spoolPath: string | undefined;
    let spool: WriteStream | undefined;
    let spoolErr: unknown;
    const memLimit = this.#memLimit;
    const seq = this.#spoolSeq++;
    const partial = this.#partial;
    const closeSpool = async () => {
      if (spool) await closeStream(spool);
    };
    const store = async (bytes: number): Promise<void> => {
      await closeSpool();
      try {
        await this.#addEntry(path, bytes, chunks, spoolPath);
      } finally {
        if (spoolPath) await unlink(spoolPath).catch(() => {});
      }
    };
    return {
      write(chunk: Buffer): Promise<void> | undefined {
        if (spoolErr !== undefined) return Promise.reject(spoolErr);
        if (!spool && inMem + chunk.length <= memLimit) {
          chunks.push(chunk);
          inMem += chunk.length;
          return undefined;
        }
        if (!spool) {
          return (async () => {
            spoolPath = join(partial, `spool-${seq}`);
            spool = await createExclusive(spoolPath, 4 << 20);
            spool.on('error', (e) => {
              spoolErr ??= e;
            });
            const p = writeTo(spool, chunk);
            if (p) await p;
          })();
        }
        return writeTo(spool, chunk);
      },
      async end(_sha256: string, bytes: number) {
        await store(bytes);
        return {};
      },
      async fail(_e: unknown, sha256: string, bytes: number, producer: boolean): Promise<FailedStore> {
        if (producer && spoolErr === undefined) {
          try {
            await store(bytes);
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

  async #end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#lock.run(async () => {
      this.#pack.finalize();
      await this.#out;
    });
    await syncPath(this.location);
  }

  async complete(): Promise<{ bundleSha256: string; sidecar: string }> {
    await this.#end();
    const bundleSha256 = this.#fileHash.digest('hex');
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
      this.#pack.destroy();
      this.#ws.destroy();
    }
  }
}

/**
 * Writes each bundle as one tar file `<root>/<acquisitionId>.tar` (or `.tar.gz`) whose entries
 * sit under `<acquisitionId>/`, readable by GNU tar. Entries are appended one at a time; artifacts
 * written concurrently are held in memory (up to `memoryBufferBytes`) or spooled to
 * `<file>.partial/` until their turn, so memory stays bounded. The journal lives in
 * `<file>.partial/journal.jsonl` (fsynced per entry) until the tar is closed; after finalize the
 * sidecar `<file>.sha256` holds the SHA-256 of the whole tar file.
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
    this.#level = options.gzipLevel ?? 6;
    this.#mem = options.memoryBufferBytes ?? 1 << 20;
  }

  /** Creates the tar file exclusively; rejects with EvidenceError when it exists. */
  async open(init: BundleInit = {}): Promise<BundleWriter> {
    const { acquisitionId, name } = StreamingBundleWriter.prepare(init);
    const file = join(this.root, `${name}.tar${this.#gzip ? '.gz' : ''}`);
    let ws: WriteStream | undefined;
    try {
      await mkdir(this.root, { recursive: true });
    } catch (cause) {
      throw sinkRootError(this.root, cause);
    }
    try {
      ws = await createExclusive(file, 1 << 20);
      await mkdir(`${file}.partial`);
    } catch (cause) {
      ws?.destroy();
      const exists = (cause as NodeJS.ErrnoException).code === 'EEXIST';
      throw new EvidenceError(
        exists
          ? `bundle ${file} already exists; use a new acquisitionId`
          : `cannot create ${file}: ${(cause as Error).message}`,
        { cause },
      );
    }
    const aux = await AuxFiles.create(`${file}.partial`, BUNDLE_FILES.journal, BUNDLE_FILES.log).catch(
      (err: unknown) => {
        ws?.destroy();
        throw err;
      },
    );
    const backend = new TarBackend(file, name, ws, aux, {
      gzip: this.#gzip,
      level: this.#level,
      memLimit: this.#mem,
    });
    return StreamingBundleWriter.start(backend, acquisitionId, init);
  }
}
