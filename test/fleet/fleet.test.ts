/**
 * Fleet sweep against moto_server (SQS with visibility timeout and redrive, S3, EKS, STS) and
 * FakeClusters reached with EKS tokens: plan → enqueue → worker processes → report.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvidence } from '../../src/evidence/index.js';
import {
  AttemptRecordSchema,
  createSweepQueues,
  enqueueSweep,
  planSweep,
  processSweepMessage,
  runSweepWorker,
  type SweepPlan,
  type SweepWorkerOptions,
  sweepReport,
  sweepTarget,
} from '../../src/fleet/index.js';
import { type FakeCluster, motoServerMissing, startMotoServer } from '../../src/testing/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  catalogFor,
  connectorFor,
  createBucket,
  type FleetConfig,
  s3For,
  sqsFor,
  startClusters,
  testProfile,
} from './support.js';

const child = new URL('./worker-child.ts', import.meta.url).pathname;
const BUCKET = 'fleet-evidence';

async function objectKeys(s3: S3Client, prefix: string): Promise<string[]> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) if (o.Key) out.push(o.Key);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Finalized bundles (those with a manifest.json) per target acquisition id. */
async function finalizedBundles(s3: S3Client, sweepId: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const k of await objectKeys(s3, `sweeps/${sweepId}/bundles/`)) {
    const m = /bundles\/(.+)\.a(\d+)\/manifest\.json$/.exec(k);
    if (!m?.[1]) continue;
    out.set(m[1], [...(out.get(m[1]) ?? []), `a${m[2]}`]);
  }
  return out;
}

async function getText(s3: S3Client, key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await r.Body?.transformToString('utf8')) ?? '';
}

interface ChildRun {
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
  kill(sig: NodeJS.Signals): void;
  waitFor(pred: (e: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown>>;
}

function startWorker(configFile: string, id: string, args: string[] = []): ChildRun {
  const p = spawn(process.execPath, ['--import', 'tsx', child, configFile, id, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, unknown>[] = [];
  const waiters: { pred: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const e = JSON.parse(line) as Record<string, unknown>;
        events.push(e);
        for (const w of [...waiters]) if (w.pred(e)) w.resolve(e);
      } catch {
        // not an event
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  return {
    events,
    exited,
    kill: (sig) => p.kill(sig),
    waitFor(pred, ms) {
      const hit = events.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`worker ${id}: no matching event in ${ms} ms; stderr: ${err}`)), ms);
        waiters.push({
          pred,
          resolve: (e) => {
            clearTimeout(t);
            resolve(e);
          },
        });
      });
    },
  };
}

describe.skipIf(skipWithoutPeer('moto_server', motoServerMissing()))('fleet sweep on moto SQS + S3', () => {
  let moto: { endpoint: string; close(): Promise<void> };
  let s3: S3Client;
  let sqs: SQSClient;
  let clusters: FakeCluster[] = [];
  let cfg: FleetConfig;
  let dir: string;
  let configFile: string;
  let queueSeq = 0;

  const newQueues = async (maxReceiveCount = 5) => {
    const q = await createSweepQueues({ client: sqs, name: `sweep-${queueSeq++}`, visibilityTimeoutSeconds: 6, maxReceiveCount });
    return q;
  };
  const workerOptions = (over: Partial<SweepWorkerOptions> = {}): SweepWorkerOptions => ({
    queue: { client: sqs, queueUrl: cfg.queueUrl },
    deadLetterQueue: { client: sqs, queueUrl: cfg.dlqUrl },
    store: { client: s3, bucket: BUCKET },
    connect: connectorFor(cfg),
    profiles: [testProfile],
    visibilityTimeoutSeconds: 6,
    heartbeatSeconds: 1,
    waitTimeSeconds: 1,
    idleExitSeconds: 2,
    maxReceives: 3,
    retryDelaySeconds: () => 1,
    ...over,
  });
  const plan = (sweepId: string, extra: Parameters<typeof planSweep>[1] = {}): Promise<SweepPlan> =>
    planSweep(catalogFor(cfg), {
      sweepId,
      caseId: 'IR-fleet',
      connect: (c) => {
        const fc = cfg.clusters[c.name];
        return fc ? { endpoint: fc.endpoint, caData: fc.caData } : undefined;
      },
      ...extra,
    });

  beforeAll(async () => {
    moto = await startMotoServer();
    s3 = s3For(moto.endpoint);
    sqs = sqsFor(moto.endpoint);
    await createBucket(s3, BUCKET);
    const started = await startClusters(moto.endpoint, [
      {
        name: 'alpha',
        region: 'us-east-1',
        pods: [
          { name: 'web', containers: ['app', 'sidecar'], labels: { tier: 'web' } },
          { name: 'slow', slowMs: 20_000, labels: { tier: 'batch' } },
        ],
      },
      { name: 'beta', region: 'eu-west-1', pods: [{ name: 'api', labels: { tier: 'web' } }, { name: 'db', namespace: 'data' }] },
    ]);
    clusters = started.clusters;
    dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'eksf-fleet-'));
    const q = await newQueues();
    cfg = {
      moto: moto.endpoint,
      bucket: BUCKET,
      queueUrl: q.queueUrl,
      dlqUrl: q.deadLetterQueueUrl,
      regions: ['us-east-1', 'eu-west-1'],
      clusters: started.map,
      downFile: join(dir, 'down.json'),
    };
    writeFileSync(cfg.downFile ?? '', '[]');
    configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(cfg));
  }, 60_000);

  afterAll(async () => {
    for (const c of clusters) await c.close();
    await moto?.close();
  });

  it('plans deterministic acquisition ids from the catalog, with label and namespace filters', async () => {
    const a = await plan('sw-plan');
    expect(a.problems).toEqual([]);
    expect(a.targets.map((t) => t.key)).toEqual([
      `123456789012/eu-west-1/beta/data/db/app`,
      `123456789012/eu-west-1/beta/default/api/app`,
      `123456789012/us-east-1/alpha/default/slow/app`,
      `123456789012/us-east-1/alpha/default/web/app`,
      `123456789012/us-east-1/alpha/default/web/sidecar`,
    ]);
    const b = await plan('sw-plan');
    expect(b.targets.map((t) => t.acquisitionId)).toEqual(a.targets.map((t) => t.acquisitionId));
    expect(new Set(a.targets.map((t) => t.acquisitionId)).size).toBe(5);
    const other = await plan('sw-other');
    expect(other.targets[0]?.acquisitionId).not.toBe(a.targets[0]?.acquisitionId);
    const web = await plan('sw-plan', { labelSelector: 'tier=web', regions: ['us-east-1'] });
    expect(web.targets.map((t) => `${t.pod}/${t.container}`)).toEqual(['web/app', 'web/sidecar']);
    const data = await plan('sw-plan', { namespaces: ['data'] });
    expect(data.targets.map((t) => t.pod)).toEqual(['db']);
  }, 60_000);

  it('SIGKILL mid-target: the message reappears, another worker completes it, one finalized bundle per id', async () => {
    const p = await plan('sw-kill');
    const q = await newQueues();
    const c2 = { ...cfg, queueUrl: q.queueUrl, dlqUrl: q.deadLetterQueueUrl };
    const file = join(dir, 'kill.json');
    writeFileSync(file, JSON.stringify(c2));
    const enq = await enqueueSweep(p, { queue: { client: sqs, queueUrl: q.queueUrl }, store: { client: s3, bucket: BUCKET } });
    expect(enq).toMatchObject({ sent: 5, failed: [] });
    const slow = p.targets.find((t) => t.pod === 'slow');
    if (!slow) throw new Error('no slow target');
    // A takes everything one at a time and is killed while it holds the slow target
    const a = startWorker(file, 'A', ['1', '30']);
    await a.waitFor((e) => e.type === 'target-started' && e.acquisitionId === slow.acquisitionId, 40_000);
    a.kill('SIGKILL');
    await a.exited;
    const mid = await sweepReport({ store: { client: s3, bucket: BUCKET }, sweepId: 'sw-kill' });
    expect(mid.outstanding).toContain(slow.acquisitionId);
    // B and C share the rest; the slow target's message comes back after the visibility timeout
    const b = startWorker(file, 'B', ['2', '12']);
    const c = startWorker(file, 'C', ['2', '12']);
    const done = await b.waitFor((e) => e.type === 'target-done' && e.acquisitionId === slow.acquisitionId, 60_000).catch(() =>
      c.waitFor((e) => e.type === 'target-done' && e.acquisitionId === slow.acquisitionId, 1),
    );
    expect(done.outcome).toBe('finalized');
    expect(done.attempt).toBe(2);
    b.kill('SIGTERM');
    c.kill('SIGTERM');
    await Promise.all([b.exited, c.exited]);
    const report = await sweepReport({ store: { client: s3, bucket: BUCKET }, sweepId: 'sw-kill', verify: true });
    expect(report.done).toBe(true);
    expect(report.counts.finalized).toBe(5);
    expect(report.problems).toEqual([]);
    expect(report.targets.every((t) => t.verified === 'valid')).toBe(true);
    const slowReport = report.targets.find((t) => t.acquisitionId === slow.acquisitionId);
    expect(slowReport).toMatchObject({ state: 'finalized', attempts: 2, status: 'complete' });
    // exactly one finalized bundle per acquisition id; the killed attempt's bundle is incomplete
    const bundles = await finalizedBundles(s3, 'sw-kill');
    expect(bundles.size).toBe(5);
    for (const [, list] of bundles) expect(list.length).toBe(1);
    expect(bundles.get(slow.acquisitionId)).toEqual(['a2']);
    const first = await verifyEvidence({ s3: { client: s3, bucket: BUCKET, prefix: `sweeps/sw-kill/bundles/${slow.acquisitionId}.a1/` } });
    expect(first.status).toBe('incomplete');
    const a1 = AttemptRecordSchema.parse(JSON.parse(await getText(s3, `sweeps/sw-kill/targets/${slow.acquisitionId}/attempt-1.json`)));
    expect(a1).toMatchObject({ state: 'interrupted', worker: 'A' });
    // custody of the second attempt links the interrupted first one
    const custody = JSON.parse(await getText(s3, `sweeps/sw-kill/bundles/${slow.acquisitionId}.a2/custody.json`)) as { notes?: string; acquisitionId: string };
    expect(custody.acquisitionId).toBe(`${slow.acquisitionId}.a2`);
    expect(custody.notes).toContain(`"previousAttempts":[{"bundleId":"${slow.acquisitionId}.a1"`);
    expect(custody.notes).toContain('"state":"interrupted"');
  }, 150_000);
});
