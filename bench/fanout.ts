/**
 * Fan-out benchmark: triage of N containers (default 100) with the collector's concurrency at 1,
 * 4, 8 and 16 — wall time, per-target time, throughput — and the cost of signing EKS tokens.
 *
 * FakeCluster with the sandbox runtime runs in a child process (so the API server's work is not
 * on the collector's event loop); the collector authenticates with an EKS token from `EksAuth`
 * (static fake credentials, mapped by FakeCluster), like against EKS. Every level writes to a
 * fresh DirectorySink (default options: artifacts fsynced) which is deleted afterwards.
 *
 * Run alone: `npx tsx bench/fanout.ts [containers] [levels, e.g. 1,4,8,16]` (root + bwrap).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ArtifactCollector, DirectorySink, EksAuth, KubeClient } from '../src/index.js';
import { createSandboxRuntime, FakeCluster } from '../src/testing/index.js';

const CREDS = { accessKeyId: 'AKIABENCHFANOUT00001', secretAccessKey: 'bench-secret-not-real' };
const CLUSTER = 'bench-fanout';

/** One concurrency level. */
export interface FanoutLevel {
  concurrency: number;
  /** Wall time of the whole `acquire()`, ms. */
  wallMs: number;
  /** wallMs / containers: the cost of one more container at this concurrency, ms. */
  wallPerTargetMs: number;
  /** Median time one target took from start to finish, ms (grows with contention). */
  medianTargetMs: number;
  /** 95th percentile of the per-target time, ms. */
  p95TargetMs: number;
  /** Targets per second. */
  targetsPerSec: number;
  /** Speed-up against concurrency 1 (or the lowest level measured). */
  speedup: number;
  complete: number;
  notComplete: number;
  bytes: number;
  artifacts: number;
}

/** What {@link benchFanout} returns. */
export interface FanoutBenchResult {
  containers: number;
  profile: 'triage';
  levels: FanoutLevel[];
  /** Starting the N sandbox containers (not part of any level), ms. */
  startMs: number;
  /** EKS token signing (SigV4 presign of sts:GetCallerIdentity, no network). */
  tokens: {
    /** Fresh signatures per second on one core (cache invalidated every time). */
    signedPerSec: number;
    /** Microseconds per fresh signature. */
    microsPerToken: number;
    /** Cached `getToken()` calls per second (what every API request of a KubeClient costs). */
    cachedPerSec: number;
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
};

/** Signs tokens for `ms` milliseconds, fresh and cached. */
async function tokenFigures(ms = 1500): Promise<FanoutBenchResult['tokens']> {
  const auth = new EksAuth({ region: 'us-east-1', credentials: CREDS });
  const target = { clusterName: CLUSTER };
  await auth.getToken(target); // warm up
  let n = 0;
  let t0 = performance.now();
  while (performance.now() - t0 < ms) {
    auth.invalidate(target);
    await auth.getToken(target);
    n++;
  }
  const fresh = n / ((performance.now() - t0) / 1000);
  n = 0;
  t0 = performance.now();
  while (performance.now() - t0 < ms / 3) {
    await auth.getToken(target);
    n++;
  }
  const cached = n / ((performance.now() - t0) / 1000);
  return {
    signedPerSec: Math.round(fresh),
    microsPerToken: Math.round(1e6 / fresh),
    cachedPerSec: Math.round(cached),
  };
}

interface Conn {
  server: string;
  caData: string;
  startMs: number;
}

/** The FakeCluster child: starts N sandbox pods, prints the connection, exits when stdin closes. */
async function clusterChild(containers: number): Promise<void> {
  const sandbox = await createSandboxRuntime();
  const cluster = await FakeCluster.start({
    runtimes: { sandbox },
    eks: {
      clusterName: CLUSTER,
      principals: [
        {
          accessKeyId: CREDS.accessKeyId,
          arn: 'arn:aws:iam::123456789012:user/bench',
          username: 'bench',
          groups: ['system:masters'],
        },
      ],
    },
  });
  const t0 = performance.now();
  const names = Array.from({ length: containers }, (_, i) => `web-${String(i).padStart(3, '0')}`);
  for (let i = 0; i < names.length; i += 10) {
    await Promise.all(
      names.slice(i, i + 10).map((name) =>
        cluster.addPod({
          namespace: 'bench',
          name,
          containers: [
            {
              name: 'app',
              image: 'busybox:1.36',
              runtime: 'sandbox',
              command: ['sleep', '86400'],
              options: {
                preset: 'busybox',
                files: {
                  '/etc/crontabs/root': { content: '*/5 * * * * /usr/local/bin/rotate\n' },
                  '/root/.ssh/authorized_keys': {
                    content: 'ssh-ed25519 AAAAC3Nza bench@example\n',
                    mode: 0o600,
                  },
                  '/var/log/app/app.log': { content: 'GET / 200\n'.repeat(2000) },
                },
              },
              logs: { current: 'GET / 200\n'.repeat(200) },
            },
          ],
        }),
      ),
    );
  }
  const startMs = Math.round(performance.now() - t0);
  process.stdout.write(`${JSON.stringify({ server: cluster.server, caData: cluster.caData, startMs })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    void cluster.close().finally(() => process.exit(0));
  });
}

function startChild(containers: number): Promise<{ conn: Conn; child: ChildProcessWithoutNullStreams }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--cluster-child', String(containers)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  ) as unknown as ChildProcessWithoutNullStreams;
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve({ conn: JSON.parse(buf.slice(0, i)) as Conn, child });
    });
    child.on('exit', (code) => reject(new Error(`cluster child exited with ${code} before it was ready`)));
  });
}

/**
 * Triage of `containers` sandbox containers at each concurrency level, plus token signing cost.
 * Needs the sandbox runtime (root, bwrap, busybox-static, nsenter).
 */
export async function benchFanout(
  opts: { containers?: number; levels?: number[]; log?: (line: string) => void } = {},
): Promise<FanoutBenchResult> {
  const containers = opts.containers ?? 100;
  const levels = opts.levels ?? [1, 4, 8, 16];
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const tokens = await tokenFigures();
  log(`fanout: EKS token signing ${tokens.signedPerSec}/s fresh, ${tokens.cachedPerSec}/s cached`);
  log(`fanout: starting ${containers} sandbox containers…`);
  const { conn, child } = await startChild(containers);
  const out: FanoutLevel[] = [];
  try {
    const auth = new EksAuth({ region: 'us-east-1', credentials: CREDS });
    const kube = new KubeClient({
      server: conn.server,
      caData: conn.caData,
      token: async () => (await auth.getToken({ clusterName: CLUSTER })).token,
      timeoutMs: 60_000,
    });
    const targets = Array.from({ length: containers }, (_, i) => ({
      kube,
      namespace: 'bench',
      pod: `web-${String(i).padStart(3, '0')}`,
      container: 'app',
    }));
    for (const concurrency of levels) {
      const dir = await mkdtemp(join(tmpdir(), 'eksf-bench-fanout-'));
      try {
        const collector = new ArtifactCollector({
          sink: new DirectorySink({ root: dir }),
          profiles: ['triage'],
          concurrency,
        });
        const t0 = performance.now();
        const report = await collector.acquire(targets);
        const wallMs = performance.now() - t0;
        const per = report.targets.map((t) => Date.parse(t.finishedAt) - Date.parse(t.startedAt));
        const complete = report.targets.filter((t) => t.status === 'complete').length;
        const level: FanoutLevel = {
          concurrency,
          wallMs: Math.round(wallMs),
          wallPerTargetMs: Math.round(wallMs / containers),
          medianTargetMs: Math.round(median(per)),
          p95TargetMs: Math.round(pct(per, 95)),
          targetsPerSec: Number((containers / (wallMs / 1000)).toFixed(2)),
          speedup: 1,
          complete,
          notComplete: containers - complete,
          bytes: report.bytes,
          artifacts: report.targets.reduce((n, t) => n + t.artifacts.complete, 0),
        };
        level.speedup = Number(((out[0]?.wallMs ?? level.wallMs) / level.wallMs).toFixed(2));
        out.push(level);
        log(
          `fanout: concurrency ${concurrency}: ${(wallMs / 1000).toFixed(1)} s wall, ${level.wallPerTargetMs} ms/target, median target ${level.medianTargetMs} ms, ${complete}/${containers} complete`,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    child.stdin.end();
    await new Promise((r) => child.once('close', r));
  }
  return { containers, profile: 'triage', levels: out, startMs: conn.startMs, tokens };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv[2] === '--cluster-child') {
    clusterChild(Number(process.argv[3] ?? 100)).catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    });
  } else {
    const levels = process.argv[3]?.split(',').map(Number);
    benchFanout({ containers: Number(process.argv[2] ?? 100), levels })
      .then((r) => console.log(JSON.stringify(r, null, 2)))
      .catch((err: unknown) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
      });
  }
}
