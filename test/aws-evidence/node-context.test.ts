/**
 * nodeContext against a real moto_server (EC2, IAM, Auto Scaling): instance profile and role,
 * security groups, ENIs, IMDS exposure, VPC CIDRs and NAT IPs, ASG and scale-in protection
 * (opt-in, recorded in custody); plus denied, throttled and Fargate cases.
 */
import {
  AttachInstancesCommand,
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingInstancesCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  AllocateAddressCommand,
  CreateNatGatewayCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  IAMClient,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assessImds } from '../../src/entries/codecs.js';
import { ConfigError } from '../../src/entries/errors.js';
import { nodeContext } from '../../src/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { type Moto, motoConfig, motoMissing, startMoto, TestWriter } from './support.js';

const REGION = 'us-east-1';
const missing = motoMissing();

describe.skipIf(skipWithoutPeer('moto_server', missing))('nodeContext (moto)', () => {
  let moto: Moto;
  let instanceId = '';
  let bare = '';
  let roleArn = '';
  const cred = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const node = (id: string) => ({ name: `ip-${id}`, providerID: `aws:///${REGION}a/${id}` });

  beforeAll(async () => {
    moto = await startMoto();
    const cfg = motoConfig(moto.endpoint, REGION);
    const ec2 = new EC2Client(cfg);
    const iam = new IAMClient(cfg);
    const asg = new AutoScalingClient(cfg);
    const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.42.0.0/16' }));
    const vpcId = vpc.Vpc?.VpcId as string;
    const subnet = await ec2.send(
      new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.42.1.0/24', AvailabilityZone: `${REGION}a` }),
    );
    const subnetId = subnet.Subnet?.SubnetId as string;
    const eip = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    await ec2.send(new CreateNatGatewayCommand({ SubnetId: subnetId, AllocationId: eip.AllocationId }));
    const role = await iam.send(
      new CreateRoleCommand({
        RoleName: 'eks-node',
        AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}',
      }),
    );
    roleArn = role.Role?.Arn as string;
    await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: 'eks-node-profile' }));
    await iam.send(
      new AddRoleToInstanceProfileCommand({ InstanceProfileName: 'eks-node-profile', RoleName: 'eks-node' }),
    );
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 't3.large',
        SubnetId: subnetId,
        IamInstanceProfile: { Name: 'eks-node-profile' },
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' },
      }),
    );
    instanceId = run.Instances?.[0]?.InstanceId as string;
    const run2 = await ec2.send(
      new RunInstancesCommand({ ImageId: 'ami-12c6146b', MinCount: 1, MaxCount: 1, SubnetId: subnetId }),
    );
    bare = run2.Instances?.[0]?.InstanceId as string;
    await asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: 'eks-ng-1',
        MinSize: 0,
        MaxSize: 3,
        DesiredCapacity: 0,
        LaunchConfigurationName: undefined,
        InstanceId: instanceId,
        VPCZoneIdentifier: subnetId,
      }),
    );
    const inGroup = await asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }));
    if (!inGroup.AutoScalingInstances?.some((i) => i.InstanceId === instanceId)) {
      await asg.send(
        new AttachInstancesCommand({ AutoScalingGroupName: 'eks-ng-1', InstanceIds: [instanceId] }),
      );
    }
  }, 60_000);
  afterAll(() => moto?.close());

  it('reads profile, role, SGs, ENIs, IMDS, VPC CIDR, NAT IP and ASG without changing anything', async () => {
    const r = await nodeContext({ node: node(instanceId), credentials: cred, endpoint: moto.endpoint });
    expect(r.failures).toEqual([]);
    expect(r.status).toBe('collected');
    expect(r.instance).toMatchObject({ imageId: 'ami-12c6146b', instanceType: 't3.large' });
    expect(r.instance?.launchTime).toMatch(/^\d{4}-/);
    expect(r.instanceProfile?.roleArns).toEqual([roleArn]);
    expect(r.networkInterfaces.length).toBeGreaterThan(0);
    expect(r.imds).toMatchObject({ httpTokens: 'required', hopLimit: 2, reachableFromPods: true });
    expect(r.knownSources.cidrs).toContain('10.42.0.0/16');
    expect(r.knownSources.ips.length).toBeGreaterThan(0);
    expect(r.autoScaling).toMatchObject({
      groupName: 'eks-ng-1',
      protectedFromScaleIn: false,
      changed: false,
    });
  });

  it('scale-in protection is opt-in, needs a bundle, and is recorded in custody', async () => {
    await expect(
      nodeContext({
        node: node(instanceId),
        credentials: cred,
        endpoint: moto.endpoint,
        setScaleInProtection: true,
      }),
    ).rejects.toBeInstanceOf(ConfigError);
    const w = await TestWriter.open();
    const r = await nodeContext({
      node: node(instanceId),
      pod: { namespace: 'shop', name: 'web-1', uid: 'u-1' },
      credentials: cred,
      endpoint: moto.endpoint,
      setScaleInProtection: true,
      bundle: w,
    });
    expect(r.autoScaling).toMatchObject({ protectedFromScaleIn: true, changed: true });
    expect(w.changes).toHaveLength(1);
    expect(w.changes[0]).toMatchObject({
      kind: 'asg-scale-in-protection-enabled',
      target: { namespace: 'shop', pod: 'web-1', podUid: 'u-1' },
      details: { instanceId, autoScalingGroup: 'eks-ng-1' },
    });
    // already on: no second change
    const again = await nodeContext({
      node: node(instanceId),
      credentials: cred,
      endpoint: moto.endpoint,
      setScaleInProtection: true,
      bundle: w,
    });
    expect(again.autoScaling?.changed).toBe(false);
    expect(w.changes).toHaveLength(1);
  });

  it('an instance without profile or group; a missing instance fails cleanly', async () => {
    const r = await nodeContext({ node: node(bare), credentials: cred, endpoint: moto.endpoint });
    expect(r.instanceProfile).toBeNull();
    expect(r.autoScaling).toMatchObject({ groupName: null, protectedFromScaleIn: null });
    expect(r.notes.join()).toMatch(/no instance profile/);
    const gone = await nodeContext({
      node: node('i-0000000000000dead'),
      credentials: cred,
      endpoint: moto.endpoint,
    });
    expect(gone.status).toBe('failed');
    expect(gone.failures[0]?.action).toBe('ec2:DescribeInstances');
  });
});

describe('nodeContext without AWS', () => {
  const awsErr = (name: string, status: number) =>
    Object.assign(new Error(`${name}!`), { name, $metadata: { httpStatusCode: status } });

  it('Fargate and non-EC2 nodes are skipped with the reason', async () => {
    const r = await nodeContext({
      node: { name: 'fargate-ip-10-0-0-1', providerID: 'aws:///us-east-1a/fargate-x' },
    });
    expect(r).toMatchObject({ status: 'skipped', compute: 'fargate' });
  });

  it('access denied on DescribeInstances fails the step with the action; throttling is retried', async () => {
    const denied = { send: async () => Promise.reject(awsErr('UnauthorizedOperation', 403)) };
    const r = await nodeContext({
      node: { name: 'n', providerID: 'aws:///eu-west-1a/i-0abc1234def567890' },
      clients: { ec2: denied },
    });
    expect(r.status).toBe('failed');
    expect(r.failures[0]).toMatchObject({ action: 'ec2:DescribeInstances', kind: 'access-denied' });
    let calls = 0;
    const flaky = {
      send: async () => {
        calls++;
        if (calls < 3) throw awsErr('RequestLimitExceeded', 503);
        return { Reservations: [] };
      },
    };
    const t = await nodeContext({
      node: { name: 'n', providerID: 'aws:///eu-west-1a/i-0abc1234def567890' },
      clients: { ec2: flaky },
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
    });
    expect(calls).toBe(3);
    expect(t.failures[0]?.kind).toBe('not-found');
  });

  it('assessImds: v1 allowed, v2 hop 1, v2 hop 2, disabled', () => {
    expect(assessImds({ HttpTokens: 'optional', HttpPutResponseHopLimit: 1 }).reachableFromPods).toBe(true);
    expect(assessImds({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 }).reachableFromPods).toBe(false);
    expect(assessImds({ HttpTokens: 'required', HttpPutResponseHopLimit: 2 }).reachableFromPods).toBe(true);
    expect(assessImds({ HttpEndpoint: 'disabled', HttpTokens: 'optional' }).reachableFromPods).toBe(false);
    expect(assessImds(undefined).reachableFromPods).toBeNull();
  });
});
