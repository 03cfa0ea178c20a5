import {
  DescribeInstanceAttributeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  EC2ServiceException,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyNodeCompute, FARGATE_SKIP_REASON, parseProviderId } from '../../src/entries/codecs.js';
import { AwsRequestError, ConfigError } from '../../src/entries/errors.js';
import { snapshotNode } from '../../src/index.js';
import type { Node, Pod } from '../../src/kube/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { type Moto, motoConfig, motoMissing, startMoto, TestWriter } from './support.js';

describe('providerID and compute classification', () => {
  it('parses EC2 providerIDs and derives the region', () => {
    expect(parseProviderId('aws:///us-east-1a/i-0abc1234def567890')).toEqual({
      instanceId: 'i-0abc1234def567890',
      availabilityZone: 'us-east-1a',
      region: 'us-east-1',
    });
    expect(parseProviderId('aws:///us-west-2-lax-1a/i-0abc1234')?.region).toBe('us-west-2');
    expect(parseProviderId('aws:///us-gov-west-1b/i-0abc1234')?.region).toBe('us-gov-west-1');
    expect(parseProviderId('aws:///us-east-1a/fargate-ip-10-0-0-1.ec2.internal')).toBeUndefined();
    expect(parseProviderId('gce://project/zone/vm')).toBeUndefined();
    expect(parseProviderId('aws:///us-east-1a/i-0abc;rm -rf')).toBeUndefined();
    expect(parseProviderId(undefined)).toBeUndefined();
  });

  it('recognises Fargate by node name, node label, pod label and providerID', () => {
    expect(classifyNodeCompute({ name: 'fargate-ip-10-0-1-2.ec2.internal' }).compute).toBe('fargate');
    expect(
      classifyNodeCompute({
        name: 'n1',
        providerID: 'aws:///us-east-1a/i-0abc1234',
        labels: { 'eks.amazonaws.com/compute-type': 'fargate' },
      }).compute,
    ).toBe('fargate');
    expect(
      classifyNodeCompute(
        { name: 'n1' },
        { namespace: 'a', name: 'p', labels: { 'eks.amazonaws.com/fargate-profile': 'fp' } },
      ).reason,
    ).toBe(FARGATE_SKIP_REASON);
    expect(
      classifyNodeCompute({ name: 'h', labels: { 'eks.amazonaws.com/compute-type': 'hybrid' } }).compute,
    ).toBe('hybrid');
    expect(classifyNodeCompute({ name: 'n2', providerID: '' }).compute).toBe('unknown');
    // Node objects as the API returns them
    const ec2 = classifyNodeCompute({
      metadata: { name: 'ip-10-0-0-1.ec2.internal' },
      spec: { providerID: 'aws:///eu-west-1b/i-0123456789abcdef0' },
    });
    expect(ec2).toMatchObject({
      compute: 'ec2',
      ec2: { instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' },
    });
    // the library's own zod-inferred Pod and Node types fit
    const node: Node = { metadata: { name: 'fargate-ip-1', labels: null }, spec: { providerID: '' } };
    const pod: Pod = { metadata: { name: 'p', namespace: 'n', labels: null }, spec: { containers: [] } };
    expect(classifyNodeCompute(node, pod).compute).toBe('fargate');
  });
});

const skip = skipWithoutPeer('moto_server', motoMissing());

describe.skipIf(skip)('snapshotNode against moto_server', () => {
  let moto: Moto;
  let ec2: EC2Client;
  let instanceId: string;
  let volumeIds: string[];

  const launch = async (): Promise<{ id: string; volumes: string[] }> => {
    const out = await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 'm5.large',
        Placement: { AvailabilityZone: 'us-east-1a' },
        BlockDeviceMappings: [
          { DeviceName: '/dev/sda1', Ebs: { VolumeSize: 20 } },
          { DeviceName: '/dev/xvdb', Ebs: { VolumeSize: 50 } },
        ],
      }),
    );
    const inst = out.Instances?.[0];
    const id = inst?.InstanceId as string;
    const { DescribeInstancesCommand } = await import('@aws-sdk/client-ec2');
    const d = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    const vols = (d.Reservations?.[0]?.Instances?.[0]?.BlockDeviceMappings ?? []).map(
      (m) => m.Ebs?.VolumeId as string,
    );
    return { id, volumes: vols };
  };

  beforeAll(async () => {
    moto = await startMoto();
    ec2 = new EC2Client(motoConfig(moto.endpoint));
    ({ id: instanceId, volumes: volumeIds } = await launch());
  });
  afterAll(async () => {
    ec2?.destroy();
    await moto?.close();
  });

  const pod = { namespace: 'web', name: 'api-1', uid: '7d1c-uid', nodeName: 'ip-10-0-0-1.ec2.internal' };

  it('snapshots every volume, tags them, enables termination protection and records it all', async () => {
    expect(volumeIds).toHaveLength(2);
    const w = await TestWriter.open();
    const node = {
      metadata: { name: 'ip-10-0-0-1.ec2.internal', labels: { 'eks.amazonaws.com/nodegroup': 'ng' } },
      spec: { providerID: `aws:///us-east-1a/${instanceId}` },
    };
    const r = await snapshotNode({
      bundle: w,
      ec2,
      node,
      pod,
      caseId: 'IR-2026-042',
      clusterName: 'prod',
      terminationProtection: true,
      pollIntervalMs: 10,
      waitTimeoutMs: 5_000,
    });
    expect(r.status).toBe('completed');
    expect(r.compute).toBe('ec2');
    expect(r.instanceId).toBe(instanceId);
    expect(r.region).toBe('us-east-1');
    expect(r.snapshots.map((s) => s.volumeId).sort()).toEqual([...volumeIds].sort());
    expect(r.snapshots.every((s) => /^snap-[0-9a-f]+$/.test(s.snapshotId) && s.state === 'completed')).toBe(
      true,
    );
    expect(r.snapshots.find((s) => s.deviceName === '/dev/xvdb')?.volumeSizeGiB).toBe(50);

    // tags as stored in AWS
    const d = await ec2.send(
      new DescribeSnapshotsCommand({ SnapshotIds: r.snapshots.map((s) => s.snapshotId) }),
    );
    expect(d.Snapshots).toHaveLength(2);
    for (const s of d.Snapshots ?? []) {
      const tags = Object.fromEntries((s.Tags ?? []).map((t) => [t.Key, t.Value]));
      expect(tags).toMatchObject({
        'eks-forensics:case-id': 'IR-2026-042',
        'eks-forensics:acquisition-id': 'acq-test-1',
        'eks-forensics:cluster': 'prod',
        'eks-forensics:namespace': 'web',
        'eks-forensics:pod': 'api-1',
        'eks-forensics:pod-uid': '7d1c-uid',
        'eks-forensics:instance-id': instanceId,
      });
      expect(s.Description).toContain('case IR-2026-042');
    }

    // termination protection is on, and recorded as a change
    const attr = await ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'disableApiTermination' }),
    );
    expect(attr.DisableApiTermination?.Value).toBe(true);
    expect(r.terminationProtection).toMatchObject({ previous: false, enabled: true, changed: true });
    const kinds = w.changes.map((c) => c.kind).sort();
    expect(kinds).toEqual([
      'aws-ebs-snapshot-created',
      'aws-ebs-snapshot-created',
      'ec2-termination-protection-enabled',
    ]);
    const snapChanges = w.changes.filter((c) => c.kind === 'aws-ebs-snapshot-created');
    expect(snapChanges.map((c) => c.details?.snapshotId).sort()).toEqual(
      r.snapshots.map((s) => s.snapshotId).sort(),
    );
    expect(snapChanges[0]?.target).toEqual({ namespace: 'web', pod: 'api-1', podUid: '7d1c-uid' });

    // the JSON record in the bundle
    const art = w.artifact('aws/node-snapshot/ip-10-0-0-1.ec2.internal.json');
    expect(art?.record.status).toBe('complete');
    const doc = JSON.parse(art?.body.toString('utf8') ?? '{}') as {
      instanceId: string;
      status: string;
      snapshots: Array<{ snapshotId: string }>;
    };
    expect(doc.instanceId).toBe(instanceId);
    expect(doc.status).toBe('completed');
    expect(doc.snapshots.map((s) => s.snapshotId).sort()).toEqual(
      r.snapshots.map((s) => s.snapshotId).sort(),
    );
  });

  it('per-volume mode without waiting; protection already on is not changed again', async () => {
    const { id } = await launch();
    await ec2.send(
      new ModifyInstanceAttributeCommand({ InstanceId: id, DisableApiTermination: { Value: true } }),
    );
    const w = await TestWriter.open();
    const r = await snapshotNode({
      bundle: w,
      ec2,
      node: { name: 'n2', providerID: `aws:///us-east-1a/${id}` },
      pod,
      mode: 'per-volume',
      excludeBootVolume: true,
      terminationProtection: true,
      waitTimeoutMs: 0,
    });
    expect(r.snapshots).toHaveLength(1);
    expect(r.snapshots[0]?.deviceName).toBe('/dev/xvdb');
    expect(r.terminationProtection).toMatchObject({ previous: true, enabled: true, changed: false });
    expect(w.changes.map((c) => c.kind)).toEqual(['aws-ebs-snapshot-created']);
    // moto completes snapshots at once; real EC2 answers pending and the result says so
    expect(['completed', 'pending']).toContain(r.status);
  });

  it('reports pending when the wait bound is reached, after polling DescribeSnapshots', async () => {
    const slow = new EC2Client(motoConfig(moto.endpoint));
    let polls = 0;
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'DescribeSnapshotsCommand') {
          polls++;
          const o = out.output as { Snapshots?: Array<{ State?: string; Progress?: string }> };
          for (const snap of o.Snapshots ?? []) {
            snap.State = 'pending';
            snap.Progress = '42%';
          }
        }
        return out;
      },
      { step: 'initialize', name: 'testPending' },
    );
    const w = await TestWriter.open();
    const r = await snapshotNode({
      bundle: w,
      ec2: slow,
      node: { name: 'n3', providerID: `aws:///us-east-1a/${instanceId}` },
      waitTimeoutMs: 1500,
      pollIntervalMs: 20,
    });
    slow.destroy();
    expect(r.status).toBe('pending');
    expect(r.reason).toMatch(/still pending after 1500 ms/);
    expect(polls).toBeGreaterThan(2);
    expect(r.snapshots.every((s) => s.state === 'pending' && s.progress === '42%')).toBe(true);
    const doc = JSON.parse(w.artifact('aws/node-snapshot/n3.json')?.body.toString('utf8') ?? '{}') as {
      status: string;
    };
    expect(doc.status).toBe('pending');
    // snapshot ids are in custody even though they are not complete
    expect(w.changes.filter((c) => c.kind === 'aws-ebs-snapshot-created')).toHaveLength(r.snapshots.length);
  });

  it('skips a Fargate pod with the reason and never calls EC2', async () => {
    const w = await TestWriter.open();
    // a client for a closed port: any call would fail
    const dead = new EC2Client(motoConfig('http://127.0.0.1:9'));
    const r = await snapshotNode({
      bundle: w,
      ec2: dead,
      node: {
        name: 'fargate-ip-192-168-1-10.ec2.internal',
        labels: { 'eks.amazonaws.com/compute-type': 'fargate' },
      },
      pod: { ...pod, labels: { 'eks.amazonaws.com/fargate-profile': 'fp-default' } },
    });
    dead.destroy();
    expect(r.status).toBe('skipped');
    expect(r.compute).toBe('fargate');
    expect(r.reason).toBe(FARGATE_SKIP_REASON);
    const rec = w.artifact('aws/node-snapshot/fargate-ip-192-168-1-10.ec2.internal.json')?.record;
    expect(rec?.status).toBe('skipped');
    expect(rec?.reason).toBe(FARGATE_SKIP_REASON);
    expect(w.changes).toHaveLength(0);
  });

  it('reports a missing instance, a region mismatch, and a denied CreateSnapshots by IAM action', async () => {
    const w = await TestWriter.open();
    const r = await snapshotNode({
      bundle: w,
      ec2,
      node: { name: 'gone', providerID: 'aws:///us-east-1a/i-0123456789abcdef0' },
    });
    expect(r.status).toBe('failed');
    expect(r.error).toBeInstanceOf(AwsRequestError);
    expect((r.error as AwsRequestError).failure).toBe('not-found');
    expect(r.snapshots).toHaveLength(0);

    await expect(
      snapshotNode({
        bundle: w,
        ec2,
        node: { name: 'x', providerID: 'aws:///eu-west-1a/i-0123456789abcdef0' },
      }),
    ).rejects.toBeInstanceOf(ConfigError);

    const denied = new EC2Client(motoConfig(moto.endpoint));
    denied.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CreateSnapshotsCommand') {
          throw new EC2ServiceException({
            name: 'UnauthorizedOperation',
            $fault: 'client',
            $metadata: { httpStatusCode: 403 },
            message: 'You are not authorized to perform this operation.',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'testDeny' },
    );
    const w2 = await TestWriter.open();
    const r2 = await snapshotNode({
      bundle: w2,
      ec2: denied,
      node: { name: 'n1', providerID: `aws:///us-east-1a/${instanceId}` },
    });
    denied.destroy();
    expect(r2.status).toBe('failed');
    expect((r2.error as AwsRequestError).failure).toBe('access-denied');
    expect((r2.error as AwsRequestError).operation).toBe('ec2:CreateSnapshots');
    expect(r2.reason).toContain('ec2:CreateSnapshots');
    expect(w2.changes).toHaveLength(0);
    const doc = JSON.parse(w2.artifact('aws/node-snapshot/n1.json')?.body.toString('utf8') ?? '{}') as {
      status: string;
      error: { operation: string };
    };
    expect(doc.status).toBe('failed');
    expect(doc.error.operation).toBe('ec2:CreateSnapshots');
  });
});
