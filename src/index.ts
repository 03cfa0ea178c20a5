/**
 * eks-forensics: acquire forensic evidence from containers in Amazon EKS.
 *
 * Layers (imports go downward only): errors/util → aws, kube, evidence → catalog → collect.
 * Every export is named here; nothing is exported with `*`.
 *
 * @module eks-forensics
 */

// --- errors (layer 0) ---
export {
  AbortedError,
  ApiUnavailableError,
  BadRequestError,
  ConfigError,
  ConflictError,
  EksForensicsError,
  type EksForensicsErrorOptions,
  ERROR_CLASSES,
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
  SandboxUnavailableError,
  TimeoutError,
  UnauthorizedError,
  ValidationError,
} from './errors.js';
export { type Logger, redactSecrets, silentLogger } from './util/index.js';

// --- kube (layer 1) ---

// --- aws (layer 1) ---

// --- evidence (layer 1) ---

// --- catalog (layer 2) ---

// --- collect (layer 3) ---
