/**
 * Both AWS-side steps into one real evidence bundle (MemorySink), finalized and verified; and a
 * larger export to show that the body streams page by page.
 */
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Custody, type Manifest, verifyEvidence } from '../../src/evidence/index.js';
import { exportControlPlaneLogs, snapshotNode } from '../../src/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { type Moto, motoConfig, motoMissing, recentHour, startMoto, TestWriter } from './support.js';

const skip = skipWithoutPeer('moto_server', motoMissing());
const T0 = recentHour(3);
const EVENTS = 6_000;

describe.skipIf(skip)('AWS-side evidence in a finalized bundle', () => {
  let moto: Moto;
  let logs: CloudWatchLogsClient;
  let ec2: EC2Client;

  beforeAll(async () => {
    moto = await startMoto();
    logs = new CloudWatchLogsClient(motoConfig(moto.endpoint));
    ec2 = new EC2Client(motoConfig(moto.endpoint));
    const group = '/aws/eks/big/cluster';
    const stream = 'kube-apiserver-audit-0000000000000000000000000000000a';
    await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
    await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: stream }));
    for (let start = 0; start < EVENTS; start += 2_000) {
      const logEvents = Array.from({ length: 2_000 }, (_, k) => {
        const i = start + k;
        return {
          timestamp: T0 + i,
          message: JSON.stringify({
            kind: 'Event',
            auditID: `a-${i}`,
            verb: 'get',
            user: { username: 'system:serviceaccount:web:api' },
            objectRef: { resource: 'pods', namespace: 'web', name: i % 3 === 0 ? 'api-1' : `web-${i}` },
          }),
        };
      });
      await logs.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: stream, logEvents }));
    }
  });
  afterAll(async () => {
    logs?.destroy();
    ec2?.destroy();
    await moto?.close();
  });

  it('exports logs and snapshots the node into one bundle that verifies, with custody changes', async () => {
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({
      bundle: w,
      logs,
      clusterName: 'big',
      startTime: T0,
      endTime: T0 + EVENTS,
      types: ['audit', 'authenticator'],
      filter: { namespace: 'web', pod: 'api-1' },
      limits: { pageSize: 500 },
      target: { namespace: 'web', pod: 'api-1' },
    });
    const audit = r.streams[0];
    expect(audit?.scanned).toBe(EVENTS);
    expect(audit?.exported).toBe(EVENTS / 3);
    expect(audit?.pages).toBeGreaterThanOrEqual(EVENTS / 500);
    // one page at a time: no chunk holds more than a page of lines
    expect(w.chunks).toBeGreaterThanOrEqual(EVENTS / 500);
    expect(w.maxChunk).toBeLessThan((audit?.bytes ?? 0) / 5);

    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        MinCount: 1,
        MaxCount: 1,
        Placement: { AvailabilityZone: 'us-east-1b' },
        BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 8 } }],
      }),
    );
    const id = run.Instances?.[0]?.InstanceId as string;
    const d = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    expect(d.Reservations?.[0]?.Instances?.[0]?.InstanceId).toBe(id);
    const s = await snapshotNode({
      bundle: w,
      ec2,
      node: { name: 'ip-10-1-2-3.ec2.internal', providerID: `aws:///us-east-1b/${id}` },
      pod: { namespace: 'web', name: 'api-1', uid: 'u-1' },
      caseId: 'IR-TEST',
      clusterName: 'big',
      terminationProtection: true,
      pollIntervalMs: 10,
    });
    expect(s.status).toBe('completed');

    const fin = await w.writer.finalize({ caseId: 'IR-TEST', cluster: { name: 'big', region: 'us-east-1' } });
    const bundle = w.sink.bundles.get(w.acquisitionId);
    if (!bundle) throw new Error('bundle missing');
    const report = await verifyEvidence(bundle, { expectedManifestSha256: fin.manifestSha256 });
    expect(report.problems ?? []).toEqual([]);
    expect(report.status).toBe('valid');

    const manifest = JSON.parse(bundle.files.get('manifest.json')?.toString('utf8') ?? '{}') as Manifest;
    const byPath = new Map(manifest.artifacts.map((a) => [a.requestedPath, a]));
    expect(byPath.get('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.status).toBe('complete');
    expect(byPath.get('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.details).toMatchObject({
      exported: EVENTS / 3,
      scanned: EVENTS,
    });
    expect(byPath.get('aws/control-plane-logs/authenticator.jsonl')?.status).toBe('skipped');
    expect(byPath.get('aws/node-snapshot/ip-10-1-2-3.ec2.internal.json')?.status).toBe('complete');

    const custody = JSON.parse(bundle.files.get('custody.json')?.toString('utf8') ?? '{}') as Custody;
    expect(custody.changes.map((c) => c.kind)).toEqual([
      'ec2-termination-protection-enabled',
      'aws-ebs-snapshot-created',
    ]);
    expect(custody.changes[1]?.details?.snapshotId).toBe(s.snapshots[0]?.snapshotId);
    expect(fin.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    const log = bundle.files.get('acquisition.log')?.toString('utf8') ?? '';
    expect(log).toContain('"step":"aws.control-plane-logs"');
    expect(log).toContain('"step":"aws.node-snapshot"');
  });
});
