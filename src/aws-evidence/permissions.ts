/**
 * The IAM actions the AWS-side evidence steps call, for docs and policy generation.
 */

/** One IAM action an AWS-side evidence step needs. */
export interface AwsEvidencePermission {
  /** IAM action, e.g. `logs:FilterLogEvents`. */
  action: string;
  /** Which step calls it. */
  step: 'control-plane-logs' | 'node-snapshot' | 'node-context' | 'cloudtrail' | 'guardduty' | 'pod-identity';
  /** False when the step works (with less) without it. */
  required: boolean;
  /** What it is used for. */
  why: string;
}

/**
 * Every IAM action called by {@link eks-forensics!exportControlPlaneLogs}, {@link eks-forensics!snapshotNode},
 * {@link eks-forensics!nodeContext}, {@link eks-forensics!cloudTrailActivity}, {@link eks-forensics!guardDutyFindings} and the Pod Identity
 * lookup of `podIdentityContext`.
 */
export const AWS_EVIDENCE_PERMISSIONS: readonly AwsEvidencePermission[] = Object.freeze([
  {
    action: 'logs:DescribeLogStreams',
    step: 'control-plane-logs',
    required: true,
    why: 'list the kube-apiserver-audit-*, authenticator-*, kube-apiserver-* streams of /aws/eks/<cluster>/cluster',
  },
  {
    action: 'logs:FilterLogEvents',
    step: 'control-plane-logs',
    required: true,
    why: 'read the events of those streams in the time window',
  },
  {
    action: 'eks:DescribeCluster',
    step: 'control-plane-logs',
    required: false,
    why: 'read logging.clusterLogging to say which log types are enabled (only when an EKS client is passed)',
  },
  {
    action: 'ec2:DescribeInstances',
    step: 'node-snapshot',
    required: true,
    why: "find the node's instance and its attached EBS volumes",
  },
  {
    action: 'ec2:CreateSnapshots',
    step: 'node-snapshot',
    required: true,
    why: 'crash-consistent snapshots of all volumes of the instance (mode multi-volume, the default)',
  },
  {
    action: 'ec2:CreateSnapshot',
    step: 'node-snapshot',
    required: false,
    why: 'one snapshot per volume (mode per-volume only)',
  },
  {
    action: 'ec2:CreateTags',
    step: 'node-snapshot',
    required: true,
    why: 'tag the snapshots at creation (case id, acquisition id, cluster, namespace, pod)',
  },
  {
    action: 'ec2:DescribeSnapshots',
    step: 'node-snapshot',
    required: false,
    why: 'poll the snapshots until completed (skipped with waitTimeoutMs: 0)',
  },
  {
    action: 'ec2:DescribeInstanceAttribute',
    step: 'node-snapshot',
    required: false,
    why: 'read disableApiTermination before changing it (terminationProtection: true only)',
  },
  {
    action: 'ec2:ModifyInstanceAttribute',
    step: 'node-snapshot',
    required: false,
    why: 'turn on termination protection (terminationProtection: true only)',
  },
  {
    action: 'ec2:DescribeInstances',
    step: 'node-context',
    required: true,
    why: 'instance profile, security groups, ENIs, IMDS options, AMI, launch time of the node',
  },
  {
    action: 'ec2:DescribeVpcs',
    step: 'node-context',
    required: false,
    why: "the VPC's CIDRs, so CloudTrail calls from inside the VPC are not flagged",
  },
  {
    action: 'ec2:DescribeNatGateways',
    step: 'node-context',
    required: false,
    why: "the VPC's NAT gateway public IPs, so CloudTrail calls through them are not flagged",
  },
  {
    action: 'iam:GetInstanceProfile',
    step: 'node-context',
    required: false,
    why: "the IAM role of the node's instance profile",
  },
  {
    action: 'autoscaling:DescribeAutoScalingInstances',
    step: 'node-context',
    required: false,
    why: 'Auto Scaling group of the node and whether scale-in protection is set',
  },
  {
    action: 'autoscaling:SetInstanceProtection',
    step: 'node-context',
    required: false,
    why: 'turn on scale-in protection (setScaleInProtection: true only; recorded in custody)',
  },
  {
    action: 'cloudtrail:LookupEvents',
    step: 'cloudtrail',
    required: true,
    why: "sessions of the pod's roles and the node role, and the calls made with them (event history)",
  },
  {
    action: 'guardduty:ListDetectors',
    step: 'guardduty',
    required: true,
    why: 'find the detector of the region (none = GuardDuty off)',
  },
  {
    action: 'guardduty:GetDetector',
    step: 'guardduty',
    required: false,
    why: 'detector status and whether EKS Protection / Runtime Monitoring are on',
  },
  {
    action: 'guardduty:ListFindings',
    step: 'guardduty',
    required: true,
    why: 'findings whose resource is the cluster or the node',
  },
  {
    action: 'guardduty:GetFindings',
    step: 'guardduty',
    required: true,
    why: 'the findings themselves (50 per call)',
  },
  {
    action: 'eks:ListPodIdentityAssociations',
    step: 'pod-identity',
    required: false,
    why: 'Pod Identity associations of the service account (podIdentityContext with podIdentity)',
  },
  {
    action: 'eks:DescribePodIdentityAssociation',
    step: 'pod-identity',
    required: false,
    why: 'the IAM role (and target role) of each association',
  },
]);

/** An IAM policy document (identity-based). */
export interface AwsEvidencePolicyDocument {
  /** Policy language version. */
  Version: '2012-10-17';
  /** One Allow statement. */
  Statement: Array<{
    /** Always `Allow`. */
    Effect: 'Allow';
    /** The IAM actions. */
    Action: string[];
    /** `*`; scope it down for your account. */
    Resource: '*';
  }>;
}

/**
 * An IAM policy document allowing the actions of the given steps (default: all).
 *
 * @example
 * JSON.stringify(awsEvidencePolicy(['node-snapshot']), null, 2)
 */
export function awsEvidencePolicy(
  steps: ReadonlyArray<AwsEvidencePermission['step']> = [
    'control-plane-logs',
    'node-snapshot',
    'node-context',
    'cloudtrail',
    'guardduty',
    'pod-identity',
  ],
): AwsEvidencePolicyDocument {
  const actions = AWS_EVIDENCE_PERMISSIONS.filter((p) => steps.includes(p.step)).map((p) => p.action);
  return {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: [...new Set(actions)], Resource: '*' }],
  };
}
