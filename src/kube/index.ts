/**
 * Kubernetes layer (layer 1): `KubeClient` for the REST calls and exec over WebSocket, the zod
 * schemas of the objects it reads, and the pure exec channel codec.
 *
 * @module
 */
export {
  type CheckpointOptions,
  type CheckpointResult,
  checkpointResponseSchema,
  explainCheckpointError,
} from './checkpoint.js';
export { KubeClient } from './client.js';
export {
  Channel,
  decodeFrame,
  EXEC_PROTOCOLS,
  type ExecProtocol,
  type ExecStatusOutcome,
  encodeClose,
  encodeFrame,
  encodeStatusPayload,
  type Frame,
  internalErrorStatus,
  MAX_FRAME_BYTES,
  MAX_STATUS_BYTES,
  nonZeroExitStatus,
  parseExecStatus,
  statusSchema,
  successStatus,
} from './exec/codec.js';
export { normalizeCaData, parseForbidden } from './http.js';
export {
  KUBE_RESOURCES,
  type KubeResourceDef,
  type KubeResourceKind,
  type KubeResourceObject,
  type LabelSelector,
  type ListObjectsOptions,
  type ListObjectsResult,
  labelSelectorSchema,
  type NamespaceEvent,
  type NetworkPolicy,
  networkPolicySchema,
  type PolicyRule,
  policyRuleSchema,
  type RbacBinding,
  type RbacRole,
  resourcePath,
  roleBindingSchema,
  roleSchema,
  type ServiceAccount,
  serviceAccountSchema,
  type Workload,
  workloadSchema,
} from './resources.js';
export {
  type Container,
  type ContainerStatus,
  containerSchema,
  containerStatusSchema,
  eventSchema,
  type KubeEvent,
  type Node,
  nodeSchema,
  type Pod,
  podListSchema,
  podSchema,
  type UserInfo,
  userInfoSchema,
} from './schemas.js';
export type {
  CallOptions,
  CanIOptions,
  CanIResult,
  EphemeralContainerSpec,
  ExecOptions,
  ExecResult,
  ExecSession,
  KubeClientOptions,
  ListPodsOptions,
  PodEventsOptions,
  PodLogsOptions,
  TokenProvider,
} from './types.js';
