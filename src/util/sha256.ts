/**
 * SHA-256 that moves large inputs to a worker thread, so hashing overlaps the caller's own work
 * (disk writes, copies, a second hash) instead of taking turns with it on one thread.
 *
 * @internal
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * The worker's code, run with `eval`: one plain script, no file to ship next to the build and
 * nothing imported but `node:crypto`. Each session has a SharedArrayBuffer of slots; a `data`
 * message names a filled slot, which is handed back (`free`) once hashed.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const sessions = new Map();
parentPort.on('message', (m) => {
  const s = sessions.get(m.id);
  switch (m.t) {
    case 'open':
      sessions.set(m.id, { h: createHash('sha256'), mark: undefined, view: new Uint8Array(m.sab) });
      break;
    case 'data':
      s.h.update(s.view.subarray(m.off, m.off + m.len));
      parentPort.postMessage({ t: 'free', id: m.id, slot: m.slot });
      break;
    case 'mark':
      s.mark = s.h.copy();
      break;
    case 'revert':
      s.h = s.mark.copy();
      break;
    case 'digest':
      parentPort.postMessage({ t: 'digest', id: m.id, hex: s.h.digest('hex') });
      sessions.delete(m.id);
      break;
    case 'close':
      sessions.delete(m.id);
      break;
  }
});
`;

/** Bytes hashed on the caller's thread before a hash moves to a worker. */
const OFFLOAD_AFTER = 1 << 20;
const SLOT_BYTES = 512 * 1024;
const SLOTS = 4;
/** Most hashes on workers at once; beyond, new ones stay on the caller's thread (bounded memory). */
const MAX_SESSIONS = 8;

type WorkerMessage = { t: 'free'; id: number; slot: number } | { t: 'digest'; id: number; hex: string };

/** One worker thread and the sessions it hashes. */
class HashWorker {
  readonly #worker: Worker;
  readonly sessions = new Map<number, Session>();
  #awaiting = 0;
  #refd = false;
  broken: Error | undefined;

  constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, name: 'eks-forensics sha256' });
    this.#worker.on('message', (m: WorkerMessage) => {
      this.#settled();
      this.sessions.get(m.id)?.onMessage(m);
    });
    const die = (err: Error) => {
      this.broken ??= err;
      for (const s of [...this.sessions.values()]) s.onBroken(this.broken);
      this.sessions.clear();
    };
    this.#worker.on('error', die);
    this.#worker.on('exit', (code) => die(new Error(`the hashing worker thread exited (code ${code})`)));
    // After the listeners: adding a 'message' listener refs the port again.
    this.#worker.unref();
  }

  /** Posts a message that the worker answers: the process stays alive until it does. */
  ask(message: unknown): void {
    this.#awaiting++;
    if (!this.#refd) {
      this.#refd = true;
      this.#worker.ref();
    }
    this.#worker.postMessage(message);
  }

  /** Stops the thread; its sessions reject (the 'exit' handler). */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }

  tell(message: unknown): void {
    this.#worker.postMessage(message);
  }

  #settled(): void {
    this.#awaiting--;
    if (this.#awaiting === 0 && this.#refd) {
      this.#refd = false;
      this.#worker.unref();
    }
  }
}

/** Workers (two, started on first use) and the shared buffers of finished sessions. */
const pool: { workers: HashWorker[] | undefined; nextId: number; spare: SharedArrayBuffer[] } = {
  workers: undefined,
  nextId: 1,
  spare: [],
};

/**
 * Whether hashes go to workers when the caller does not say: only with four or more CPUs. On two
 * (measured on the CI machines, `npm run bench`), the copies into shared memory and the messages
 * cost more CPU than the hash they move, and the cores are already busy with the caller's thread,
 * libuv's I/O and the kernel: a 1 GiB artifact was not stored faster, only with more CPU.
 */
let offloadByDefault = availableParallelism() >= 4;

/**
 * Sets whether {@link Sha256} uses worker threads when its options do not say (`'auto'`: by the
 * CPU count, the default). For tests and benchmarks that must exercise one path on any machine.
 *
 * @internal
 */
export function setHashOffloadDefault(mode: boolean | 'auto'): void {
  offloadByDefault = mode === 'auto' ? availableParallelism() >= 4 : mode;
}

/**
 * Stops the hashing workers as a crash would: every hash still on them rejects (its artifact then
 * fails, never completes); hashes started later get new workers. For tests.
 *
 * @internal
 */
export async function terminateHashWorkers(): Promise<void> {
  const workers = pool.workers ?? [];
  pool.workers = undefined;
  await Promise.all(workers.map((w) => w.terminate()));
}

function openSession(): Session | undefined {
  if (pool.workers === undefined) {
    try {
      pool.workers = Array.from({ length: 2 }, () => new HashWorker());
    } catch {
      pool.workers = [];
    }
  }
  const live = pool.workers.filter((w) => w.broken === undefined);
  let total = 0;
  for (const w of live) total += w.sessions.size;
  if (live.length === 0 || total >= MAX_SESSIONS) return undefined;
  const worker = live.reduce((a, b) => (b.sessions.size < a.sessions.size ? b : a));
  return new Session(worker, pool.nextId++, pool.spare.pop() ?? new SharedArrayBuffer(SLOTS * SLOT_BYTES));
}

type Waiter = { rest: Uint8Array; resolve: () => void; reject: (e: Error) => void };

/** One hash on a worker: a ring of shared slots, filled here and hashed there in order. */
class Session {
  readonly #worker: HashWorker;
  readonly #id: number;
  readonly #sab: SharedArrayBuffer;
  readonly #view: Uint8Array;
  readonly #busy: boolean[] = Array.from({ length: SLOTS }, () => false);
  #cur = 0;
  #fill = 0;
  #waiter: Waiter | undefined;
  #digest: { resolve: (hex: string) => void; reject: (e: Error) => void } | undefined;
  #error: Error | undefined;
  #closed = false;

  constructor(worker: HashWorker, id: number, sab: SharedArrayBuffer) {
    this.#worker = worker;
    this.#id = id;
    this.#sab = sab;
    this.#view = new Uint8Array(sab);
    worker.sessions.set(id, this);
    worker.tell({ t: 'open', id, sab });
  }

  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#waiter) return Promise.reject(new Error('Sha256.update() while an update is still pending'));
    const n = this.#copyIn(chunk);
    if (n === chunk.length) return undefined;
    return new Promise((resolve, reject) => {
      this.#waiter = { rest: chunk.subarray(n), resolve, reject };
    });
  }

  #copyIn(chunk: Uint8Array): number {
    let off = 0;
    while (off < chunk.length && !this.#busy[this.#cur]) {
      const n = Math.min(SLOT_BYTES - this.#fill, chunk.length - off);
      this.#view.set(chunk.subarray(off, off + n), this.#cur * SLOT_BYTES + this.#fill);
      this.#fill += n;
      off += n;
      if (this.#fill === SLOT_BYTES) this.#post();
    }
    return off;
  }

  /** Hands the current slot (full or not) to the worker and moves to the next. */
  #post(): void {
    if (this.#fill === 0) return;
    const slot = this.#cur;
    this.#busy[slot] = true;
    this.#worker.ask({ t: 'data', id: this.#id, slot, off: slot * SLOT_BYTES, len: this.#fill });
    this.#cur = (slot + 1) % SLOTS;
    this.#fill = 0;
  }

  mark(): void {
    this.#post();
    this.#worker.tell({ t: 'mark', id: this.#id });
  }

  revert(): void {
    this.#fill = 0;
    this.#worker.tell({ t: 'revert', id: this.#id });
  }

  digest(): Promise<string> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#waiter) return Promise.reject(new Error('Sha256.digest() while an update is still pending'));
    this.#post();
    return new Promise((resolve, reject) => {
      this.#digest = { resolve, reject };
      this.#worker.ask({ t: 'digest', id: this.#id });
    });
  }

  onMessage(m: WorkerMessage): void {
    if (m.t === 'free') {
      this.#busy[m.slot] = false;
      const w = this.#waiter;
      if (w) {
        const n = this.#copyIn(w.rest);
        if (n === w.rest.length) {
          this.#waiter = undefined;
          w.resolve();
        } else w.rest = w.rest.subarray(n);
      }
      return;
    }
    const d = this.#digest;
    this.#digest = undefined;
    this.#release();
    d?.resolve(m.hex);
  }

  onBroken(err: Error): void {
    this.#error ??= err;
    this.#closed = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(err);
    const d = this.#digest;
    this.#digest = undefined;
    d?.reject(err);
  }

  /** Gives the session up (the hash is not needed any more). */
  close(): void {
    if (this.#closed) return;
    this.#worker.tell({ t: 'close', id: this.#id });
    this.#release();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(new Error('hash closed'));
  }

  #release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.sessions.delete(this.#id);
    // The slots may still be read by a data message in flight only when the session was closed
    // early; then the buffer is not reused.
    if (this.#busy.every((b) => !b) && pool.spare.length < MAX_SESSIONS) pool.spare.push(this.#sab);
  }
}

/** Options of {@link Sha256}. */
export interface Sha256Options {
  /**
   * Bytes expected: at or above the offload threshold the hash starts on a worker at once
   * (default: it moves there after 1 MiB).
   */
  expectedBytes?: number | undefined;
  /**
   * `true` uses worker threads, `false` keeps the hash on the caller's thread, `'auto'` (default)
   * uses workers only with four or more CPUs.
   */
  offload?: boolean | 'auto' | undefined;
}

/**
 * A SHA-256 over a stream of chunks. With offloading on (see {@link Sha256Options.offload}), the
 * first MiB is hashed on the caller's thread (most artifacts are small); beyond it, the bytes are
 * copied into shared slots and hashed on one of two worker threads, in order. Where workers are
 * off or unavailable (too many large hashes at once, no `worker_threads`), everything is hashed on
 * the caller's thread: the digest is the same either way.
 *
 * Contract: after `update` returns a promise, wait for it before the next call and do not change
 * the chunk until it resolves. {@link Sha256.mark} remembers the state at this point;
 * {@link Sha256.revert} returns to it (to hash a rewritten range again).
 */
export class Sha256 {
  #inline: Hash | undefined = createHash('sha256');
  #markInline: Hash | undefined;
  /** Copies of what the inline hash took, kept while it may still move to a worker. */
  #prefix: Buffer[] | undefined;
  #prefixBytes = 0;
  #markPrefix: number | undefined;
  #session: Session | undefined;
  #marked = false;
  #done = false;
  #pending = false;

  constructor(options: Sha256Options = {}) {
    const offload = options.offload ?? 'auto';
    if (offload === true || (offload === 'auto' && offloadByDefault)) {
      this.#prefix = [];
      if ((options.expectedBytes ?? 0) >= OFFLOAD_AFTER) this.#moveToWorker();
    }
  }

  /** Adds `chunk`; a promise when the caller must wait before the next call (backpressure). */
  update(chunk: Uint8Array): Promise<void> | undefined {
    this.#ready('update');
    if (this.#session) return this.#track(this.#session.write(chunk));
    (this.#inline as Hash).update(chunk);
    if (this.#prefix) {
      this.#prefix.push(Buffer.from(chunk));
      this.#prefixBytes += chunk.length;
      if (this.#prefixBytes >= OFFLOAD_AFTER) return this.#track(this.#moveToWorker());
    }
    return undefined;
  }

  #ready(call: string): void {
    if (this.#pending) throw new Error(`Sha256.${call}() while an update is still pending: await it first`);
    if (this.#done) throw new Error(`Sha256.${call}() after digest() or dispose()`);
  }

  #track(p: Promise<void> | undefined): Promise<void> | undefined {
    if (!p) return undefined;
    this.#pending = true;
    return p.finally(() => {
      this.#pending = false;
    });
  }

  /** Starts a worker session and replays the prefix into it; stays inline when none is free. */
  #moveToWorker(): Promise<void> | undefined {
    const prefix = this.#prefix ?? [];
    this.#prefix = undefined;
    const s = openSession();
    if (!s) return undefined;
    this.#session = s;
    const markAt = this.#markPrefix;
    this.#inline = undefined;
    this.#markInline = undefined;
    let pos = 0;
    const parts: Array<Buffer | 'mark'> = [];
    if (markAt === 0) parts.push('mark');
    for (const p of prefix) {
      if (markAt !== undefined && pos < markAt && pos + p.length > markAt) {
        parts.push(p.subarray(0, markAt - pos), 'mark', p.subarray(markAt - pos));
      } else {
        parts.push(p);
        if (markAt !== undefined && markAt > 0 && pos + p.length === markAt) parts.push('mark');
      }
      pos += p.length;
    }
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as Buffer | 'mark';
      if (part === 'mark') {
        s.mark();
        continue;
      }
      const wait = s.write(part);
      if (wait) {
        const rest = parts.slice(i + 1);
        return wait.then(async () => {
          for (const q of rest) {
            if (q === 'mark') s.mark();
            else await s.write(q);
          }
        });
      }
    }
    return undefined;
  }

  /** Remembers the state after everything given so far (one mark; a new one replaces it). */
  mark(): void {
    this.#ready('mark');
    this.#marked = true;
    if (this.#session) this.#session.mark();
    else {
      this.#markInline = (this.#inline as Hash).copy();
      this.#markPrefix = this.#prefixBytes;
    }
  }

  /** Returns to the state at {@link Sha256.mark}, forgetting what was given since. */
  revert(): void {
    this.#ready('revert');
    if (!this.#marked) throw new Error('Sha256.revert() without a mark');
    if (this.#session) {
      this.#session.revert();
      return;
    }
    this.#inline = (this.#markInline as Hash).copy();
    if (this.#prefix && this.#markPrefix !== undefined) {
      let keep = this.#markPrefix;
      const kept: Buffer[] = [];
      for (const p of this.#prefix) {
        if (keep <= 0) break;
        kept.push(p.length <= keep ? p : p.subarray(0, keep));
        keep -= p.length;
      }
      this.#prefix = kept;
      this.#prefixBytes = this.#markPrefix;
    }
  }

  /** The hex digest of everything given; rejects if the worker hashing it died. */
  digest(): Promise<string> {
    this.#ready('digest');
    this.#done = true;
    if (this.#session) return this.#session.digest();
    this.#prefix = undefined;
    return Promise.resolve((this.#inline as Hash).digest('hex'));
  }

  /** Gives up the hash (frees its worker slots); a no-op after {@link Sha256.digest}. */
  dispose(): void {
    if (this.#done) return;
    this.#done = true;
    this.#prefix = undefined;
    this.#session?.close();
  }
}
