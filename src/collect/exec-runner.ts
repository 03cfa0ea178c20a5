/**
 * One exec with a timeout, a no-progress watchdog, a bounded stderr excerpt and a log line.
 */
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { isEksForensicsError, TimeoutError } from '../errors.js';
import type { ExecSession } from '../kube/index.js';
import { redactSecrets } from '../util/index.js';
import type { CollectorKube } from './types.js';

/** Bytes of stderr kept for the log. */
export const STDERR_EXCERPT_BYTES = 2048;

/** Outcome of {@link runExec}. */
export interface ExecOutcome<T> {
  /** argv as sent. */
  argv: readonly string[];
  /** Exit code (null when the command did not finish normally). */
  exitCode: number | null;
  /** Error message when the exec failed, was cancelled or broke. */
  error?: string | undefined;
  /** Error code (`EKSF_…`) when there was an error. */
  errorCode?: string | undefined;
  /** Whether the exec could not start because the executable does not exist. */
  notFound: boolean;
  /** Stdout bytes read. */
  stdoutBytes: number;
  /** Stderr bytes seen. */
  stderrBytes: number;
  /** First bytes of stderr (redacted). */
  stderr: string;
  /** ISO start. */
  startedAt: string;
  /** ISO end. */
  finishedAt: string;
  /** What the consumer returned (undefined when it threw). */
  value: T | undefined;
  /** What the consumer threw. */
  consumerError?: string | undefined;
  /** Who ended the exec early: the no-progress watchdog, or the consumer that wanted no more. */
  stoppedBy?: 'watchdog' | 'receiver' | undefined;
  /** Whether argv ran under the process-group wrapper. */
  wrapped?: boolean | undefined;
  /** With `wrapped`: the process group (session) the command runs in, or only its PID. */
  group?: { pgid?: number | undefined; pid?: number | undefined } | undefined;
}

/** Options of {@link runExec}. */
export interface RunExecOptions<T> {
  kube: CollectorKube;
  namespace: string;
  pod: string;
  container: string;
  argv: readonly string[];
  /** Sent on stdin, then stdin is closed. */
  stdin?: string | Uint8Array | undefined;
  timeoutMs: number;
  noProgressMs: number;
  signal: AbortSignal;
  /** Reads stdout. When it returns before stdout ended, the exec is cancelled (nothing more is wanted). */
  consume: (stdout: Readable) => Promise<T>;
  /** Receives the log line. */
  log: (event: Record<string, unknown>) => void;
  step: string;
  /** argv runs under {@link wrapArgv}: the first stderr line names its process group. */
  wrapped?: boolean | undefined;
}

/**
 * Runs `argv` in its own session and process group when the target has `setsid` and the shell is
 * not already a group leader, so that the collector can end everything it started
 * (`kill -9 -PGID`). The first stderr line says which: `eksf-pgid <n>` or `eksf-pid <n>`. Nothing is
 * interpolated: argv stays positional.
 */
export const RUN_SCRIPT = [
  'S=$1; shift',
  // resolve argv[0] through PATH as a direct exec would (a shell may prefer its own applets)
  'c=$1; case $c in */*) ;; *) o=$IFS; IFS=:; for d in $PATH; do if [ -f "$d/$c" ] && [ -x "$d/$c" ]; then shift; set -- "$d/$c" "$@"; break; fi; done; IFS=$o;; esac',
  'g=; read -r _ _ _ _ g _ </proc/self/stat 2>/dev/null',
  'if [ -n "$g" ] && [ "$g" != "$$" ] && command -v setsid >/dev/null 2>&1; then',
  `  exec setsid "$S" -c 'printf "eksf-pgid %s\\n" "$$" >&2; exec "$@"' eksf-run "$@"`,
  'fi',
  'printf "eksf-pid %s\\n" "$$" >&2',
  'exec "$@"',
].join('\n');

/** argv that runs `argv` through {@link RUN_SCRIPT} with `shell`. */
export function wrapArgv(shell: string, argv: readonly string[]): string[] {
  return [shell, '-c', RUN_SCRIPT, 'eksf-run', shell, ...argv];
}

/**
 * Ends a process group started under {@link RUN_SCRIPT} and counts what is left of it (zombies,
 * which the container's init may never reap, do not count). Positional argument: the PGID.
 */
export const CLEANUP_SCRIPT = [
  'kill -9 -"$1" 2>/dev/null',
  'c() { n=0; for p in /proc/[0-9]*; do s=; g=; read -r _ _ s _ g _ <"$p/stat" 2>/dev/null; [ "$g" = "$1" ] && [ "$s" != Z ] && n=$((n+1)); done; }',
  'for i in 1 2 3 4 5 6 7 8 9 10; do c "$1"; [ "$n" = 0 ] && break; kill -9 -"$1" 2>/dev/null; sleep 0.1 2>/dev/null || sleep 1; done',
  'printf "%s\\n" "$n"',
].join('\n');

const GROUP_LINE = /^eksf-(pgid|pid) (\d{1,10})\n/;

class ProgressTap extends Transform {
  last = Date.now();
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.last = Date.now();
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

function describe(err: unknown): { message: string; code?: string | undefined } {
  if (isEksForensicsError(err)) return { message: err.message, code: err.code };
  return { message: err instanceof Error ? err.message : String(err) };
}

function looksNotFound(message: string): boolean {
  return /executable file not found|no such file or directory|not found in \$PATH|exec format error|permission denied/i.test(
    message,
  );
}

/**
 * Runs one exec. Never rejects for exec problems: they are reported in the outcome (and logged).
 * Rejects only when the caller's signal aborted before the exec started.
 */
export async function runExec<T>(opts: RunExecOptions<T>): Promise<ExecOutcome<T>> {
  const startedAt = new Date();
  const outcome: ExecOutcome<T> = {
    argv: opts.argv,
    exitCode: null,
    notFound: false,
    wrapped: opts.wrapped,
    stdoutBytes: 0,
    stderrBytes: 0,
    stderr: '',
    startedAt: startedAt.toISOString(),
    finishedAt: startedAt.toISOString(),
    value: undefined,
  };
  const finish = () => {
    outcome.finishedAt = new Date().toISOString();
    opts.log({
      event: 'exec',
      step: opts.step,
      argv: opts.argv,
      exitCode: outcome.exitCode,
      error: outcome.error,
      errorCode: outcome.errorCode,
      stderr: outcome.stderr || undefined,
      stdoutBytes: outcome.stdoutBytes,
      stderrBytes: outcome.stderrBytes,
      startedAt: outcome.startedAt,
      finishedAt: outcome.finishedAt,
      ms: Date.parse(outcome.finishedAt) - startedAt.getTime(),
      consumerError: outcome.consumerError,
    });
    return outcome;
  };
  let session: ExecSession;
  try {
    session = await opts.kube.exec({
      namespace: opts.namespace,
      pod: opts.pod,
      container: opts.container,
      command: [...opts.argv],
      stdin: opts.stdin !== undefined,
      stdout: true,
      stderr: true,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
  } catch (err) {
    const d = describe(err);
    outcome.error = d.message;
    outcome.errorCode = d.code;
    outcome.notFound = looksNotFound(d.message);
    return finish();
  }
  const tap = new ProgressTap();
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  // an exec that breaks ends stdout cleanly here; the outcome carries the error
  session.stdout.on('error', () => tap.end());
  session.stdout.pipe(tap).pipe(out);
  const errParts: Buffer[] = [];
  let errKept = 0;
  let head: Buffer | undefined = opts.wrapped ? Buffer.alloc(0) : undefined;
  session.stderr.on('data', (chunk: Buffer) => {
    tap.last = Date.now();
    outcome.stderrBytes += chunk.length;
    let c = chunk;
    if (head) {
      // the wrapper's first line comes before anything the command can write
      head = Buffer.concat([head, c]);
      const m = GROUP_LINE.exec(head.subarray(0, 40).toString('latin1'));
      if (m) {
        const n = Number(m[2]);
        outcome.group = m[1] === 'pgid' ? { pgid: n, pid: n } : { pid: n };
        c = head.subarray(m[0].length);
        head = undefined;
      } else if (head.length >= 40 || head.includes(0x0a)) {
        c = head;
        head = undefined;
      } else return;
    }
    if (errKept < STDERR_EXCERPT_BYTES) {
      const part = c.subarray(0, STDERR_EXCERPT_BYTES - errKept);
      errParts.push(part);
      errKept += part.length;
    }
  });
  session.stderr.on('error', () => {});
  if (opts.stdin !== undefined && session.stdin) {
    session.stdin.on('error', () => {});
    session.stdin.write(opts.stdin);
    if (session.canCloseStdin) session.stdin.end();
  }
  const watchdog = setInterval(
    () => {
      if (out.readableLength > 0 || out.writableLength > 0) tap.last = Date.now();
      if (Date.now() - tap.last > opts.noProgressMs) {
        outcome.stoppedBy = outcome.stoppedBy ?? 'watchdog';
        session.abort(new TimeoutError(`no output for ${opts.noProgressMs} ms (no-progress watchdog)`));
      }
    },
    Math.max(50, Math.min(1000, Math.floor(opts.noProgressMs / 4))),
  );
  watchdog.unref?.();
  const resultP = session.result.then(
    (r) => ({ ok: true as const, r }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  try {
    outcome.value = await opts.consume(out);
  } catch (err) {
    outcome.consumerError = describe(err).message;
  }
  if (!out.readableEnded) {
    outcome.stoppedBy = outcome.stoppedBy ?? 'receiver';
    session.abort(new Error('receiver stopped reading (limit reached or stream rejected)'));
    out.resume();
  }
  const res = await resultP;
  clearInterval(watchdog);
  outcome.stdoutBytes = tap.bytes;
  outcome.stderr = redactSecrets(Buffer.concat(errParts).toString('utf8'));
  if (res.ok) {
    outcome.exitCode = res.r.exitCode;
  } else {
    const d = describe(res.e);
    outcome.error = d.message;
    outcome.errorCode = d.code;
    outcome.notFound = looksNotFound(d.message) && outcome.stdoutBytes === 0;
  }
  return finish();
}
