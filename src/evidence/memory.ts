/**
 * MemorySink: bundles held in memory, for tests of downstream tools.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { EvidenceError } from '../errors.js';
import { type ArtifactStore, type BundleBackend, StreamingBundleWriter } from './bundle.js';
import type { MemoryBundle } from './readers.js';
import { BUNDLE_FILES, type BundleInit, type BundleWriter, type EvidenceSink } from './types.js';

/** Options of {@link MemorySink}. */
export interface MemorySinkOptions {
  /** Refuse artifacts once a bundle holds this many bytes (the artifact is recorded `failed`). Default 256 MiB. */
  maxBytes?: number;
}

class MemoryBackend implements BundleBackend {
  readonly kind = 'memory';
  readonly location: string;
  readonly #b: MemoryBundle & { sidecar?: string };
  readonly #max: number;
  #total = 0;
  #journal: Buffer[] = [];
  #log: Buffer[] = [];
  #closed = false;

  constructor(bundle: MemoryBundle, max: number) {
    this.#b = bundle;
    this.location = bundle.location;
    this.#max = max;
  }

  async openArtifact(path: string): Promise<ArtifactStore> {
    const chunks: Buffer[] = [];
    return {
      write: (chunk: Buffer) => {
        this.#total += chunk.length;
        if (this.#total > this.#max) {
          return Promise.reject(new EvidenceError(`memory sink limit of ${this.#max} bytes reached`));
        }
        chunks.push(chunk);
        return undefined;
      },
      end: async () => {
        this.#b.files.set(path, Buffer.concat(chunks));
        return {};
      },
      fail: async (_e, sha256, bytes, producer) => {
        if (!producer) return { kept: false };
        this.#b.files.set(path, Buffer.concat(chunks));
        return { kept: true, sha256, bytes };
      },
    };
  }

  async appendJournal(line: string): Promise<void> {
    this.#journal.push(Buffer.from(line, 'utf8'));
    this.#b.files.set(BUNDLE_FILES.journal, Buffer.concat(this.#journal));
  }

  appendLog(line: string): void {
    if (this.#closed) return;
    this.#log.push(Buffer.from(line, 'utf8'));
    this.#b.files.set(BUNDLE_FILES.log, Buffer.concat(this.#log));
  }

  async closeAux() {
    this.#closed = true;
    const j = Buffer.concat(this.#journal);
    const l = Buffer.concat(this.#log);
    this.#b.files.set(BUNDLE_FILES.journal, j);
    this.#b.files.set(BUNDLE_FILES.log, l);
    const h = (b: Buffer) => ({ sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length });
    return { journal: h(j), log: h(l) };
  }

  async putFinal(name: string, data: Buffer): Promise<void> {
    if (this.#b.files.has(name)) throw new EvidenceError(`${name} exists already in ${this.location}`);
    this.#b.files.set(name, Buffer.from(data));
  }

  async complete(final: { manifestSha256: string; custodySha256: string }) {
    this.#b.sidecar = `${final.manifestSha256}  ${BUNDLE_FILES.manifest}\n${final.custodySha256}  ${BUNDLE_FILES.custody}\n`;
    return { sidecar: `${this.location}.sha256` };
  }

  async abandon(): Promise<void> {
    this.#closed = true;
  }
}

/**
 * Keeps bundles in memory: `sink.bundles.get(acquisitionId).files` maps bundle paths to bytes.
 * Same writer, journal, manifest, custody and seal as the other sinks, so
 * `verifyEvidence(sink.bundles.get(id))` works and tests can tamper with `files`.
 */
export class MemorySink implements EvidenceSink {
  /** Always `memory`. */
  readonly kind = 'memory';
  /** Every bundle opened on this sink, by acquisition id. */
  readonly bundles = new Map<string, MemoryBundle>();
  readonly #max: number;

  constructor(options: MemorySinkOptions = {}) {
    this.#max = options.maxBytes ?? 256 << 20;
  }

  /** Opens a bundle; rejects with EvidenceError when the id was used already. */
  async open(init: BundleInit = {}): Promise<BundleWriter> {
    const { acquisitionId, name } = StreamingBundleWriter.prepare(init);
    if (this.bundles.has(acquisitionId)) {
      throw new EvidenceError(
        `bundle ${acquisitionId} already exists in this MemorySink; use a new acquisitionId`,
      );
    }
    const bundle: MemoryBundle = { acquisitionId, location: `memory://${name}`, files: new Map() };
    this.bundles.set(acquisitionId, bundle);
    return StreamingBundleWriter.start(new MemoryBackend(bundle, this.#max), acquisitionId, init);
  }
}
