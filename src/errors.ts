/**
 * Every error this library throws is an {@link EksForensicsError} with a stable `code`.
 * Match on `err.code` (or `instanceof`, which also works across the ESM and CJS builds).
 *
 * @module
 */

import { redactSecrets } from './util/redact.js';

const BRAND = Symbol.for('eks-forensics.error');

/**
 * A Kubernetes `metav1.Status` object as the API server returned it (trimmed to the fields we read).
 * Carried on errors so callers can see exactly what the server said.
 */
export interface KubeStatus {
  /** `Success` or `Failure`. */
  status?: string | undefined;
  /** Human-readable description from the server. */
  message?: string | undefined;
  /** Machine-readable reason, e.g. `Forbidden`, `NotFound`, `NonZeroExitCode`. */
  reason?: string | undefined;
  /** HTTP status code the server attached, when it did. */
  code?: number | undefined;
  /** Extra detail: the object name and kind, and causes. */
  details?:
    | {
        name?: string | undefined;
        kind?: string | undefined;
        group?: string | undefined;
        causes?: Array<{
          reason?: string | undefined;
          message?: string | undefined;
          field?: string | undefined;
        }>;
      }
    | undefined;
}

/** Options common to every error constructor. */
export interface EksForensicsErrorOptions {
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
  /** The Kubernetes Status body, when there was one. */
  status?: KubeStatus | undefined;
  /** The HTTP status code, when the error came from an HTTP response. */
  httpStatus?: number | undefined;
}

/**
 * Base class of every error thrown by eks-forensics.
 *
 * Messages are passed through secret redaction: bearer tokens, `k8s-aws-v1.` tokens and SigV4
 * signatures never appear in `message`, `stack` or `util.inspect` output.
 */
export class EksForensicsError extends Error {
  /** Class name used for cross-realm `instanceof` checks. */
  static readonly kind: string = 'EksForensicsError';
  /** Stable machine-readable code, e.g. `EKSF_FORBIDDEN`. */
  readonly code: string = 'EKSF_ERROR';
  /** The Kubernetes Status the server returned, when there was one. */
  readonly status: KubeStatus | undefined;
  /** HTTP status code, when the error came from an HTTP response. */
  readonly httpStatus: number | undefined;
  /** @internal */
  readonly [BRAND]: readonly string[];

  constructor(message: string, options: EksForensicsErrorOptions = {}) {
    super(redactSecrets(message), options.cause === undefined ? undefined : { cause: options.cause });
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && 'kind' in c; c = Object.getPrototypeOf(c)) {
      const k = (c as { kind: unknown }).kind;
      if (typeof k === 'string' && !kinds.includes(k)) kinds.push(k);
    }
    this[BRAND] = kinds;
    this.name = (new.target as { kind?: string }).kind ?? 'EksForensicsError';
    this.status = options.status;
    this.httpStatus = options.httpStatus;
  }

  /**
   * Cross-build `instanceof`: true for any object branded with this class's kind, even one made
   * by another copy of the package (ESM vs CJS). `this` is the class `instanceof` was called on.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (value === null || typeof value !== 'object') return false;
    const kinds = (value as { [BRAND]?: unknown })[BRAND];
    // biome-ignore lint/complexity/noThisInStatic: subclasses inherit this method; `this` is the subclass.
    if (Array.isArray(kinds)) return kinds.includes(this.kind);
    // biome-ignore lint/complexity/noThisInStatic: as above.
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** True when `value` is any eks-forensics error (from either module build). */
export function isEksForensicsError(value: unknown): value is EksForensicsError {
  return value instanceof EksForensicsError;
}

/** Invalid options passed by the caller. Fix the call. */
export class ConfigError extends EksForensicsError {
  static override readonly kind: string = 'ConfigError';
  override readonly code: string = 'EKSF_CONFIG';
}

/**
 * Data from a trust boundary (API response, status frame, profile file, bundle) did not match
 * its schema. `issues` lists what was wrong, with paths.
 */
export class ValidationError extends EksForensicsError {
  static override readonly kind: string = 'ValidationError';
  override readonly code: string = 'EKSF_VALIDATION';
  /** Each problem found: where and what. */
  readonly issues: readonly { path: string; message: string }[];
  constructor(
    message: string,
    options: EksForensicsErrorOptions & { issues?: readonly { path: string; message: string }[] } = {},
  ) {
    super(message, options);
    this.issues = options.issues ?? [];
  }
}

/** The API server answered 401: the credentials were not accepted. */
export class UnauthorizedError extends EksForensicsError {
  static override readonly kind: string = 'UnauthorizedError';
  override readonly code: string = 'EKSF_UNAUTHORIZED';
}

/** What a 403 said was denied, parsed from the Status message. */
export interface ForbiddenDetail {
  /** The user the server named. */
  user?: string | undefined;
  /** Verb that was denied, e.g. `get` or `create`. */
  verb?: string | undefined;
  /** Resource, e.g. `pods`. */
  resource?: string | undefined;
  /** Subresource, e.g. `exec`. */
  subresource?: string | undefined;
  /** API group; `""` is the core group. */
  apiGroup?: string | undefined;
  /** Namespace, absent for cluster-scoped requests. */
  namespace?: string | undefined;
}

/** The API server answered 403: authenticated, but RBAC denied the request. */
export class ForbiddenError extends EksForensicsError {
  static override readonly kind: string = 'ForbiddenError';
  override readonly code: string = 'EKSF_FORBIDDEN';
  /** Verb/resource/namespace parsed from the server's message (fields absent when unparseable). */
  readonly denied: ForbiddenDetail;
  constructor(message: string, options: EksForensicsErrorOptions & { denied?: ForbiddenDetail } = {}) {
    super(message, options);
    this.denied = options.denied ?? {};
  }
}

/** The object (pod, node, …) does not exist. */
export class NotFoundError extends EksForensicsError {
  static override readonly kind: string = 'NotFoundError';
  override readonly code: string = 'EKSF_NOT_FOUND';
}

/** The server rejected the request as malformed (400) or invalid (422). */
export class BadRequestError extends EksForensicsError {
  static override readonly kind: string = 'BadRequestError';
  override readonly code: string = 'EKSF_BAD_REQUEST';
}

/** The server answered 409 Conflict. */
export class ConflictError extends EksForensicsError {
  static override readonly kind: string = 'ConflictError';
  override readonly code: string = 'EKSF_CONFLICT';
}

/** The server answered 410 Gone (an expired list `continue` token or watch resource version). */
export class ExpiredError extends EksForensicsError {
  static override readonly kind: string = 'ExpiredError';
  override readonly code: string = 'EKSF_EXPIRED';
}

/** The API could not be reached or kept failing (429, 5xx, connection errors) after bounded retries. */
export class ApiUnavailableError extends EksForensicsError {
  static override readonly kind: string = 'ApiUnavailableError';
  override readonly code: string = 'EKSF_API_UNAVAILABLE';
  /** How many attempts were made before giving up. */
  readonly attempts: number;
  constructor(message: string, options: EksForensicsErrorOptions & { attempts?: number } = {}) {
    super(message, options);
    this.attempts = options.attempts ?? 1;
  }
}

/** The exec stream broke the channel protocol (bad frame, bad status JSON, oversize status). */
export class ExecProtocolError extends EksForensicsError {
  static override readonly kind: string = 'ExecProtocolError';
  override readonly code: string = 'EKSF_EXEC_PROTOCOL';
}

/**
 * The exec socket closed without a status frame: the command's outcome is unknown and its
 * output may be truncated. Never treated as success.
 */
export class ExecIncompleteError extends EksForensicsError {
  static override readonly kind: string = 'ExecIncompleteError';
  override readonly code: string = 'EKSF_EXEC_INCOMPLETE';
}

/**
 * The exec ran but the server reported a failure other than a non-zero exit code, e.g.
 * `InternalError` for a container that is not running or a binary that does not exist.
 */
export class ExecFailedError extends EksForensicsError {
  static override readonly kind: string = 'ExecFailedError';
  override readonly code: string = 'EKSF_EXEC_FAILED';
}

/** A configured bound (bytes, entries, time without progress) was reached. */
export class LimitExceededError extends EksForensicsError {
  static override readonly kind: string = 'LimitExceededError';
  override readonly code: string = 'EKSF_LIMIT_EXCEEDED';
  /** Which limit, e.g. `maxArtifactBytes`. */
  readonly limit: string;
  constructor(message: string, options: EksForensicsErrorOptions & { limit: string }) {
    super(message, options);
    this.limit = options.limit;
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends EksForensicsError {
  static override readonly kind: string = 'AbortedError';
  override readonly code: string = 'EKSF_ABORTED';
}

/** The operation ran past its timeout and was cancelled. */
export class TimeoutError extends AbortedError {
  static override readonly kind: string = 'TimeoutError';
  override readonly code: string = 'EKSF_TIMEOUT';
}

/** FakeCluster's sandbox runtime cannot run on this machine; the message names the missing piece. */
export class SandboxUnavailableError extends EksForensicsError {
  static override readonly kind: string = 'SandboxUnavailableError';
  override readonly code: string = 'EKSF_SANDBOX_UNAVAILABLE';
}

/**
 * An EKS token would exceed the 4096 bytes aws-iam-authenticator accepts, almost always because
 * the assumed-role session token is large (session tags, an inline session policy).
 */
export class TokenTooLargeError extends EksForensicsError {
  static override readonly kind: string = 'TokenTooLargeError';
  override readonly code: string = 'EKSF_TOKEN_TOO_LARGE';
  /** Length of the token that was produced. */
  readonly bytes: number;
  /** The limit it exceeded (4096). */
  readonly limit: number;
  constructor(message: string, options: EksForensicsErrorOptions & { bytes?: number; limit?: number } = {}) {
    super(message, options);
    this.bytes = options.bytes ?? 0;
    this.limit = options.limit ?? 4096;
  }
}

/** What kind of AWS API failure an {@link AwsRequestError} is. */
export type AwsFailureKind =
  | 'access-denied'
  | 'region-disabled'
  | 'throttled'
  | 'unreachable'
  | 'not-found'
  | 'invalid'
  | 'error';

/** A call to an AWS API (EKS, STS) failed. `kind` classifies it; `awsCode` is AWS's error name. */
export class AwsRequestError extends EksForensicsError {
  static override readonly kind: string = 'AwsRequestError';
  override readonly code: string = 'EKSF_AWS_REQUEST';
  /** Classification of the failure. */
  readonly failure: AwsFailureKind;
  /** AWS error name, e.g. `AccessDeniedException`, when AWS answered. */
  readonly awsCode: string | undefined;
  /** Operation that failed, e.g. `eks:ListClusters`. */
  readonly operation: string | undefined;
  /** Region the call went to. */
  readonly region: string | undefined;
  constructor(
    message: string,
    options: EksForensicsErrorOptions & {
      failure?: AwsFailureKind;
      awsCode?: string | undefined;
      operation?: string | undefined;
      region?: string | undefined;
    } = {},
  ) {
    super(message, options);
    this.failure = options.failure ?? 'error';
    this.awsCode = options.awsCode;
    this.operation = options.operation;
    this.region = options.region;
  }
}

/** Why TLS verification of the API server failed (see {@link TlsTrustError}). */
export type TlsTrustProblem = 'untrusted-ca' | 'hostname' | 'expired' | 'not-yet-valid';

/**
 * The API server's TLS certificate was not accepted: not signed by the CA given as `caData` (or
 * none was given), not valid for the host name, or outside its validity period. Not retried: the
 * message says what to pass (usually the cluster CA as `caData`, from
 * `ClusterInfo.certificateAuthority`).
 */
export class TlsTrustError extends EksForensicsError {
  static override readonly kind: string = 'TlsTrustError';
  override readonly code: string = 'EKSF_TLS_UNTRUSTED';
  /** What was wrong with the certificate. */
  readonly problem: TlsTrustProblem;
  /** Node's / OpenSSL's code, e.g. `SELF_SIGNED_CERT_IN_CHAIN`. */
  readonly tlsCode: string | undefined;
  constructor(
    message: string,
    options: EksForensicsErrorOptions & { problem?: TlsTrustProblem; tlsCode?: string | undefined } = {},
  ) {
    super(message, options);
    this.problem = options.problem ?? 'untrusted-ca';
    this.tlsCode = options.tlsCode;
  }
}

/**
 * The cluster's API endpoint cannot be reached from here, e.g. a private-only EKS endpoint
 * without an `endpoint` override. The message names the ways in.
 */
export class ClusterUnreachableError extends EksForensicsError {
  static override readonly kind: string = 'ClusterUnreachableError';
  override readonly code: string = 'EKSF_CLUSTER_UNREACHABLE';
}

/**
 * The cluster answered 401 to an EKS token: the IAM principal is not mapped to the cluster
 * (no access entry, not in `aws-auth`). The message shows the commands that fix it.
 */
export class NotMappedError extends UnauthorizedError {
  static override readonly kind: string = 'NotMappedError';
  override readonly code: string = 'EKSF_NOT_MAPPED';
  /** The IAM principal (from `sts:GetCallerIdentity`) the token was signed as, when known. */
  readonly principalArn: string | undefined;
  constructor(
    message: string,
    options: EksForensicsErrorOptions & { principalArn?: string | undefined } = {},
  ) {
    super(message, options);
    this.principalArn = options.principalArn;
  }
}

/**
 * An evidence sink could not do what was asked: the bundle exists already, storage failed, or the
 * writer was used after finalize/abort. The message says which bundle and what to do.
 */
export class EvidenceError extends EksForensicsError {
  static override readonly kind: string = 'EvidenceError';
  override readonly code: string = 'EKSF_EVIDENCE';
}

/** Why an ephemeral debug container could not be used (see {@link EphemeralContainerError}). */
export type EphemeralFailure =
  | 'forbidden'
  | 'pod-security'
  | 'not-supported'
  | 'rejected'
  | 'image-pull'
  | 'start-failed'
  | 'timeout'
  | 'target-process';

/**
 * An ephemeral debug container could not be added, did not start, or the target's process could
 * not be found in it. `failure` says which; the message says what to grant or change. When
 * `podChanged` is true the container was added to the pod spec (permanently) before the failure.
 */
export class EphemeralContainerError extends EksForensicsError {
  static override readonly kind: string = 'EphemeralContainerError';
  override readonly code: string = 'EKSF_EPHEMERAL_CONTAINER';
  /** What went wrong. */
  readonly failure: EphemeralFailure;
  /** Whether the pod spec was changed (the ephemeral container exists) before the failure. */
  readonly podChanged: boolean;
  /** Name of the ephemeral container, when one was named. */
  readonly containerName: string | undefined;
  constructor(
    message: string,
    options: EksForensicsErrorOptions & {
      failure?: EphemeralFailure;
      podChanged?: boolean;
      containerName?: string | undefined;
    } = {},
  ) {
    super(message, options);
    this.failure = options.failure ?? 'rejected';
    this.podChanged = options.podChanged ?? false;
    this.containerName = options.containerName;
  }
}

/** Which piece a kubelet checkpoint lacks (see {@link CheckpointError}). */
export type CheckpointMissing = 'rbac' | 'feature-gate' | 'runtime' | 'target';

/**
 * A kubelet checkpoint (`POST /api/v1/nodes/<node>/proxy/checkpoint/<ns>/<pod>/<container>`) could
 * not be taken. `missing` names the piece: `rbac` (`create` on `nodes/proxy`), `feature-gate`
 * (the kubelet's `ContainerCheckpoint` gate is off), `runtime` (the container runtime does not
 * implement checkpointing, or CRIU failed), `target` (node, pod or container unknown).
 */
export class CheckpointError extends EksForensicsError {
  static override readonly kind: string = 'CheckpointError';
  override readonly code: string = 'EKSF_CHECKPOINT';
  /** The missing piece. */
  readonly missing: CheckpointMissing;
  constructor(message: string, options: EksForensicsErrorOptions & { missing?: CheckpointMissing } = {}) {
    super(message, options);
    this.missing = options.missing ?? 'runtime';
  }
}

/** Every error class, for catalog checks and documentation. */
export const ERROR_CLASSES = [
  EksForensicsError,
  ConfigError,
  ValidationError,
  UnauthorizedError,
  ForbiddenError,
  NotFoundError,
  BadRequestError,
  ConflictError,
  ExpiredError,
  ApiUnavailableError,
  ExecProtocolError,
  ExecIncompleteError,
  ExecFailedError,
  LimitExceededError,
  AbortedError,
  TimeoutError,
  SandboxUnavailableError,
  TokenTooLargeError,
  AwsRequestError,
  ClusterUnreachableError,
  TlsTrustError,
  NotMappedError,
  EvidenceError,
  EphemeralContainerError,
  CheckpointError,
] as const;
