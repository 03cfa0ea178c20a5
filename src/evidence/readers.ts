/**
 * Bundle readers for verification: directory, tar/tar.gz, memory.
 *
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { hashFile } from './directory.js';
import { BUNDLE_FILES } from './types.js';
import { type BundleEntry, type BundleReader, parseSidecar, type VerifyProblem } from './verify.js';

async function readCapped(path: string, max: number): Promise<Buffer | undefined> {
  try {
    const st = await lstat(path);
    if (!st.isFile()) return undefined;
    if (st.size > max) return undefined;
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/** Reads a bundle folder written by DirectorySink. */
export class DirectoryReader implements BundleReader {
  readonly kind = 'directory';
  readonly location: string;
  constructor(dir: string) {
    this.location = dir;
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

  read(path: string, max: number): Promise<Buffer | undefined> {
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

  async sidecar(): Promise<Map<string, string> | undefined> {
    const name = basename(this.location);
    const data = await readCapped(join(dirname(this.location), `${name}.sha256`), 1 << 20);
    return data ? parseSidecar(data.toString('utf8'), `${name}/`) : undefined;
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
  readonly #b: MemoryBundle;
  constructor(bundle: MemoryBundle) {
    this.#b = bundle;
    this.location = bundle.location;
  }
  async list(): Promise<BundleEntry[]> {
    return [...this.#b.files]
      .map(([path, b]) => ({ path, size: b.length }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
  }
  async read(path: string, max: number): Promise<Buffer | undefined> {
    const b = this.#b.files.get(path);
    return b && b.length <= max ? b : undefined;
  }
  async hash(path: string): Promise<{ sha256: string; bytes: number } | undefined> {
    const b = this.#b.files.get(path);
    return b ? { sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length } : undefined;
  }
  async sidecar(): Promise<Map<string, string> | undefined> {
    return this.#b.sidecar === undefined ? undefined : parseSidecar(this.#b.sidecar);
  }
}

const KEEP = new Set<string>([
  BUNDLE_FILES.manifest,
  BUNDLE_FILES.custody,
  BUNDLE_FILES.seal,
  BUNDLE_FILES.journal,
]);

/** Reads a `.tar` / `.tar.gz` written by TarSink in one streaming pass. */
export class TarReader implements BundleReader {
  readonly kind = 'tar';
  readonly location: string;
  #scanned: Promise<void> | undefined;
  #entries: BundleEntry[] = [];
  #hashes = new Map<string, { sha256: string; bytes: number }>();
  #small = new Map<string, Buffer>();
  #scanProblems: VerifyProblem[] = [];
  #fileSha = '';
  #scanError: unknown;

  constructor(file: string) {
    this.location = file;
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
    const prefix = `${basename(this.location).replace(/\.(tar\.gz|tgz|tar)$/, '')}/`;
    const seen = new Set<string>();
    const consume = (async () => {
      for await (const entry of ex) {
        const h = entry.header;
        const name = h.name.replace(/\/+$/, '');
        const rel = name.startsWith(prefix) ? name.slice(prefix.length) : `../${name}`;
        if (h.type === 'directory' && name.startsWith(prefix.slice(0, -1))) {
          entry.resume();
          continue;
        }
        if (h.type !== 'file' && h.type !== 'contiguous-file') {
          this.#scanProblems.push({
            code: 'unexpected',
            path: rel,
            message: `tar entry ${name} is a ${h.type ?? 'unknown'} entry, not a file`,
          });
          this.#entries.push({ path: rel, size: 0 });
          entry.resume();
          continue;
        }
        const hash = createHash('sha256');
        let bytes = 0;
        const keep: Buffer[] = [];
        const keepIt = KEEP.has(rel);
        for await (const c of entry) {
          const chunk = c as Buffer;
          hash.update(chunk);
          bytes += chunk.length;
          if (keepIt && bytes <= 256 << 20) keep.push(chunk);
        }
        if (seen.has(rel)) {
          this.#scanProblems.push({
            code: 'unexpected',
            path: rel,
            message: `${rel} appears more than once in the tar (extraction would overwrite it)`,
          });
          this.#hashes.set(`${rel}\u0000dup`, { sha256: '', bytes });
          continue;
        }
        seen.add(rel);
        this.#entries.push({ path: rel, size: bytes });
        this.#hashes.set(rel, { sha256: hash.digest('hex'), bytes });
        if (keepIt) this.#small.set(rel, Buffer.concat(keep));
      }
    })();
    const src = createReadStream(this.location, { highWaterMark: 1 << 20 });
    src.on('data', (c) => whole.update(c as Buffer));
    try {
      if (gz) await pipeline(src, createGunzip(), ex);
      else await pipeline(src, ex);
      await consume;
    } catch (e) {
      await consume.catch(() => {});
      this.#scanError = e;
    }
    this.#fileSha = whole.digest('hex');
  }

  #ready(): Promise<void> {
    this.#scanned ??= this.#scan();
    return this.#scanned;
  }

  async list(problems: VerifyProblem[]): Promise<BundleEntry[]> {
    await this.#ready();
    problems.push(...this.#scanProblems);
    // A tar that ends early is expected while (or after a crash during) an acquisition: its journal
    // is then still outside, in `<file>.partial/`. Without that journal, a short tar is damage.
    if (this.#scanError !== undefined && !(await this.outsideJournal(1))) {
      const msg = this.#scanError instanceof Error ? this.#scanError.message : String(this.#scanError);
      problems.push({ code: 'storage', message: `the tar file is damaged or truncated: ${msg}` });
    }
    return this.#entries;
  }
  async read(path: string, max: number): Promise<Buffer | undefined> {
    await this.#ready();
    const b = this.#small.get(path);
    return b && b.length <= max ? b : undefined;
  }
  async hash(path: string): Promise<{ sha256: string; bytes: number } | undefined> {
    await this.#ready();
    return this.#hashes.get(path);
  }
  async bundleSha256(): Promise<string> {
    await this.#ready();
    return this.#fileSha;
  }
  async sidecar(): Promise<Map<string, string> | undefined> {
    const data = await readCapped(`${this.location}.sha256`, 1 << 20);
    if (!data) return undefined;
    const m = parseSidecar(data.toString('utf8'));
    const own = m.get(basename(this.location));
    return own === undefined ? new Map([['*', 'no entry for this file']]) : new Map([['*', own]]);
  }
  async outsideJournal(max: number): Promise<Buffer | undefined> {
    const f = join(`${this.location}.partial`, BUNDLE_FILES.journal);
    if (max <= 1) return (await lstat(f).catch(() => undefined))?.isFile() ? Buffer.alloc(0) : undefined;
    return readCapped(f, max);
  }
}
