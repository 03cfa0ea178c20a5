/**
 * Collector figures, on the sandbox runtime of FakeCluster (real processes, exec over WebSocket):
 *
 * FakeCluster and its sandbox containers run in a child process (the "cluster"); the collector runs
 * in this process (or a child of its own for RSS), as it would against a remote API server.
 *
 * 1. `triage` of one busybox container end to end: wall time (median), bytes stored, peak RSS of
 *    the collector process (client only).
 * 2. 50 containers acquired with concurrency 1 vs 8: wall times and the speed-up ratio.
 * 3. A 1 GiB file artifact through exec → tar stream → hash → DirectorySink, as a ratio against
 *    `cat file | openssl dgst -sha256` over a same-size file on the same machine in the same run.
 *
 * Needs root, bwrap, busybox and nsenter (the sandbox runtime). Run alone:
 * `npx tsx bench/collect.ts [runs] [containers]`.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type AcquisitionTarget, ArtifactCollector, DirectorySink, KubeClient } from '../src/index.js';
import { FakeCluster } from '../src/testing/index.js';
import { createSandboxRuntime, hostileProcesses } from '../src/testing/sandbox/index.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

/** What {@link benchCollect} returns. */
export interface CollectBenchResult {
  /** Triage of one container. */
  triage: {
    runs: number;
    medianMs: number;
    runsMs: number[];
    bytes: number;
    artifacts: number;
    /** Peak RSS of the collector process over the runs. */
    peakRssMiB: number;
    /** Peak RSS right after loading the library (tsx + AWS SDK + zod), before any acquisition. */
    baselineRssMiB: number;
  };
  /** Many containers, concurrency 1 vs 8. */
  scale: { containers: number; c1Ms: number; c8Ms: number; speedup: number; allComplete: boolean };
  /** 1 GiB file artifact vs `cat | openssl dgst -sha256`. */
  bigFile: {
    bytes: number;
    runs: number;
    collectorMedianMs: number;
    collectorMiBPerSec: number;
    opensslMedianMs: number;
    opensslMiBPerSec: number;
    /** opensslMedianMs / collectorMedianMs: 1.0 means as fast as the local pipe. */
    ratioToOpenssl: number;
    /** Peer of goal 5: `KubeClient.exec(['cat', file])` → SHA-256, same cluster, same file, same rounds. */
    rawExecMedianMs: number;
    rawExecMiBPerSec: number;
    /** rawExecMedianMs / collectorMedianMs (goal ≥ 0.8). */
    ratioToRawExec: number;
    sha256Matches: boolean;
  };
}

interface Conn {
  server: string;
  caData: string;
  token: string;
}

/** FakeCluster + sandbox in a child process, so client figures are not mixed with the server's work. */
class ClusterChild {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  readonly #waiters: ((l: string) => void)[] = [];
  constructor() {
    this.#child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--cluster-child'],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    ) as unknown as ChildProcessWithoutNullStreams;
    let buf = '';
    this.#child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = this.#waiters.shift();
        if (w) w(line);
        else this.#lines.push(line);
      }
    });
  }
  #next(): Promise<string> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((r) => this.#waiters.push(r));
  }
  async conn(): Promise<Conn> {
    return JSON.parse(await this.#next()) as Conn;
  }
  async addPod(spec: unknown): Promise<void> {
    this.#child.stdin.write(`${JSON.stringify({ op: 'addPod', spec })}\n`);
    const r = JSON.parse(await this.#next()) as { ok: boolean; error?: string };
    if (!r.ok) throw new Error(`addPod failed: ${r.error}`);
  }
  async close(): Promise<void> {
    this.#child.stdin.end(`${JSON.stringify({ op: 'close' })}\n`);
    await new Promise((r) => this.#child.on('close', r));
  }
}

async function clusterChild(): Promise<void> {
  const sandbox = await createSandboxRuntime();
  const cluster = await FakeCluster.start({ runtimes: { sandbox } });
  process.stdout.write(
    `${JSON.stringify({ server: cluster.server, caData: cluster.caData, token: cluster.adminToken })}\n`,
  );
  let buf = '';
  let queue = Promise.resolve();
  process.stdin.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const msg = JSON.parse(buf.slice(0, i)) as { op: string; spec?: Parameters<FakeCluster['addPod']>[0] };
      buf = buf.slice(i + 1);
      queue = queue.then(async () => {
        if (msg.op === 'close') {
          await cluster.close();
          process.exit(0);
        }
        try {
          await cluster.addPod(msg.spec as Parameters<FakeCluster['addPod']>[0]);
          process.stdout.write('{"ok":true}\n');
        } catch (err) {
          process.stdout.write(`${JSON.stringify({ ok: false, error: String(err) })}\n`);
        }
      });
    }
  });
}

let seq = 0;
async function addPod(
  cluster: ClusterChild,
  files: Record<string, unknown> = {},
  processes = false,
): Promise<{ namespace: string; pod: string; container: string }> {
  const pod = `bench-${process.pid}-${seq++}`;
  await cluster.addPod({
    namespace: 'bench',
    name: pod,
    containers: [
      {
        name: 'app',
        image: 'busybox:1.36',
        runtime: 'sandbox',
        command: ['sleep', '86400'],
        options: { preset: 'busybox', files, ...(processes ? { processes: hostileProcesses() } : {}) },
      },
    ],
  });
  return { namespace: 'bench', pod, container: 'app' };
}

const kubeOf = (c: Conn) =>
  new KubeClient({ server: c.server, caData: c.caData, token: c.token, timeoutMs: 60_000 });

const compromise = {
  '/tmp/.x/xmrig': { content: `\x7fELF${'M'.repeat(500_000)}`, executable: true },
  '/root/.ssh/authorized_keys': { content: 'ssh-ed25519 AAAA attacker\n' },
  '/etc/ld.so.preload': { content: '/usr/lib/libprocesshider.so\n' },
  '/etc/crontabs/root': { content: '* * * * * /tmp/.x/xmrig\n' },
  '/var/log/nginx/access.log': { type: 'symlink', target: '/dev/stdout' },
  '/var/log/app/app.log': { content: 'log line\n'.repeat(50_000) },
};

/** Child mode: triage runs against the cluster child, prints JSON with this client's peak RSS. */
async function triageChild(runs: number): Promise<void> {
  const conn = JSON.parse(process.env.EKSF_BENCH_CONN ?? '{}') as Conn;
  const targets = JSON.parse(process.env.EKSF_BENCH_TARGETS ?? '[]') as {
    namespace: string;
    pod: string;
    container: string;
  }[];
  const kube = kubeOf(conn);
  const baselineRssMiB = process.resourceUsage().maxRSS / 1024;
  const root = await mkdtemp(join(tmpdir(), 'eksf-bench-triage-'));
  try {
    const runsMs: number[] = [];
    let bytes = 0;
    let artifacts = 0;
    for (let i = 0; i < runs; i++) {
      const t = targets[i % targets.length];
      if (!t) throw new Error('no target');
      const collector = new ArtifactCollector({ sink: new DirectorySink({ root }), profiles: ['triage'] });
      const t0 = performance.now();
      const report = await collector.acquire({ kube, ...t });
      runsMs.push(performance.now() - t0);
      const r = report.targets[0];
      bytes = r?.bytes ?? 0;
      artifacts = (r?.artifacts.complete ?? 0) + (r?.artifacts.truncated ?? 0);
      if (r?.status !== 'complete') throw new Error(`triage not complete: ${JSON.stringify(r?.reasons)}`);
    }
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(`${JSON.stringify({ runsMs, bytes, artifacts, peakRssMiB, baselineRssMiB })}\n`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function triageFigures(
  cluster: ClusterChild,
  conn: Conn,
  runs: number,
): Promise<CollectBenchResult['triage']> {
  const targets = [];
  for (let i = 0; i < runs; i++) targets.push(await addPod(cluster, compromise, true));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--triage-child', String(runs)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        EKSF_BENCH_CONN: JSON.stringify(conn),
        EKSF_BENCH_TARGETS: JSON.stringify(targets),
      },
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`triage child failed (${code})`);
  const j = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
    runsMs: number[];
    bytes: number;
    artifacts: number;
    peakRssMiB: number;
    baselineRssMiB: number;
  };
  return {
    runs,
    medianMs: Math.round(median(j.runsMs)),
    runsMs: j.runsMs.map(Math.round),
    bytes: j.bytes,
    artifacts: j.artifacts,
    peakRssMiB: Math.round(j.peakRssMiB),
    baselineRssMiB: Math.round(j.baselineRssMiB),
  };
}

async function scaleFigures(
  cluster: ClusterChild,
  conn: Conn,
  root: string,
  containers: number,
): Promise<CollectBenchResult['scale']> {
  const kube = kubeOf(conn);
  const targets: AcquisitionTarget[] = [];
  for (let i = 0; i < containers; i++) targets.push({ kube, ...(await addPod(cluster, compromise)) });
  const timeIt = async (concurrency: number) => {
    const collector = new ArtifactCollector({
      sink: new DirectorySink({ root, fsyncArtifacts: false }),
      profiles: ['triage'],
      concurrency,
    });
    const t0 = performance.now();
    const report = await collector.acquire(targets);
    return { ms: performance.now() - t0, complete: report.status === 'complete' };
  };
  const c8 = await timeIt(8);
  const c1 = await timeIt(1);
  return {
    containers,
    c1Ms: Math.round(c1.ms),
    c8Ms: Math.round(c8.ms),
    speedup: Number((c1.ms / c8.ms).toFixed(2)),
    allComplete: c1.complete && c8.complete,
  };
}

async function bigFileFigures(
  cluster: ClusterChild,
  conn: Conn,
  root: string,
  runs: number,
): Promise<CollectBenchResult['bigFile']> {
  const bytes = GiB;
  const kube = kubeOf(conn);
  // same content on both sides: 1 GiB of zeros (sparse) behind a marker
  const marker = 'eks-forensics bench marker\n';
  const t = await addPod(cluster, {
    '/data/big.img': { type: 'sparse', size: bytes, data: [{ offset: 0, content: marker }] },
  });
  const hostFile = join(root, 'big.img');
  await writeFile(hostFile, marker);
  await truncate(hostFile, bytes);
  const profile = {
    name: 'big-file',
    description: 'one large file',
    items: [{ id: 'big', kind: 'file' as const, paths: ['/data/big.img'], maxFileSize: '2GB' }],
  };
  const collectorMs: number[] = [];
  const opensslMs: number[] = [];
  const rawMs: number[] = [];
  let rawSha = '';
  let sha = '';
  let collectedSha: string | undefined;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const { stdout } = await run('sh', ['-c', 'cat "$1" | openssl dgst -sha256', 'sh', hostFile], {
      maxBuffer: MiB,
    });
    opensslMs.push(performance.now() - t0);
    sha = stdout.trim().split(/\s+/).pop() ?? '';
    const t2 = performance.now();
    const s = await kube.exec({
      ...t,
      command: process.env.X_RAWCMD ? JSON.parse(process.env.X_RAWCMD) : ['cat', '/data/big.img'],
      stdout: true,
      stderr: false,
    });
    const h = createHash('sha256');
    for await (const c of s.stdout) h.update(c as Buffer);
    await s.result;
    rawSha = h.digest('hex');
    rawMs.push(performance.now() - t2);
    const collector = new ArtifactCollector({
      sink: new DirectorySink({ root, fsyncArtifacts: false }),
      profiles: [profile],
      limits: { maxArtifactBytes: 2 * GiB },
    });
    const t1 = performance.now();
    const report = await collector.acquire({ kube, ...t });
    collectorMs.push(performance.now() - t1);
    const loc = report.targets[0]?.location as string;
    const idx = JSON.parse(await readFile(join(loc, 'containers/app/files/index.json'), 'utf8')) as {
      files: { path: string; sha256?: string }[];
    };
    collectedSha = idx.files.find((f) => f.path === '/data/big.img')?.sha256;
    await rm(loc, { recursive: true, force: true });
  }
  await rm(hostFile, { force: true });
  const cm = median(collectorMs);
  const om = median(opensslMs);
  return {
    bytes,
    runs,
    collectorMedianMs: Math.round(cm),
    collectorMiBPerSec: Math.round(bytes / MiB / (cm / 1000)),
    opensslMedianMs: Math.round(om),
    opensslMiBPerSec: Math.round(bytes / MiB / (om / 1000)),
    ratioToOpenssl: Number((om / cm).toFixed(3)),
    rawExecMedianMs: Math.round(median(rawMs)),
    rawExecMiBPerSec: Math.round(bytes / MiB / (median(rawMs) / 1000)),
    ratioToRawExec: Number((median(rawMs) / cm).toFixed(3)),
    sha256Matches: collectedSha === sha && rawSha === sha,
  };
}

/** Runs the collector benchmarks and returns the figures (needs the sandbox runtime). */
export async function benchCollect(
  opts: { runs?: number; containers?: number } = {},
): Promise<CollectBenchResult> {
  const runs = opts.runs ?? 3;
  const cluster = new ClusterChild();
  const root = await mkdtemp(join(tmpdir(), 'eksf-bench-collect-'));
  try {
    const conn = await cluster.conn();
    // EKSF_BENCH_COLLECT_ONLY=bigfile measures the big file alone (for profiling it)
    const only = process.env.EKSF_BENCH_COLLECT_ONLY;
    const bigFile = await bigFileFigures(cluster, conn, root, runs);
    if (only === 'bigfile') return { bigFile } as CollectBenchResult;
    const triage = await triageFigures(cluster, conn, runs);
    const scale = await scaleFigures(cluster, conn, root, opts.containers ?? 50);
    return { triage, scale, bigFile };
  } finally {
    await cluster.close();
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--cluster-child') {
    clusterChild().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  } else if (process.argv[2] === '--triage-child') {
    triageChild(Number(process.argv[3] ?? 3)).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  } else {
    benchCollect({ runs: Number(process.argv[2] ?? 3), containers: Number(process.argv[3] ?? 50) })
      .then((r) => console.log(JSON.stringify(r, null, 2)))
      .catch((err: unknown) => {
        console.error(err);
        process.exit(1);
      });
  }
}
