/**
 * Who was this pod in Kubernetes and in AWS, and what was done with it? For one pod: its service
 * account, the IAM role it maps to, what its RBAC lets a token holder do, the CloudTrail calls
 * made with that role and from where, GuardDuty findings, and whether the node's IMDS (and so
 * the node role) is reachable from pods. Everything lands in a verified evidence bundle.
 *
 *   npx tsx examples/cloud-context.ts --local [--out ./evidence] [--protect-node]
 *       # FakeCluster (identity scene) + FakeAws (CloudTrail, GuardDuty, Pod Identity) + moto_server (EC2, IAM, Auto Scaling)
 *   npx tsx examples/cloud-context.ts --cluster prod --region eu-west-1 --namespace shop --pod web-…
 *       [--endpoint https://127.0.0.1:8443 --tls-server-name <endpoint host>] [--hours 24] [--out ./evidence]
 *
 * In your own project import from 'eks-forensics' and 'eks-forensics/testing'.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
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
  DescribeNatGatewaysCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  IAMClient,
} from '@aws-sdk/client-iam';
import type { PodIdentityContext, PodIdentityLookup } from '../src/entries/types.js';
import {
  type CloudContextResult,
  ClusterCatalog,
  collectCloudContext,
  DirectorySink,
  KubeClient,
  podIdentityContext,
  verifyEvidence,
} from '../src/index.js';
import {
  addIdentityFixture,
  FakeAws,
  FakeCluster,
  motoServerMissing,
  startMotoServer,
} from '../src/testing/index.js';

const { values } = parseArgs({
  options: {
    local: { type: 'boolean', default: false },
    cluster: { type: 'string' },
    region: { type: 'string' },
    namespace: { type: 'string' },
    pod: { type: 'string' },
    endpoint: { type: 'string' },
    'tls-server-name': { type: 'string' },
    hours: { type: 'string', default: '24' },
    out: { type: 'string' },
    'protect-node': { type: 'boolean', default: false },
  },
});

interface Setup {
  kube: KubeClient;
  namespace: string;
  pod: string;
  clusterName: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  endpoints?: { cloudtrail?: string; guardduty?: string; ec2?: string } | undefined;
  podIdentity?: PodIdentityLookup | undefined;
  window: { from: Date; to: Date };
  close: () => Promise<void>;
}

/** The local scene: moto for EC2/IAM/ASG, FakeAws for what moto lacks, FakeCluster for the pod. */
async function localSetup(): Promise<Setup> {
  const region = 'us-east-1';
  const now = new Date();
  const window = { from: new Date(now.getTime() - 3_600_000), to: new Date(now.getTime() + 60_000) };
  const missing = motoServerMissing();
  if (missing) throw new Error(`--local needs moto_server for EC2, IAM and Auto Scaling: ${missing}`);
  const moto = await startMotoServer();
  const aws = await FakeAws.start();
  const cluster = await FakeCluster.start();
  const cfg = {
    region,
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  };
  // the node: an instance with an instance profile, IMDSv2 but hop limit 2, in an ASG behind a NAT
  const ec2 = new EC2Client(cfg);
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.42.0.0/16' }))).Vpc?.VpcId as string;
  const subnetId = (
    await ec2.send(
      new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.42.1.0/24', AvailabilityZone: `${region}a` }),
    )
  ).Subnet?.SubnetId as string;
  const eip = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  await ec2.send(new CreateNatGatewayCommand({ SubnetId: subnetId, AllocationId: eip.AllocationId }));
  const natIp =
    (await ec2.send(new DescribeNatGatewaysCommand({}))).NatGateways?.[0]?.NatGatewayAddresses?.[0]
      ?.PublicIp ?? '52.0.0.1';
  const iam = new IAMClient(cfg);
  const nodeRole = await iam.send(
    new CreateRoleCommand({
      RoleName: 'eks-node',
      AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}',
    }),
  );
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: 'eks-node' }));
  await iam.send(
    new AddRoleToInstanceProfileCommand({ InstanceProfileName: 'eks-node', RoleName: 'eks-node' }),
  );
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 'm6i.large',
      SubnetId: subnetId,
      IamInstanceProfile: { Name: 'eks-node' },
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2 },
    }),
  );
  const instanceId = run.Instances?.[0]?.InstanceId as string;
  const asg = new AutoScalingClient(cfg);
  await asg.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: 'prod-ng-1',
      MinSize: 0,
      MaxSize: 3,
      DesiredCapacity: 0,
      InstanceId: instanceId,
      VPCZoneIdentifier: subnetId,
    }),
  );
  const members = await asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }));
  if (!members.AutoScalingInstances?.length) {
    await asg.send(
      new AttachInstancesCommand({ AutoScalingGroupName: 'prod-ng-1', InstanceIds: [instanceId] }),
    );
  }
  cluster.addNode({ name: 'ip-10-42-1-10.ec2.internal', providerID: `aws:///${region}a/${instanceId}` });
  const fx = await addIdentityFixture(cluster, { nodeName: 'ip-10-42-1-10.ec2.internal', now });

  // what AWS recorded: the pod's IRSA session, its calls (one burst from outside), the node role
  const at = (min: number) => new Date(now.getTime() - min * 60_000);
  aws.addCloudTrailEvent({
    region,
    eventName: 'AssumeRoleWithWebIdentity',
    eventSource: 'sts.amazonaws.com',
    eventTime: at(50),
    username: `system:serviceaccount:${fx.namespace}:${fx.serviceAccount}`,
    resources: [{ type: 'AWS::IAM::Role', name: fx.roleArn }],
    sourceIPAddress: natIp,
    userAgent: 'aws-sdk-js/3.700.0',
    userIdentity: {
      type: 'WebIdentityUser',
      userName: `system:serviceaccount:${fx.namespace}:${fx.serviceAccount}`,
    },
    responseElements: { credentials: { accessKeyId: 'ASIAPODWEB0000000001' } },
  });
  for (let i = 0; i < 12; i++) {
    aws.addCloudTrailEvent({
      region,
      eventName: 'GetObject',
      eventSource: 's3.amazonaws.com',
      eventTime: at(45 - i),
      accessKeyId: 'ASIAPODWEB0000000001',
      username: 'web',
      sourceIPAddress: natIp,
      userAgent: 'aws-sdk-js/3.700.0',
    });
  }
  for (const [i, name] of ['GetCallerIdentity', 'ListBuckets', 'ListSecrets'].entries()) {
    aws.addCloudTrailEvent({
      region,
      eventName: name,
      eventSource: name === 'ListSecrets' ? 'secretsmanager.amazonaws.com' : 's3.amazonaws.com',
      eventTime: at(20 - i),
      accessKeyId: 'ASIAPODWEB0000000001',
      username: 'web',
      sourceIPAddress: '203.0.113.66',
      userAgent: 'curl/8.5.0',
    });
  }
  aws.addCloudTrailEvent({
    region,
    eventName: 'DescribeInstances',
    eventSource: 'ec2.amazonaws.com',
    eventTime: at(15),
    username: instanceId,
    accessKeyId: 'ASIANODE000000000001',
    sourceIPAddress: '10.42.1.10',
    userAgent: 'aws-sdk-go-v2/1.30.0',
    userIdentity: { type: 'AssumedRole', arn: `${nodeRole.Role?.Arn}/${instanceId}` },
  });
  aws.addGuardDutyDetector({
    region,
    features: ['EKS_AUDIT_LOGS', 'RUNTIME_MONITORING'],
    findings: [
      {
        type: 'CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed',
        severity: 7.5,
        title: 'A Kubernetes workload read secrets in an unusual way',
        resource: {
          resourceType: 'EKSCluster',
          eksClusterDetails: { name: 'prod' },
          kubernetesDetails: {
            kubernetesWorkloadDetails: { name: 'web', namespace: fx.namespace, type: 'deployments' },
          },
        },
      },
      {
        type: 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS',
        severity: 8,
        title: 'Credentials of the node role were used from outside AWS',
        resource: { resourceType: 'Instance', instanceDetails: { instanceId } },
      },
    ],
  });
  const client = new KubeClient({
    server: cluster.server,
    caData: cluster.caData,
    token: cluster.adminToken,
  });
  return {
    kube: client,
    namespace: fx.namespace,
    pod: fx.pod,
    clusterName: 'prod',
    region,
    credentials: aws.credentials(),
    endpoints: { cloudtrail: aws.endpoint, guardduty: aws.endpoint, ec2: moto.endpoint },
    podIdentity: { clusterName: 'prod', region, endpoint: aws.endpoint, credentials: aws.credentials() },
    window,
    close: async () => {
      await cluster.close();
      await aws.close();
      await moto.close();
    },
  };
}

async function remoteSetup(): Promise<Setup> {
  const { cluster: name, region, namespace, pod } = values;
  if (!name || !region || !namespace || !pod) {
    throw new Error('pass --cluster, --region, --namespace and --pod (or --local)');
  }
  const catalog = new ClusterCatalog({ regions: [region] });
  let info: Parameters<ClusterCatalog['connect']>[0] | undefined;
  for await (const c of catalog.clusters()) if (c.name === name) info = c;
  if (!info) throw new Error(`cluster ${name} not found in ${region}`);
  const kube = await catalog.connect(info, {
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
    ...(values['tls-server-name'] ? { tlsServerName: values['tls-server-name'] } : {}),
  });
  const to = new Date();
  return {
    kube,
    namespace,
    pod,
    clusterName: name,
    region,
    podIdentity: { clusterName: name, region },
    window: { from: new Date(to.getTime() - Number(values.hours) * 3_600_000), to },
    close: async () => {},
  };
}

function print(id: PodIdentityContext, ctx: CloudContextResult): void {
  const line = (k: string, v: string) => console.log(`${k.padEnd(16)}${v}`);
  line('pod', `${id.pod.namespace}/${id.pod.name} on node ${id.pod.nodeName ?? '?'}`);
  const sa = id.serviceAccount;
  line(
    'service account',
    `${id.pod.namespace}/${sa.name} (${sa.status}); token mounted: ${sa.tokenMounted === null ? 'unknown' : sa.tokenMounted ? 'yes' : 'no'}`,
  );
  line(
    'IAM role',
    id.awsRoles.length ? id.awsRoles.map((r) => `${r.roleArn} (${r.source})`).join(', ') : 'none',
  );
  line('RBAC', `${id.rbac.bindings.length} binding(s) grant ${sa.username} (${id.rbac.status})`);
  for (const b of id.rbac.bindings) {
    const where = b.namespace ? `${b.namespace}/` : '';
    console.log(
      `    ${b.kind}/${where}${b.name} via ${b.grantedTo.kind} ${b.grantedTo.name} -> ${b.roleRef.kind}/${b.roleRef.name}${b.roleStatus === 'found' ? '' : ` (${b.roleStatus})`}`,
    );
  }
  console.log('  a holder of its token can:');
  if (id.rbac.capabilities.length === 0) console.log('    nothing notable');
  for (const c of id.rbac.capabilities) {
    console.log(
      `    ${c.severity.toUpperCase().padEnd(6)} ${c.text} [${c.scopes.join(', ')}] via ${c.via.join(', ')}`,
    );
  }
  const chain = id.owners.chain.map((o) => `${o.kind}/${o.name}`).join(' <- ');
  line('owners', chain || 'none');
  if (id.owners.revisions.length) {
    const revs = id.owners.revisions.map(
      (r) => `r${r.revision ?? '?'} ${r.images.join('+')}${r.ownsPod ? ' (this pod)' : ''}`,
    );
    console.log(
      `    revisions: ${revs.join(', ')}; template changed: ${id.owners.templateChanged ? 'YES' : 'no'}`,
    );
  }
  line(
    'netpol',
    `${id.networkPolicies.selecting.map((n) => n.name).join(', ') || 'none'} (ingress isolated: ${id.networkPolicies.ingressIsolated}, egress isolated: ${id.networkPolicies.egressIsolated})`,
  );
  for (const s of id.skipped) console.log(`    skipped ${s.item}: ${s.reason}`);

  const ct = ctx.cloudTrail;
  if (ct) {
    const pod = ct.events.filter((e) => e.principal === 'pod-role').length;
    const node = ct.events.filter((e) => e.principal === 'node-role').length;
    line(
      'CloudTrail',
      `${pod} call(s) with the pod role in ${ct.sessions.length} session(s), ${node} with the node role (${ct.status})`,
    );
    for (const s of ct.sources) {
      const flag = s.sourceClass === 'outside' ? 'OUTSIDE' : s.sourceClass;
      console.log(
        `    ${s.sourceIPAddress.padEnd(16)} ${flag.padEnd(11)} ${String(s.count).padStart(4)} call(s)  ${s.userAgents.join(', ')}  ${s.eventNames.slice(0, 4).join(', ')}`,
      );
    }
    for (const n of ct.notes) console.log(`    note: ${n}`);
  }
  const gd = ctx.guardDuty;
  if (gd) {
    line(
      'GuardDuty',
      gd.status === 'disabled'
        ? `off: ${gd.notes[0] ?? ''}`
        : `${gd.findings.length} finding(s), ${gd.findings.filter((f) => f.concernsPod).length} about this pod (${gd.status})`,
    );
    for (const f of gd.findings) {
      console.log(
        `    ${String(f.severity ?? '?').padEnd(4)} ${f.type ?? '?'}${f.concernsPod ? '  [this pod]' : ''}`,
      );
    }
  }
  const n = ctx.node;
  if (n) {
    const imds = n.imds;
    line(
      'node IMDS',
      imds
        ? `reachable from pods: ${imds.reachableFromPods === null ? 'unknown' : imds.reachableFromPods ? 'YES' : 'no'} (${imds.reason})`
        : `unknown (${n.status}: ${n.notes.join('; ') || n.failures.map((f) => f.message).join('; ')})`,
    );
    if (n.instanceProfile)
      line('node role', (n.instanceProfile.roleArns ?? [n.instanceProfile.arn]).join(', '));
    if (n.autoScaling) {
      line(
        'node ASG',
        `${n.autoScaling.groupName ?? 'none'}; scale-in protection: ${n.autoScaling.protectedFromScaleIn ? 'on' : 'off'}${n.autoScaling.changed ? ' (turned on now, recorded in custody)' : ''}`,
      );
    }
  }
}

async function main(): Promise<void> {
  const setup = values.local ? await localSetup() : await remoteSetup();
  try {
    const identity = await podIdentityContext(
      setup.kube,
      { namespace: setup.namespace, name: setup.pod },
      { window: setup.window, podIdentity: setup.podIdentity },
    );
    const pod = await setup.kube.getPod(setup.namespace, setup.pod);
    const node = pod.spec?.nodeName ? await setup.kube.getNode(pod.spec.nodeName) : undefined;
    const root = resolve(values.out ?? (await mkdtemp(join(tmpdir(), 'eksf-cloud-context-'))));
    const bundle = await new DirectorySink({ root }).open({ caseId: 'cloud-context' });
    const ctx = await collectCloudContext({
      bundle,
      pod,
      node,
      identity,
      clusterName: setup.clusterName,
      region: setup.region,
      credentials: setup.credentials,
      endpoints: setup.endpoints,
      window: setup.window,
      nodeContext: { setScaleInProtection: values['protect-node'] },
    });
    const fin = await bundle.finalize({ cluster: { name: setup.clusterName, region: setup.region } });
    print(identity, ctx);
    const v = await verifyEvidence(fin.location, { expectedManifestSha256: fin.manifestSha256 });
    console.log(`${'bundle'.padEnd(16)}${fin.location}`);
    console.log(`${''.padEnd(16)}manifest sha256 ${fin.manifestSha256}; verify: ${v.status}`);
  } finally {
    await setup.close();
  }
}

main().catch((err: unknown) => {
  console.error(`cloud-context: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
