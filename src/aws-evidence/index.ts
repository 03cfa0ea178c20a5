/**
 * AWS-side evidence: EKS control-plane logs from CloudWatch Logs, EBS snapshots of the node, and
 * the cloud-side context of a pod (node EC2 context, CloudTrail activity of its roles, GuardDuty
 * findings). Every step is one the caller runs explicitly; nothing here touches AWS resources
 * unasked.
 *
 * @module
 */
export type { AwsRetryOptions } from './aws-call.js';
export {
  CLOUD_CONTEXT_PATHS,
  type CloudContextResult,
  type CollectCloudContextOptions,
  collectCloudContext,
} from './cloud-context.js';
export {
  CLOUDTRAIL_ACTION,
  type CloudTrailActivity,
  type CloudTrailActivityOptions,
  type CloudTrailCall,
  type CloudTrailLookup,
  type CloudTrailPrincipal,
  type CloudTrailSource,
  classifySource,
  cloudTrailActivity,
  type KnownSources,
  type SourceClass,
} from './cloudtrail.js';
export {
  type ClusterLoggingConfig,
  type ControlPlaneLogExportResult,
  type ControlPlaneLogLimits,
  type ControlPlaneLogType,
  type ControlPlaneStreamResult,
  controlPlaneLoggingEnableCommand,
  type ExportControlPlaneLogsOptions,
  exportControlPlaneLogs,
} from './control-plane-logs.js';
export type { ControlPlaneLogFilter } from './filter.js';
export {
  GUARDDUTY_ACTIONS,
  type GuardDutyFindingSummary,
  type GuardDutyFindingsOptions,
  type GuardDutyFindingsResult,
  guardDutyFindings,
} from './guardduty.js';
export {
  assessImds,
  type ImdsExposure,
  NODE_CONTEXT_ACTIONS,
  type NodeContextOptions,
  type NodeContextResult,
  nodeContext,
} from './node-context.js';
export {
  classifyNodeCompute,
  type Ec2ProviderId,
  FARGATE_SKIP_REASON,
  type NodeCompute,
  type NodeComputeInfo,
  type NodeSnapshotInfo,
  type NodeSnapshotResult,
  parseProviderId,
  type SnapshotNodeOptions,
  snapshotNode,
} from './node-snapshot.js';
export {
  AWS_EVIDENCE_PERMISSIONS,
  type AwsEvidencePermission,
  type AwsEvidencePolicyDocument,
  awsEvidencePolicy,
} from './permissions.js';
export {
  type AwsEvidenceWriter,
  type NodeObjectLike,
  type NodeRef,
  type PodObjectLike,
  type PodRef,
  toNodeRef,
  toPodRef,
} from './types.js';
