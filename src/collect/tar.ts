/**
 * Receiving side of a tar stream from a container, treated as hostile (the `kubectl cp` CVEs,
 * UAC #429): parsed with tar-stream while it streams, nothing is ever extracted to disk, every
 * entry is hashed and indexed, names with `..`, absolute names, links and devices are flagged,
 * lying sizes / truncation / garbage end the parse with a reason instead of a crash or a hang.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Sha256 } from '../util/index.js';

/** One entry of a received tar stream, as indexed in the bundle. */
export interface TarIndexEntry {
  /** Entry name exactly as in the archive (may be hostile; never used as a path). */
  name: string;
  /** tar-stream type: `file`, `directory`, `symlink`, `link`, `character-device`, … */
  type: string;
  /** Size the header claimed. */
  headerSize: number;
  /** Bytes of content actually received. */
  bytes: number;
  /** SHA-256 of the content received (files only). */
  sha256?: string | undefined;
  /** Link target for symlinks and hard links (as in the archive). */
  linkname?: string | undefined;
  /** Permission bits from the header. */
  mode?: number | undefined;
  /** Owner uid from the header. */
  uid?: number | undefined;
  /** Owner gid from the header. */
  gid?: number | undefined;
  /** Modification time from the header (ISO). */
  mtime?: string | undefined;
  /** The path this entry answers, when it matches one that was asked for. */
  requestedPath?: string | undefined;
  /** Problems with this entry (unexpected name, traversal, link, device, short content…). */
  flags: string[];
}

/** Outcome of {@link receiveTar}. */
export interface TarReceiveResult {
  /** Entries in archive order. */
  entries: TarIndexEntry[];
  /** True when the archive parsed to its end marker without errors and within caps. */
  ok: boolean;
  /** Why it is not ok. */
  reason?: string | undefined;
  /** Bytes of the raw stream read. */
  streamBytes: number;
  /** SHA-256 of the raw stream as read (undefined with `hashStream: false`). */
  streamSha256: string | undefined;
  /** Whether the end-of-archive zero blocks were seen. */
  sawEndOfArchive: boolean;
  /** Per requested path: whether an entry answered it. */
  missing: string[];
}

/** Options of {@link receiveTar}. */
export interface TarReceiveOptions {
  /** Entry name (without a leading `/`) → requested path, for the paths that were asked for. */
  expected?: ReadonlyMap<string, string> | undefined;
  /** Most entries (default 100 000). */
  maxEntries?: number | undefined;
  /** Most bytes of the raw stream (default 1 GiB). Beyond it the parse stops with a reason. */
  maxBytes?: number | undefined;
  /** Keep up to this many bytes of each file entry in memory (for JWT decoding). Default 0. */
  keepBytes?: number | undefined;
  /** Called with kept bytes of each file entry when `keepBytes` > 0. */
  onKept?: ((entry: TarIndexEntry, bytes: Buffer) => void) | undefined;
  /** Hash the whole raw stream (default true; turn off when the sink already hashes the same bytes). */
  hashStream?: boolean | undefined;
  /** Called as raw bytes are read (progress, budgets). Returning false stops the parse. */
  onBytes?: ((n: number) => boolean) | undefined;
}

/**
 * Sits in front of tar-stream: hashes and counts the raw bytes, enforces the byte cap and budgets
 * before the parser sees the bytes, and remembers the last block to tell whether the archive ended
 * with its end-of-archive zero block. (tar-stream itself caps pax/long-name headers at 4 MiB.)
 */
class TarGuard extends Transform {
  readonly hash: Hash | undefined;
  bytes = 0;
  stopReason: string | undefined;
  #tail: Buffer = Buffer.alloc(0);
  readonly #maxBytes: number;
  readonly #onBytes: ((n: number) => boolean) | undefined;

  constructor(maxBytes: number, onBytes?: (n: number) => boolean, hashStream = true) {
    super();
    this.hash = hashStream ? createHash('sha256') : undefined;
    this.#maxBytes = maxBytes;
    this.#onBytes = onBytes;
  }

  get sawEnd(): boolean {
    return this.#tail.length === 512 && this.#tail.every((b) => b === 0) && this.bytes % 512 === 0;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.stopReason) {
      cb();
      return;
    }
    let data = chunk;
    if (this.bytes + data.length > this.#maxBytes) {
      data = data.subarray(0, Math.max(0, this.#maxBytes - this.bytes));
      this.stopReason = `stream exceeded the cap of ${this.#maxBytes} bytes`;
    }
    if (this.#onBytes && data.length > 0 && !this.#onBytes(data.length)) {
      this.stopReason = this.stopReason ?? 'byte budget of the target or run exhausted';
    }
    this.hash?.update(data);
    this.bytes += data.length;
    this.#tail =
      data.length >= 512
        ? Buffer.from(data.subarray(data.length - 512))
        : Buffer.concat([this.#tail, data]).subarray(-512);
    if (data.length > 0) this.push(data);
    if (this.stopReason) this.push(null);
    cb();
  }
}

/**
 * Parses a tar stream from a container without extracting anything. Resolves (never rejects for
 * bad input) with the entry index, per-entry SHA-256, the whole-stream SHA-256 and a reason when
 * the archive is not clean. The source is consumed to the point the parse stopped; destroy it
 * (cancel the exec) when `ok` is false and you want no more bytes.
 */
export async function receiveTar(
  source: Readable,
  options: TarReceiveOptions = {},
): Promise<TarReceiveResult> {
  const maxEntries = options.maxEntries ?? 100_000;
  const expected = options.expected ?? new Map<string, string>();
  const keepBytes = options.keepBytes ?? 0;
  const guard = new TarGuard(options.maxBytes ?? 1024 ** 3, options.onBytes, options.hashStream ?? true);
  const { extract: tarExtract } = await import('tar-stream');
  const extract = tarExtract();
  const entries: TarIndexEntry[] = [];
  const answered = new Set<string>();
  let reason: string | undefined;

  const feeding = pipeline(source, guard).catch((err: unknown) => {
    reason = reason ?? `stream error: ${err instanceof Error ? err.message : String(err)}`;
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  guard.pipe(extract);

  try {
    for await (const entry of extract) {
      const h = entry.header;
      const name = String(h.name ?? '');
      const item: TarIndexEntry = {
        name,
        type: String(h.type ?? 'unknown'),
        headerSize: typeof h.size === 'number' ? h.size : 0,
        bytes: 0,
        linkname: h.linkname ?? undefined,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        mtime:
          h.mtime instanceof Date && !Number.isNaN(h.mtime.getTime()) ? h.mtime.toISOString() : undefined,
        flags: [],
      };
      const normal = name.replace(/^\.\//, '');
      if (name.startsWith('/')) item.flags.push('absolute-name');
      if (normal.split('/').includes('..')) item.flags.push('dot-dot-name');
      const req = expected.get(normal.replace(/\/$/, ''));
      // a name the collector asked for is not suspicious for holding control bytes (a terminal
      // escape in a file name is evidence, not an attack on the receiver): only unasked names are
      if (req === undefined && [...name].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\x7f')) {
        item.flags.push('control-characters-in-name');
      }
      if (
        req !== undefined &&
        !item.flags.includes('dot-dot-name') &&
        !item.flags.includes('absolute-name')
      ) {
        item.requestedPath = req;
        if (answered.has(normal)) item.flags.push('duplicate-entry');
        answered.add(normal);
      } else if (item.type !== 'directory') {
        item.flags.push('unexpected-entry');
      }
      if (item.type === 'symlink' || item.type === 'link') item.flags.push(`${item.type}-not-followed`);
      if (['character-device', 'block-device', 'fifo'].includes(item.type)) item.flags.push('device-or-fifo');
      // The header's size is what tar-stream delivers (or the stream ends short): a fair hint for
      // moving a large file's hash to a worker thread, where it overlaps storing the stream.
      const hash = new Sha256({ expectedBytes: item.headerSize });
      const kept: Buffer[] = [];
      let keptLen = 0;
      try {
        for await (const c of entry) {
          const b = c as Buffer;
          const hashing = hash.update(b);
          item.bytes += b.length;
          if (keepBytes > 0 && keptLen < keepBytes) {
            const part = b.subarray(0, keepBytes - keptLen);
            kept.push(Buffer.from(part));
            keptLen += part.length;
          }
          if (hashing) await hashing;
        }
        if (item.type === 'file' || item.type === 'contiguous-file' || item.bytes > 0)
          item.sha256 = await hash.digest();
      } finally {
        hash.dispose();
      }
      if (item.bytes !== item.headerSize && (item.type === 'file' || item.type === 'contiguous-file')) {
        item.flags.push('short-content');
      }
      entries.push(item);
      if (keepBytes > 0 && options.onKept && item.sha256) options.onKept(item, Buffer.concat(kept));
      if (entries.length >= maxEntries) {
        reason = reason ?? `more than ${maxEntries} entries: stopped`;
        break;
      }
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    reason = reason ?? `not a valid tar stream: ${msg}`;
  }
  if (guard.stopReason) reason = guard.stopReason;
  // stop reading: unpipe and let the caller decide about the source
  guard.unpipe(extract);
  extract.destroy();
  if (!reason) await feeding;
  else {
    guard.destroy();
    await Promise.race([feeding, new Promise((r) => setTimeout(r, 0))]);
  }
  if (!reason && !guard.sawEnd) reason = 'archive ended without the end-of-archive marker (truncated)';
  const missing: string[] = [];
  for (const [n, p] of expected) if (!answered.has(n)) missing.push(p);
  if (
    !reason &&
    entries.some((e) => e.flags.some((f) => f !== 'duplicate-entry' && !f.endsWith('-not-followed')))
  ) {
    reason = 'archive has unexpected or suspicious entries (see index flags)';
  }
  return {
    entries,
    ok: reason === undefined,
    reason,
    streamBytes: guard.bytes,
    streamSha256: guard.hash?.copy().digest('hex'),
    sawEndOfArchive: guard.sawEnd,
    missing,
  };
}

/** Reads one entry's bytes back out of a stored raw tar (for analysis and tests; nothing touches disk). */
export async function readTarEntry(raw: Uint8Array | Readable, name: string): Promise<Buffer | undefined> {
  const { extract: tarExtract } = await import('tar-stream');
  const ex = tarExtract();
  const src = raw instanceof Readable ? raw : Readable.from([Buffer.from(raw)]);
  src.pipe(ex);
  let found: Buffer | undefined;
  try {
    for await (const entry of ex) {
      const parts: Buffer[] = [];
      for await (const c of entry) parts.push(c as Buffer);
      if (found === undefined && entry.header.name === name) found = Buffer.concat(parts);
    }
  } catch {
    // a damaged archive: return what was found
  }
  return found;
}
