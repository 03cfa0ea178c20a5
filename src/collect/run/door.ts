/**
 * The one door for exec evidence. Every exec of a target run goes through {@link Door}: it runs
 * the command (in its own process group where the target allows), awaits both the exec outcome
 * and the storage, and has {@link decideExec} decide the status. A phase cannot record exec bytes
 * any other way: the store only takes a Verdict for them, and only the door makes one from an exec.
 */
import type { Readable } from 'node:stream';
import type { ArtifactMeta, ArtifactRecord } from '../../evidence/index.js';
import type { Budget } from '../budget.js';
import { tee } from '../budget.js';
import { CLEANUP_SCRIPT, type ExecOutcome, runExec, wrapArgv } from '../exec-runner.js';
import type { CollectLimits, CollectorKube } from '../types.js';
import { type ReasonList, reason } from './reasons.js';
import { CountingLimiter, type TargetStore } from './store.js';
import { decideExec, derivedVerdict, type ExecFacts, type ReceiverFinding, type Verdict } from './verdict.js';
import type { TargetView } from './view.js';

/** One exec. */
export interface ExecSpec {
  /** Label in the acquisition log. */
  step: string;
  /** argv (never a string to be split or interpolated). */
  argv: readonly string[];
  /** Sent on stdin, then closed. */
  stdin?: string | undefined;
  /** Timeout (default limits.execTimeoutMs). */
  timeoutMs?: number | undefined;
  /** Run in the collector's process group wrapper (default: when a shell is known). */
  wrap?: boolean | undefined;
  /** Exit codes that also mean success. */
  okExitCodes?: readonly number[] | undefined;
}

/** What a receiver reports after reading (a parsed side of the stream). */
export interface Received<T> {
  value: T;
  findings?: ReceiverFinding[] | undefined;
  expectedBytes?: number | undefined;
}

/** Result of a door call. */
export interface DoorResult<T> {
  verdict: Verdict;
  outcome: ExecOutcome<unknown>;
  value: T | undefined;
}

/** What the door needs from the run. */
export interface DoorOptions {
  kube: CollectorKube;
  view: () => TargetView;
  shell: () => string | undefined;
  limits: CollectLimits;
  signal: AbortSignal;
  budget: Budget;
  store: TargetStore;
  reasons: ReasonList;
  log: (e: Record<string, unknown>) => void;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function ended(s: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (s.readableEnded || s.destroyed) return resolve();
    s.once('end', resolve);
    s.once('close', resolve);
    s.once('error', () => resolve());
  });
}

/** The door of one target run. */
export class Door {
  readonly #o: DoorOptions;
  #cleanupNoted = false;

  constructor(o: DoorOptions) {
    this.#o = o;
  }

  async #run<T>(spec: ExecSpec, consume: (s: Readable) => Promise<T>): Promise<ExecOutcome<T>> {
    const o = this.#o;
    const v = o.view();
    const shell = o.shell();
    const wrap = (spec.wrap ?? true) && shell !== undefined;
    const argv = wrap ? wrapArgv(shell as string, spec.argv) : spec.argv;
    const outcome = await runExec({
      kube: o.kube,
      namespace: v.namespace,
      pod: v.pod,
      container: v.execContainer,
      argv,
      stdin: spec.stdin,
      timeoutMs: spec.timeoutMs ?? o.limits.execTimeoutMs,
      noProgressMs: o.limits.noProgressMs,
      signal: o.signal,
      consume,
      log: (e) => o.log(e),
      step: spec.step,
      wrapped: wrap,
    });
    return outcome;
  }

  #facts(outcome: ExecOutcome<unknown>, spec: ExecSpec, extra: Partial<ExecFacts>): ExecFacts {
    return {
      exitCode: outcome.exitCode,
      error: outcome.error,
      errorCode: outcome.errorCode,
      stoppedBy: outcome.stoppedBy,
      consumerError: outcome.consumerError,
      bytes: outcome.stdoutBytes,
      okExitCodes: spec.okExitCodes,
      ...extra,
    };
  }

  /** Ends what an exec that did not finish cleanly may have left running in the target. */
  async #cleanup(outcome: ExecOutcome<unknown>, verdict: Verdict): Promise<void> {
    if (verdict.status === 'complete' && outcome.exitCode === 0) return;
    const o = this.#o;
    const shell = o.shell();
    const pgid = outcome.group?.pgid;
    const stopped = outcome.stoppedBy !== undefined || outcome.error !== undefined || outcome.exitCode !== 0;
    if (!stopped || !outcome.wrapped) return;
    if (!shell || pgid === undefined || !Number.isInteger(pgid) || pgid <= 1) {
      if (!this.#cleanupNoted) {
        this.#cleanupNoted = true;
        o.reasons.add(
          reason(
            'cleanup-not-guaranteed',
            outcome.group?.pid !== undefined
              ? `an exec ended early and the target has no setsid: processes it started may still run in the container`
              : `an exec ended early without reporting its process group: processes it started may still run in the container`,
          ),
        );
      }
      return;
    }
    if (o.signal.aborted) {
      o.reasons.add(
        reason(
          'cleanup-not-guaranteed',
          `acquisition aborted: process group ${pgid} in the target was not ended`,
        ),
      );
      return;
    }
    const v = o.view();
    const res = await runExec({
      kube: o.kube,
      namespace: v.namespace,
      pod: v.pod,
      container: v.execContainer,
      argv: [shell, '-c', CLEANUP_SCRIPT, 'eksf-cleanup', String(pgid)],
      timeoutMs: Math.min(30_000, o.limits.execTimeoutMs),
      noProgressMs: Math.min(10_000, o.limits.noProgressMs * 4),
      signal: o.signal,
      consume: async (s) => {
        const parts: Buffer[] = [];
        for await (const c of s) if (parts.length < 4) parts.push(c as Buffer);
        return Buffer.concat(parts).toString('latin1').trim();
      },
      log: (e) => o.log(e),
      step: 'cleanup',
    });
    const left = res.value !== undefined && /^\d+$/.test(res.value) ? Number(res.value) : undefined;
    if (res.exitCode !== 0 || left === undefined || left > 0) {
      o.reasons.add(
        reason(
          'cleanup-not-guaranteed',
          `process group ${pgid} of exec ${outcome.argv.slice(4, 5).join('') || outcome.argv[0]} could not be ended (${left ?? 'unknown'} processes left${res.error ? `; ${res.error}` : ''})`,
        ),
      );
    }
    o.log({ event: 'cleanup', pgid, left, exitCode: res.exitCode, error: res.error });
  }

  /**
   * Runs `spec` and stores its stdout at `path` (raw, as received). With `receive`, a second copy
   * of the stream is parsed (tar, listing…) and the receiver's findings join the decision; the
   * receiver may call `stop()` to end both copies when it wants no more.
   */
  async toArtifact<T = undefined>(
    spec: ExecSpec & {
      path: string;
      meta: ArtifactMeta;
      maxBytes?: number | undefined;
      receive?: ((parse: Readable, stop: () => void) => Promise<Received<T>>) | undefined;
    },
  ): Promise<DoorResult<T> & { record: ArtifactRecord }> {
    const o = this.#o;
    const cap = Math.min(spec.maxBytes ?? o.limits.maxArtifactBytes, o.limits.maxArtifactBytes);
    const verdict = deferred<Verdict>();
    let recP: Promise<ArtifactRecord> | undefined;
    let lim: CountingLimiter | undefined;
    let received: Received<T> | undefined;
    const outcome = await this.#run(spec, async (stdout) => {
      const l = new CountingLimiter(cap, o.budget);
      lim = l;
      stdout.on('error', () => l.end());
      stdout.pipe(l);
      let storeSide: Readable = l;
      let parseSide: Readable | undefined;
      let stop = () => {};
      if (spec.receive) [storeSide, parseSide, stop] = tee(l);
      recP = o.store.fromExec(
        spec.path,
        storeSide,
        { ...spec.meta, argv: spec.meta.argv ?? spec.argv },
        verdict.promise,
      );
      if (spec.receive && parseSide) {
        const side = parseSide;
        try {
          received = await spec.receive(side, stop);
        } finally {
          // a receiver that returned (or threw) early must not hold the stored copy back
          if (!side.readableEnded) side.destroy();
        }
      } else await ended(l);
      if (l.stopped) stdout.unpipe(l);
    });
    const extra: Partial<ExecFacts> = {
      ...(lim?.stopped ? { cut: lim.stopped } : {}),
      ...(received?.findings?.length ? { receiver: received.findings } : {}),
      ...(received?.expectedBytes !== undefined ? { expectedBytes: received.expectedBytes } : {}),
    };
    const v = decideExec(this.#facts(outcome, spec, extra), spec.path);
    verdict.resolve(v);
    const record = recP
      ? await recP
      : await o.store.record(spec.path, 'failed', outcome.error ?? 'exec produced no stream', {
          ...spec.meta,
          argv: spec.argv,
        });
    await this.#cleanup(outcome, v);
    return { record, verdict: v, outcome, value: received?.value };
  }

  /** Runs `spec` and keeps at most `maxBytes` of stdout in memory: the one capped read. */
  async capture(spec: ExecSpec & { maxBytes: number }): Promise<DoorResult<Buffer> & { bytes: Buffer }> {
    let cut: ExecFacts['cut'];
    const outcome = await this.#run(spec, async (s) => {
      const parts: Buffer[] = [];
      let n = 0;
      for await (const c of s) {
        const b = c as Buffer;
        if (n + b.length > spec.maxBytes) {
          parts.push(Buffer.from(b.subarray(0, spec.maxBytes - n)));
          n = spec.maxBytes;
          cut = { code: 'cap', text: `output cap of ${spec.maxBytes} bytes reached` };
          break;
        }
        parts.push(Buffer.from(b));
        n += b.length;
      }
      return Buffer.concat(parts);
    });
    const v = decideExec(this.#facts(outcome, spec, cut ? { cut } : {}));
    await this.#cleanup(outcome, v);
    const bytes = outcome.value ?? Buffer.alloc(0);
    return { verdict: v, outcome, value: bytes, bytes };
  }

  /**
   * Runs a framed or otherwise multi-artifact stream: `consume` reads it and stores what it finds
   * (each frame with its own verdict from {@link frameVerdict}); the returned verdict covers the
   * whole exec, for what is derived from it.
   */
  async stream<T>(
    spec: ExecSpec,
    consume: (s: Readable, exec: Promise<Verdict>) => Promise<Received<T>>,
  ): Promise<DoorResult<T>> {
    let received: Received<T> | undefined;
    const exec = deferred<Verdict>();
    const outcome = await this.#run(spec, async (s) => {
      received = await consume(s, exec.promise);
      return received.value;
    });
    const v = decideExec(
      this.#facts(outcome, spec, received?.findings?.length ? { receiver: received.findings } : {}),
    );
    exec.resolve(v);
    await this.#cleanup(outcome, v);
    return { verdict: v, outcome, value: received?.value };
  }
}

/** A frame's verdict joined with its exec's, once the exec is over. */
export function afterExec(frame: Verdict, exec: Promise<Verdict>): Promise<Verdict> {
  return exec.then((e) => derivedVerdict([frame, e]));
}

/**
 * The verdict of one frame of a framed stream: the frame's own exit code (from its unforgeable
 * end marker), its byte count against what was asked, and whether the receiver cut it. A frame
 * that never saw its end marker is decided like an exec without a status.
 */
export function frameVerdict(
  f: {
    rc: number | null | undefined;
    closed: boolean;
    bytes: number;
    expectedBytes?: number | undefined;
    cut?: ExecFacts['cut'];
    findings?: ReceiverFinding[] | undefined;
  },
  artifact?: string,
): Verdict {
  return decideExec(
    {
      exitCode: f.closed ? (f.rc ?? null) : null,
      ...(f.closed ? {} : { error: 'the stream ended inside this frame' }),
      bytes: f.bytes,
      cut: f.cut,
      receiver: f.findings,
      expectedBytes: f.expectedBytes,
    },
    artifact,
  );
}
