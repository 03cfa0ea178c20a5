/**
 * The exec seam coverage items run through: the subset of `KubeClient.exec` they need, so the
 * collector (or a test) can hand in any exec with the same shape.
 */
import type { Writable } from 'node:stream';

/** A running exec, as the coverage items use it (a `KubeClient` `ExecSession` fits). */
export interface CoverageExecSession {
  /** Standard output. */
  readonly stdout: AsyncIterable<Uint8Array>;
  /** Standard input when requested. */
  readonly stdin: Writable | null;
  /** Settles with the exit code; rejects when the exec failed or was cut. */
  readonly result: Promise<{ exitCode: number }>;
  /** Stops the exec now. */
  abort(reason?: unknown): void;
}

/** Starts an exec of `command` in the target container. */
export type CoverageExec = (command: string[], options: { stdin: boolean }) => Promise<CoverageExecSession>;

/** How an exec ended, never throwing. */
export interface ExecEnd {
  exitCode: number | undefined;
  error?: string | undefined;
}

/** Awaits an exec's result without throwing. */
export async function settle(session: CoverageExecSession): Promise<ExecEnd> {
  try {
    const r = await session.result;
    return { exitCode: r.exitCode };
  } catch (err) {
    return { exitCode: undefined, error: err instanceof Error ? err.message.slice(0, 300) : String(err) };
  }
}

/** Writes `text` to the session's stdin and ends it; failures are returned, not thrown. */
export function sendStdin(session: CoverageExecSession, text: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = session.stdin;
    if (!s) {
      resolve('exec has no stdin');
      return;
    }
    s.once('error', (e: Error) => resolve(e.message));
    s.end(text, () => resolve(undefined));
  });
}
