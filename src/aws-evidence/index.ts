/**
 * AWS-side evidence: EKS control-plane logs from CloudWatch Logs and EBS snapshots of the node.
 * Both are steps the caller runs explicitly; nothing here touches AWS resources unasked.
 *
 * @module
 */
export type { AwsRetryOptions } from './aws-call.js';
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
