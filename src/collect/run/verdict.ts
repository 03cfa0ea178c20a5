/**
 * The one decision on exec evidence: whether what an exec produced is `complete`, `truncated` or
 * `failed`. A {@link Verdict} can only be made here (the brand is module-private), and the target
 * store takes a Verdict — never a bare status — for anything that came from an exec, so no phase
 * can write `complete` any other way.
 */
import type { ArtifactRecord } from '../../evidence/index.js';
import { type Reason, type ReasonCode, reason } from './reasons.js';

const BRAND: unique symbol = Symbol('eksf.verdict');

/** Status of exec evidence. */
export type VerdictStatus = 'complete' | 'truncated' | 'failed';

/** The decision on one exec's evidence (or on evidence derived from several). Made only in this module. */
export interface Verdict {
  readonly [BRAND]: true;
  /** The status to record. */
  readonly status: VerdictStatus;
  /** Why it is not complete (one per cause). */
  readonly reasons: readonly Reason[];
  /** Exit code of the exec, when there was one exec. */
  readonly exitCode: number | null;
}

/** What the receiver (tar parser, frame reader, listing parser…) concluded about the bytes. */
export interface ReceiverFinding {
  /** `truncated`: the receiver stopped at a budget; `failed`: the bytes are not what was asked for. */
  status: 'truncated' | 'failed';
  /** Why. */
  code: ReasonCode;
  /** One line. */
  text: string;
}

/** Everything known about one exec when it is over. */
export interface ExecFacts {
  /** Exit code, null when no status arrived. */
  exitCode: number | null;
  /** Exec error (no status, timeout, protocol, refused). */
  error?: string | undefined;
  /** `EKSF_…` code of the error. */
  errorCode?: string | undefined;
  /** Who ended the exec early: the no-progress watchdog, or the receiver that wanted no more. */
  stoppedBy?: 'watchdog' | 'receiver' | undefined;
  /** The consumer of stdout threw. */
  consumerError?: string | undefined;
  /** Bytes of stdout received. */
  bytes: number;
  /** Set when the collector's cap or budget cut the bytes (the exec was then stopped on purpose). */
  cut?: { code: 'cap' | 'budget'; text: string } | undefined;
  /** The receiver's findings. */
  receiver?: readonly ReceiverFinding[] | undefined;
  /** Bytes that were asked for, when known up front (a frame of `take` bytes). */
  expectedBytes?: number | undefined;
  /** Exit codes that mean success besides 0 (none by default). */
  okExitCodes?: readonly number[] | undefined;
}

function make(status: VerdictStatus, reasons: Reason[], exitCode: number | null): Verdict {
  return Object.freeze({ [BRAND]: true as const, status, reasons: Object.freeze(reasons), exitCode });
}

/**
 * Decides the status of exec evidence. `complete` only when the exec exited 0 (or an ok code) with
 * a status, nothing stopped it (watchdog, timeout, abort, receiver), its stream ended cleanly, the
 * receiver found nothing wrong and the byte count matches what was asked.
 */
export function decideExec(f: ExecFacts, artifact?: string): Verdict {
  const out: Reason[] = [];
  let status: VerdictStatus = 'complete';
  const worse = (s: VerdictStatus, r: Reason) => {
    if (s === 'failed' || status === 'complete') status = s;
    out.push(r);
  };
  const some = f.bytes > 0;
  for (const r of f.receiver ?? []) worse(r.status, reason(r.code, r.text, artifact));
  if (f.cut) {
    worse('truncated', reason(f.cut.code, f.cut.text, artifact));
  } else if (f.stoppedBy === 'receiver' && !(f.receiver ?? []).length) {
    worse(
      some ? 'truncated' : 'failed',
      reason('exec-error', 'the receiver stopped reading early', artifact),
    );
  }
  const endedByUs = f.cut !== undefined || (f.stoppedBy === 'receiver' && (f.receiver ?? []).length > 0);
  if (f.error && !endedByUs) {
    const code: ReasonCode =
      f.stoppedBy === 'watchdog'
        ? 'watchdog'
        : f.errorCode === 'EKSF_TIMEOUT'
          ? 'timeout'
          : f.errorCode === 'EKSF_ABORTED'
            ? 'aborted'
            : 'exec-error';
    const what = some ? `after ${f.bytes} bytes` : 'before any output';
    worse(some ? 'truncated' : 'failed', reason(code, `exec ended ${what}: ${f.error}`, artifact));
  } else if (!f.error && f.exitCode === null && !endedByUs) {
    worse(some ? 'truncated' : 'failed', reason('exec-error', 'exec ended without an exit status', artifact));
  }
  if (f.consumerError)
    worse('failed', reason('stream-rejected', `receiver error: ${f.consumerError}`, artifact));
  if (f.exitCode !== null && f.exitCode !== 0 && !(f.okExitCodes ?? []).includes(f.exitCode) && !endedByUs) {
    worse(
      some ? 'truncated' : 'failed',
      reason(
        'exec-exit-code',
        `exit code ${f.exitCode}: the command reported an error, output may be incomplete`,
        artifact,
      ),
    );
  }
  if (status === 'complete' && f.expectedBytes !== undefined && f.bytes !== f.expectedBytes) {
    worse(
      f.bytes < f.expectedBytes ? 'truncated' : 'failed',
      reason('artifact-truncated', `received ${f.bytes} bytes, expected ${f.expectedBytes}`, artifact),
    );
  }
  return make(status, out, f.exitCode);
}

const RANK: Record<VerdictStatus, number> = { complete: 0, truncated: 1, failed: 2 };

/**
 * The verdict of evidence derived from `inputs` (bodyfile, findings, indexes): the worst input
 * status, with every input's reasons. No inputs means nothing to inherit from: complete.
 */
export function derivedVerdict(inputs: readonly Verdict[]): Verdict {
  let status: VerdictStatus = 'complete';
  const out: Reason[] = [];
  for (const v of inputs) {
    if (RANK[v.status] > RANK[status]) status = v.status;
    for (const r of v.reasons) if (!out.some((x) => x.code === r.code && x.text === r.text)) out.push(r);
  }
  return make(status, out, null);
}

/** Downgrades a verdict with an extra problem found while deriving (e.g. a per-root truncation). */
export function withProblem(v: Verdict, status: 'truncated' | 'failed', r: Reason): Verdict {
  const s = RANK[status] > RANK[v.status] ? status : v.status;
  return make(s, [...v.reasons, r], v.exitCode);
}

/** A verdict that is only a problem: evidence that is not there (a root never listed, rows not read). */
export function problemVerdict(status: 'truncated' | 'failed', r: Reason): Verdict {
  return make(status, [r], null);
}

/** The verdict a stored record stands for (for evidence derived from stored artifacts). */
export function verdictOfRecord(rec: ArtifactRecord): Verdict {
  if (rec.status === 'complete') return make('complete', [], rec.exitCode ?? null);
  const status: VerdictStatus = rec.status === 'truncated' ? 'truncated' : 'failed';
  const code: ReasonCode = status === 'truncated' ? 'artifact-truncated' : 'artifact-failed';
  return make(
    status,
    [reason(code, `${rec.path}: ${rec.reason ?? rec.status}`, rec.path)],
    rec.exitCode ?? null,
  );
}

/** One line for a manifest `reason` field. */
export function verdictText(v: Verdict): string | undefined {
  if (v.status === 'complete') return undefined;
  return v.reasons.map((r) => r.text).join('; ') || v.status;
}

/** Whether a value is a Verdict made by this module. */
export function isVerdict(v: unknown): v is Verdict {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
}
