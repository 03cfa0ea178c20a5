/**
 * Fleet sweep against moto_server (SQS with visibility timeout and redrive, S3, EKS, STS) and
 * FakeClusters reached with EKS tokens: plan → enqueue → worker processes → report.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
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
  ACCOUNT as ACCOUNT_ID,
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
    const r = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
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
  const waiters: {
    pred: (e: Record<string, unknown>) => boolean;
    resolve: (e: Record<string, unknown>) => void;
  }[] = [];
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
        const t = setTimeout(
          () => reject(new Error(`worker ${id}: no matching event in ${ms} ms; stderr: ${err}`)),
          ms,
        );
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
    const q = await createSweepQueues({
      client: sqs,
      name: `sweep-${queueSeq++}`,
      visibilityTimeoutSeconds: 6,
      maxReceiveCount,
    });
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
          { name: 'slow', slowMs: 5000, labels: { tier: 'batch' } },
        ],
      },
      {
        name: 'beta',
        region: 'eu-west-1',
        pods: [
          { name: 'api', labels: { tier: 'web' } },
          { name: 'db', namespace: 'data' },
        ],
      },
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
    const enq = await enqueueSweep(p, {
      queue: { client: sqs, queueUrl: q.queueUrl },
      store: { client: s3, bucket: BUCKET },
    });
    expect(enq).toMatchObject({ sent: 5, failed: [] });
    const slow = p.targets.find((t) => t.pod === 'slow');
    if (!slow) throw new Error('no slow target');
    // A takes everything one at a time and is killed while it holds the slow target
    const a = startWorker(file, 'A', ['1', '30']);
    // B and C load now (start-up is slow on a busy machine) and start receiving after the kill
    const go = join(dir, 'kill-go');
    const b = startWorker(file, 'B', ['2', '12', '6', go]);
    const c = startWorker(file, 'C', ['2', '12', '6', go]);
    await a.waitFor((e) => e.type === 'target-started' && e.acquisitionId === slow.acquisitionId, 40_000);
    a.kill('SIGKILL');
    await a.exited;
    const mid = await sweepReport({ store: { client: s3, bucket: BUCKET }, sweepId: 'sw-kill' });
    expect(mid.outstanding).toContain(slow.acquisitionId);
    // B and C take over; the slow target's message comes back after the visibility timeout
    writeFileSync(go, '');
    const done = await b
      .waitFor((e) => e.type === 'target-done' && e.acquisitionId === slow.acquisitionId, 60_000)
      .catch(() => c.waitFor((e) => e.type === 'target-done' && e.acquisitionId === slow.acquisitionId, 1));
    expect(done.outcome).toBe('finalized');
    expect(done.attempt).toBe(2);
    b.kill('SIGTERM');
    c.kill('SIGTERM');
    await Promise.all([b.exited, c.exited]);
    const report = await sweepReport({
      store: { client: s3, bucket: BUCKET },
      sweepId: 'sw-kill',
      verify: true,
    });
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
    const first = await verifyEvidence({
      s3: { client: s3, bucket: BUCKET, prefix: `sweeps/sw-kill/bundles/${slow.acquisitionId}.a1/` },
    });
    // SIGKILL leaves no manifest: never valid (the S3 sink has not uploaded acquisition.log yet, so
    // verification calls it invalid rather than incomplete)
    expect(first.status, JSON.stringify(first.problems)).not.toBe('valid');
    expect(first.complete).toBe(false);
    const a1 = AttemptRecordSchema.parse(
      JSON.parse(await getText(s3, `sweeps/sw-kill/targets/${slow.acquisitionId}/attempt-1.json`)),
    );
    expect(a1).toMatchObject({ state: 'interrupted', worker: 'A' });
    // custody of the second attempt links the interrupted first one
    const custody = JSON.parse(
      await getText(s3, `sweeps/sw-kill/bundles/${slow.acquisitionId}.a2/custody.json`),
    ) as { notes?: string; acquisitionId: string };
    expect(custody.acquisitionId).toBe(`${slow.acquisitionId}.a2`);
    expect(custody.notes).toContain(`"previousAttempts":[{"bundleId":"${slow.acquisitionId}.a1"`);
    expect(custody.notes).toContain('"state":"interrupted"');
  }, 150_000);
  it('redelivery of committed targets is acknowledged without a second bundle', async () => {
    const before = await objectKeys(s3, 'sweeps/sw-kill/bundles/');
    const p = await plan('sw-kill');
    const q = await newQueues();
    await enqueueSweep(p, {
      queue: { client: sqs, queueUrl: q.queueUrl },
      store: { client: s3, bucket: BUCKET },
    });
    const summary = await runSweepWorker(workerOptions({ queue: { client: sqs, queueUrl: q.queueUrl } }));
    expect(summary.outcomes.duplicate).toBe(5);
    expect(summary.outcomes.finalized).toBe(0);
    expect(await objectKeys(s3, 'sweeps/sw-kill/bundles/')).toEqual(before);
  }, 60_000);

  it("a dead worker's finalized bundle is committed, not acquired again; a tampered one is not", async () => {
    const p = await plan('sw-recover', { labelSelector: 'tier=web', regions: ['eu-west-1'] });
    expect(p.targets).toHaveLength(1);
    const t = p.targets[0];
    if (!t) throw new Error('no target');
    const q = await newQueues();
    const queue = { client: sqs, queueUrl: q.queueUrl };
    const store = { client: s3, bucket: BUCKET };
    await enqueueSweep(p, { queue, store });
    expect((await runSweepWorker(workerOptions({ queue }))).outcomes.finalized).toBe(1);
    const base = `sweeps/sw-recover/targets/${t.acquisitionId}/`;
    // the worker "died" after finalize, before final.json: its record still says running
    const crash = async () => {
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${base}final.json` }));
      const a = AttemptRecordSchema.parse(JSON.parse(await getText(s3, `${base}attempt-1.json`)));
      const dead = { ...a, state: 'running', leaseUntil: new Date(Date.now() - 1000).toISOString() };
      await s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `${base}attempt-1.json`, Body: JSON.stringify(dead) }),
      );
    };
    await crash();
    await enqueueSweep(p, { queue, store });
    const s1 = await runSweepWorker(workerOptions({ queue }));
    expect(s1.outcomes).toMatchObject({ recovered: 1, finalized: 0 });
    expect(JSON.parse(await getText(s3, `${base}final.json`))).toMatchObject({ attempt: 1, recovered: true });
    expect([...(await finalizedBundles(s3, 'sw-recover')).values()]).toEqual([['a1']]);
    // same, but the bundle was altered after the fact: it is not trusted, a fresh attempt runs
    await crash();
    const artifact = (await objectKeys(s3, `sweeps/sw-recover/bundles/${t.acquisitionId}.a1/`)).find((k) =>
      k.endsWith('fleet-test.txt'),
    );
    if (!artifact) throw new Error('artifact not found');
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: artifact, Body: 'forged\n' }));
    await enqueueSweep(p, { queue, store });
    const s2 = await runSweepWorker(workerOptions({ queue }));
    expect(s2.outcomes).toMatchObject({ recovered: 0, finalized: 1 });
    expect(JSON.parse(await getText(s3, `${base}final.json`))).toMatchObject({ attempt: 2 });
    expect(AttemptRecordSchema.parse(JSON.parse(await getText(s3, `${base}attempt-1.json`))).state).toBe(
      'interrupted',
    );
    const report = await sweepReport({ store, sweepId: 'sw-recover', verify: true });
    expect(report.targets[0]).toMatchObject({ state: 'finalized', attempts: 2, verified: 'valid' });
  }, 90_000);

  it('with a signing key, recovery rests on the signature: a bundle another key signed is acquired again', async () => {
    const p = await plan('sw-recover-signed', { labelSelector: 'tier=web', regions: ['eu-west-1'] });
    const t = p.targets[0];
    if (!t) throw new Error('no target');
    const q = await newQueues();
    const queue = { client: sqs, queueUrl: q.queueUrl };
    const store = { client: s3, bucket: BUCKET };
    const k1 = generateKeyPairSync('ed25519').privateKey;
    const k2 = generateKeyPairSync('ed25519').privateKey;
    await enqueueSweep(p, { queue, store });
    const first = await runSweepWorker(workerOptions({ queue, collector: { signingKey: k1 } }));
    expect(first.outcomes.finalized).toBe(1);
    const base = `sweeps/sw-recover-signed/targets/${t.acquisitionId}/`;
    const crash = async (attempt: number) => {
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${base}final.json` }));
      const a = AttemptRecordSchema.parse(JSON.parse(await getText(s3, `${base}attempt-${attempt}.json`)));
      const dead = { ...a, state: 'running', leaseUntil: new Date(Date.now() - 1000).toISOString() };
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `${base}attempt-${attempt}.json`,
          Body: JSON.stringify(dead),
        }),
      );
    };
    await crash(1);
    await enqueueSweep(p, { queue, store });
    const s1 = await runSweepWorker(workerOptions({ queue, collector: { signingKey: k1 } }));
    expect(s1.outcomes).toMatchObject({ recovered: 1 });
    expect(JSON.parse(await getText(s3, `${base}final.json`))).toMatchObject({
      attempt: 1,
      recovered: true,
      recoveredAnchors: ['signature'],
    });
    // a worker holding another key does not take the bundle on trust
    await crash(1);
    await enqueueSweep(p, { queue, store });
    const s2 = await runSweepWorker(workerOptions({ queue, collector: { signingKey: k2 } }));
    expect(s2.outcomes).toMatchObject({ recovered: 0, finalized: 1 });
    expect(JSON.parse(await getText(s3, `${base}final.json`))).toMatchObject({ attempt: 2 });
  }, 90_000);

  it('a forged message (id not derived from its target) goes to the DLQ with the reason', async () => {
    const q = await newQueues();
    const t = sweepTarget(
      'sw-forged',
      {
        name: 'alpha',
        arn: 'arn:aws:eks:us-east-1:123456789012:cluster/alpha',
        accountId: ACCOUNT_ID,
        region: 'us-east-1',
      },
      { namespace: 'default', name: 'web' },
      'app',
    );
    const forged = { ...t, acquisitionId: 'sw-forged-00000000000000000000' };
    const r = await processSweepMessage(
      { body: JSON.stringify(forged), receiptHandle: 'unused-handle', receiveCount: 1 },
      workerOptions({
        queue: { client: sqs, queueUrl: q.queueUrl },
        deadLetterQueue: { client: sqs, queueUrl: q.deadLetterQueueUrl },
      }),
    );
    expect(r.outcome).toBe('dead-lettered');
    expect(r.reason).toContain('is not the one sweep sw-forged derives');
    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: q.deadLetterQueueUrl,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    expect(got.Messages?.[0]?.MessageAttributes?.reason?.StringValue).toContain('unreadable target message');
    expect(await objectKeys(s3, 'sweeps/sw-forged/')).toEqual([]);
  }, 30_000);

  it('throttled SQS and S3, and a region that is down for a while: every target still ends with one bundle', async () => {
    const p = await plan('sw-throttle', { labelSelector: 'tier=web' });
    expect(p.targets).toHaveLength(3);
    const q = await newQueues();
    // SQS throttling outside the SDK's retries (the worker must cope), S3 throttling inside them
    const tsqs = sqsFor(cfg.moto, 1);
    let n = 0;
    let throttled = 0;
    tsqs.middlewareStack.add(
      (next) => async (args) => {
        if (++n % 3 === 0) {
          throttled++;
          throw Object.assign(new Error('Rate exceeded (test)'), {
            name: 'ThrottlingException',
            $metadata: { httpStatusCode: 400 },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'throttle' },
    );
    const ts3 = s3For(cfg.moto, 5);
    let m = 0;
    ts3.middlewareStack.add(
      (next) => async (args) => {
        if (++m % 4 === 0) {
          throttled++;
          throw Object.assign(new Error('Please reduce your request rate (test)'), {
            name: 'SlowDown',
            $metadata: { httpStatusCode: 503 },
          });
        }
        return next(args);
      },
      { step: 'finalizeRequest', name: 'slowdown', priority: 'low' },
    );
    await enqueueSweep(p, {
      queue: { client: sqs, queueUrl: q.queueUrl },
      store: { client: s3, bucket: BUCKET },
    });
    writeFileSync(cfg.downFile ?? '', JSON.stringify(['eu-west-1']));
    const events: string[] = [];
    const summary = await runSweepWorker(
      workerOptions({
        queue: { client: tsqs, queueUrl: q.queueUrl },
        store: { client: ts3, bucket: BUCKET },
        maxReceives: 6,
        idleExitSeconds: 4,
        onEvent: (e) => {
          if (e.type === 'target-done') {
            events.push(e.outcome);
            if (e.outcome === 'retry') writeFileSync(cfg.downFile ?? '', '[]');
          }
        },
      }),
    );
    writeFileSync(cfg.downFile ?? '', '[]');
    expect(throttled).toBeGreaterThan(3);
    expect(events).toContain('retry');
    expect(summary.outcomes['dead-lettered']).toBe(0);
    const report = await sweepReport({
      store: { client: s3, bucket: BUCKET },
      sweepId: 'sw-throttle',
      verify: true,
    });
    expect(report.counts.finalized).toBe(3);
    expect(report.problems).toEqual([]);
    const beta = report.targets.find((t) => t.key.includes('/beta/'));
    expect(beta?.attempts).toBeGreaterThanOrEqual(2);
    for (const [, list] of await finalizedBundles(s3, 'sw-throttle')) expect(list).toHaveLength(1);
  }, 90_000);

  it('a poison target lands in the DLQ after maxReceives with the reason, recorded in S3 and the report', async () => {
    const p = await plan('sw-poison', { clusters: ['beta'] });
    expect(p.targets).toHaveLength(2);
    const q = await newQueues();
    writeFileSync(cfg.downFile ?? '', JSON.stringify(['beta']));
    try {
      await enqueueSweep(p, {
        queue: { client: sqs, queueUrl: q.queueUrl },
        store: { client: s3, bucket: BUCKET },
      });
      const summary = await runSweepWorker(
        workerOptions({
          queue: { client: sqs, queueUrl: q.queueUrl },
          deadLetterQueue: { client: sqs, queueUrl: q.deadLetterQueueUrl },
          maxReceives: 2,
        }),
      );
      expect(summary.outcomes).toMatchObject({ 'dead-lettered': 2, finalized: 0 });
    } finally {
      writeFileSync(cfg.downFile ?? '', '[]');
    }
    const report = await sweepReport({ store: { client: s3, bucket: BUCKET }, sweepId: 'sw-poison' });
    expect(report.counts['dead-lettered']).toBe(2);
    expect(report.done).toBe(true);
    for (const t of report.targets)
      expect(t.reasons.join(' ')).toMatch(/gave up after 2 receives: .*region eu-west-1 is down/);
    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: q.deadLetterQueueUrl,
        MessageAttributeNames: ['All'],
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect(got.Messages).toHaveLength(2);
    expect(got.Messages?.[0]?.MessageAttributes?.reason?.StringValue).toMatch(/gave up after 2 receives/);
    expect(await finalizedBundles(s3, 'sw-poison')).toEqual(new Map());
  }, 60_000);

  it('the redrive policy moves a message SQS delivered too often to the DLQ (backstop for crashing workers)', async () => {
    const q = await newQueues(1);
    const { SendMessageCommand } = await import('@aws-sdk/client-sqs');
    await sqs.send(new SendMessageCommand({ QueueUrl: q.queueUrl, MessageBody: 'x' }));
    for (let i = 0; i < 3; i++)
      await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: q.queueUrl, VisibilityTimeout: 0, WaitTimeSeconds: 0 }),
      );
    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: q.deadLetterQueueUrl, WaitTimeSeconds: 1 }),
    );
    expect(got.Messages?.[0]?.Body).toBe('x');
  }, 30_000);
});
