/**
 * eks-forensics: acquire forensic evidence from containers in Amazon EKS.
 *
 * Layers (imports go downward only): errors/util → aws, kube, evidence → catalog → collect.
 * The root entry holds the entry points: the classes, sinks, `verifyEvidence`, `targetsFromPods`,
 * profile loaders, AWS-evidence functions, the base error and the errors most callers catch, and
 * the option/result types written against them. Everything else is on a purpose-named subpath:
 * `/errors`, `/types`, `/schemas`, `/iam`, `/auth`, `/ephemeral`, `/codecs`, plus `/testing` and
 * `/fleet`. Every export is named; nothing is exported with `*`.
 *
 * @module eks-forensics
 */
export {
  type CloudContextResult,
  cloudTrailActivity,
  collectCloudContext,
  type CollectCloudContextOptions,
  exportControlPlaneLogs,
  guardDutyFindings,
  nodeContext,
  snapshotNode,
} from './aws-evidence/index.js';
export {
  assumeRoleCredentials,
  EksAuth,
  type EksAuthOptions,
  eksKubeconfig,
} from './aws/index.js';
export {
  ClusterCatalog,
  type ClusterCatalogOptions,
  type ClusterInfo,
  type ConnectOptions,
  type ContainerInfo,
  podIdentityContext,
  type PodInfo,
} from './catalog/index.js';
export {
  type AcquisitionReport,
  type AcquisitionTarget,
  ArtifactCollector,
  type ArtifactCollectorOptions,
  type ArtifactProfile,
  BUILTIN_PROFILE_NAMES,
  BUILTIN_PROFILES,
  builtinProfile,
  type CollectLimits,
  DEFAULT_LIMITS,
  loadProfileFile,
  parseProfileText,
  type ProfileSpecInput,
  type ProgressEvent,
  type TargetReport,
  targetsFromPods,
  type TargetStatus,
} from './collect/index.js';
export {
  AbortedError,
  ClusterUnreachableError,
  EksForensicsError,
  EvidenceError,
  ForbiddenError,
  isEksForensicsError,
  NotFoundError,
  NotMappedError,
  TimeoutError,
  TlsTrustError,
} from './errors.js';
export {
  DirectorySink,
  type DirectorySinkOptions,
  type EvidenceSink,
  type Manifest,
  MemorySink,
  S3Sink,
  type S3SinkOptions,
  TarSink,
  type TarSinkOptions,
  TimestampingSink,
  verifyEvidence,
  type VerifyOptions,
  type VerifyReport,
} from './evidence/index.js';
export {
  type ExecOptions,
  type ExecResult,
  type ExecSession,
  KubeClient,
  type KubeClientOptions,
} from './kube/index.js';
export {
  type Logger,
  silentLogger,
} from './util/index.js';
