/**
 * The sink kit: what a third party needs to write an evidence sink in one file, outside this
 * package, and to have `verifyEvidence` read what it wrote. A sink provides storage primitives
 * ({@link BundleBackend}); the library's bundle writer does the rest (hashing, journal, manifest,
 * custody, seal, signing, timestamps). To verify, the sink provides a {@link BundleSource}
 * (list and read); every check of `verifyEvidence` applies unchanged to it: a source can hide or
 * alter files, but then the bundle does not verify.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { BundleBackend } from './bundle.js';
import { StreamingBundleWriter } from './bundle.js';
import type { BundleInit, BundleWriter } from './types.js';
import {
  type BundleEntry,
  type BundleReader,
  nameInLocation,
  parseSidecar,
  TOO_LARGE,
  type VerifyProblem,
} from './verify.js';

/** The bundle a backend is opened for: its acquisition id and the safe name derived from it. */
export interface BundleIdentity {
  /** Acquisition id (given in `BundleInit` or a fresh UUID). */
  acquisitionId: string;
  /** The id as one safe path component: the folder / object prefix / file name to use. */
  name: string;
}

/**
 * Opens a bundle on a third-party backend: validates `init` (acquisition id, signing key), asks
 * `backend(identity)` for the storage of this bundle, and returns the library's bundle writer on it.
 * A sink's `open(init)` is usually just this call.
 *
 * @throws ConfigError when the acquisition id is not a safe name or the signing key is unusable.
 * @example
 * class KvSink implements EvidenceSink {
 *   readonly kind = 'kv';
 *   open(init: BundleInit = {}) {
 *     return openBundleWriter(init, ({ name }) => new KvBackend(this.store, name));
 *   }
 * }
 */
export async function openBundleWriter(
  init: BundleInit,
  backend: (bundle: BundleIdentity) => BundleBackend | Promise<BundleBackend>,
): Promise<BundleWriter> {
  const id = StreamingBundleWriter.prepare(init);
  const b = await backend(id);
  if (typeof b?.location !== 'string' || b.location === '')
    throw new ConfigError('the sink backend must report a non-empty location');
  return StreamingBundleWriter.start(b, id.acquisitionId, init);
}

/** One file a {@link BundleSource} lists. */
export interface BundleSourceEntry {
  /** Path relative to the bundle (e.g. `manifest.json`, `containers/app/proc/1/status`). */
  path: string;
  /** Size in bytes, as the storage reports it. */
  bytes: number;
}

/**
 * Read access to one bundle in third-party storage, for `verifyEvidence({ source })`. Nothing it
 * returns is trusted: paths are validated with the writer's rule, sizes are checked against what
 * is read, every file is re-hashed, and what it does not list is missing.
 */
export interface BundleSource {
  /** Where the bundle is, as shown in the report (e.g. `kv://bucket/<id>`). */
  readonly location: string;
  /** The bundle name the place implies (the last component of `location`): it must equal the id. */
  readonly placeName: string;
  /** Every file of the bundle. */
  list(): Promise<readonly BundleSourceEntry[]>;
  /** The content of one file, or undefined when it does not exist. */
  read(path: string): Promise<AsyncIterable<Uint8Array> | Uint8Array | undefined>;
  /** Text of a sidecar kept beside the bundle (`<hash>  <name>` lines), if the storage has one. */
  sidecar?(): Promise<string | undefined>;
}

async function* chunks(body: AsyncIterable<Uint8Array> | Uint8Array): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) yield body;
  else yield* body;
}

/** Adapts a {@link BundleSource} to the verifier's reader: bounded reads, hashes on our side. */
export class SourceReader implements BundleReader {
  readonly kind = 'custom' as const;
  readonly location: string;
  readonly placeName: string;
  readonly #s: BundleSource;

  constructor(source: BundleSource) {
    this.#s = source;
    this.location = String(source.location);
    // the place is what the report shows: the location's last component, whatever else is claimed
    this.placeName = nameInLocation(this.location);
  }

  async list(problems: VerifyProblem[]): Promise<BundleEntry[]> {
    const claimed = String(this.#s.placeName);
    if (claimed !== this.placeName)
      problems.push({
        code: 'identity',
        message: `the bundle source names its place ${JSON.stringify(claimed)} but its location ${this.location} ends in ${JSON.stringify(this.placeName)}`,
      });
    try {
      const listed = await this.#s.list();
      return listed.map((e) => ({ path: String(e.path), size: Number(e.bytes) }));
    } catch (err) {
      problems.push({
        code: 'storage',
        message: `the bundle source could not list the bundle: ${err instanceof Error ? err.message : String(err)}`,
      });
      return [];
    }
  }

  async read(path: string, maxBytes: number): Promise<Buffer | typeof TOO_LARGE | undefined> {
    try {
      const body = await this.#s.read(path);
      if (body === undefined) return undefined;
      const parts: Buffer[] = [];
      let n = 0;
      for await (const c of chunks(body)) {
        n += c.length;
        if (n > maxBytes) return TOO_LARGE;
        parts.push(Buffer.from(c));
      }
      return Buffer.concat(parts);
    } catch {
      return undefined;
    }
  }

  async hash(path: string): Promise<{ sha256: string; bytes: number } | undefined> {
    try {
      const body = await this.#s.read(path);
      if (body === undefined) return undefined;
      const h = createHash('sha256');
      let bytes = 0;
      for await (const c of chunks(body)) {
        h.update(c);
        bytes += c.length;
      }
      return { sha256: h.digest('hex'), bytes };
    } catch {
      return undefined;
    }
  }

  async sidecar(): Promise<string | undefined> {
    try {
      return (await this.#s.sidecar?.())?.slice(0, 1 << 20);
    } catch {
      return undefined;
    }
  }

  sidecarEntries(text: string): Map<string, string> {
    return parseSidecar(text);
  }
}
