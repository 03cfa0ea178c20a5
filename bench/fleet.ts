/**
 * Fleet sweep throughput: N targets across 4 FakeClusters (2 regions, registered as EKS clusters
 * in moto_server), queue and store in moto (SQS + S3), 1, 2, 4 worker processes
 * (examples/fleet-sweep/worker.ts, `pod-state` profile, 2 targets per worker at once).
 *
 *   npx tsx bench/fleet.ts [targets=200] [workers=1,2,4]
 *
 * Wall time runs from spawning the workers to the last target committed; worker start-up (tsx +
 * SDK load) is reported apart. Per-worker cost = CPU seconds and peak RSS from each process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createSweepQueues, enqueueSweep, planSweep, sweepReport } from '../src/fleet/index.js';
import { ClusterCatalog } from '../src/index.js';
import { FakeCluster, startMotoServer } from '../src/testing/index.js';

const CREDS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'bench-secret' };
const ACCOUNT = '123456789012';
const CLUSTERS = [
  { name: 'bench-a', region: 'us-east-1' },
  { name: 'bench-b', region: 'us-east-1' },
  { name: 'bench-c', region: 'eu-west-1' },
  { name: 'bench-d', region: 'eu-west-1' },
];

/** One worker-count level. */
export interface FleetLevel {
  workers: number;
  targets: number;
  finalized: number;
  complete: number;
  wallMs: number;
  targetsPerMinute: number;
  medianStartupMs: number;
  cpuSecsPerWorker: number[];
  cpuMsPerTarget: number;
  peakRssMiBPerWorker: number[];
  outcomes: Record<string, number>;
}

/** Result of {@link benchFleet}. */
export interface FleetBench {
  targets: number;
  setupMs: number;
  levels: FleetLevel[];
}

interface WorkerRun {
  spawnedAt: number;
  startedAt?: number;
  lastDoneAt?: number;
  exit?: { cpuMs: number; maxRssKiB: number; summary: { outcomes: Record<string, number> } };
  done: Promise<void>;
}

export async function benchFleet(options: {
  targets: number;
  workers: readonly number[];
  log?: (l: string) => void;
}): Promise<FleetBench> {
  const log = options.log ?? (() => {});
  const t0 = Date.now();
  const moto = await startMotoServer();
  const clusters: FakeCluster[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'eksf-bench-fleet-'));
  try {
    const s3 = new S3Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: CREDS,
    });
    const sqs = new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: CREDS });
    const bucket = 'bench-fleet';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const map: Record<string, { endpoint: string; caData: string }> = {};
    for (const [i, c] of CLUSTERS.entries()) {
      const eks = new EKSClient({ region: c.region, endpoint: moto.endpoint, credentials: CREDS });
      await eks.send(
        new CreateClusterCommand({
          name: c.name,
          version: '1.31',
          roleArn: `arn:aws:iam::${ACCOUNT}:role/eks-cluster`,
          resourcesVpcConfig: { subnetIds: ['subnet-0a1b2c3d'], endpointPublicAccess: true },
        }),
      );
      eks.destroy();
      const fc = await FakeCluster.start({
        name: c.name,
        eks: {
          clusterName: c.name,
          principals: [
            {
              accessKeyId: CREDS.accessKeyId,
              arn: `arn:aws:iam::${ACCOUNT}:user/bench`,
              username: 'bench',
              groups: ['system:masters'],
            },
          ],
        },
      });
      const per =
        Math.floor(options.targets / CLUSTERS.length) + (i < options.targets % CLUSTERS.length ? 1 : 0);
      for (let p = 0; p < per; p++) {
        await fc.addPod({
          namespace: 'default',
          name: `pod-${p}`,
          containers: [
            {
              name: 'app',
              image: 'nginx:1.27',
              logs: { current: `line from ${c.name}/pod-${p}\n`.repeat(20) },
            },
          ],
        });
      }
      clusters.push(fc);
      map[c.name] = { endpoint: fc.server, caData: fc.caData };
    }
    const regions = [...new Set(CLUSTERS.map((c) => c.region))];
    const localFile = join(dir, 'local.json');
    writeFileSync(
      localFile,
      JSON.stringify({ moto: moto.endpoint, regions, credentials: CREDS, clusters: map }),
    );
    const catalog = new ClusterCatalog({
      regions,
      credentials: CREDS,
      endpoints: { eks: moto.endpoint, sts: moto.endpoint },
    });
    const setupMs = Date.now() - t0;
    const worker = fileURLToPath(new URL('../examples/fleet-sweep/worker.ts', import.meta.url));
    const levels: FleetLevel[] = [];
    for (const w of options.workers) {
      const sweepId = `bench-w${w}`;
      const q = await createSweepQueues({ client: sqs, name: `bench-w${w}`, visibilityTimeoutSeconds: 60 });
      const plan = await planSweep(catalog, {
        sweepId,
        connect: (c) => map[c.name] && { endpoint: map[c.name]?.endpoint, caData: map[c.name]?.caData },
      });
      const store = { client: s3, bucket };
      await enqueueSweep(plan, { queue: { client: sqs, queueUrl: q.queueUrl }, store });
      log(`fleet: ${plan.targets.length} targets enqueued; ${w} worker(s)`);
      const runs: WorkerRun[] = [];
      for (let i = 0; i < w; i++) {
        const run: WorkerRun = { spawnedAt: Date.now(), done: Promise.resolve() };
        const p = spawn(process.execPath, ['--import', 'tsx', worker], {
          stdio: ['ignore', 'pipe', 'ignore'],
          env: {
            ...process.env,
            NODE_NO_WARNINGS: '1',
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
            EKSF_FLEET_LOCAL: localFile,
            SWEEP_QUEUE_URL: q.queueUrl,
            SWEEP_DLQ_URL: q.deadLetterQueueUrl,
            SWEEP_BUCKET: bucket,
            SWEEP_PROFILES: 'pod-state',
            SWEEP_CONCURRENCY: '2',
            SWEEP_VISIBILITY_SECONDS: '60',
            SWEEP_IDLE_EXIT_SECONDS: '3',
            SWEEP_WAIT_SECONDS: '1',
          },
        });
        let buf = '';
        p.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          for (let j = buf.indexOf('\n'); j >= 0; j = buf.indexOf('\n')) {
            const l = buf.slice(0, j);
            buf = buf.slice(j + 1);
            try {
              const e = JSON.parse(l) as { type: string } & Record<string, unknown>;
              if (e.type === 'started') run.startedAt = Date.now();
              if (e.type === 'target-done') run.lastDoneAt = Date.now();
              if (e.type === 'exit') run.exit = e as unknown as WorkerRun['exit'];
            } catch {
              // not an event
            }
          }
        });
        run.done = new Promise((resolve) => p.once('exit', () => resolve()));
        runs.push(run);
      }
      await Promise.all(runs.map((r) => r.done));
      const first = Math.min(...runs.map((r) => r.spawnedAt));
      const last = Math.max(...runs.map((r) => r.lastDoneAt ?? r.spawnedAt));
      const report = await sweepReport({ store, sweepId });
      const cpu = runs.map((r) => (r.exit?.cpuMs ?? 0) / 1000);
      const startups = runs.map((r) => (r.startedAt ?? r.spawnedAt) - r.spawnedAt).sort((a, b) => a - b);
      const outcomes: Record<string, number> = {};
      for (const r of runs)
        for (const [k, v] of Object.entries(r.exit?.summary.outcomes ?? {}))
          outcomes[k] = (outcomes[k] ?? 0) + v;
      const level: FleetLevel = {
        workers: w,
        targets: plan.targets.length,
        finalized: report.counts.finalized,
        complete: report.statuses.complete,
        wallMs: last - first,
        targetsPerMinute: (report.counts.finalized / Math.max(1, last - first)) * 60_000,
        medianStartupMs: startups[Math.floor(startups.length / 2)] ?? 0,
        cpuSecsPerWorker: cpu.map((x) => Math.round(x * 10) / 10),
        cpuMsPerTarget: Math.round(
          (cpu.reduce((a, b) => a + b, 0) * 1000) / Math.max(1, report.counts.finalized),
        ),
        peakRssMiBPerWorker: runs.map((r) => Math.round((r.exit?.maxRssKiB ?? 0) / 1024)),
        outcomes,
      };
      log(
        `fleet: ${w} worker(s): ${level.finalized}/${level.targets} in ${(level.wallMs / 1000).toFixed(1)} s = ${level.targetsPerMinute.toFixed(0)} targets/min`,
      );
      levels.push(level);
    }
    return { targets: options.targets, setupMs, levels };
  } finally {
    for (const c of clusters) await c.close();
    await moto.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const targets = Number(process.argv[2] ?? 200);
  const workers = (process.argv[3] ?? '1,2,4').split(',').map(Number);
  const r = await benchFleet({ targets, workers, log: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify(r, null, 1)}\n`);
}
