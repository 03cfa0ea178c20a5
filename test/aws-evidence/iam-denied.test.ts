/**
 * Real IAM denials: moto_server with IAM enforcement on (INITIAL_NO_AUTH_ACTION_COUNT), a user whose
 * policy lacks logs:FilterLogEvents and ec2:CreateSnapshots. The IAM setup runs through botocore.
 */
import { spawnSync } from 'node:child_process';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsRequestError } from '../../src/entries/errors.js';
import { exportControlPlaneLogs, snapshotNode } from '../../src/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { type Moto, motoMissing, startMoto, TestWriter } from './support.js';

const SETUP = `
import json, sys, botocore.session
ep = sys.argv[1]
s = botocore.session.get_session()
kw = dict(region_name='us-east-1', endpoint_url=ep)
iam = s.create_client('iam', aws_access_key_id='testing', aws_secret_access_key='testing', **kw)
iam.create_user(UserName='responder')
k = iam.create_access_key(UserName='responder')['AccessKey']
iam.put_user_policy(UserName='responder', PolicyName='partial', PolicyDocument=json.dumps({
  'Version': '2012-10-17',
  'Statement': [{'Effect': 'Allow', 'Resource': '*', 'Action': [
    'logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams',
    'ec2:RunInstances', 'ec2:DescribeInstances']}]}))
cred = dict(aws_access_key_id=k['AccessKeyId'], aws_secret_access_key=k['SecretAccessKey'])
logs = s.create_client('logs', **cred, **kw)
logs.create_log_group(logGroupName='/aws/eks/locked/cluster')
logs.create_log_stream(logGroupName='/aws/eks/locked/cluster', logStreamName='kube-apiserver-audit-00')
ec2 = s.create_client('ec2', **cred, **kw)
r = ec2.run_instances(ImageId='ami-12c6146b', MinCount=1, MaxCount=1, Placement={'AvailabilityZone': 'us-east-1a'})
print(json.dumps({'accessKeyId': k['AccessKeyId'], 'secretAccessKey': k['SecretAccessKey'],
  'instanceId': r['Instances'][0]['InstanceId']}))
`;

function botocoreMissing(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import botocore'], { stdio: 'ignore', timeout: 30_000 });
  return r.status === 0 ? undefined : 'python3 with botocore is needed to set up IAM users in moto';
}

const skip =
  skipWithoutPeer('moto_server', motoMissing()) || skipWithoutPeer('python3-botocore', botocoreMissing());

describe.skipIf(skip)('IAM denials against moto_server with IAM enforcement', () => {
  let moto: Moto;
  let creds: { accessKeyId: string; secretAccessKey: string; instanceId: string };

  beforeAll(async () => {
    // iam:CreateUser, CreateAccessKey and PutUserPolicy run unauthenticated; everything after is checked.
    moto = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: '3' });
    const r = spawnSync('python3', ['-c', SETUP, moto.endpoint], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`IAM setup failed: ${r.stderr}`);
    creds = JSON.parse(r.stdout.trim()) as typeof creds;
  });
  afterAll(async () => {
    await moto?.close();
  });

  const cfg = () => ({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    maxAttempts: 1,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
  });

  it('names logs:FilterLogEvents when CloudWatch Logs denies the export', async () => {
    const logs = new CloudWatchLogsClient(cfg());
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({
      bundle: w,
      logs,
      clusterName: 'locked',
      startTime: 0,
      endTime: Date.now(),
      types: ['audit'],
    });
    logs.destroy();
    expect(r.status).toBe('failed');
    const err = r.streams[0]?.error as AwsRequestError;
    expect(err).toBeInstanceOf(AwsRequestError);
    expect(err.failure).toBe('access-denied');
    expect(err.operation).toBe('logs:FilterLogEvents');
    expect(err.message).toMatch(/Grant the caller's IAM policy the action "logs:FilterLogEvents"/);
    expect(w.artifact('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.record.status).toBe('failed');
  });

  it('names ec2:CreateSnapshots when EC2 denies the snapshot', async () => {
    const ec2 = new EC2Client(cfg());
    const w = await TestWriter.open();
    const r = await snapshotNode({
      bundle: w,
      ec2,
      node: { name: 'ip-10-0-0-9.ec2.internal', providerID: `aws:///us-east-1a/${creds.instanceId}` },
      pod: { namespace: 'web', name: 'api-1' },
      waitTimeoutMs: 0,
    });
    ec2.destroy();
    expect(r.status).toBe('failed');
    expect(r.error).toBeInstanceOf(AwsRequestError);
    expect((r.error as AwsRequestError).failure).toBe('access-denied');
    expect((r.error as AwsRequestError).operation).toBe('ec2:CreateSnapshots');
    expect(r.volumes.length).toBeGreaterThan(0);
    expect(r.snapshots).toHaveLength(0);
    expect(w.changes).toHaveLength(0);
  });
});
