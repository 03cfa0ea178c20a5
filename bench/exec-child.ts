/**
 * One exec client measured in its own process (so its RSS is its own and it does not share an
 * event loop with FakeCluster). Reads its job from the BENCH_ARGS env variable (JSON) and prints
 * one JSON line: { secs, cpuSecs, sha256, bytes, exitCode, peakRss, baseRss, aborted? } (cpuSecs:
 * this process's CPU time during the exec, startup excluded).
 *
 * Modes: `ours-hash` | `cn-hash` (hash stdout as fast as possible), `ours-slow` | `cn-slow`
 * (throttled consumer at `rate` bytes/s, with one 3 s stall after 64 MiB).
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { KubeClient } from '../src/kube/index.js';

interface Args {
  mode: 'ours-hash' | 'ours-hash-worker' | 'cn-hash' | 'ours-slow' | 'cn-slow';
  server: string;
  ca: string;
  token: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  rate: number;
  rssCap: number;
}

const args = JSON.parse(process.env.BENCH_ARGS ?? '{}') as Args;
let baseRss = process.memoryUsage().rss;
let peakRss = baseRss;
const sampler = setInterval(() => {
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  if (rss > args.rssCap) {
    process.stdout.write(
      `${JSON.stringify({ aborted: true, reason: `RSS over ${args.rssCap} bytes`, peakRss, baseRss, bytes })}\n`,
    );
    process.exit(0);
  }
}, 50);
sampler.unref();

let bytes = 0;
let hash = createHash('sha256');
let workerDigest: string | undefined;

const WORKER_SRC = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const h = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'end') parentPort.postMessage({ digest: h.digest('hex') });
  else { h.update(new Uint8Array(m)); parentPort.postMessage({ ack: m.byteLength }); }
});`;

/** Hashes in a worker thread (like \`| openssl dgst\` in another process): 1 MiB batches, ≤ 8 MiB in flight. */
async function hashInWorker(source: AsyncIterable<Buffer>): Promise<string> {
  const worker = new Worker(WORKER_SRC, { eval: true });
  const BATCH = 1024 * 1024;
  let inflight = 0;
  let waiter: (() => void) | undefined;
  let digestResolve!: (d: string) => void;
  const digest = new Promise<string>((r) => {
    digestResolve = r;
  });
  worker.on('message', (m: { ack?: number; digest?: string }) => {
    if (m.ack !== undefined) {
      inflight -= m.ack;
      if (waiter && inflight <= 4 * BATCH) {
        const w = waiter;
        waiter = undefined;
        w();
      }
    } else if (m.digest) digestResolve(m.digest);
  });
  let batch = Buffer.allocUnsafeSlow(BATCH);
  let fill = 0;
  const flush = async () => {
    if (fill === 0) return;
    // allocUnsafeSlow: the batch owns its whole ArrayBuffer, so a full one is transferred, not copied.
    const ab = batch.buffer;
    const len = fill;
    worker.postMessage(len === BATCH ? ab : ab.slice(0, len), len === BATCH ? [ab] : []);
    inflight += len;
    batch = Buffer.allocUnsafeSlow(BATCH);
    fill = 0;
    if (inflight > 8 * BATCH) await new Promise<void>((r) => (waiter = r));
  };
  for await (const chunk of source) {
    bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(BATCH - fill, chunk.length - off);
      chunk.copy(batch, fill, off, off + n);
      fill += n;
      off += n;
      if (fill === BATCH) await flush();
    }
  }
  await flush();
  worker.postMessage('end');
  const d = await digest;
  await worker.terminate();
  return d;
}

/** The slow consumer also stops reading once, for `STALL_MS` after `STALL_AT` bytes. */
const STALL_AT = 64 * 1024 * 1024;
const STALL_MS = 3000;

function consumer(slow: boolean, t0: number): Writable {
  let stalled = false;
  let stallPaid = 0;
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!slow) return cb();
      if (!stalled && bytes >= STALL_AT) {
        stalled = true;
        stallPaid = STALL_MS;
        setTimeout(cb, STALL_MS);
        return;
      }
      const wait = t0 + stallPaid + (bytes / args.rate) * 1000 - Date.now();
      if (wait > 1) setTimeout(cb, wait);
      else cb();
    },
  });
}

async function ours(slow: boolean, command = args.command, inWorker = false): Promise<number> {
  const kube = new KubeClient({ server: args.server, caData: args.ca, token: args.token });
  const t0 = Date.now();
  const s = await kube.exec({
    namespace: args.namespace,
    pod: args.pod,
    container: args.container,
    command,
    stderr: false,
  });
  if (slow) await pipeline(s.stdout, consumer(true, t0));
  else if (inWorker) workerDigest = await hashInWorker(s.stdout);
  else await pipeline(s.stdout, consumer(false, t0));
  return (await s.result).exitCode;
}

interface CnStatus {
  status?: string;
  reason?: string;
  details?: { causes?: Array<{ reason?: string; message?: string }> };
}

async function clientNode(slow: boolean, command = args.command): Promise<number> {
  // client-node 2.x's main entry imports undici 8 (Node >= 22). Its Exec only needs a config
  // with getCurrentCluster() and applyToHTTPSOptions(), which is what KubeConfig provides.
  const { Exec } = (await import('@kubernetes/client-node/dist/exec.js')) as {
    Exec: new (
      kc: unknown,
    ) => {
      exec(
        ns: string,
        pod: string,
        container: string,
        command: string[],
        stdout: Writable | null,
        stderr: Writable | null,
        stdin: null,
        tty: boolean,
        cb: (s: CnStatus) => void,
      ): Promise<{ on(ev: 'close', fn: () => void): void }>;
    };
  };
  const kc = {
    getCurrentCluster: () => ({ server: args.server }),
    applyToHTTPSOptions: async (opts: Record<string, unknown>) => {
      opts.ca = args.ca;
      opts.headers = { Authorization: `Bearer ${args.token}` };
    },
  };
  const t0 = Date.now();
  const out = consumer(slow, t0);
  const finished = new Promise<void>((resolve) => out.on('finish', () => resolve()));
  let status: CnStatus | undefined;
  const ws = await new Exec(kc).exec(
    args.namespace,
    args.pod,
    args.container,
    command,
    out,
    null,
    null,
    false,
    (s) => {
      status = s;
    },
  );
  await new Promise<void>((resolve) => ws.on('close', () => resolve()));
  if (!out.writableEnded) out.end();
  await finished;
  if (status?.status === 'Success') return 0;
  const code = status?.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  return code === undefined ? -1 : Number(code);
}

async function main(): Promise<void> {
  // Warm-up exec (1 KiB) so that lazy module loading (through tsx's hooks) is not timed.
  const warm = ['head', '-c', '1024', '/dev/zero'];
  if (args.mode.startsWith('ours')) await ours(false, warm);
  else await clientNode(false, warm);
  bytes = 0;
  hash = createHash('sha256');
  baseRss = process.memoryUsage().rss;
  peakRss = baseRss;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const slow = args.mode.endsWith('-slow');
  const exitCode = args.mode.startsWith('ours')
    ? await ours(slow, args.command, args.mode === 'ours-hash-worker')
    : await clientNode(slow);
  const digest = workerDigest ?? hash.digest('hex');
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(
    `${JSON.stringify({ secs, cpuSecs, sha256: digest, bytes, exitCode, peakRss, baseRss })}\n`,
  );
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`);
  process.exit(1);
});
