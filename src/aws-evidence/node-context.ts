/**
 * The EC2 side of a node: instance profile and role, security groups, network interfaces, the
 * instance metadata options (can pods reach the node's credentials?), AMI, launch time, Auto
 * Scaling group and scale-in protection; optionally turns scale-in protection on (opt-in,
 * recorded in custody).
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { CredentialsInput } from '../aws/index.js';
import { AbortedError, type AwsFailureKind, AwsRequestError, ConfigError } from '../errors.js';
import { type AwsRetryOptions, callAws } from './aws-call.js';
import { classifyNodeCompute, type NodeCompute } from './node-snapshot.js';
import type { AwsEvidenceWriter, NodeObjectLike, NodeRef, PodObjectLike, PodRef } from './types.js';
import { toPodRef } from './types.js';

/** Options of {@link eks-forensics!nodeContext}. */
export interface NodeContextOptions {
  /** The node (name, `spec.providerID`, labels) or a Node object. */
  node: NodeRef | NodeObjectLike;
  /** The pod, for Fargate detection and custody entries. */
  pod?: PodRef | PodObjectLike | undefined;
  /** Region (default: from the providerID's zone). */
  region?: string | undefined;
  /** AWS credentials for the clients made here. */
  credentials?: CredentialsInput | undefined;
  /** One endpoint for EC2, IAM and Auto Scaling (tests: moto). */
  endpoint?: string | undefined;
  /** Clients to use instead. */
  clients?: {
    ec2?: Pick<EC2Client, 'send'> | undefined;
    iam?: Pick<IAMClient, 'send'> | undefined;
    autoscaling?: Pick<AutoScalingClient, 'send'> | undefined;
  };
  /**
   * Turn on scale-in protection for the instance in its Auto Scaling group so the group does not
   * terminate the node during the investigation. Changes the account: opt-in, needs `bundle`, and
   * is recorded in custody. Default false.
   */
  setScaleInProtection?: boolean | undefined;
  /** Where the change is recorded (required with `setScaleInProtection`). */
  bundle?: AwsEvidenceWriter | undefined;
  /** Backoff on throttling. */
  retry?: AwsRetryOptions | undefined;
  /** Cancels the reads. */
  signal?: AbortSignal | undefined;
}

/** Whether pods on the node can reach the instance metadata service (and so the node's role). */
export interface ImdsExposure {
  /** `HttpEndpoint` (`enabled`/`disabled`). */
  httpEndpoint: string | null;
  /** `HttpTokens`: `required` = IMDSv2 only; `optional` = IMDSv1 allowed. */
  httpTokens: string | null;
  /** `HttpPutResponseHopLimit`. */
  hopLimit: number | null;
  /** Pods on the pod network (not hostNetwork) can get the node's credentials. null = unknown. */
  reachableFromPods: boolean | null;
  /** Why. */
  reason: string;
}

/** What {@link eks-forensics!nodeContext} found. */
export interface NodeContextResult {
  /** `collected`; `partial` when some reads failed; `skipped` for non-EC2 nodes; `failed`. */
  status: 'collected' | 'partial' | 'skipped' | 'failed';
  /** Node name. */
  node: string;
  /** Where the node runs. */
  compute: NodeCompute;
  /** Region. */
  region: string | null;
  /** Instance id. */
  instanceId: string | null;
  /** Instance facts. */
  instance: {
    imageId: string | null;
    instanceType: string | null;
    launchTime: string | null;
    state: string | null;
    lifecycle: string | null;
    vpcId: string | null;
    subnetId: string | null;
    privateIpAddress: string | null;
    publicIpAddress: string | null;
  } | null;
  /** Instance profile and the roles in it. */
  instanceProfile: { arn: string; name: string | null; roleArns: string[] | null } | null;
  /** Security groups of the instance. */
  securityGroups: Array<{ groupId: string; groupName: string | null }>;
  /** Network interfaces (pod IPs live on secondary addresses with the VPC CNI). */
  networkInterfaces: Array<{
    networkInterfaceId: string;
    subnetId: string | null;
    privateIpAddresses: string[];
    publicIp: string | null;
    securityGroupIds: string[];
  }>;
  /** The IMDS options and what they mean for pods. */
  imds: ImdsExposure | null;
  /** Auto Scaling membership and scale-in protection. */
  autoScaling: {
    groupName: string | null;
    lifecycleState: string | null;
    protectedFromScaleIn: boolean | null;
    /** True when this call turned protection on. */
    changed: boolean;
  } | null;
  /** VPC CIDRs and NAT gateway IPs: the addresses the cluster's calls come from. */
  knownSources: { cidrs: string[]; ips: string[] };
  /** The full DescribeInstances answer for the instance. */
  raw: unknown;
  /** What failed, with its classification. */
  failures: Array<{ action: string; kind: AwsFailureKind; message: string }>;
  /** Notes. */
  notes: string[];
}

/** The IAM actions {@link eks-forensics!nodeContext} calls (`autoscaling:SetInstanceProtection` only when asked). */
export const NODE_CONTEXT_ACTIONS = [
  'ec2:DescribeInstances',
  'ec2:DescribeVpcs',
  'ec2:DescribeNatGateways',
  'iam:GetInstanceProfile',
  'autoscaling:DescribeAutoScalingInstances',
  'autoscaling:SetInstanceProtection',
] as const;

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v.slice(0, 2048) : null);

/** What the IMDS options mean for pods on the pod network (VPC CNI: one extra hop). */
export function assessImds(
  options:
    | {
        HttpEndpoint?: string | undefined;
        HttpTokens?: string | undefined;
        HttpPutResponseHopLimit?: number | undefined;
      }
    | null
    | undefined,
): ImdsExposure {
  const httpEndpoint = str(options?.HttpEndpoint);
  const httpTokens = str(options?.HttpTokens);
  const hopLimit =
    typeof options?.HttpPutResponseHopLimit === 'number' ? options.HttpPutResponseHopLimit : null;
  const base = { httpEndpoint, httpTokens, hopLimit };
  if (!options) return { ...base, reachableFromPods: null, reason: 'no MetadataOptions in the answer' };
  if (httpEndpoint === 'disabled') {
    return { ...base, reachableFromPods: false, reason: 'IMDS is disabled on the instance' };
  }
  if (httpTokens === 'optional') {
    return {
      ...base,
      reachableFromPods: true,
      reason:
        'IMDSv1 is allowed (HttpTokens=optional): any pod can read the node role credentials with a plain GET, whatever the hop limit',
    };
  }
  if (httpTokens === 'required' && hopLimit !== null) {
    return hopLimit >= 2
      ? {
          ...base,
          reachableFromPods: true,
          reason: `IMDSv2 only, but hop limit ${hopLimit} lets the token answer cross the pod's extra hop: pods can read the node role credentials`,
        }
      : {
          ...base,
          reachableFromPods: false,
          reason:
            'IMDSv2 only with hop limit 1: pods on the pod network cannot get a token (hostNetwork pods still can)',
        };
  }
  return {
    ...base,
    reachableFromPods: null,
    reason: `unrecognized options (HttpTokens=${httpTokens ?? 'none'})`,
  };
}

/**
 * Reads the EC2 context of the node a pod runs on. Never throws for an AWS failure: `failures`
 * and `status` say what could not be read. Fargate and non-EC2 nodes are `skipped`.
 *
 * @throws {@link eks-forensics/errors!ConfigError} for `setScaleInProtection` without `bundle`, or no region;
 *   {@link AbortedError} when `signal` fires.
 */
export async function nodeContext(options: NodeContextOptions): Promise<NodeContextResult> {
  if (options.setScaleInProtection && !options.bundle) {
    throw new ConfigError(
      'setScaleInProtection changes the account and needs a bundle to record it in custody',
    );
  }
  const info = classifyNodeCompute(options.node, options.pod);
  const nodeName =
    'name' in options.node && typeof options.node.name === 'string'
      ? options.node.name
      : ((options.node as NodeObjectLike).metadata?.name ?? '');
  const result: NodeContextResult = {
    status: 'collected',
    node: nodeName,
    compute: info.compute,
    region: null,
    instanceId: info.ec2?.instanceId ?? null,
    instance: null,
    instanceProfile: null,
    securityGroups: [],
    networkInterfaces: [],
    imds: null,
    autoScaling: null,
    knownSources: { cidrs: [], ips: [] },
    raw: null,
    failures: [],
    notes: [],
  };
  if (info.compute !== 'ec2' || !info.ec2) {
    result.status = 'skipped';
    result.notes.push(info.reason);
    return result;
  }
  const region = options.region ?? info.ec2.region;
  if (!region) throw new ConfigError(`no region for node ${nodeName}: pass region`);
  result.region = region;
  const instanceId = info.ec2.instanceId;
  const common = {
    region,
    maxAttempts: 1,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
  };
  const ec2mod = await import('@aws-sdk/client-ec2');
  const ec2 = options.clients?.ec2 ?? new ec2mod.EC2Client(common);
  const call = <T>(action: string, resource: string, fn: (s: AbortSignal | undefined) => Promise<T>) =>
    callAws({ action, resource, region, retry: options.retry, signal: options.signal }, fn);
  const failed = (action: string, err: unknown): void => {
    if (err instanceof AbortedError) throw err;
    const kind = err instanceof AwsRequestError ? err.failure : 'error';
    result.failures.push({ action, kind, message: (err as Error).message.slice(0, 500) });
  };

  // 1. The instance.
  let vpcId: string | null = null;
  try {
    const out = await call('ec2:DescribeInstances', `instance ${instanceId}`, (s) =>
      ec2.send(new ec2mod.DescribeInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: s }),
    );
    const inst = (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .find((i) => i.InstanceId === instanceId);
    if (!inst)
      throw new AwsRequestError(`instance ${instanceId} not found in ${region}`, { failure: 'not-found' });
    result.raw = inst;
    vpcId = str(inst.VpcId);
    result.instance = {
      imageId: str(inst.ImageId),
      instanceType: str(inst.InstanceType),
      launchTime: inst.LaunchTime ? new Date(inst.LaunchTime).toISOString() : null,
      state: str(inst.State?.Name),
      lifecycle: str(inst.InstanceLifecycle) ?? 'on-demand',
      vpcId,
      subnetId: str(inst.SubnetId),
      privateIpAddress: str(inst.PrivateIpAddress),
      publicIpAddress: str(inst.PublicIpAddress),
    };
    const profileArn = str(inst.IamInstanceProfile?.Arn);
    if (profileArn) {
      result.instanceProfile = { arn: profileArn, name: profileArn.split('/').pop() ?? null, roleArns: null };
    } else result.notes.push('the instance has no instance profile: the node has no IAM role');
    result.securityGroups = (inst.SecurityGroups ?? []).flatMap((g) =>
      g.GroupId ? [{ groupId: g.GroupId, groupName: str(g.GroupName) }] : [],
    );
    result.networkInterfaces = (inst.NetworkInterfaces ?? []).flatMap((n) =>
      n.NetworkInterfaceId
        ? [
            {
              networkInterfaceId: n.NetworkInterfaceId,
              subnetId: str(n.SubnetId),
              privateIpAddresses: (n.PrivateIpAddresses ?? []).flatMap((a) =>
                a.PrivateIpAddress ? [a.PrivateIpAddress] : [],
              ),
              publicIp: str(n.Association?.PublicIp),
              securityGroupIds: (n.Groups ?? []).flatMap((g) => (g.GroupId ? [g.GroupId] : [])),
            },
          ]
        : [],
    );
    result.imds = assessImds(inst.MetadataOptions);
    for (const ip of [result.instance.publicIpAddress, ...result.networkInterfaces.map((n) => n.publicIp)]) {
      if (ip && !result.knownSources.ips.includes(ip)) result.knownSources.ips.push(ip);
    }
  } catch (err) {
    failed('ec2:DescribeInstances', err);
    result.status = 'failed';
    return result;
  }

  // 2. The role(s) of the instance profile.
  if (result.instanceProfile?.name) {
    try {
      const iammod = await import('@aws-sdk/client-iam');
      const iam = options.clients?.iam ?? new iammod.IAMClient(common);
      const name = result.instanceProfile.name;
      const out = await call('iam:GetInstanceProfile', `instance profile ${name}`, (s) =>
        iam.send(new iammod.GetInstanceProfileCommand({ InstanceProfileName: name }), { abortSignal: s }),
      );
      result.instanceProfile.roleArns = (out.InstanceProfile?.Roles ?? []).flatMap((r) =>
        r.Arn ? [r.Arn] : [],
      );
    } catch (err) {
      failed('iam:GetInstanceProfile', err);
    }
  }

  // 3. The VPC's CIDRs and NAT gateways: where the cluster's own calls come from.
  if (vpcId) {
    const vpc = vpcId;
    try {
      const out = await call('ec2:DescribeVpcs', `vpc ${vpc}`, (s) =>
        ec2.send(new ec2mod.DescribeVpcsCommand({ VpcIds: [vpc] }), { abortSignal: s }),
      );
      for (const v of out.Vpcs ?? []) {
        for (const c of v.CidrBlockAssociationSet ?? [])
          if (c.CidrBlock) result.knownSources.cidrs.push(c.CidrBlock);
        if (v.CidrBlock && !result.knownSources.cidrs.includes(v.CidrBlock))
          result.knownSources.cidrs.push(v.CidrBlock);
        for (const c of v.Ipv6CidrBlockAssociationSet ?? [])
          if (c.Ipv6CidrBlock) result.knownSources.cidrs.push(c.Ipv6CidrBlock);
      }
    } catch (err) {
      failed('ec2:DescribeVpcs', err);
    }
    try {
      const out = await call('ec2:DescribeNatGateways', `vpc ${vpc}`, (s) =>
        ec2.send(new ec2mod.DescribeNatGatewaysCommand({ Filter: [{ Name: 'vpc-id', Values: [vpc] }] }), {
          abortSignal: s,
        }),
      );
      for (const g of out.NatGateways ?? []) {
        for (const a of g.NatGatewayAddresses ?? []) {
          if (a.PublicIp && !result.knownSources.ips.includes(a.PublicIp))
            result.knownSources.ips.push(a.PublicIp);
        }
      }
    } catch (err) {
      failed('ec2:DescribeNatGateways', err);
    }
  }

  // 4. Auto Scaling and scale-in protection.
  try {
    const asmod = await import('@aws-sdk/client-auto-scaling');
    const as = options.clients?.autoscaling ?? new asmod.AutoScalingClient(common);
    const out = await call('autoscaling:DescribeAutoScalingInstances', `instance ${instanceId}`, (s) =>
      as.send(new asmod.DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }), {
        abortSignal: s,
      }),
    );
    const a = (out.AutoScalingInstances ?? []).find((x) => x.InstanceId === instanceId);
    result.autoScaling = {
      groupName: str(a?.AutoScalingGroupName),
      lifecycleState: str(a?.LifecycleState),
      protectedFromScaleIn: a ? a.ProtectedFromScaleIn === true : null,
      changed: false,
    };
    if (!a) result.notes.push('the instance is not in an Auto Scaling group');
    if (options.setScaleInProtection && a?.AutoScalingGroupName && a.ProtectedFromScaleIn !== true) {
      const group = a.AutoScalingGroupName;
      try {
        await call('autoscaling:SetInstanceProtection', `instance ${instanceId}`, (s) =>
          as.send(
            new asmod.SetInstanceProtectionCommand({
              AutoScalingGroupName: group,
              InstanceIds: [instanceId],
              ProtectedFromScaleIn: true,
            }),
            { abortSignal: s },
          ),
        );
        result.autoScaling.protectedFromScaleIn = true;
        result.autoScaling.changed = true;
        const pod = toPodRef(options.pod);
        options.bundle?.recordChange({
          kind: 'asg-scale-in-protection-enabled',
          ...(pod
            ? { target: { namespace: pod.namespace, pod: pod.name, ...(pod.uid ? { podUid: pod.uid } : {}) } }
            : {}),
          description:
            `Enabled scale-in protection for instance ${instanceId} (node ${nodeName}) in Auto Scaling group ${group}; ` +
            'it was off. Turn it off again when the investigation allows.',
          details: { instanceId, node: nodeName, autoScalingGroup: group, region, previous: false },
        });
      } catch (err) {
        failed('autoscaling:SetInstanceProtection', err);
      }
    }
  } catch (err) {
    failed('autoscaling:DescribeAutoScalingInstances', err);
  }
  if (result.failures.length) result.status = 'partial';
  return result;
}
