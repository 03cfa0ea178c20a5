/**
 * Byte and entry budgets per target and per run, plus a tee with backpressure.
 */
import { PassThrough, type Readable, Writable } from 'node:stream';
import type { CollectLimits } from './types.js';

/** Default limits. */
export const DEFAULT_LIMITS: Readonly<CollectLimits> = Object.freeze({
  maxArtifactBytes: 2 * 1024 ** 3,
  maxTargetBytes: 8 * 1024 ** 3,
  maxRunBytes: 64 * 1024 ** 3,
  maxEntriesPerArtifact: 100_000,
  maxEntriesPerTarget: 200_000,
  maxRunEntries: 2_000_000,
  execTimeoutMs: 10 * 60_000,
  noProgressMs: 60_000,
  apiTimeoutMs: 60_000,
  targetTimeoutMs: 60 * 60_000,
  maxArgvChars: 8 * 1024,
  maxListedEntriesPerTarget: 1_000_000,
});

/** A shared counter with a cap; a child charges its parent too. */
export class Budget {
  used = 0;
  entries = 0;
  constructor(
    readonly name: string,
    readonly maxBytes: number,
    readonly maxEntries: number,
    readonly parent?: Budget | undefined,
  ) {}

  /** Charges `n` bytes; false (nothing charged beyond the cap) when this or a parent budget is exhausted. */
  takeBytes(n: number): boolean {
    if (this.used + n > this.maxBytes) return false;
    if (this.parent && !this.parent.takeBytes(n)) return false;
    this.used += n;
    return true;
  }

  /** Charges one entry; false when exhausted. */
  takeEntry(): boolean {
    if (this.entries + 1 > this.maxEntries) return false;
    if (this.parent && !this.parent.takeEntry()) return false;
    this.entries += 1;
    return true;
  }

  /** Which budget is exhausted for `n` more bytes (for messages). */
  exhaustedBy(n: number): string | undefined {
    if (this.used + n > this.maxBytes) return this.name;
    return this.parent?.exhaustedBy(n);
  }
}

/**
 * Splits one readable into two with backpressure (each chunk waits until both sides accept it).
 * If one side is destroyed, the other keeps receiving. The third element stops the tee: the source
 * is unpiped and both sides end with what they got.
 */
export function tee(source: Readable): [PassThrough, PassThrough, () => void] {
  const a = new PassThrough({ highWaterMark: 256 * 1024 });
  const b = new PassThrough({ highWaterMark: 256 * 1024 });
  const wait = (s: PassThrough) =>
    new Promise<void>((resolve) => {
      const done = () => {
        s.off('drain', done);
        s.off('close', done);
        resolve();
      };
      s.once('drain', done);
      s.once('close', done);
    });
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _e, cb) {
      const waits: Promise<void>[] = [];
      for (const s of [a, b]) {
        if (s.destroyed || s.writableEnded) continue;
        if (!s.write(chunk)) waits.push(wait(s));
      }
      if (waits.length === 0) cb();
      else Promise.all(waits).then(() => cb(), cb);
    },
    final(cb) {
      a.end();
      b.end();
      cb();
    },
    destroy(err, cb) {
      if (err) {
        a.destroy(err);
        b.destroy(err);
      }
      cb(err);
    },
  });
  // a broken source ends both sides cleanly: consumers see the bytes that came, callers see the error
  source.on('error', () => {
    a.end();
    b.end();
  });
  source.pipe(sink);
  const stop = () => {
    source.unpipe(sink);
    a.end();
    b.end();
    sink.destroy();
  };
  return [a, b, stop];
}
