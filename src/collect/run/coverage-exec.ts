/**
 * The coverage items (`../coverage/`) talk to the target through a small exec seam
 * ({@link CoverageExec}). Here that seam is the door: every exec a coverage item starts runs
 * through {@link Door.stream}, so its verdict is decided in the one place, and the item's
 * document inherits those verdicts (plus the item's own caps) when it is stored.
 */
import { once } from 'node:events';
import { PassThrough, type Readable, Writable } from 'node:stream';
import type { CoverageExec } from '../coverage/index.js';
import type { Door } from './door.js';
import type { PhaseEnv } from './env.js';
import { reason } from './reasons.js';
import { derivedVerdict, type Verdict, withProblem } from './verdict.js';

/** Whether the target can stream file bytes to a coverage item (binary-safe `dd`, not builtins only). */
export function canPullBytes(env: PhaseEnv): boolean {
  return env.strategy.volatile !== 'builtins' && env.probe !== undefined && 'dd' in env.probe.tools;
}

/**
 * The verdict of a coverage item's document: the worst of its execs' verdicts, `truncated` for
 * every problem the item itself reported (a cap, a cut stream, a weak hash).
 */
export async function coverageVerdict(
  verdicts: readonly (Verdict | Promise<Verdict>)[],
  problems: readonly string[],
  label: string,
  path: string,
): Promise<Verdict> {
  let v = derivedVerdict(await Promise.all(verdicts));
  for (const text of problems) v = withProblem(v, 'truncated', reason('cap', `${label}: ${text}`, path));
  return v;
}

/** Largest stdin a coverage exec may send (its frame key, a few argv-sized lines). */
const MAX_STDIN = 64 * 1024;

/** A {@link CoverageExec} backed by the door, and the verdict of every exec it ran. */
export interface DoorCoverageExec {
  exec: CoverageExec;
  /** One per exec started, in order; each settles when its exec is decided. */
  verdicts: Promise<Verdict>[];
}

/** Copies `src` to `dst` with backpressure, until `src` ends or the reader gives up (`halted`). */
async function pump(src: Readable, dst: PassThrough, halted: () => boolean, stopped: Promise<void>) {
  for await (const c of src) {
    if (halted()) return;
    if (!dst.write(c)) await Promise.race([once(dst, 'drain'), stopped]);
    if (halted()) return;
  }
}

/**
 * Runs each exec of a coverage item through `door`. stdin, when asked for, is collected until the
 * item ends it and then sent by the door (which closes it). `abort()` makes the door stop the
 * exec as "receiver stopped reading", which its verdict records.
 */
export function doorCoverageExec(door: Door, step: string, timeoutMs?: number): DoorCoverageExec {
  const verdicts: Promise<Verdict>[] = [];
  let n = 0;
  const exec: CoverageExec = async (command, { stdin }) => {
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    let halted = false;
    let stop!: () => void;
    const stopped = new Promise<void>((r) => {
      stop = r;
    });
    let start!: (text: string | undefined) => void;
    const input = new Promise<string | undefined>((r) => {
      start = r;
    });
    let text = '';
    const stdinW = stdin
      ? new Writable({
          write(chunk: Buffer, _enc, cb) {
            if (text.length + chunk.length > MAX_STDIN) cb(new Error(`stdin over ${MAX_STDIN} bytes`));
            else {
              text += chunk.toString('utf8');
              cb();
            }
          },
          final(cb) {
            start(text);
            cb();
          },
        })
      : null;
    if (!stdinW) start(undefined);
    const label = `${step}#${++n}`;
    const run = input.then((t) =>
      door.stream(
        { step: label, argv: command, ...(t !== undefined ? { stdin: t } : {}), timeoutMs },
        async (s) => {
          await pump(s, out, () => halted, stopped);
          return { value: undefined };
        },
      ),
    );
    // whatever happened (refused, cut, aborted), the item's reader must see an end
    const done = run.finally(() => {
      if (!out.writableEnded && !out.destroyed) out.end();
    });
    verdicts.push(done.then((r) => r.verdict));
    return {
      stdout: out,
      stdin: stdinW,
      result: done.then((r) => {
        const code = r.outcome.exitCode;
        if (r.outcome.error !== undefined || code === null || code === undefined)
          throw new Error(r.outcome.error ?? 'exec ended without an exit status');
        return { exitCode: code };
      }),
      abort() {
        halted = true;
        stop();
        // the reader is gone: let whatever is buffered go
        out.resume();
        if (stdinW && !stdinW.writableEnded) stdinW.end();
      },
    };
  };
  return { exec, verdicts };
}
