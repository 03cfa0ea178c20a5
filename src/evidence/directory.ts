/**
 * DirectorySink: one folder per bundle.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { EvidenceError } from '../errors.js';
import {
  type ArtifactStore,
  type BundleBackend,
  type FailedStore,
  type StoredInfo,
  StreamingBundleWriter,
} from './bundle.js';
import { type AuxDigest, AuxFiles, FileAppender, sinkRootError, syncPath, uidText } from './fsutil.js';
import { BUNDLE_FILES, type BundleInit, type BundleWriter, type EvidenceSink } from './types.js';

/** Options of {@link DirectorySink}. */
export interface DirectorySinkOptions {
  /** Folder that receives one sub-folder per bundle (created when missing). */
  root: string;
  /**
   * fsync every artifact file before it is journaled, so a crash cannot lose bytes the journal
   * lists. Default true. manifest.json, custody.json, seal.json and the journal are always fsynced.
   */
  fsyncArtifacts?: boolean;
  /**
   * Bytes queued or being written per artifact file before the producer waits. Default 1 MiB: the
   * disk always has a write in flight while the next chunk is hashed, small chunks are batched
   * into one `writev`, and memory per artifact stays about this plus one chunk.
   */
  highWaterMark?: number;
  /**
   * Write large artifacts with direct I/O (`O_DIRECT`, Linux). Default true. An artifact is
   * written through the page cache as usual until 8 MiB, then the rest goes from a small ring of
   * aligned buffers (4 × 1 MiB, reused across artifacts) straight to the device, on a second
   * descriptor of the same file (re-opened through `/proc/self/fd`, never by path). This keeps a
   * large acquisition from filling (and evicting) the responder host's page cache and, on VMs
   * whose free memory is handed back to the host, from paying to fault page-cache memory in again;
   * the write then overlaps with hashing. Each written block is on the device when its write
   * returns; the final fsync (`fsyncArtifacts`) is still done for metadata and the device cache.
   * Falls back silently to buffered writes, with the same bytes, where direct I/O is not
   * available (other platforms, a filesystem refusing `O_DIRECT` at open or at the first write).
   * `false` writes every artifact buffered.
   */
  directIo?: boolean;
}

/** With per-artifact fsync, a background fdatasync every this many bytes keeps the final fsync short. */
const BACKGROUND_SYNC_BYTES = 64 << 20;

/** Hashes the file at `path` (to report what a failed write really left on disk). */
export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

class DirectoryBackend implements BundleBackend {
  readonly kind = 'directory';
  readonly location: string;
  readonly #root: string;
  readonly #name: string;
  readonly #fsyncArtifacts: boolean;
  readonly #hwm: number;
  readonly #directIo: boolean;
  readonly #aux: AuxFiles;

  constructor(
    root: string,
    name: string,
    aux: AuxFiles,
    opts: { fsyncArtifacts: boolean; hwm: number; directIo: boolean },
  ) {
    this.#root = root;
    this.#name = name;
    this.location = join(root, name);
    this.#aux = aux;
    this.#fsyncArtifacts = opts.fsyncArtifacts;
    this.#hwm = opts.hwm;
    this.#directIo = opts.directIo;
  }

  async openArtifact(path: string): Promise<ArtifactStore> {
    const full = join(this.location, path);
    await mkdir(dirname(full), { recursive: true });
    const fsync = this.#fsyncArtifacts;
    const file = await FileAppender.create(full, {
      limit: this.#hwm,
      // Background syncs cover the buffered writes only: direct writes are on the device already.
      syncEvery: fsync ? BACKGROUND_SYNC_BYTES : 0,
      direct: this.#directIo ? {} : false,
    });
    return {
      write: (chunk: Buffer): Promise<void> | undefined => file.write(chunk),
      async end(): Promise<StoredInfo> {
        await file.close(fsync);
        return {};
      },
      async fail(_error: unknown, sha256: string, bytes: number, producer: boolean): Promise<FailedStore> {
        if (producer && file.error === undefined) {
          try {
            await file.close(fsync);
            return { kept: true, sha256, bytes };
          } catch {
            // fall through to re-reading what is on disk
          }
        } else {
          await file.destroy();
        }
        try {
          return { kept: true, ...(await hashFile(full)) };
        } catch {
          return { kept: false };
        }
      },
    };
  }

  appendJournal(line: string): Promise<void> {
    return this.#aux.appendJournal(line);
  }

  appendLog(line: string): void {
    this.#aux.appendLog(line);
  }

  closeAux(): Promise<{ journal: AuxDigest; log: AuxDigest }> {
    return this.#aux.close();
  }

  async putFinal(name: string, data: Buffer): Promise<void> {
    const fh = await open(join(this.location, name), 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async complete(final: { manifestSha256: string; custodySha256: string }): Promise<{ sidecar: string }> {
    await syncPath(this.location);
    const sidecar = join(this.#root, `${this.#name}.sha256`);
    const fh = await open(sidecar, 'wx');
    try {
      await fh.writeFile(
        `${final.manifestSha256}  ${this.#name}/${BUNDLE_FILES.manifest}\n${final.custodySha256}  ${this.#name}/${BUNDLE_FILES.custody}\n`,
      );
      await fh.sync();
    } finally {
      await fh.close();
    }
    await syncPath(this.#root);
    return { sidecar };
  }

  abandon(): Promise<void> {
    return this.#aux.closeQuietly();
  }
}

/**
 * Writes each bundle as a folder `<root>/<acquisitionId>/`, every file created exclusively
 * (`wx`, so nothing is overwritten and no symlink is followed at the leaf), the journal fsynced per
 * entry, and the manifest, custody record and seal fsynced on finalize. A sidecar
 * `<root>/<acquisitionId>.sha256` (sha256sum format) holds the manifest and custody hashes.
 *
 * @example
 * const sink = new DirectorySink({ root: '/evidence' });
 * const bundle = await sink.open({ caseId: 'IR-42' });
 * await bundle.writeArtifact('pod/pod.json', JSON.stringify(pod), { source: { kind: 'api' } });
 * const { manifestSha256 } = await bundle.finalize({ examiner: { callerArn } });
 */
export class DirectorySink implements EvidenceSink {
  /** Always `directory`. */
  readonly kind = 'directory';
  /** Absolute root folder. */
  readonly root: string;
  readonly #fsyncArtifacts: boolean;
  readonly #hwm: number;
  readonly #directIo: boolean;

  constructor(options: DirectorySinkOptions) {
    this.root = resolve(options.root);
    this.#fsyncArtifacts = options.fsyncArtifacts ?? true;
    this.#hwm = options.highWaterMark ?? 1 << 20;
    this.#directIo = options.directIo ?? true;
  }

  /** Creates `<root>/<acquisitionId>/`; rejects with EvidenceError when it exists already. */
  async open(init: BundleInit = {}): Promise<BundleWriter> {
    const { acquisitionId, name } = StreamingBundleWriter.prepare(init);
    const dir = join(this.root, name);
    try {
      await mkdir(this.root, { recursive: true });
    } catch (cause) {
      throw sinkRootError(this.root, cause);
    }
    try {
      await mkdir(dir);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        throw new EvidenceError(`bundle folder ${dir} already exists; use a new acquisitionId`, { cause });
      }
      if (code === 'ENOTDIR') throw sinkRootError(this.root, cause);
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
        throw new EvidenceError(
          `the sink root ${this.root} is not writable here (${code}${uidText()}); pass a root folder this process can write, or fix its permissions`,
          { cause },
        );
      }
      throw new EvidenceError(`cannot create bundle folder ${dir}: ${(cause as Error).message}`, { cause });
    }
    const aux = await AuxFiles.create(dir, BUNDLE_FILES.journal, BUNDLE_FILES.log);
    const backend = new DirectoryBackend(this.root, name, aux, {
      fsyncArtifacts: this.#fsyncArtifacts,
      hwm: this.#hwm,
      directIo: this.#directIo,
    });
    return StreamingBundleWriter.start(backend, acquisitionId, init);
  }
}
