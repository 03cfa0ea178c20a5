/**
 * A third-party evidence sink in one file: bundles kept in a key/value object store (a stand-in for
 * Azure Blob, GCS or a company's own store: `put`, `get`, `list`, and objects that cannot be
 * overwritten). It uses only the public sink kit, as code outside this package would.
 *
 * In your own project import from 'eks-forensics/sink-kit' and 'eks-forensics'.
 *
 *   npx vitest run test/evidence/custom-sink.test.ts
 */
import { createHash } from 'node:crypto';
import {
  type ArtifactStore,
  type BundleBackend,
  type BundleInit,
  type BundleSource,
  type BundleWriter,
  openBundleWriter,
} from '../../src/entries/sink-kit.js';
import type { EvidenceSink } from '../../src/index.js';

/** The storage the sink writes to: write-once objects by key. */
export class KvStore {
  /** Objects by key (tests may alter them, as someone with access to the store could). */
  readonly objects = new Map<string, Buffer>();

  /** Stores an object; refuses to overwrite one. */
  async put(key: string, value: Buffer): Promise<void> {
    if (this.objects.has(key)) throw new Error(`object ${key} exists and cannot be overwritten`);
    this.objects.set(key, Buffer.from(value));
  }

  /** Reads an object. */
  async get(key: string): Promise<Buffer | undefined> {
    return this.objects.get(key);
  }

  /** Keys under a prefix, with sizes. */
  async list(prefix: string): Promise<Array<{ key: string; bytes: number }>> {
    return [...this.objects]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, v]) => ({ key, bytes: v.length }));
  }
}

const JOURNAL = 'journal.jsonl';
const LOG = 'acquisition.log';

/** Storage of one bundle: each artifact one object, the journal and log objects at the end. */
class KvBackend implements BundleBackend {
  readonly kind = 'kv';
  readonly location: string;
  readonly #store: KvStore;
  readonly #prefix: string;
  readonly #journal: Buffer[] = [];
  readonly #log: Buffer[] = [];

  constructor(store: KvStore, bucket: string, name: string) {
    this.#store = store;
    this.#prefix = `${bucket}/${name}/`;
    this.location = `kv://${bucket}/${name}`;
  }

  async openArtifact(path: string): Promise<ArtifactStore> {
    const parts: Buffer[] = [];
    const key = this.#prefix + path;
    return {
      write: (chunk) => {
        parts.push(Buffer.from(chunk));
        return undefined;
      },
      end: async () => {
        await this.#store.put(key, Buffer.concat(parts));
        return {};
      },
      fail: async (_err, sha256, bytes, producerError) => {
        // what the producer delivered before it broke is kept (the manifest says it is partial)
        if (!producerError) return { kept: false };
        await this.#store.put(key, Buffer.concat(parts));
        return { kept: true, sha256, bytes };
      },
    };
  }

  async appendJournal(line: string): Promise<void> {
    // a real store would append durably (an append blob); kept in memory until closeAux here
    this.#journal.push(Buffer.from(line, 'utf8'));
  }

  appendLog(line: string): void {
    this.#log.push(Buffer.from(line, 'utf8'));
  }

  async closeAux() {
    const j = Buffer.concat(this.#journal);
    const l = Buffer.concat(this.#log);
    await this.#store.put(this.#prefix + JOURNAL, j);
    await this.#store.put(this.#prefix + LOG, l);
    const h = (b: Buffer) => ({ sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length });
    return { journal: h(j), log: h(l) };
  }

  async putFinal(name: string, data: Buffer): Promise<void> {
    await this.#store.put(this.#prefix + name, data);
  }

  async complete(final: { manifestSha256: string; custodySha256: string }) {
    const sidecar = `${this.#prefix.slice(0, -1)}.sha256`;
    await this.#store.put(
      sidecar,
      Buffer.from(`${final.manifestSha256}  manifest.json\n${final.custodySha256}  custody.json\n`),
    );
    return { sidecar: `kv://${sidecar}` };
  }

  async abandon(): Promise<void> {
    if (!this.#store.objects.has(this.#prefix + JOURNAL)) await this.closeAux();
  }
}

/** An evidence sink writing bundles into a {@link KvStore} bucket. */
export class KvSink implements EvidenceSink {
  readonly kind = 'kv';
  readonly #store: KvStore;
  readonly #bucket: string;

  constructor(store: KvStore, bucket: string) {
    this.#store = store;
    this.#bucket = bucket;
  }

  /** Opens a bundle; refuses an acquisition id that already has objects in the bucket. */
  async open(init: BundleInit = {}): Promise<BundleWriter> {
    return openBundleWriter(init, async ({ name }) => {
      if ((await this.#store.list(`${this.#bucket}/${name}/`)).length > 0)
        throw new Error(`bundle ${name} already exists in kv://${this.#bucket}`);
      return new KvBackend(this.#store, this.#bucket, name);
    });
  }

  /** What `verifyEvidence({ source })` reads for one bundle. */
  source(acquisitionId: string): BundleSource {
    const prefix = `${this.#bucket}/${acquisitionId}/`;
    const store = this.#store;
    return {
      location: `kv://${this.#bucket}/${acquisitionId}`,
      placeName: acquisitionId,
      list: async () =>
        (await store.list(prefix)).map((o) => ({ path: o.key.slice(prefix.length), bytes: o.bytes })),
      read: (path) => store.get(prefix + path),
      sidecar: async () => (await store.get(`${this.#bucket}/${acquisitionId}.sha256`))?.toString('utf8'),
    };
  }
}
