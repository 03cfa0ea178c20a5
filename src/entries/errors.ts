/**
 * Every error class the library throws, with its stable `code`, and `ERROR_CLASSES` (code → class).
 * The base class and the errors most callers catch are also on the root entry.
 *
 * @module eks-forensics/errors
 */
export {
  AbortedError,
  ApiUnavailableError,
  type AwsFailureKind,
  AwsRequestError,
  BadRequestError,
  CheckpointError,
  type CheckpointMissing,
  ClusterUnreachableError,
  ConfigError,
  ConflictError,
  EksForensicsError,
  type EksForensicsErrorOptions,
  EphemeralContainerError,
  type EphemeralFailure,
  ERROR_CLASSES,
  EvidenceError,
  ExecFailedError,
  ExecIncompleteError,
  ExecProtocolError,
  ExpiredError,
  type ForbiddenDetail,
  ForbiddenError,
  isEksForensicsError,
  type KubeStatus,
  LimitExceededError,
  NotFoundError,
  NotMappedError,
  SandboxUnavailableError,
  TimeoutError,
  TlsTrustError,
  type TlsTrustProblem,
  TokenTooLargeError,
  UnauthorizedError,
  ValidationError,
} from '../errors.js';
