/**
 * Least-privilege policy and RBAC generators and remediation text: IAM policies and trust
 * policies, ClusterRole YAML, access-entry and eksctl commands, and the permission tables they come from.
 *
 * @module eks-forensics/iam
 */
export {
  AWS_EVIDENCE_PERMISSIONS,
  awsEvidencePolicy,
  CLOUDTRAIL_ACTION,
  controlPlaneLoggingEnableCommand,
  GUARDDUTY_ACTIONS,
  NODE_CONTEXT_ACTIONS,
} from '../aws-evidence/index.js';
export {
  accessEntryCommands,
  canonicalPrincipalArn,
  clusterRoleYaml,
  crossAccountTrustPolicyJson,
  DEFAULT_CLUSTER_ROLE_NAME,
  DEFAULT_MAPPED_USERNAME,
  DEFAULT_RBAC_GROUP,
  discoveryPolicyJson,
  eksctlMappingCommand,
  enableAccessEntriesCommand,
  explainAccessError,
  explainForbidden,
  explainUnauthorized,
  IDENTITY_IAM_ACTIONS,
  IDENTITY_READ_PERMISSIONS,
  identityReaderClusterRoleYaml,
  mappingRemediation,
  permissionsRemediation,
  REQUIRED_PERMISSIONS,
} from '../catalog/index.js';
export {
  EPHEMERAL_PERMISSIONS,
  ephemeralGrantText,
  ephemeralRoleYaml,
  explainPatchError,
} from '../collect/ephemeral/index.js';
