/**
 * The sink-independent half of a bundle writer: path allocation, hashing while streaming,
 * the journal, the log, the manifest/custody/seal and the finalize/abort state machine.
 * Each sink supplies a {@link BundleBackend} that only stores bytes.
 *
 * @internal
 * @module
 */
import { createHash, type KeyObject, randomUUID } from 'node:crypto';
import { hostname, platform, userInfo } from 'node:os';
import { Readable } from 'node:stream';
import { ConfigError, EvidenceError, ValidationError } from '../errors.js';
import { type Logger, redactSecrets, Sha256, silentLogger } from '../util/index.js';
import { PathAllocator, sanitizeBundlePath } from './paths.js';
import { sealPayload, signSeal, toEd25519PrivateKey } from './seal.js';
import { requestTimestamp, TIMESTAMP_FILE, type TimestampAuthority } from './tsa.js';
import {
  type ArtifactBody,
  type ArtifactMeta,
  type ArtifactMetaUpdate,
  type ArtifactRecord,
  ArtifactRecordSchema,
  BUNDLE_FILES,
  type BundleInit,
  type BundleWriter,
  type Custody,
  type CustodyInput,
  CustodySchema,
  EVIDENCE_SCHEMA_VERSION,
  EVIDENCE_TOOL,
  type FinalizeResult,
  type JournalEntry,
  type Manifest,
  ManifestSchema,
  type RecordArtifactMeta,
  type Seal,
  SealSchema,
  type TargetChange,
  TargetChangeSchema,
} from './types.js';

/** Where stored bytes ended up, as the backend reports it. */
export interface StoredInfo {
  storage?: ArtifactRecord['storage'];
}

/** Result of giving up on one artifact's storage. */
export interface FailedStore {
  /** True when the partial bytes are still in the bundle. */
  kept: boolean;
  /** Hash/size of what is actually kept (backends re-read when unsure). */
  sha256?: string;
  bytes?: number;
  /** Better reason than the error seen by the writer (e.g. the root cause of a multipart failure). */
  reason?: string;
}

/** One artifact being stored. `write` returns a promise only when the producer must wait. */
export interface ArtifactStore {
  /** Takes the next bytes; returns a promise only when the producer must wait (backpressure). */
  write(chunk: Buffer): Promise<void> | undefined;
  /** All bytes were delivered; `sha256`/`bytes` are what the writer hashed. */
  end(sha256: string, bytes: number): Promise<StoredInfo>;
  /** Storage or producer failed; clean up (abort multipart uploads, close files). */
  fail(error: unknown, sha256: string, bytes: number, producerError: boolean): Promise<FailedStore>;
}

/** Storage primitives a sink provides for one bundle. */
export interface BundleBackend {
  /** Sink kind recorded in custody (`directory`, `s3`, your own name). */
  readonly kind: string;
  /** Where the bundle is, recorded in custody; its last component must be the bundle name. */
  readonly location: string;
  /** Starts storing one artifact at `path` (bundle-relative, already sanitized and unique). */
  openArtifact(path: string, meta: ArtifactMeta): Promise<ArtifactStore>;
  /** Appends one line (with `\n`) to the journal durably. */
  appendJournal(line: string): Promise<void>;
  /** Appends one line (with `\n`) to acquisition.log (buffered). */
  appendLog(line: string): void;
  /** Closes the journal and log and makes them part of the bundle; returns their hashes. */
  closeAux(): Promise<{ journal: { sha256: string; bytes: number }; log: { sha256: string; bytes: number } }>;
  /** Writes manifest.json / custody.json / seal.json durably, exclusive create. */
  putFinal(name: string, data: Buffer): Promise<void>;
  /** Everything is written: close the container, write the sidecar. */
  complete(final: {
    manifestSha256: string;
    custodySha256: string;
  }): Promise<{ bundleSha256?: string; sidecar?: string }>;
  /** Leave the bundle incomplete but readable (journal and log closed, no manifest). */
  abandon(): Promise<void>;
}

const MAX_LOG_LINE = 64 * 1024;
/**
 * Large chunks are stored and hashed in slices of this size: a sink that copies the bytes (the
 * direct-I/O ring) leaves each slice in the CPU cache for the hash that follows, instead of the
 * hash reading a megabyte back from memory (about 5% of the time of a 1 GiB artifact here).
 */
const STORE_SLICE = 64 * 1024;

const toIso = (d: Date | string | undefined, fallback: Date): string => {
  if (d === undefined) return fallback.toISOString();
  const date = typeof d === 'string' ? new Date(d) : d;
  return Number.isNaN(date.getTime()) ? fallback.toISOString() : date.toISOString();
};

const errMessage = (e: unknown): string => redactSecrets(e instanceof Error ? e.message : String(e));

function toReadable(body: ArtifactBody): Readable {
  if (body instanceof Readable) return body;
  if (typeof body === 'string') return Readable.from([Buffer.from(body, 'utf8')]);
  if (body instanceof Uint8Array) return Readable.from([body]);
  return Readable.from(body, { objectMode: false });
}

/** Validates and normalizes an acquisition id into a single safe path component. */
export function bundleName(acquisitionId: string): string {
  const name = sanitizeBundlePath(acquisitionId);
  if (name.includes('/') || name !== acquisitionId) {
    throw new ConfigError(
      `acquisitionId ${JSON.stringify(acquisitionId)} is not a safe single file name; use letters, digits, '-', '_', '.'`,
    );
  }
  return name;
}

type State = 'open' | 'closing' | 'finalized' | 'aborted' | 'failed';

/** The {@link BundleWriter} every sink returns. */
export class StreamingBundleWriter implements BundleWriter {
  readonly acquisitionId: string;
  readonly #backend: BundleBackend;
  readonly #paths = new PathAllocator();
  readonly #records: ArtifactRecord[] = [];
  readonly #changes: Custody['changes'] = [];
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #bodies = new Set<Readable>();
  readonly #startedAt: Date;
  readonly #caseId: string | undefined;
  readonly #signingKey: KeyObject | undefined;
  readonly #tsa: TimestampAuthority | undefined;
  readonly #logger: Logger;
  #journalChain: Promise<void> = Promise.resolve();
  #journalError: unknown;
  #state: State = 'open';
  #abortReason: string | undefined;

  private constructor(backend: BundleBackend, acquisitionId: string, init: BundleInit) {
    this.#backend = backend;
    this.acquisitionId = acquisitionId;
    this.#startedAt = init.startedAt ?? new Date();
    this.#caseId = init.caseId;
    this.#signingKey = init.signingKey === undefined ? undefined : toEd25519PrivateKey(init.signingKey);
    this.#logger = init.logger ?? silentLogger;
    this.#tsa = init.timestamp;
    for (const f of Object.values(BUNDLE_FILES)) this.#paths.reserve(f);
  }

  /** Resolves the acquisition id and checks the signing key before a sink creates anything. */
  static prepare(init: BundleInit = {}): { acquisitionId: string; name: string } {
    const acquisitionId = init.acquisitionId ?? randomUUID();
    if (init.signingKey !== undefined) toEd25519PrivateKey(init.signingKey);
    return { acquisitionId, name: bundleName(acquisitionId) };
  }

  /** Creates the writer and journals `begin`. */
  static async start(
    backend: BundleBackend,
    acquisitionId: string,
    init: BundleInit = {},
  ): Promise<StreamingBundleWriter> {
    const w = new StreamingBundleWriter(backend, acquisitionId, init);
    await w.#journal({
      type: 'begin',
      schemaVersion: EVIDENCE_SCHEMA_VERSION,
      acquisitionId,
      ...(w.#caseId === undefined ? {} : { caseId: w.#caseId }),
      at: w.#startedAt.toISOString(),
      sink: { kind: backend.kind, location: backend.location },
      tool: { ...EVIDENCE_TOOL },
    });
    return w;
  }

  /** Where the bundle is. */
  get location(): string {
    return this.#backend.location;
  }

  #journal(entry: JournalEntry): Promise<void> {
    const line = `${JSON.stringify(entry)}\n`;
    const p = this.#journalChain.then(() => this.#backend.appendJournal(line));
    this.#journalChain = p.catch((e: unknown) => {
      this.#journalError ??= e;
    });
    return p;
  }

  #assertOpen(what: string): void {
    if (this.#state !== 'open') {
      throw new EvidenceError(
        `cannot ${what}: bundle ${this.acquisitionId} is ${this.#state}; open a new bundle for more evidence`,
      );
    }
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p)).catch(() => {});
    return p;
  }

  writeArtifact(path: string, body: ArtifactBody, meta: ArtifactMeta): Promise<ArtifactRecord> {
    let stored: string;
    try {
      this.#assertOpen('write an artifact');
      stored = this.#paths.allocate(path);
    } catch (error) {
      if (body instanceof Readable) body.destroy();
      return Promise.reject(error);
    }
    return this.#track(this.#write(stored, path, body, meta));
  }

  async #write(
    path: string,
    requestedPath: string,
    body: ArtifactBody,
    meta: ArtifactMeta,
  ): Promise<ArtifactRecord> {
    const started = new Date();
    const source = toReadable(body);
    this.#bodies.add(source);
    let bytes = 0;
    let store: ArtifactStore | undefined;
    let failure: { error: unknown; producer: boolean } | undefined;
    let info: StoredInfo = {};
    let kept: FailedStore | undefined;
    try {
      await this.#journal({ type: 'open', at: started.toISOString(), path });
      store = await this.#backend.openArtifact(path, meta);
    } catch (error) {
      failure = { error, producer: false };
      source.destroy();
    }
    if (store) {
      const hash = new Sha256({ expectedBytes: meta.expectedBytes });
      try {
        for await (const raw of source) {
          const chunk: Buffer = Buffer.isBuffer(raw)
            ? raw
            : typeof raw === 'string'
              ? Buffer.from(raw, 'utf8')
              : Buffer.from(raw as Uint8Array);
          if (chunk.length === 0) continue;
          // Start the write first, then hash while the backend's I/O runs on the same (read-only)
          // bytes: hashing and storing overlap instead of taking turns.
          // The hash may run on a worker thread (large artifacts), so it overlaps the write too.
          let writeError: { error: unknown } | undefined;
          for (let off = 0; off < chunk.length && writeError === undefined; off += STORE_SLICE) {
            const part = chunk.length <= STORE_SLICE ? chunk : chunk.subarray(off, off + STORE_SLICE);
            let pending: Promise<void> | undefined;
            try {
              pending = store.write(part);
            } catch (error) {
              writeError = { error };
            }
            const hashing = hash.update(part);
            bytes += part.length;
            if (hashing || pending) {
              // Both at once: a write that fails while the hash is awaited is never left unhandled.
              const [stored, hashed] = await Promise.allSettled([pending, hashing]);
              if (stored.status === 'rejected') writeError ??= { error: stored.reason };
              if (hashed.status === 'rejected') writeError ??= { error: hashed.reason };
            }
          }
          if (writeError) {
            failure = { error: writeError.error, producer: false };
            break;
          }
        }
      } catch (error) {
        failure = { error: this.#abortReason === undefined ? error : this.#abortReason, producer: true };
      }
      this.#bodies.delete(source);
      if (failure && !source.destroyed) source.destroy();
      let digest = '';
      try {
        digest = await hash.digest();
      } catch (error) {
        // The hashing thread died: the bytes are stored but unproven, so the artifact fails as a
        // storage failure (sinks re-hash what they kept, or keep nothing).
        hash.dispose();
        failure = { error: failure?.error ?? error, producer: false };
      }
      if (failure) {
        try {
          kept = await store.fail(failure.error, digest, bytes, failure.producer);
        } catch (error) {
          kept = { kept: false };
          this.#logger.warn(
            { path, error: errMessage(error) },
            'evidence: cleanup after a failed artifact failed',
          );
        }
      } else {
        try {
          info = await store.end(digest, bytes);
          kept = { kept: true, sha256: digest, bytes };
        } catch (error) {
          failure = { error, producer: false };
          try {
            kept = await store.fail(error, digest, bytes, false);
          } catch {
            kept = { kept: false };
          }
        }
      }
    }
    this.#bodies.delete(source);

    let update: ArtifactMetaUpdate = {};
    if (meta.finish) {
      try {
        update = await meta.finish();
      } catch (error) {
        update = { status: 'failed', reason: `producer reported failure: ${errMessage(error)}` };
      }
    }
    let status: ArtifactRecord['status'] = update.status ?? meta.status ?? 'complete';
    let reason = update.reason ?? meta.reason;
    if (failure) {
      status = 'failed';
      const what = failure.producer ? 'source stream failed' : 'storing failed';
      reason =
        kept?.reason ??
        `${what}: ${typeof failure.error === 'string' ? failure.error : errMessage(failure.error)}`;
      if (kept?.kept) reason += `; ${kept.bytes ?? 0} bytes kept`;
    }
    if (status !== 'complete' && !reason) reason = `${status} (no reason given)`;
    const record = this.#makeRecord(path, requestedPath, meta, update, started, {
      status,
      reason,
      stored: kept?.kept ?? false,
      sha256: kept?.kept ? kept.sha256 : undefined,
      bytes: kept?.kept ? (kept.bytes ?? 0) : 0,
      storage: info.storage,
    });
    if (failure) {
      this.log({ event: 'artifact.failed', path, reason });
    }
    await this.#commit(record);
    return record;
  }

  #makeRecord(
    path: string,
    requestedPath: string,
    meta: Omit<ArtifactMeta, 'status'>,
    update: ArtifactMetaUpdate,
    started: Date,
    r: Pick<ArtifactRecord, 'status' | 'reason' | 'stored' | 'sha256' | 'bytes' | 'storage'>,
  ): ArtifactRecord {
    const details = meta.details || update.details ? { ...meta.details, ...update.details } : undefined;
    const exitCode = update.exitCode !== undefined ? update.exitCode : meta.exitCode;
    const candidate: ArtifactRecord = {
      path,
      requestedPath,
      status: r.status,
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      stored: r.stored,
      ...(r.sha256 === undefined ? {} : { sha256: r.sha256 }),
      bytes: r.bytes,
      source: { ...meta.source },
      ...(meta.argv ? { argv: [...meta.argv] } : {}),
      ...(exitCode === undefined ? {} : { exitCode }),
      ...(meta.target ? { target: { ...meta.target } } : {}),
      ...(meta.contentType ? { contentType: meta.contentType } : {}),
      startedAt: toIso(meta.startedAt, started),
      finishedAt: toIso(update.finishedAt ?? meta.finishedAt, new Date()),
      ...(details ? { details } : {}),
      ...(r.storage ? { storage: r.storage } : {}),
    };
    const parsed = ArtifactRecordSchema.safeParse(candidate);
    if (!parsed.success) {
      throw new ValidationError(`artifact metadata for ${JSON.stringify(requestedPath)} is invalid`, {
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      });
    }
    return parsed.data;
  }

  async #commit(record: ArtifactRecord): Promise<void> {
    this.#records.push(record);
    try {
      await this.#journal({ type: 'artifact', at: new Date().toISOString(), record });
    } catch (error) {
      this.#logger.error({ path: record.path, error: errMessage(error) }, 'evidence: journal append failed');
      throw new EvidenceError(
        `could not journal artifact ${record.path} in ${this.location}: ${errMessage(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  recordArtifact(path: string, meta: RecordArtifactMeta): Promise<ArtifactRecord> {
    let record: ArtifactRecord;
    try {
      this.#assertOpen('record an artifact');
      const stored = this.#paths.allocate(path);
      record = this.#makeRecord(stored, path, meta, {}, new Date(), {
        status: meta.status,
        reason: meta.reason,
        stored: false,
        sha256: undefined,
        bytes: 0,
        storage: undefined,
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#track(this.#commit(record).then(() => record));
  }

  log(event: Record<string, unknown>): void {
    if (this.#state !== 'open' && this.#state !== 'closing') return;
    let line: string;
    try {
      line = JSON.stringify({ ts: new Date().toISOString(), ...event });
    } catch (error) {
      line = JSON.stringify({
        ts: new Date().toISOString(),
        event: 'log.unserializable',
        error: errMessage(error),
      });
    }
    line = redactSecrets(line);
    if (line.length > MAX_LOG_LINE) {
      line = JSON.stringify({
        ts: new Date().toISOString(),
        truncated: true,
        chars: line.length,
        head: line.slice(0, 4096),
      });
    }
    try {
      this.#backend.appendLog(`${line}\n`);
    } catch (error) {
      this.#logger.warn({ error: errMessage(error) }, 'evidence: acquisition.log append failed');
    }
  }

  recordChange(change: TargetChange): void {
    this.#assertOpen('record a change');
    const parsed = TargetChangeSchema.safeParse(change);
    if (!parsed.success) {
      throw new ValidationError('target change is invalid', {
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      });
    }
    const at = parsed.data.at ?? new Date().toISOString();
    const full = { ...parsed.data, at };
    this.#changes.push(full);
    this.log({ event: 'target.change', change: full });
    this.#track(this.#journal({ type: 'change', at, change: full })).catch((error: unknown) => {
      this.#logger.error({ error: errMessage(error) }, 'evidence: journal append failed');
    });
  }

  async #settle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#journalChain;
  }

  async finalize(input: CustodyInput = {}): Promise<FinalizeResult> {
    this.#assertOpen('finalize');
    this.#state = 'closing';
    const finishedAt = input.finishedAt ?? new Date();
    // Build custody first with a placeholder hash so invalid input fails before anything is written.
    const custodyDraft = this.#custody(input, finishedAt, '0'.repeat(64));
    try {
      await this.#settle();
      if (this.#journalError !== undefined) {
        throw new EvidenceError(
          `the journal of ${this.location} could not be written; the bundle stays incomplete`,
          {
            cause: this.#journalError,
          },
        );
      }
      await this.#journal({ type: 'finalize', at: finishedAt.toISOString() });
      const aux = await this.#backend.closeAux();
      const counts = { complete: 0, truncated: 0, failed: 0, skipped: 0 };
      for (const r of this.#records) counts[r.status]++;
      const manifest: Manifest = ManifestSchema.parse({
        schemaVersion: EVIDENCE_SCHEMA_VERSION,
        kind: 'eks-forensics.manifest',
        acquisitionId: this.acquisitionId,
        ...(this.#caseId === undefined ? {} : { caseId: this.#caseId }),
        complete: true,
        hashAlgorithm: 'sha256',
        tool: input.tool ?? { ...EVIDENCE_TOOL },
        startedAt: this.#startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        artifacts: [...this.#records].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
        bundleFiles: [
          { path: BUNDLE_FILES.journal, ...aux.journal },
          { path: BUNDLE_FILES.log, ...aux.log },
        ],
        counts,
      });
      const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
      const manifestSha256 = sha256Of(manifestBytes);
      const custody: Custody = { ...custodyDraft, manifestSha256 };
      const custodyBytes = Buffer.from(`${JSON.stringify(custody, null, 2)}\n`, 'utf8');
      const custodySha256 = sha256Of(custodyBytes);
      const seal: Seal = SealSchema.parse({
        schemaVersion: EVIDENCE_SCHEMA_VERSION,
        kind: 'eks-forensics.seal',
        acquisitionId: this.acquisitionId,
        manifestSha256,
        custodySha256,
        ...(this.#signingKey
          ? {
              signature: {
                algorithm: 'Ed25519',
                ...signSeal(this.#signingKey, sealPayload(this.acquisitionId, manifestSha256, custodySha256)),
              },
            }
          : {}),
      });
      const stamp = this.#tsa ? await this.#stamp(this.#tsa, manifestSha256) : undefined;
      await this.#backend.putFinal(BUNDLE_FILES.manifest, manifestBytes);
      await this.#backend.putFinal(BUNDLE_FILES.custody, custodyBytes);
      await this.#backend.putFinal(
        BUNDLE_FILES.seal,
        Buffer.from(`${JSON.stringify(seal, null, 2)}\n`, 'utf8'),
      );
      if (stamp && 'reply' in stamp) await this.#backend.putFinal(TIMESTAMP_FILE, stamp.reply);
      const done = await this.#backend.complete({ manifestSha256, custodySha256 });
      this.#state = 'finalized';
      return {
        location: this.location,
        acquisitionId: this.acquisitionId,
        manifestSha256,
        custodySha256,
        ...(done.bundleSha256 ? { bundleSha256: done.bundleSha256 } : {}),
        ...(done.sidecar ? { sidecar: done.sidecar } : {}),
        artifacts: manifest.artifacts,
        manifest,
        custody,
        signed: seal.signature !== undefined,
        ...(stamp
          ? {
              timestamp:
                'reply' in stamp
                  ? { stored: true as const, file: TIMESTAMP_FILE, genTime: stamp.genTime }
                  : { stored: false as const, error: stamp.error },
            }
          : {}),
      };
    } catch (error) {
      this.#state = 'failed';
      await this.#backend.abandon().catch(() => {});
      if (error instanceof EvidenceError || error instanceof ValidationError) throw error;
      throw new EvidenceError(
        `finalizing ${this.location} failed: ${errMessage(error)}; the bundle stays incomplete (journal kept)`,
        { cause: error },
      );
    }
  }

  /** Asks the TSA; a failure is fatal only when the caller said the timestamp is required. */
  async #stamp(
    tsa: TimestampAuthority,
    manifestSha256: string,
  ): Promise<{ reply: Buffer; genTime: string } | { error: string }> {
    try {
      return await requestTimestamp(tsa, manifestSha256);
    } catch (error) {
      if (tsa.required) throw error;
      const msg = errMessage(error);
      this.#logger.warn({ error: msg }, 'evidence: no RFC 3161 timestamp');
      return { error: msg };
    }
  }

  #custody(input: CustodyInput, finishedAt: Date, manifestSha256: string): Custody {
    let user: string | undefined;
    try {
      user = userInfo().username;
    } catch {
      user = undefined;
    }
    const parsed = CustodySchema.safeParse({
      schemaVersion: EVIDENCE_SCHEMA_VERSION,
      kind: 'eks-forensics.custody',
      ...((input.caseId ?? this.#caseId) === undefined ? {} : { caseId: input.caseId ?? this.#caseId }),
      acquisitionId: this.acquisitionId,
      ...(input.exhibitNumber === undefined ? {} : { exhibitNumber: input.exhibitNumber }),
      examiner: input.examiner ?? {},
      tool: input.tool ?? { ...EVIDENCE_TOOL },
      host: input.host ?? { hostname: hostname(), platform: platform(), ...(user ? { user } : {}) },
      startedAt: this.#startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      ...(input.cluster ? { cluster: input.cluster } : {}),
      targets: input.targets ?? [],
      sink: { kind: this.#backend.kind, location: this.location },
      changes: [...this.#changes],
      manifestSha256,
      ...(input.notes === undefined ? {} : { notes: input.notes }),
    });
    if (!parsed.success) {
      this.#state = 'open';
      throw new ValidationError('custody input is invalid; fix it and call finalize again', {
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      });
    }
    return parsed.data;
  }

  async abort(reason: string): Promise<void> {
    if (this.#state === 'aborted' || this.#state === 'finalized') return;
    if (this.#state === 'closing') await this.#settle().catch(() => {});
    this.#state = 'closing';
    this.#abortReason = `acquisition aborted: ${reason}`;
    for (const body of this.#bodies) body.destroy(new EvidenceError(this.#abortReason));
    await this.#settle().catch(() => {});
    this.log({ event: 'acquisition.aborted', reason });
    await this.#journal({ type: 'abort', at: new Date().toISOString(), reason }).catch(() => {});
    this.#state = 'aborted';
    await this.#backend.abandon();
  }
}

function sha256Of(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
