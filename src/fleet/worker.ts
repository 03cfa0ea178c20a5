/**
 * The sweep worker: receive a target, hold it with visibility heartbeats, acquire it into the S3
 * sink under its deterministic id, commit, and only then delete the message.
 *
 * @module
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ClusterCatalog, ClusterInfo, ConnectOptions } from '../catalog/index.js';
import {
  ArtifactCollector,
  type ArtifactCollectorOptions,
  type CollectorKube,
  type ProfileInput,
  type TargetReport,
} from '../collect/index.js';
import { ConfigError, EvidenceError, ValidationError } from '../errors.js';
import {
  BUNDLE_FILES,
  type BundleInit,
  type BundleWriter,
  type CustodyInput,
  type EvidenceSink,
  ManifestSchema,
  S3Sink,
  type S3SinkOptions,
  verifyEvidence,
} from '../evidence/index.js';
import { type Logger, silentLogger } from '../util/index.js';
import {
  changeVisibility,
  deleteMessage,
  type InMessage,
  isLeaseGone,
  receive,
  type SweepQueue,
  sendOne,
} from './sqs.js';
import { exists, getJson, listKeys, putJson, SweepKeys, type SweepStore } from './store.js';
import {
  type AttemptRecord,
  AttemptRecordSchema,
  acquisitionIdFor,
  bundleIdFor,
  type FinalRecord,
  FinalRecordSchema,
  FLEET_SCHEMA_VERSION,
  type SweepCluster,
  type SweepTarget,
  SweepTargetSchema,
  targetKey,
} from './types.js';
import { errText, sleep } from './util.js';

/** Gives a worker a Kubernetes client for a target's cluster. */
export type SweepConnector = (target: SweepTarget, signal: AbortSignal) => Promise<CollectorKube>;

/** What happened to one message. */
export type SweepOutcome =
  /** The bundle was finalized and committed; the message was deleted. */
  | 'finalized'
  /** The target was already committed (redelivery); deleted without a new bundle. */
  | 'duplicate'
  /** A dead worker's bundle was found finalized and intact and committed; deleted. */
  | 'recovered'
  /** Another worker holds the target; left on the queue. */
  | 'busy'
  /** The attempt failed; the message comes back after a backoff. */
  | 'retry'
  /** Given up after `maxReceives` (or unreadable): sent to the DLQ with the reason, deleted. */
  | 'dead-lettered'
  /** The worker was stopped mid-target; the message was made visible again. */
  | 'released'
  /** Another attempt committed first; this attempt's bundle is recorded as superseded. */
  | 'superseded';

/** Progress of a worker, for logs and live views. */
export type SweepWorkerEvent =
  | { type: 'started'; worker: string }
  | {
      type: 'target-started';
      worker: string;
      acquisitionId: string;
      attempt: number;
      bundleId: string;
      receiveCount: number;
    }
  | {
      type: 'target-done';
      worker: string;
      acquisitionId: string;
      outcome: SweepOutcome;
      attempt?: number | undefined;
      status?: 'complete' | 'partial' | 'failed' | undefined;
      bytes?: number | undefined;
      reason?: string | undefined;
    }
  | { type: 'lease-lost'; worker: string; acquisitionId: string; reason: string }
  | { type: 'error'; worker: string; operation: string; message: string }
  | { type: 'stopped'; worker: string; summary: SweepWorkerSummary };

/** Totals of a worker run. */
export interface SweepWorkerSummary {
  /** Messages received. */
  received: number;
  /** Count per outcome. */
  outcomes: Record<SweepOutcome, number>;
  /** Bytes stored in finalized bundles. */
  bytes: number;
}

/** Options of {@link runSweepWorker} and {@link processSweepMessage}. */
export interface SweepWorkerOptions {
  /** The work queue. */
  queue: SweepQueue;
  /** Where bundles and sweep records go (the same store the sweep was enqueued with). */
  store: SweepStore;
  /** Reaches a target's cluster (see {@link catalogConnector}). */
  connect: SweepConnector;
  /** Profiles for every target. Default `['triage']`. */
  profiles?: readonly ProfileInput[] | undefined;
  /** More collector options (limits, examiner, callerArn, signing …). */
  collector?:
    | Omit<ArtifactCollectorOptions, 'sink' | 'profiles' | 'concurrency' | 'signal' | 'caseId' | 'cluster'>
    | undefined;
  /** S3 sink options besides client/bucket/prefix (encryption, Object Lock, part size). */
  sink?: Omit<S3SinkOptions, 'client' | 'bucket' | 'prefix'> | undefined;
  /** Targets acquired at once by this worker. Default 2. */
  concurrency?: number | undefined;
  /** Stops the worker: targets in flight are aborted (bundles marked incomplete) and released. */
  signal?: AbortSignal | undefined;
  /** Lease per receive and per heartbeat, seconds. Default 60. */
  visibilityTimeoutSeconds?: number | undefined;
  /** Heartbeat period, seconds. Default a third of the visibility timeout. */
  heartbeatSeconds?: number | undefined;
  /** Long-poll wait per receive, seconds (0-20). Default 10. */
  waitTimeSeconds?: number | undefined;
  /**
   * Receives after which a failing target is given up: sent to `deadLetterQueue` with the reason
   * and recorded in S3. Keep it below the queue's redrive `maxReceiveCount`. Default 4.
   */
  maxReceives?: number | undefined;
  /** Where given-up and unreadable messages go (with `reason` as a message attribute). */
  deadLetterQueue?: SweepQueue | undefined;
  /** Delay before a failed target is tried again, by receive count. Default min(5·2^(n-1), 300) s. */
  retryDelaySeconds?: ((receiveCount: number) => number) | undefined;
  /** Stop after the queue stayed empty this long (batch jobs, tests). Default: run until `signal`. */
  idleExitSeconds?: number | undefined;
  /** Stop after this many messages (a Lambda-style worker). */
  maxMessages?: number | undefined;
  /** Name in records and events. Default `<hostname>:<pid>:<random>`. */
  workerId?: string | undefined;
  /** Progress. */
  onEvent?: ((e: SweepWorkerEvent) => void) | undefined;
  /** Diagnostics. */
  logger?: Logger | undefined;
}

interface Resolved {
  o: SweepWorkerOptions;
  worker: string;
  vt: number;
  hb: number;
  maxReceives: number;
  retryDelay: (n: number) => number;
  logger: Logger;
  emit: (e: SweepWorkerEvent) => void;
}

function resolve(o: SweepWorkerOptions): Resolved {
  if (!o?.queue?.client || !o.queue.queueUrl)
    throw new ConfigError('runSweepWorker needs queue: { client, queueUrl }');
  if (!o.store?.client || !o.store.bucket)
    throw new ConfigError('runSweepWorker needs store: { client, bucket }');
  if (typeof o.connect !== 'function') throw new ConfigError('runSweepWorker needs connect(target)');
  const vt = o.visibilityTimeoutSeconds ?? 60;
  if (!Number.isInteger(vt) || vt < 6 || vt > 43_200)
    throw new ConfigError('visibilityTimeoutSeconds must be an integer from 6 to 43200');
  const hb = o.heartbeatSeconds ?? vt / 3;
  if (!(hb > 0) || hb > vt / 2)
    throw new ConfigError('heartbeatSeconds must be > 0 and at most half the visibility timeout');
  const maxReceives = o.maxReceives ?? 4;
  if (!Number.isInteger(maxReceives) || maxReceives < 1)
    throw new ConfigError('maxReceives must be an integer >= 1');
  const worker = o.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const logger = o.logger ?? silentLogger;
  return {
    o,
    worker,
    vt,
    hb,
    maxReceives,
    retryDelay: o.retryDelaySeconds ?? ((n) => Math.min(5 * 2 ** Math.max(0, n - 1), 300)),
    logger,
    emit: (e) => {
      try {
        o.onEvent?.(e);
      } catch {
        // a throwing listener must not break the worker
      }
    },
  };
}

/** A message from SQS (ReceiveMessage) or a Lambda SQS event record. */
export interface SweepMessage {
  /** Message body (the target JSON). */
  body: string;
  /** Receipt handle, for heartbeats and delete. */
  receiptHandle: string;
  /** ApproximateReceiveCount (1 on the first delivery). */
  receiveCount: number;
}

/** Holds the visibility lease of one message while its target runs. */
class Lease {
  until: number;
  readonly lost = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #onRenew: ((until: number) => void) | undefined;
  constructor(
    readonly r: Resolved,
    readonly msg: SweepMessage,
    receivedAt: number,
  ) {
    this.until = receivedAt + r.vt * 1000;
  }
  /** Margin kept before the lease end: nothing is finalized inside it. */
  get margin(): number {
    return Math.min(5000, (this.r.vt * 1000) / 6);
  }
  valid(now = Date.now()): boolean {
    return !this.lost.signal.aborted && now < this.until - this.margin;
  }
  onRenew(fn: (until: number) => void): void {
    this.#onRenew = fn;
  }
  start(acquisitionId: string): void {
    const tick = async () => {
      const t0 = Date.now();
      if (t0 >= this.until - this.margin) {
        this.#lose(acquisitionId, 'the visibility lease ran out without a successful heartbeat');
        return;
      }
      try {
        await changeVisibility(this.r.o.queue, this.msg.receiptHandle, this.r.vt);
        this.until = t0 + this.r.vt * 1000;
        this.#onRenew?.(this.until);
      } catch (e) {
        if (isLeaseGone(e))
          this.#lose(acquisitionId, `SQS no longer holds the message for us: ${errText(e)}`);
        else
          this.r.emit({
            type: 'error',
            worker: this.r.worker,
            operation: 'sqs:ChangeMessageVisibility',
            message: errText(e),
          });
      }
    };
    this.#timer = setInterval(() => void tick(), this.r.hb * 1000);
    this.#timer.unref?.();
  }
  #lose(acquisitionId: string, reason: string): void {
    if (this.lost.signal.aborted) return;
    this.r.emit({ type: 'lease-lost', worker: this.r.worker, acquisitionId, reason });
    this.lost.abort(new EvidenceError(`lease lost: ${reason}`));
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Parses a queue body into a target, checking that its acquisition id is the one its identity derives. */
export function parseSweepTarget(body: string): SweepTarget {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (cause) {
    throw new ValidationError('the message body is not JSON', { cause });
  }
  const p = SweepTargetSchema.safeParse(raw);
  if (!p.success) {
    throw new ValidationError('the message is not a sweep target', {
      issues: p.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  const t = p.data;
  const key = targetKey({
    accountId: t.cluster.accountId,
    region: t.cluster.region,
    cluster: t.cluster.name,
    namespace: t.namespace,
    pod: t.pod,
    container: t.container,
  });
  if (key !== t.key)
    throw new ValidationError(`the message key ${JSON.stringify(t.key)} does not match its fields`);
  if (acquisitionIdFor(t.sweepId, t.key) !== t.acquisitionId)
    throw new ValidationError(
      `acquisition id ${t.acquisitionId} is not the one sweep ${t.sweepId} derives for ${t.key}`,
    );
  return t;
}

async function readAttempts(
  store: SweepStore,
  keys: SweepKeys,
  acqId: string,
): Promise<{ records: AttemptRecord[]; highest: number }> {
  const listed = await listKeys(store, keys.target(acqId));
  const records: AttemptRecord[] = [];
  let highest = 0;
  for (const k of listed) {
    const m = /\/attempt-(\d{1,6})\.json$/.exec(k);
    if (!m) continue;
    const n = Number(m[1]);
    highest = Math.max(highest, n);
    try {
      const r = await getJson(store, k, AttemptRecordSchema);
      if (r && r.attempt === n && r.acquisitionId === acqId) records.push(r);
    } catch {
      // an unreadable record still uses up its number; the report names it
    }
  }
  records.sort((a, b) => a.attempt - b.attempt);
  return { records, highest };
}

/** Wraps the S3 sink: forces the attempt's bundle id and guards finalize with the lease and the commit marker. */
function attemptSink(
  inner: S3Sink,
  bundleId: string,
  guard: () => Promise<void>,
  note: string,
  log: Record<string, unknown>,
): EvidenceSink {
  return {
    kind: inner.kind,
    async open(init: BundleInit = {}): Promise<BundleWriter> {
      const w = await inner.open({ ...init, acquisitionId: bundleId });
      w.log(log);
      return new Proxy(w, {
        get(target, prop) {
          if (prop === 'finalize') {
            return async (custody: CustodyInput = {}) => {
              await guard();
              return target.finalize({ ...custody, notes: [custody.notes, note].filter(Boolean).join('\n') });
            };
          }
          const v = Reflect.get(target, prop, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
  };
}

/**
 * Handles one message end to end and says what to do with it; deletes it itself when done
 * (`finalized`, `duplicate`, `recovered`, `dead-lettered`, `superseded`). Use it from a Lambda
 * SQS handler (report `retry`, `busy` and `released` as batch item failures); {@link runSweepWorker}
 * uses it for every message it receives.
 */
export async function processSweepMessage(
  message: SweepMessage,
  options: SweepWorkerOptions,
): Promise<{ outcome: SweepOutcome; acquisitionId?: string | undefined; reason?: string | undefined }> {
  return handle(resolve(options), message, Date.now());
}

/**
 * Deletes a handled message, retrying a few times. Never throws: a message that could not be
 * deleted comes back and is then acknowledged as a duplicate of the committed target.
 */
async function ack(r: Resolved, msg: SweepMessage): Promise<void> {
  for (let i = 0; i < 4; i++) {
    try {
      await deleteMessage(r.o.queue, msg.receiptHandle);
      return;
    } catch (e) {
      if (isLeaseGone(e)) return;
      r.emit({ type: 'error', worker: r.worker, operation: 'sqs:DeleteMessage', message: errText(e) });
      await sleep(200 * 2 ** i);
    }
  }
}

async function deadLetter(
  r: Resolved,
  msg: SweepMessage,
  reason: string,
  target?: SweepTarget,
): Promise<void> {
  if (target) {
    const keys = new SweepKeys(r.o.store, target.sweepId);
    await putJson(r.o.store, keys.deadLetter(target.acquisitionId), {
      schemaVersion: FLEET_SCHEMA_VERSION,
      kind: 'eks-forensics.fleet.dead-letter',
      acquisitionId: target.acquisitionId,
      receiveCount: msg.receiveCount,
      reason,
      at: new Date().toISOString(),
    });
  }
  if (r.o.deadLetterQueue) {
    await sendOne(r.o.deadLetterQueue, msg.body.slice(0, 250_000), {
      reason,
      worker: r.worker,
      receiveCount: String(msg.receiveCount),
      ...(target ? { acquisitionId: target.acquisitionId, sweepId: target.sweepId } : {}),
    });
  }
  await ack(r, msg);
}

async function handle(
  r: Resolved,
  msg: SweepMessage,
  receivedAt: number,
): Promise<{ outcome: SweepOutcome; acquisitionId?: string; reason?: string }> {
  let target: SweepTarget;
  try {
    target = parseSweepTarget(msg.body);
  } catch (e) {
    const reason = `unreadable target message: ${errText(e)}`;
    await deadLetter(r, msg, reason);
    r.emit({
      type: 'target-done',
      worker: r.worker,
      acquisitionId: '(unreadable)',
      outcome: 'dead-lettered',
      reason,
    });
    return { outcome: 'dead-lettered', reason };
  }
  const acq = target.acquisitionId;
  const store = r.o.store;
  const keys = new SweepKeys(store, target.sweepId);
  const lease = new Lease(r, msg, receivedAt);
  lease.start(acq);
  const done = (
    outcome: SweepOutcome,
    extra: {
      attempt?: number;
      status?: 'complete' | 'partial' | 'failed';
      bytes?: number;
      reason?: string;
    } = {},
  ) => {
    r.emit({ type: 'target-done', worker: r.worker, acquisitionId: acq, outcome, ...extra });
    return { outcome, acquisitionId: acq, ...(extra.reason ? { reason: extra.reason } : {}) };
  };
  let record: AttemptRecord | undefined;
  let writing = Promise.resolve();
  try {
    // 1. committed already: acknowledge, no second bundle
    const committed = await getJson(store, keys.final(acq), FinalRecordSchema).catch(() => undefined);
    if (committed || (await exists(store, keys.final(acq)))) {
      await ack(r, msg);
      return done('duplicate', { attempt: committed?.attempt });
    }
    // 2. earlier attempts: one may still run, or may have finalized before its worker died
    const { records, highest } = await readAttempts(store, keys, acq);
    const previous: AttemptRecord['previous'] = [];
    for (const a of records) {
      if (a.state === 'running' && Date.parse(a.leaseUntil) > Date.now()) {
        const wait = Math.ceil((Date.parse(a.leaseUntil) - Date.now()) / 1000) + 1;
        await changeVisibility(r.o.queue, msg.receiptHandle, wait).catch(() => undefined);
        return done('busy', {
          attempt: a.attempt,
          reason: `attempt ${a.attempt} is held by ${a.worker} until ${a.leaseUntil}`,
        });
      }
      if (a.state === 'running') {
        const recovered = await recover(r, keys, a);
        if (recovered) {
          await ack(r, msg);
          return done('recovered', { attempt: a.attempt, status: recovered.status, bytes: recovered.bytes });
        }
        a.state = 'interrupted';
        a.finishedAt = new Date().toISOString();
        a.reasons = [
          ...(a.reasons ?? []),
          `interrupted: its worker stopped renewing the lease before ${a.leaseUntil}`,
        ];
        await putJson(store, keys.attempt(acq, a.attempt), a);
      }
      previous.push({ bundleId: a.bundleId, location: a.location, state: a.state });
    }
    // 3. a fresh attempt, created once
    const attempt = highest + 1;
    const bundleId = bundleIdFor(acq, attempt);
    const location = keys.bundleLocation(bundleId);
    record = {
      schemaVersion: FLEET_SCHEMA_VERSION,
      kind: 'eks-forensics.fleet.attempt',
      sweepId: target.sweepId,
      acquisitionId: acq,
      attempt,
      bundleId,
      location,
      state: 'running',
      worker: r.worker,
      receiveCount: msg.receiveCount,
      startedAt: new Date().toISOString(),
      leaseUntil: new Date(lease.until).toISOString(),
      previous,
    };
    if (!(await putJson(store, keys.attempt(acq, attempt), record, { create: true }))) {
      await changeVisibility(r.o.queue, msg.receiptHandle, 5).catch(() => undefined);
      return done('busy', {
        attempt,
        reason: `attempt ${attempt} was created by another worker at the same time`,
      });
    }
    const rec = record;
    lease.onRenew((until) => {
      rec.leaseUntil = new Date(until).toISOString();
      if (rec.state === 'running') {
        writing = writing.then(() =>
          putJson(store, keys.attempt(acq, attempt), rec).then(
            () => undefined,
            () => undefined,
          ),
        );
      }
    });
    r.emit({
      type: 'target-started',
      worker: r.worker,
      acquisitionId: acq,
      attempt,
      bundleId,
      receiveCount: msg.receiveCount,
    });
    const signal = AbortSignal.any([lease.lost.signal, ...(r.o.signal ? [r.o.signal] : [])]);
    const report = await acquire(r, target, keys, attempt, bundleId, previous, lease, signal);
    lease.stop();
    await writing;
    const finishedAt = new Date().toISOString();
    if (report.finalized && report.manifestSha256) {
      const final: FinalRecord = {
        schemaVersion: FLEET_SCHEMA_VERSION,
        kind: 'eks-forensics.fleet.final',
        acquisitionId: acq,
        attempt,
        bundleId,
        location,
        manifestSha256: report.manifestSha256,
        status: report.status,
        bytes: report.bytes,
        at: finishedAt,
      };
      const won = await putJson(store, keys.final(acq), final, { create: true });
      Object.assign(record, {
        state: won ? 'finalized' : 'superseded',
        finishedAt,
        status: report.status,
        reasons: won
          ? report.reasons
          : [...report.reasons, 'superseded: another attempt committed this acquisition id first'],
        bytes: report.bytes,
        manifestSha256: report.manifestSha256,
      });
      await putJson(store, keys.attempt(acq, attempt), record);
      await ack(r, msg);
      return done(won ? 'finalized' : 'superseded', { attempt, status: report.status, bytes: report.bytes });
    }
    // not finalized: released (worker stopping), lease lost, or a failure to retry / give up
    const stopping = r.o.signal?.aborted === true;
    const lost = lease.lost.signal.aborted;
    const reasons = [...report.reasons];
    Object.assign(record, {
      state: lost ? 'lease-lost' : stopping ? 'interrupted' : 'failed',
      finishedAt,
      reasons,
      bytes: report.bytes,
    });
    await putJson(store, keys.attempt(acq, attempt), record);
    const reason = reasons.join('; ').slice(0, 2000) || 'the bundle was not finalized';
    if (lost) return done('busy', { attempt, reason });
    if (stopping) {
      await changeVisibility(r.o.queue, msg.receiptHandle, 0).catch(() => undefined);
      return done('released', { attempt, reason });
    }
    return await failOrRetry(r, msg, target, reason, attempt);
  } catch (e) {
    const reason = errText(e);
    lease.stop();
    await writing;
    if (record?.state === 'running') {
      // the attempt ended here: say so, or the next delivery would wait for its lease to run out
      Object.assign(record, {
        state: r.o.signal?.aborted ? 'interrupted' : 'failed',
        finishedAt: new Date().toISOString(),
        reasons: [...(record.reasons ?? []), reason],
      });
      await putJson(store, keys.attempt(acq, record.attempt), record).catch(() => undefined);
    }
    if (r.o.signal?.aborted) {
      await changeVisibility(r.o.queue, msg.receiptHandle, 0).catch(() => undefined);
      return done('released', { reason });
    }
    r.emit({ type: 'error', worker: r.worker, operation: `target ${acq}`, message: reason });
    return await failOrRetry(r, msg, target, reason).catch((e2: unknown) =>
      done('retry', { reason: `${reason}; ${errText(e2)}` }),
    );
  } finally {
    lease.stop();
  }

  async function failOrRetry(
    r: Resolved,
    msg: SweepMessage,
    t: SweepTarget,
    reason: string,
    attempt?: number,
  ) {
    if (msg.receiveCount >= r.maxReceives) {
      const why = `gave up after ${msg.receiveCount} receives: ${reason}`;
      await deadLetter(r, msg, why, t);
      return done('dead-lettered', { ...(attempt ? { attempt } : {}), reason: why });
    }
    await changeVisibility(r.o.queue, msg.receiptHandle, r.retryDelay(msg.receiveCount)).catch(
      () => undefined,
    );
    return done('retry', { ...(attempt ? { attempt } : {}), reason });
  }
}

/** A dead worker's attempt whose bundle is finalized and verifies: commit it instead of acquiring again. */
async function recover(r: Resolved, keys: SweepKeys, a: AttemptRecord): Promise<FinalRecord | undefined> {
  const store = r.o.store;
  const prefix = keys.bundlePrefix(a.bundleId);
  if (!(await exists(store, prefix + BUNDLE_FILES.manifest))) return undefined;
  // The worker died before committing the bundle's hash. With a signing key configured the bundle
  // must verify on that key's public half (an anchor the bundle cannot forge); without one recovery
  // rests on internal consistency (and the bucket's Object Lock when it has it), and says so.
  const key = r.o.collector?.signingKey;
  const v = await verifyEvidence(
    { s3: { client: store.client, bucket: store.bucket, prefix } },
    key !== undefined ? { publicKey: createPublicKey(key) } : { acceptUnanchored: true },
  );
  if (!v.ok || !v.manifestSha256) return undefined;
  if (key !== undefined && !v.anchors.includes('signature')) return undefined;
  const manifest = await getJson(store, prefix + BUNDLE_FILES.manifest, ManifestSchema, {
    manifest: true,
  }).catch(() => undefined);
  if (!manifest) return undefined;
  const bytes = manifest.artifacts.reduce((n, x) => n + (x.bytes ?? 0), 0);
  // the collector's verdict died with the worker; the manifest gives a lower bound
  const status: FinalRecord['status'] = manifest.artifacts.every((x) => x.status === 'complete')
    ? 'complete'
    : 'partial';
  const final: FinalRecord = {
    schemaVersion: FLEET_SCHEMA_VERSION,
    kind: 'eks-forensics.fleet.final',
    acquisitionId: a.acquisitionId,
    attempt: a.attempt,
    bundleId: a.bundleId,
    location: a.location,
    manifestSha256: v.manifestSha256,
    status,
    bytes,
    at: new Date().toISOString(),
    recovered: true,
    recoveredAnchors: [...v.anchors],
  };
  const won = await putJson(store, keys.final(a.acquisitionId), final, { create: true });
  Object.assign(a, {
    state: 'finalized',
    finishedAt: final.at,
    status,
    bytes,
    manifestSha256: v.manifestSha256,
    reasons: [
      ...(a.reasons ?? []),
      `recovered by ${r.worker}: finalized and verified after its worker stopped`,
    ],
  });
  await putJson(store, keys.attempt(a.acquisitionId, a.attempt), a);
  return won ? final : ((await getJson(store, keys.final(a.acquisitionId), FinalRecordSchema)) ?? final);
}

async function acquire(
  r: Resolved,
  t: SweepTarget,
  keys: SweepKeys,
  attempt: number,
  bundleId: string,
  previous: AttemptRecord['previous'],
  lease: Lease,
  signal: AbortSignal,
): Promise<TargetReport> {
  const store = r.o.store;
  const kube = await r.o.connect(t, signal);
  const inner = new S3Sink({
    ...(r.o.sink ?? {}),
    client: store.client,
    bucket: store.bucket,
    prefix: keys.bundles,
  });
  const fleet = {
    sweepId: t.sweepId,
    acquisitionId: t.acquisitionId,
    target: t.key,
    attempt,
    worker: r.worker,
    previousAttempts: previous,
  };
  const guard = async () => {
    if (!lease.valid())
      throw new EvidenceError(
        'not finalized: this worker no longer holds the target (lease lost or about to expire); another attempt will run',
      );
    if (await exists(store, keys.final(t.acquisitionId)))
      throw new EvidenceError('not finalized: another attempt already committed this acquisition id');
  };
  const sink = attemptSink(inner, bundleId, guard, `fleet: ${JSON.stringify(fleet)}`, {
    event: 'fleet-attempt',
    ...fleet,
  });
  const collector = new ArtifactCollector({
    ...(r.o.collector ?? {}),
    sink,
    profiles: r.o.profiles ?? ['triage'],
    concurrency: 1,
    signal,
    logger: r.o.collector?.logger ?? r.logger,
    ...(t.caseId ? { caseId: t.caseId } : {}),
    cluster: {
      name: t.cluster.name,
      arn: t.cluster.arn,
      region: t.cluster.region,
      accountId: t.cluster.accountId,
    },
  });
  const rep = await collector.acquire({ kube, namespace: t.namespace, pod: t.pod, container: t.container });
  const one = rep.targets[0];
  if (!one) throw new EvidenceError('the collector returned no target report');
  return one;
}

/**
 * Runs a sweep worker until `signal` fires (or the queue stays empty for `idleExitSeconds`, or
 * `maxMessages` were handled): receives targets, holds each with visibility heartbeats, acquires
 * it into the S3 sink under `<acquisitionId>.a<attempt>`, commits `final.json` (create-once) and
 * only then deletes the message. Never finalizes a bundle without holding the lease.
 *
 * @throws {ConfigError} for bad options. Queue and store failures are retried with backoff and
 * reported as `error` events, never thrown.
 */
export async function runSweepWorker(options: SweepWorkerOptions): Promise<SweepWorkerSummary> {
  const r = resolve(options);
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new ConfigError('concurrency must be an integer from 1 to 64');
  const wait = options.waitTimeSeconds ?? 10;
  const summary: SweepWorkerSummary = {
    received: 0,
    outcomes: {
      finalized: 0,
      duplicate: 0,
      recovered: 0,
      busy: 0,
      retry: 0,
      'dead-lettered': 0,
      released: 0,
      superseded: 0,
    },
    bytes: 0,
  };
  const inflight = new Set<Promise<void>>();
  const signal = options.signal;
  let idleSince = Date.now();
  let backoff = 0;
  r.emit({ type: 'started', worker: r.worker });
  const emit = r.emit;
  r.emit = (e) => {
    if (e.type === 'target-done') {
      summary.outcomes[e.outcome]++;
      if ((e.outcome === 'finalized' || e.outcome === 'recovered') && e.bytes) summary.bytes += e.bytes;
    }
    emit(e);
  };
  while (!signal?.aborted) {
    if (options.maxMessages !== undefined && summary.received >= options.maxMessages) break;
    if (inflight.size >= concurrency) {
      await Promise.race(inflight);
      continue;
    }
    if (
      options.idleExitSeconds !== undefined &&
      inflight.size === 0 &&
      Date.now() - idleSince > options.idleExitSeconds * 1000
    )
      break;
    let msgs: InMessage[];
    try {
      const room = concurrency - inflight.size;
      const max =
        options.maxMessages === undefined ? room : Math.min(room, options.maxMessages - summary.received);
      msgs = await receive(options.queue, max, inflight.size > 0 ? Math.min(wait, 1) : wait, r.vt, signal);
      backoff = 0;
    } catch (e) {
      if (signal?.aborted) break;
      backoff = Math.min(backoff ? backoff * 2 : 500, 30_000);
      r.emit({ type: 'error', worker: r.worker, operation: 'sqs:ReceiveMessage', message: errText(e) });
      await sleep(backoff * (0.5 + Math.random() / 2), signal).catch(() => undefined);
      continue;
    }
    const now = Date.now();
    if (msgs.length > 0 || inflight.size > 0) idleSince = now;
    for (const m of msgs) {
      summary.received++;
      const p: Promise<void> = handle(r, m, now)
        .then(() => undefined)
        .catch((e: unknown) => {
          r.emit({ type: 'error', worker: r.worker, operation: 'handle message', message: errText(e) });
        })
        .finally(() => {
          inflight.delete(p);
          idleSince = Date.now();
        });
      inflight.add(p);
    }
  }
  await Promise.allSettled([...inflight]);
  r.emit({ type: 'stopped', worker: r.worker, summary });
  return summary;
}

/** Options of {@link catalogConnector}. */
export interface CatalogConnectorOptions {
  /** Connection options per cluster (endpoint override, tunnel agent, inside VPC). */
  connect?: ((cluster: SweepCluster) => ConnectOptions | undefined) | undefined;
}

/**
 * A {@link SweepConnector} that reaches clusters through a {@link eks-forensics!ClusterCatalog} (EKS tokens
 * for the cluster's region and role), one client per cluster ARN. The catalog must know the
 * accounts (roles) the plan was made with.
 */
export function catalogConnector(
  catalog: Pick<ClusterCatalog, 'connect'>,
  options: CatalogConnectorOptions = {},
): SweepConnector {
  const clients = new Map<string, Promise<CollectorKube>>();
  return (t) => {
    const c = t.cluster;
    let p = clients.get(c.arn);
    if (!p) {
      const info: ClusterInfo = {
        name: c.name,
        arn: c.arn,
        accountId: c.accountId,
        region: c.region,
        partition: c.partition ?? 'aws',
        endpoint: c.endpoint,
        certificateAuthority: c.certificateAuthority,
        id: c.id,
        roleArn: c.roleArn,
        endpointAccess: { public: !c.privateOnly, private: c.privateOnly === true, publicCidrs: [] },
        loggingEnabled: [],
        tags: {},
        reachability: {
          kind: c.privateOnly ? 'private-only' : 'public',
          reason: 'as recorded in the sweep plan',
        },
      };
      p = catalog.connect(info, options.connect?.(c) ?? {});
      p.catch(() => clients.delete(c.arn));
      clients.set(c.arn, p);
    }
    return p;
  };
}
