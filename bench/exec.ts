/**
 * Exec throughput and memory benchmark. FakeCluster (host runtime) serves `head -c N /dev/zero`;
 * each client hashes the stream with SHA-256:
 *
 * - ours: `KubeClient.exec` in a child process, hashing in process
 * - kubectl: `kubectl.1.33 exec … | openssl dgst -sha256`
 * - client-node: `@kubernetes/client-node` `Exec` in a child process, hashing in process
 * - ceiling: `head -c N /dev/zero | openssl dgst -sha256` (no Kubernetes at all)
 * - whole process: `node bench/whole-process.mjs`, a script that imports the built package, execs,
 *   hashes and exits, timed from spawn to exit like the kubectl pipeline (process start included)
 *
 * Medians of `runs` runs; ratios are peer time / our time (> 1 means we are faster). Then peak RSS
 * of a child process whose consumer reads N bytes at a throttled rate, stopping once for 3 s
 * (ours vs client-node).
 *
 * Run alone: `npx tsx bench/exec.ts`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeCluster } from '../src/testing/index.js';
import { ensureDist } from './dist.js';

/** Options of {@link benchExec}. */
export interface BenchExecOptions {
  /** Bytes streamed per run (default 1 GiB). */
  bytes?: number;
  /** Runs per client; the median is reported (default 3). */
  runs?: number;
  /** kubectl binary (default `kubectl.1.33` beside `kubectl`). */
  kubectl?: string;
  /** Throttled consumer rate for the memory part, bytes/s (default 64 MiB/s). */
  slowRate?: number;
  /** A child whose RSS passes this is stopped and reported as aborted (default 3 GiB). */
  rssCap?: number;
  /** Skip the memory part. */
  skipMemory?: boolean;
  /** Progress lines (default: console.error). */
  log?: (line: string) => void;
}

/** One client's throughput figures. */
export interface ThroughputFigure {
  /** Seconds of each run. */
  runs: number[];
  /** Median seconds. */
  medianSecs: number;
  /** MiB/s at the median. */
  mibPerSec: number;
  /**
   * Median CPU seconds of the client side (ours/client-node: the child process during the exec;
   * kubectl: kubectl + openssl). Less sensitive to a busy machine than wall time.
   */
  medianCpuSecs?: number | undefined;
}

/** What {@link benchExec} measured. */
export interface BenchExecResult {
  bytes: number;
  throughput: {
    ours: ThroughputFigure;
    /** Ours, with the SHA-256 in a worker thread (as the kubectl pipeline hashes in another process). */
    oursWorker: ThroughputFigure;
    kubectl?: ThroughputFigure | undefined;
    clientNode?: ThroughputFigure | undefined;
    ceiling: ThroughputFigure;
    /** A whole node process (start, import of the built package, exec, hash, exit). */
    wholeProcess?: ThroughputFigure | undefined;
  };
  /** Peer median time / our median time (> 1: ours faster). Goals: kubectl ≥ 1.25, client-node ≥ 1.2. */
  ratios: {
    vsKubectl?: number | undefined;
    vsClientNode?: number | undefined;
    vsCeiling: number;
    /** kubectl pipeline / ours with the hash in a worker thread. */
    workerVsKubectl?: number | undefined;
    /** kubectl pipeline / the whole node process (goal ≥ 1.25). */
    wholeProcessVsKubectl?: number | undefined;
  };
  /** Peak RSS growth (MiB) of the child while a throttled consumer reads `bytes`. */
  memory?:
    | {
        rateMiBps: number;
        oursPeakGrowthMiB: number;
        clientNodePeakGrowthMiB: number;
        clientNodeAborted: boolean;
      }
    | undefined;
  /** Peers that could not be measured and why. */
  skipped: string[];
}

const here = dirname(fileURLToPath(import.meta.url));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const figure = (runs: number[], bytes: number, cpu: number[] = []): ThroughputFigure => {
  const medianSecs = median(runs);
  const f: ThroughputFigure = { runs, medianSecs, mibPerSec: bytes / 2 ** 20 / medianSecs };
  if (cpu.length) f.medianCpuSecs = median(cpu);
  return f;
};

/** Parses the `CPU u s` lines `/usr/bin/time -f` printed to stderr; sums them. */
function cpuFromTime(stderr: string): number | undefined {
  let total = 0;
  let seen = false;
  for (const m of stderr.matchAll(/^CPU ([\d.]+) ([\d.]+)$/gm)) {
    total += Number(m[1]) + Number(m[2]);
    seen = true;
  }
  return seen ? total : undefined;
}

function timeShell(
  script: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ secs: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('sh', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${script} exited ${code}: ${err.slice(0, 500)}`));
      else resolve({ secs, out, err });
    });
  });
}

interface ChildOut {
  secs?: number;
  cpuSecs?: number;
  sha256?: string;
  bytes?: number;
  exitCode?: number;
  peakRss?: number;
  baseRss?: number;
  aborted?: boolean;
  error?: string;
}

function runChild(args: Record<string, unknown>): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'exec-child.ts')], {
      env: { ...process.env, BENCH_ARGS: JSON.stringify(args) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as ChildOut);
      } catch {
        reject(new Error(`bench child printed no JSON: ${out.slice(0, 300)}`));
      }
    });
  });
}

function findKubectl(name: string): string | undefined {
  try {
    const k = execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim();
    const p = join(dirname(realpathSync(k)), name);
    execFileSync(p, ['version', '--client'], { stdio: 'ignore' });
    return p;
  } catch {
    return undefined;
  }
}

/** SHA-256 of `bytes` zero bytes, via openssl (the expected digest of every run). */
function zeroSha(bytes: number): string {
  return execFileSync('sh', ['-c', `head -c ${bytes} /dev/zero | openssl dgst -sha256 -r`], {
    encoding: 'utf8',
  })
    .trim()
    .split(/\s+/)[0] as string;
}

/**
 * Measures exec throughput (ours vs kubectl pipeline vs client-node vs ceiling) and the memory
 * of a throttled consumer. Starts and closes its own FakeCluster (host runtime).
 */
export async function benchExec(opts: BenchExecOptions = {}): Promise<BenchExecResult> {
  const bytes = opts.bytes ?? 1024 ** 3;
  const runs = Math.max(1, opts.runs ?? 3);
  const slowRate = opts.slowRate ?? 64 * 2 ** 20;
  const log = opts.log ?? ((l: string) => console.error(l));
  const skipped: string[] = [];
  const expected = zeroSha(bytes);
  const cluster = await FakeCluster.start();
  const dir = mkdtempSync(join(tmpdir(), 'eksf-bench-'));
  try {
    await cluster.addPod({ name: 'bench', containers: [{ name: 'c', image: 'x', runtime: 'host' }] });
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, cluster.kubeconfig());
    const command = ['head', '-c', String(bytes), '/dev/zero'];
    const base = {
      server: cluster.server,
      ca: cluster.caData,
      token: cluster.adminToken,
      namespace: 'default',
      pod: 'bench',
      container: 'c',
      command,
      rate: slowRate,
      rssCap: opts.rssCap ?? 3 * 1024 ** 3,
    };
    const check = (who: string, o: ChildOut): number => {
      if (o.error || o.sha256 !== expected || o.exitCode !== 0 || o.secs === undefined) {
        throw new Error(`${who}: bad run ${JSON.stringify(o)}`);
      }
      return o.secs;
    };

    const kubectl = opts.kubectl ?? findKubectl('kubectl.1.33');
    if (!kubectl) skipped.push('kubectl.1.33 not found');
    const t = {
      ours: [] as number[],
      oursWorker: [] as number[],
      kubectl: [] as number[],
      clientNode: [] as number[],
      ceiling: [] as number[],
      wholeProcess: [] as number[],
    };
    let dist: string | undefined;
    try {
      dist = join(ensureDist(), 'index.js');
    } catch (err) {
      skipped.push(`whole process: the package could not be built (${String(err).slice(0, 200)})`);
    }
    const cpu = {
      ours: [] as number[],
      kubectl: [] as number[],
      clientNode: [] as number[],
      wholeProcess: [] as number[],
    };
    const timeBin = '/usr/bin/time';
    const hasTime = (() => {
      try {
        execFileSync(timeBin, ['-f', 'CPU %U %S', 'true'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    })();
    const timed = (cmd: string) => (hasTime ? `${timeBin} -f 'CPU %U %S' ${cmd}` : cmd);
    let clientNodeOk = true;
    for (let i = 0; i < runs; i++) {
      // Each run measures every client once, in an order rotated by one per run, so that no client
      // always follows the same one (what ran just before affects caches and free memory).
      const steps: Array<() => Promise<void>> = [
        async () => {
          const c = await timeShell(`head -c ${bytes} /dev/zero | openssl dgst -sha256 -r`);
          if (!c.out.startsWith(expected)) throw new Error('ceiling digest mismatch');
          t.ceiling.push(c.secs);
        },
        async () => {
          const o = await runChild({ ...base, mode: 'ours-hash' });
          t.ours.push(check('ours', o));
          if (o.cpuSecs !== undefined) cpu.ours.push(o.cpuSecs);
        },
        async () => {
          t.oursWorker.push(
            check('ours (worker hash)', await runChild({ ...base, mode: 'ours-hash-worker' })),
          );
        },
        async () => {
          if (!kubectl) return;
          const k = await timeShell(
            `${timed(`'${kubectl}' --kubeconfig '${kubeconfig}' exec bench -c c -- head -c ${bytes} /dev/zero`)} | ${timed('openssl dgst -sha256 -r')}`,
          );
          if (!k.out.startsWith(expected)) throw new Error(`kubectl digest mismatch: ${k.out}`);
          t.kubectl.push(k.secs);
          const kc = cpuFromTime(k.err);
          if (kc !== undefined) cpu.kubectl.push(kc);
        },
        async () => {
          if (!dist) return;
          const w = await timeShell(timed(`'${process.execPath}' '${join(here, 'whole-process.mjs')}'`), {
            ...process.env,
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
            BENCH_DIST: dist,
            BENCH_ARGS: JSON.stringify(base),
          });
          if (!w.out.startsWith(`${expected} ${bytes} 0`)) throw new Error(`whole process: bad run ${w.out}`);
          t.wholeProcess.push(w.secs);
          const wc = cpuFromTime(w.err);
          if (wc !== undefined) cpu.wholeProcess.push(wc);
        },
        async () => {
          if (!clientNodeOk) return;
          try {
            const c = await runChild({ ...base, mode: 'cn-hash' });
            t.clientNode.push(check('client-node', c));
            if (c.cpuSecs !== undefined) cpu.clientNode.push(c.cpuSecs);
          } catch (err) {
            clientNodeOk = false;
            skipped.push(`client-node: ${String(err).slice(0, 300)}`);
          }
        },
      ];
      for (let k = 0; k < steps.length; k++) await (steps[(k + i) % steps.length] as () => Promise<void>)();
      log(
        `[bench exec] run ${i + 1}/${runs} (cpu ours ${cpu.ours.at(-1)?.toFixed(2) ?? '-'} s, kubectl+openssl ${cpu.kubectl.at(-1)?.toFixed(2) ?? '-'} s, client-node ${cpu.clientNode.at(-1)?.toFixed(2) ?? '-'} s): ours ${t.ours.at(-1)?.toFixed(2)} s, ours+worker hash ${t.oursWorker.at(-1)?.toFixed(2)} s, kubectl ${t.kubectl.at(-1)?.toFixed(2) ?? '-'} s, client-node ${t.clientNode.at(-1)?.toFixed(2) ?? '-'} s, ceiling ${t.ceiling.at(-1)?.toFixed(2)} s, whole process ${t.wholeProcess.at(-1)?.toFixed(2) ?? '-'} s`,
      );
    }
    const ours = figure(t.ours, bytes, cpu.ours);
    const result: BenchExecResult = {
      bytes,
      throughput: {
        ours,
        oursWorker: figure(t.oursWorker, bytes),
        kubectl: t.kubectl.length ? figure(t.kubectl, bytes, cpu.kubectl) : undefined,
        clientNode:
          clientNodeOk && t.clientNode.length ? figure(t.clientNode, bytes, cpu.clientNode) : undefined,
        ceiling: figure(t.ceiling, bytes),
        wholeProcess: t.wholeProcess.length ? figure(t.wholeProcess, bytes, cpu.wholeProcess) : undefined,
      },
      ratios: {
        vsKubectl: t.kubectl.length ? median(t.kubectl) / ours.medianSecs : undefined,
        vsClientNode:
          clientNodeOk && t.clientNode.length ? median(t.clientNode) / ours.medianSecs : undefined,
        vsCeiling: median(t.ceiling) / ours.medianSecs,
        workerVsKubectl: t.kubectl.length ? median(t.kubectl) / median(t.oursWorker) : undefined,
        wholeProcessVsKubectl:
          t.kubectl.length && t.wholeProcess.length ? median(t.kubectl) / median(t.wholeProcess) : undefined,
      },
      skipped,
    };

    if (!opts.skipMemory) {
      const o = await runChild({ ...base, mode: 'ours-slow' });
      check('ours slow', o);
      const cn = await runChild({ ...base, mode: 'cn-slow' });
      if (cn.error) skipped.push(`client-node slow: ${cn.error}`);
      const growth = (x: ChildOut) => ((x.peakRss ?? 0) - (x.baseRss ?? 0)) / 2 ** 20;
      result.memory = {
        rateMiBps: slowRate / 2 ** 20,
        oursPeakGrowthMiB: growth(o),
        clientNodePeakGrowthMiB: growth(cn),
        clientNodeAborted: cn.aborted === true,
      };
      log(
        `[bench exec] slow consumer at ${slowRate / 2 ** 20} MiB/s: RSS growth ours ${growth(o).toFixed(1)} MiB, client-node ${growth(cn).toFixed(1)} MiB${cn.aborted ? ' (stopped at the cap)' : ''}`,
      );
    }
    return result;
  } finally {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const bytes = Number(process.env.BENCH_BYTES ?? 1024 ** 3);
  benchExec({ runs, bytes, skipMemory: process.env.BENCH_SKIP_MEMORY === '1' }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
