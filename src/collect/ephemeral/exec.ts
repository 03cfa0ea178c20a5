/**
 * A small bounded exec for the debug container's own commands (scan, view): stdout kept up to a
 * cap, stderr excerpt, timeout, cancellation.
 */
import { isEksForensicsError } from '../../errors.js';
import type { ExecOptions, ExecSession } from '../../kube/index.js';

/** Result of {@link captureExec}. */
export interface Captured {
  /** Exit code, `null` when the command did not finish. */
  exitCode: number | null;
  /** Stdout up to the cap. */
  stdout: Buffer;
  /** First 2 KiB of stderr. */
  stderr: string;
  /** Whether stdout reached the cap (the exec was then cancelled). */
  truncated: boolean;
  /** Why it failed, when it did. */
  error?: string | undefined;
  /** Error code, when it failed with an eks-forensics error. */
  errorCode?: string | undefined;
}

/** Runs argv in a container and keeps at most `maxBytes` of stdout. Never rejects. */
export async function captureExec(
  kube: { exec(o: ExecOptions): Promise<ExecSession> },
  o: {
    namespace: string;
    pod: string;
    container: string;
    argv: readonly string[];
    stdin?: string | undefined;
    maxBytes: number;
    timeoutMs: number;
    signal?: AbortSignal | undefined;
  },
): Promise<Captured> {
  let session: ExecSession;
  try {
    session = await kube.exec({
      namespace: o.namespace,
      pod: o.pod,
      container: o.container,
      command: [...o.argv],
      stdin: o.stdin !== undefined,
      timeoutMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (err) {
    return {
      exitCode: null,
      stdout: Buffer.alloc(0),
      stderr: '',
      truncated: false,
      error: err instanceof Error ? err.message : String(err),
      errorCode: isEksForensicsError(err) ? err.code : undefined,
    };
  }
  const parts: Buffer[] = [];
  let n = 0;
  let truncated = false;
  let stderr = '';
  session.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 2048) stderr += d.toString('utf8').slice(0, 2048 - stderr.length);
  });
  if (session.stdin) session.stdin.end(o.stdin ?? '');
  const reading = (async () => {
    for await (const c of session.stdout) {
      const b = c as Buffer;
      if (n + b.length > o.maxBytes) {
        parts.push(b.subarray(0, o.maxBytes - n));
        n = o.maxBytes;
        truncated = true;
        session.abort(new Error('output cap reached'));
        break;
      }
      parts.push(b);
      n += b.length;
    }
  })().catch(() => undefined);
  try {
    const r = await session.result;
    await reading;
    return { exitCode: r.exitCode, stdout: Buffer.concat(parts), stderr, truncated };
  } catch (err) {
    await reading;
    return {
      exitCode: null,
      stdout: Buffer.concat(parts),
      stderr,
      truncated,
      error: err instanceof Error ? err.message : String(err),
      errorCode: isEksForensicsError(err) ? err.code : undefined,
    };
  }
}
