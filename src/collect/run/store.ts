/**
 * The target's side of the bundle: every artifact of a target run is written here. Exec evidence
 * is written only with a {@link Verdict} (made by the door), derived evidence only with the
 * verdicts of its inputs; a bare `complete` exists only for API state and in-memory documents
 * that did not come from the container.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ArtifactMeta, ArtifactRecord, BundleWriter } from '../../evidence/index.js';
import type { Budget } from '../budget.js';
import type { CollectLimits, ProgressEvent, ProgressTarget } from '../types.js';
import { type Reason, reason } from './reasons.js';
import { derivedVerdict, type Verdict, verdictText } from './verdict.js';

/** Counts a stream and stops it at a byte cap or when a budget is spent. */
export class CountingLimiter extends Transform {
  bytes = 0;
  /** Why it stopped, when it did. */
  stopped: { code: 'cap' | 'budget'; text: string } | undefined;
  constructor(
    private readonly cap: number,
    private readonly budget: Budget,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.stopped) {
      cb();
      return;
    }
    let c = chunk;
    if (this.bytes + c.length > this.cap) {
      c = c.subarray(0, this.cap - this.bytes);
      this.stopped = { code: 'cap', text: `artifact cap of ${this.cap} bytes reached` };
    }
    if (c.length > 0 && !this.budget.takeBytes(c.length)) {
      this.stopped = {
        code: 'budget',
        text: `${this.budget.exhaustedBy(c.length) ?? 'byte'} budget exhausted`,
      };
      c = Buffer.alloc(0);
    }
    this.bytes += c.length;
    if (c.length) this.push(c);
    if (this.stopped) this.push(null);
    cb();
  }
}

/** Source of an artifact for the manifest. */
export interface ArtifactSourceInput {
  kind: string;
  profile?: string | undefined;
  item?: string | undefined;
}

/** What a {@link TargetStore} needs. */
export interface TargetStoreOptions {
  bundle: BundleWriter;
  budget: Budget;
  limits: CollectLimits;
  progress: ProgressTarget;
  emit: (e: ProgressEvent) => void;
  runBytes: () => number;
  /** Called for every artifact that is not complete (or skipped). */
  onIncomplete: (r: Reason) => void;
}

type Body = Buffer | string;

/** Writes the artifacts of one target and counts them. */
export class TargetStore {
  readonly counts = { complete: 0, truncated: 0, failed: 0, skipped: 0 };
  bytes = 0;
  readonly #o: TargetStoreOptions;

  constructor(o: TargetStoreOptions) {
    this.#o = o;
  }

  #started(path: string): void {
    this.#o.emit({ type: 'artifact-started', target: this.#o.progress, path });
  }

  #tally(rec: ArtifactRecord): ArtifactRecord {
    this.counts[rec.status] += 1;
    this.bytes += rec.bytes;
    const o = this.#o;
    o.emit({
      type: 'artifact-finished',
      target: o.progress,
      path: rec.path,
      status: rec.status,
      bytes: rec.bytes,
    });
    o.emit({ type: 'bytes', target: o.progress, targetBytes: this.bytes, runBytes: o.runBytes() });
    if (rec.status === 'failed')
      o.onIncomplete(reason('artifact-failed', `${rec.requestedPath}: ${rec.reason ?? 'failed'}`, rec.path));
    if (rec.status === 'truncated')
      o.onIncomplete(
        reason('artifact-truncated', `${rec.requestedPath}: truncated: ${rec.reason ?? ''}`, rec.path),
      );
    return rec;
  }

  async #buffer(
    path: string,
    body: Body,
    meta: ArtifactMeta,
    verdict: Verdict | undefined,
  ): Promise<ArtifactRecord> {
    const len = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    this.#started(path);
    if (!this.#o.budget.takeBytes(len)) {
      const why = `${this.#o.budget.exhaustedBy(len) ?? 'byte'} budget exhausted`;
      return this.#tally(
        await this.#o.bundle.recordArtifact(path, { ...meta, status: 'skipped', reason: why }),
      );
    }
    const v = verdict;
    return this.#tally(
      await this.#o.bundle.writeArtifact(path, body, {
        ...meta,
        ...(v && v.status !== 'complete'
          ? { finish: () => ({ status: v.status, reason: verdictText(v) }) }
          : {}),
        ...(v && v.exitCode !== null ? { exitCode: v.exitCode } : {}),
      }),
    );
  }

  /**
   * Stores exec output as it streams. The status is the verdict's, awaited after the body ended:
   * nothing else can make it complete. The body must already be limited (the door does it).
   */
  async fromExec(
    path: string,
    body: Readable,
    meta: ArtifactMeta,
    verdict: Promise<Verdict>,
  ): Promise<ArtifactRecord> {
    this.#started(path);
    const rec = await this.#o.bundle.writeArtifact(path, body, {
      ...meta,
      finish: async () => {
        const v = await verdict;
        return {
          status: v.status,
          ...(v.status !== 'complete' ? { reason: verdictText(v) } : {}),
          exitCode: v.exitCode,
        };
      },
    });
    return this.#tally(rec);
  }

  /**
   * Stores a small piece of exec output (one frame) now; its status waits for `verdict` (the
   * frame's own, joined with the exec's once the exec is over). Do not await the result while
   * the exec is still being read.
   */
  frameFromExec(
    path: string,
    body: Body,
    meta: ArtifactMeta,
    verdict: Promise<Verdict>,
  ): Promise<ArtifactRecord> {
    let b: Buffer | undefined = typeof body === 'string' ? Buffer.from(body) : body;
    const len = b.length;
    if (!this.#o.budget.takeBytes(len)) {
      const why = `${this.#o.budget.exhaustedBy(len) ?? 'byte'} budget exhausted`;
      return this.record(path, 'skipped', why, meta);
    }
    // the buffer is dropped as soon as the sink has it, not kept until the exec is over
    const stream = new Readable({
      read() {
        if (b) this.push(b);
        b = undefined;
        this.push(null);
      },
    });
    return this.fromExec(path, stream, meta, verdict);
  }

  /** Stores a document derived from exec evidence: it inherits the worst status of its inputs. */
  derived(path: string, body: Body, meta: ArtifactMeta, inputs: readonly Verdict[]): Promise<ArtifactRecord> {
    const v = derivedVerdict(inputs);
    return this.#buffer(path, body, { ...meta, details: { ...meta.details, derivedFrom: inputs.length } }, v);
  }

  /** Stores API state or another document that did not come from the container. */
  api(path: string, body: Body, meta: ArtifactMeta): Promise<ArtifactRecord> {
    return this.#buffer(path, body, meta, undefined);
  }

  /** Streams API state (a container log) through the artifact cap and budgets. */
  async apiStream(path: string, body: Readable, meta: ArtifactMeta): Promise<ArtifactRecord> {
    this.#started(path);
    const lim = new CountingLimiter(this.#o.limits.maxArtifactBytes, this.#o.budget);
    body.on('error', () => lim.end());
    body.pipe(lim);
    const rec = await this.#o.bundle.writeArtifact(path, lim, {
      ...meta,
      finish: () => {
        if (!lim.stopped) return {};
        body.unpipe(lim);
        return { status: 'truncated' as const, reason: lim.stopped.text };
      },
    });
    if (lim.stopped) {
      body.unpipe(lim);
      body.resume();
    }
    return this.#tally(rec);
  }

  /** Records an artifact without bytes. */
  async record(
    path: string,
    status: 'failed' | 'truncated' | 'skipped',
    why: string,
    meta: ArtifactMeta,
  ): Promise<ArtifactRecord> {
    this.#started(path);
    return this.#tally(await this.#o.bundle.recordArtifact(path, { ...meta, status, reason: why }));
  }
}
