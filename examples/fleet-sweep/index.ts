/**
 * Fleet sweep: plan every visible container across accounts × regions × clusters, put the
 * targets on SQS, let stateless workers acquire them into S3, and follow the sweep's report.
 *
 *   npx tsx examples/fleet-sweep/index.ts --local [--workers 2] [--pods 3]
 *       moto_server (SQS, S3, EKS, STS) + 4 FakeClusters in 2 regions on 127.0.0.1,
 *       N worker processes (examples/fleet-sweep/worker.ts), live progress, verified report
 *   npx tsx examples/fleet-sweep/index.ts --bucket B --queue-url URL --regions eu-west-1,us-east-1 \
 *       [--sweep-id ID] [--case IR-7] [--namespace shop] [--selector app=web]
 *       plans and enqueues against your AWS account; run workers (worker.ts / lambda.ts) elsewhere
 *
 * The last line of stdout is a JSON summary. Exit 0 when every target is finalized, complete and
 * verifies; 2 when some are partial, failed or dead-lettered; 1 on errors.
 * In your own project import from 'eks-forensics/fleet'.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  createSweepQueues,
  enqueueSweep,
  planSweep,
  type SweepReport,
  sweepReport,
  watchSweep,
} from '../../src/fleet/index.js';
import { ClusterCatalog } from '../../src/index.js';
import { FakeCluster, startMotoServer } from '../../src/testing/index.js';
import type { LocalConfig } from './config.js';

const { values } = parseArgs({
  options: {
    local: { type: 'boolean', default: false },
    workers: { type: 'string', default: '2' },
    pods: { type: 'string', default: '3' },
    bucket: { type: 'string' },
    'queue-url': { type: 'string' },
    regions: { type: 'string' },
    'sweep-id': { type: 'string' },
    case: { type: 'string' },
    namespace: { type: 'string', multiple: true },
    selector: { type: 'string' },
  },
});

const say = (m: string) => process.stderr.write(`${m}\n`);
const CREDS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'local-secret' };
const ACCOUNT = '123456789012';
const LOCAL_CLUSTERS = [
  { name: 'prod-a', region: 'us-east-1' },
  { name: 'prod-b', region: 'us-east-1' },
  { name: 'prod-c', region: 'eu-west-1' },
  { name: 'prod-d', region: 'eu-west-1' },
];

function line(r: SweepReport): string {
  const c = r.counts;
  return `progress: ${c.finalized}/${r.targets.length} finalized, ${c.running} running, ${c.retrying} retrying, ${c.pending} pending, ${c['dead-lettered']} dead-lettered, ${r.bytes} bytes`;
}

async function local(): Promise<number> {
  const workers = Number(values.workers);
  const podsPer = Number(values.pods);
  const moto = await startMotoServer();
  const clusters: FakeCluster[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'eksf-fleet-example-'));
  try {
    say(`local: moto_server at ${moto.endpoint}`);
    const s3 = new S3Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: CREDS,
    });
    const sqs = new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: CREDS });
    const bucket = 'fleet-evidence';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const q = await createSweepQueues({
      client: sqs,
      name: 'fleet-sweep',
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 5,
    });
    const map: LocalConfig['clusters'] = {};
    for (const c of LOCAL_CLUSTERS) {
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
              arn: `arn:aws:iam::${ACCOUNT}:user/responder`,
              username: 'responder',
              groups: ['system:masters'],
            },
          ],
        },
      });
      for (let i = 0; i < podsPer; i++) {
        await fc.addPod({
          namespace: i % 2 ? 'shop' : 'default',
          name: `web-${i}`,
          labels: { app: 'web' },
          containers: [
            { name: 'app', image: 'nginx:1.27', logs: { current: `GET / 200 (${c.name} web-${i})\n` } },
          ],
        });
      }
      await fc.addPod({
        namespace: 'kube-system',
        name: 'coredns',
        containers: [{ name: 'coredns', image: 'coredns:1.11' }],
      });
      clusters.push(fc);
      map[c.name] = { endpoint: fc.server, caData: fc.caData };
      say(`local: EKS cluster ${c.name} (${c.region}) → FakeCluster ${fc.server}`);
    }
    const regions = [...new Set(LOCAL_CLUSTERS.map((c) => c.region))];
    const catalog = new ClusterCatalog({
      regions,
      credentials: CREDS,
      endpoints: { eks: moto.endpoint, sts: moto.endpoint },
    });
    const plan = await planSweep(catalog, {
      sweepId: values['sweep-id'] ?? 'sw-local',
      caseId: values.case ?? 'IR-LOCAL',
      ...(values.namespace ? { namespaces: values.namespace } : {}),
      ...(values.selector ? { labelSelector: values.selector } : {}),
      connect: (c) => map[c.name] && { endpoint: map[c.name]?.endpoint, caData: map[c.name]?.caData },
    });
    say(
      `plan: ${plan.targets.length} targets in ${LOCAL_CLUSTERS.length} clusters (kube-system hidden by the visibility policy), ${plan.problems.length} problems`,
    );
    const store = { client: s3, bucket };
    const enq = await enqueueSweep(plan, { queue: { client: sqs, queueUrl: q.queueUrl }, store });
    say(`enqueue: ${enq.sent} sent, ${enq.failed.length} refused; manifest ${enq.manifest}`);
    const localFile = join(dir, 'local.json');
    writeFileSync(
      localFile,
      JSON.stringify({
        moto: moto.endpoint,
        regions,
        credentials: CREDS,
        clusters: map,
      } satisfies LocalConfig),
    );
    const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
    const exits: Promise<{ id: number; code: number | null; summary?: unknown }>[] = [];
    for (let id = 1; id <= workers; id++) {
      const p = spawn(process.execPath, ['--import', 'tsx', worker], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          NODE_NO_WARNINGS: '1',
          EKSF_FLEET_LOCAL: localFile,
          SWEEP_QUEUE_URL: q.queueUrl,
          SWEEP_DLQ_URL: q.deadLetterQueueUrl,
          SWEEP_BUCKET: bucket,
          SWEEP_PROFILES: 'pod-state',
          SWEEP_VISIBILITY_SECONDS: '30',
          SWEEP_IDLE_EXIT_SECONDS: '3',
          SWEEP_WAIT_SECONDS: '1',
        },
      });
      let out = '';
      let summary: unknown;
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
          const l = out.slice(0, i);
          out = out.slice(i + 1);
          try {
            const e = JSON.parse(l) as {
              type: string;
              outcome?: string;
              acquisitionId?: string;
              summary?: unknown;
            };
            if (e.type === 'target-done') say(`worker ${id}: ${e.acquisitionId} ${e.outcome}`);
            if (e.type === 'exit') summary = e;
          } catch {
            // not an event
          }
        }
      });
      exits.push(new Promise((resolve) => p.once('exit', (code) => resolve({ id, code, summary }))));
    }
    say(`workers: ${workers} processes started`);
    const watching = (async () => {
      for await (const r of watchSweep({ store, sweepId: plan.sweepId, intervalMs: 1000 })) say(line(r));
    })();
    const done = await Promise.all(exits);
    await watching;
    const report = await sweepReport({ store, sweepId: plan.sweepId, verify: true });
    for (const t of report.targets) {
      process.stdout.write(
        `${t.state.padEnd(13)} ${(t.status ?? '-').padEnd(8)} ${t.verified ?? '-'} attempts=${t.attempts} ${t.key}\n`,
      );
    }
    const ok =
      report.done &&
      report.counts.finalized === report.targets.length &&
      report.targets.every((t) => t.verified === 'valid');
    process.stdout.write(
      `${JSON.stringify({
        sweepId: report.sweepId,
        targets: report.targets.length,
        counts: report.counts,
        statuses: report.statuses,
        bytes: report.bytes,
        problems: report.problems,
        workers: done.map((d) => ({ id: d.id, exit: d.code, ...(d.summary as object) })),
      })}\n`,
    );
    return !ok ? 1 : report.statuses.complete === report.targets.length ? 0 : 2;
  } finally {
    for (const c of clusters) await c.close();
    await moto.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function remote(): Promise<number> {
  const bucket = values.bucket;
  const queueUrl = values['queue-url'];
  const regions = values.regions?.split(',');
  if (!bucket || !queueUrl || !regions) {
    say('usage: --local, or --bucket B --queue-url URL --regions r1,r2 (see the header of this file)');
    return 1;
  }
  const catalog = new ClusterCatalog({ regions });
  const plan = await planSweep(catalog, {
    ...(values['sweep-id'] ? { sweepId: values['sweep-id'] } : {}),
    ...(values.case ? { caseId: values.case } : {}),
    ...(values.namespace ? { namespaces: values.namespace } : {}),
    ...(values.selector ? { labelSelector: values.selector } : {}),
  });
  for (const p of plan.problems) say(`not covered: ${p.where}: ${p.message}`);
  const store = { client: new S3Client({}), bucket };
  const enq = await enqueueSweep(plan, { queue: { client: new SQSClient({}), queueUrl }, store });
  process.stdout.write(
    `${JSON.stringify({ sweepId: plan.sweepId, targets: plan.targets.length, sent: enq.sent, failed: enq.failed, manifest: enq.manifest })}\n`,
  );
  return enq.failed.length ? 2 : 0;
}

try {
  process.exitCode = values.local ? await local() : await remote();
} catch (e) {
  say(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
