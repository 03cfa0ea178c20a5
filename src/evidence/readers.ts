/**
 * Bundle readers for verification: directory, tar/tar.gz, memory.
 *
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { hashFile } from './directory.js';
import { TIMESTAMP_FILE } from './tsa.js';
import { BUNDLE_FILES } from './types.js';
import {
  type BundleEntry,
  type BundleReader,
  isBundlePath,
  nameInLocation,
  parseSidecar,
  TOO_LARGE,
  type VerifyProblem,
} from './verify.js';

async function readCapped(path: string, max: number): Promise<Buffer | typeof TOO_LARGE | undefined> {
  try {
    const st = await lstat(path);
    if (!st.isFile()) return undefined;
    if (st.size > max) return TOO_LARGE;
    const fh = await open(path, 'r');
    try {
      // Read at most max + 1 bytes: the file may grow between lstat and read.
      const buf = Buffer.allocUnsafe(Math.min(st.size, max) + 1);
      let n = 0;
      while (n < buf.length) {
        const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      return n > max ? TOO_LARGE : buf.subarray(0, n);
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/** Sidecar text found beside a bundle; larger than 1 MiB is not a sidecar we wrote. */
async function readSidecarText(path: string): Promise<string | undefined> {
  const b = await readCapped(path, 1 << 20);
  if (b === TOO_LARGE) return 'too large';
  return b?.toString('utf8');
}

/** Reads a bundle folder written by DirectorySink. */
export class DirectoryReader implements BundleReader {
  readonly kind = 'directory';
  readonly location: string;
  readonly placeName: string;
  constructor(dir: string) {
    this.location = dir;
    this.placeName = basename(dir);
  }

  async list(problems: VerifyProblem[]): Promise<BundleEntry[]> {
    const out: BundleEntry[] = [];
    const walk = async (dir: string): Promise<void> => {
      const names = await readdir(dir);
      names.sort();
      for (const n of names) {
        const full = join(dir, n);
        const rel = relative(this.location, full).split(sep).join('/');
        const st = await lstat(full);
        if (st.isDirectory()) await walk(full);
        else if (st.isFile()) out.push({ path: rel, size: st.size });
        else {
          out.push({ path: rel, size: 0 });
          problems.push({
            code: 'unexpected',
            path: rel,
            message: `${rel} is not a regular file (symlink or special file)`,
          });
        }
      }
    };
    await walk(this.location);
    return out;
  }

  read(path: string, max: number): Promise<Buffer | typeof TOO_LARGE | undefined> {
    return readCapped(join(this.location, path), max);
  }

  async hash(path: string): Promise<{ sha256: string; bytes: number } | undefined> {
    const full = join(this.location, path);
    try {
      if (!(await lstat(full)).isFile()) return undefined;
      return await hashFile(full);
    } catch {
      return undefined;
    }
  }

  sidecar(): Promise<string | undefined> {
    return readSidecarText(join(dirname(this.location), `${this.placeName}.sha256`));
  }

  sidecarEntries(text: string): Map<string, string> {
    return parseSidecar(text, `${this.placeName}/`);
  }
}

/** A bundle held in memory (MemorySink). */
export interface MemoryBundle {
  /** Acquisition id. */
  readonly acquisitionId: string;
  /** `memory://<acquisitionId>`. */
  readonly location: string;
  /** Bundle-relative path → bytes. Tests may edit it to simulate tampering. */
  readonly files: Map<string, Buffer>;
  /** Sidecar text (sha256sum format), set on finalize. */
  sidecar?: string;
}

/** Reads a {@link MemoryBundle}. */
export class MemoryReader implements BundleReader {
  readonly kind = 'memory';
  readonly location: string;
  readonly placeName: string;
  readonly #b: MemoryBundle;
  constructor(bundle: MemoryBundle) {
    this.#b = bundle;
    this.location = bundle.location;
    this.placeName = nameInLocation(bundle.location.replace(/^memory:\/\//, ''));
  }
  async list(): Promise<BundleEntry[]> {
    return [...this.#b.files]
      .map(([path, b]) => ({ path, size: b.length }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
  }
  async read(path: string, max: number): Promise<Buffer | typeof TOO_LARGE | undefined> {
    const b = this.#b.files.get(path);
    if (b === undefined) return undefined;
    return b.length <= max ? b : TOO_LARGE;
  }
  async hash(path: string): Promise<{ sha256: string; bytes: number } | undefined> {
    const b = this.#b.files.get(path);
    return b ? { sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length } : undefined;
  }
  async sidecar(): Promise<string | undefined> {
    return this.#b.sidecar;
  }
  sidecarEntries(text: string): Map<string, string> {
    return parseSidecar(text, `${this.placeName}/`);
  }
}

const KEEP = new Set<string>([
  BUNDLE_FILES.manifest,
  BUNDLE_FILES.custody,
  BUNDLE_FILES.seal,
  BUNDLE_FILES.journal,
  TIMESTAMP_FILE,
]);

/** Reads a `.tar` / `.tar.gz` written by TarSink in one streaming pass. */
export class TarReader implements BundleReader {
  readonly kind = 'tar';
  readonly location: string;
  readonly placeName: string;
  readonly #capFor: (name: string) => number;
  #scanned: Promise<void> | undefined;
  #entries: BundleEntry[] = [];
  #hashes = new Map<string, { sha256: string; bytes: number }>();
  #small = new Map<string, Buffer | typeof TOO_LARGE>();
  #scanProblems: VerifyProblem[] = [];
  #fileSha = '';
  #scanError: unknown;

  /** `capFor(name)`: the most bytes of each of the bundle's own files kept in memory for reading. */
  constructor(file: string, capFor: (name: string) => number) {
    this.location = file;
    this.placeName = nameInLocation(basename(file));
    this.#capFor = capFor;
  }

  async #scan(): Promise<void> {
    const fh = await open(this.location, 'r');
    const magic = Buffer.alloc(2);
    await fh.read(magic, 0, 2, 0);
    await fh.close();
    const gz = magic[0] === 0x1f && magic[1] === 0x8b;
    const whole = createHash('sha256');
    const { extract } = await import('tar-stream');
    const ex = extract();
    const top = this.placeName;
    const prefix = `${top}/`;
    const seen = new Set<string>();
    const foreign = new Set<string>();
    const consume = (async () => {
      for await (const entry of ex) {
        const h = entry.header;
        const name = h.name;
        if (!name.startsWith(prefix)) {
          foreign.add(name.split('/')[0] ?? '');
          if (!(h.type === 'directory' && name.replace(/\/+$/, '') === top)) {
            this.#scanProblems.push({
              code: 'path',
              path: name,
              message: `tar entry ${JSON.stringify(name)} is outside the bundle folder ${prefix}`,
            });
          }
          entry.resume();
          continue;
        }
        const raw = name.slice(prefix.length);
        if (h.type === 'directory') {
          const dir = raw.replace(/\/$/, '');
          if (dir !== '' && !isBundlePath(dir)) {
            this.#scanProblems.push({
              code: 'path',
              path: raw,
              message: `tar folder entry ${JSON.stringify(name)} is not a path the writer produces`,
            });
          }
          entry.resume();
          continue;
        }
        const rel = raw;
        if (h.type !== 'file' && h.type !== 'contiguous-file') {
          this.#scanProblems.push({
            code: 'unexpected',
            path: rel,
            message: `tar entry ${name} is a ${h.type ?? 'unknown'} entry, not a file`,
          });
          entry.resume();
          continue;
        }
        const hash = createHash('sha256');
        let bytes = 0;
        const keep: Buffer[] = [];
        let keepIt = KEEP.has(rel) && !seen.has(rel);
        const cap = keepIt ? this.#capFor(rel) : 0;
        for await (const c of entry) {
          const chunk = c as Buffer;
          hash.update(chunk);
          bytes += chunk.length;
          if (keepIt) {
            if (bytes > cap) {
              keepIt = false;
              keep.length = 0;
            } else keep.push(chunk);
          }
        }
        if (seen.has(rel)) {
          this.#scanProblems.push({
            code: 'unexpected',
            path: rel,
            message: `${rel} appears more than once in the tar (extraction would overwrite it)`,
          });
          continue;
        }
        seen.add(rel);
        this.#entries.push({ path: rel, size: bytes });
        this.#hashes.set(rel, { sha256: hash.digest('hex'), bytes });
        if (KEEP.has(rel)) this.#small.set(rel, keepIt ? Buffer.concat(keep) : TOO_LARGE);
      }
    })();
    // Observed at once: a damaged tar rejects `consume` while the pipeline is still awaited, and a
    // rejection without a handler would reach the embedding process as an unhandled rejection.
    const consumed = consume.then(
      () => undefined,
      (e: unknown) => e,
    );
    const src = createReadStream(this.location, { highWaterMark: 1 << 20 });
    src.on('data', (c) => whole.update(c as Buffer));
    try {
      if (gz) await pipeline(src, createGunzip(), ex);
      else await pipeline(src, ex);
    } catch (e) {
      this.#scanError = e;
    }
    const consumeError = await consumed;
    this.#scanError ??= consumeError;
    this.#fileSha = whole.digest('hex');
    const [other] = foreign;
    if (this.#entries.length === 0 && foreign.size === 1 && other) {
      this.#scanProblems.unshift({
        code: 'identity',
        message: `the tar holds bundle ${JSON.stringify(other)} but its file name says ${JSON.stringify(top)}: a bundle copied to another acquisition's place`,
      });
    }
  }

  #ready(): Promise<void> {
    this.#scanned ??= this.#scan();
    return this.#scanned;
  }

  async list(problems: VerifyProblem[]): Promise<BundleEntry[]> {
    await this.#ready();
    problems.push(...this.#scanProblems);
    // A tar that ends early is expected while (or after a crash during) an acquisition: its journal
    // is then still outside, in `<file>.partial/`. Without that journal, or when the tar holds a
    // manifest, a short tar is damage.
    const finalized = this.#hashes.has(BUNDLE_FILES.manifest) || this.#hashes.has(BUNDLE_FILES.seal);
    if (this.#scanError !== undefined && (finalized || !(await this.#hasOutsideJournal()))) {
      const msg = this.#scanError instanceof Error ? this.#scanError.message : String(this.#scanError);
      problems.push({ code: 'storage', message: `the tar file is damaged or truncated: ${msg}` });
    }
    return this.#entries;
  }
  async read(path: string, max: number): Promise<Buffer | typeof TOO_LARGE | undefined> {
    await this.#ready();
    const b = this.#small.get(path);
    if (b === undefined || b === TOO_LARGE) return b;
    return b.length <= max ? b : TOO_LARGE;
  }
  async hash(path: string): Promise<{ sha256: string; bytes: number } | undefined> {
    await this.#ready();
    return this.#hashes.get(path);
  }
  async bundleSha256(): Promise<string> {
    await this.#ready();
    return this.#fileSha;
  }
  sidecar(): Promise<string | undefined> {
    return readSidecarText(`${this.location}.sha256`);
  }
  sidecarEntries(text: string): Map<string, string> {
    const m = parseSidecar(text);
    const own = m.get(basename(this.location));
    return own === undefined ? new Map([['*', 'no entry for this file']]) : new Map([['*', own]]);
  }
  async #hasOutsideJournal(): Promise<boolean> {
    const f = join(`${this.location}.partial`, BUNDLE_FILES.journal);
    return (await lstat(f).catch(() => undefined))?.isFile() ?? false;
  }
  outsideJournal(max: number): Promise<Buffer | typeof TOO_LARGE | undefined> {
    return readCapped(join(`${this.location}.partial`, BUNDLE_FILES.journal), max);
  }
}
