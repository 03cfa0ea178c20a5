import { type AwsFailureKind, AwsRequestError } from '../errors.js';
import { EKS_OPT_IN_REGIONS } from './regions.js';

const ACCESS = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnauthorizedAccess',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
  'SignatureDoesNotMatch',
  'AuthFailure',
  'InvalidSignatureException',
  'MissingAuthenticationTokenException',
]);
const THROTTLE = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'LimitExceededException',
  'SnapshotCreationPerVolumeRateExceeded',
  'SlowDown',
]);
/** Server-side trouble worth retrying like throttling, but reported as `error` when it persists. */
const TRANSIENT = new Set([
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'Unavailable',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'InternalServerErrorException',
]);
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const NOT_FOUND = new Set(['ResourceNotFoundException', 'NotFoundException', 'NoSuchEntity', 'NotFound']);
const INVALID = new Set([
  'InvalidParameterException',
  'InvalidParameterValue',
  'InvalidParameterValueException',
  'InvalidParameterCombination',
  'InvalidRequestException',
  'InvalidLookupAttributesException',
  'InvalidTimeRangeException',
  'InvalidNextTokenException',
  'InvalidInputException',
  'BadRequestException',
  'ValidationError',
  'ValidationException',
]);

/** Context for {@link toAwsRequestError}. */
export interface AwsErrorContext {
  /** `service:Operation`, e.g. `eks:ListClusters`. */
  operation: string;
  /** Region the call went to. */
  region?: string | undefined;
  /** What was being done, for the message ("listing clusters in us-east-1"). */
  what: string;
  /** A sentence telling the user what to do, appended to the message. */
  hint?: string | undefined;
}

/** What {@link classifyAwsError} makes of an error. */
export interface AwsErrorClass {
  /** The classification. */
  kind: AwsFailureKind;
  /** AWS's error name (`AccessDeniedException`), or the network error code (`ECONNREFUSED`). */
  awsCode?: string;
  /** HTTP status AWS answered with, when it answered. */
  httpStatus?: number;
  /** True when retrying after a backoff may help (throttling, a 5xx, a transient server error). */
  retryable: boolean;
}

function field(err: unknown, key: string): unknown {
  return err !== null && typeof err === 'object' ? (err as Record<string, unknown>)[key] : undefined;
}

/**
 * Classifies an AWS SDK error (or a network error) into an {@link AwsFailureKind}. The one
 * classifier of the library: discovery, credentials and every AWS-side evidence step use it.
 *
 * @param region - the region the call went to; a rejected token in an opt-in region is
 *   `region-disabled`, not `access-denied`.
 */
export function classifyAwsError(err: unknown, region?: string): AwsErrorClass {
  const name = field(err, 'name');
  const upper = field(err, 'Code');
  const code = field(err, 'code') ?? field(field(err, 'cause'), 'code');
  const meta = field(err, '$metadata');
  const rawStatus = field(meta, 'httpStatusCode');
  const httpStatus = typeof rawStatus === 'number' ? rawStatus : undefined;
  const throttling = field(field(err, '$retryable'), 'throttling') === true;
  const awsCode =
    typeof upper === 'string' && upper !== ''
      ? upper
      : typeof name === 'string' && name !== 'Error'
        ? name
        : undefined;
  const out = (kind: AwsFailureKind, retryable = false, codeOverride?: string): AwsErrorClass => {
    const c = codeOverride ?? awsCode;
    return {
      kind,
      retryable,
      ...(c !== undefined ? { awsCode: c } : {}),
      ...(httpStatus !== undefined ? { httpStatus } : {}),
    };
  };
  if (typeof code === 'string' && NETWORK.has(code)) return out('unreachable', false, code);
  if (awsCode === 'TimeoutError' || awsCode === 'RequestTimeout') return out('unreachable');
  if (awsCode === 'RegionDisabledException' || awsCode === 'OptInRequired') return out('region-disabled');
  if (awsCode && ACCESS.has(awsCode)) {
    const optIn = region !== undefined && EKS_OPT_IN_REGIONS.includes(region);
    const tokenRejected = awsCode === 'UnrecognizedClientException' || awsCode === 'InvalidClientTokenId';
    return out(optIn && tokenRejected ? 'region-disabled' : 'access-denied');
  }
  if ((awsCode && THROTTLE.has(awsCode)) || throttling || httpStatus === 429) return out('throttled', true);
  if (awsCode && TRANSIENT.has(awsCode)) return out('error', true);
  if (awsCode && (NOT_FOUND.has(awsCode) || awsCode.endsWith('.NotFound'))) return out('not-found');
  if (awsCode && (INVALID.has(awsCode) || awsCode.endsWith('.Malformed'))) return out('invalid');
  if (httpStatus === 403) return out('access-denied');
  if (httpStatus === 404) return out('not-found');
  if (httpStatus !== undefined && httpStatus >= 500) return out('error', true);
  if (httpStatus !== undefined && httpStatus >= 400) return out('invalid');
  return out('error');
}

const ADVICE: Record<AwsFailureKind, string> = {
  'access-denied':
    'The credentials were rejected or lack permission; see docs/permissions.md for the IAM policy.',
  'region-disabled':
    'The region is not enabled for this account (an opt-in region); enable it or leave it out.',
  throttled: 'AWS throttled the request; retry later or lower the concurrency.',
  unreachable: 'The endpoint could not be reached; check network access and any endpoint override.',
  'not-found': 'The resource does not exist (or not in this region/account).',
  invalid: 'AWS rejected the request parameters.',
  error: 'AWS returned an unexpected error.',
};

/** Wraps an AWS SDK error in an {@link AwsRequestError} with a classified, actionable message. */
export function toAwsRequestError(err: unknown, ctx: AwsErrorContext): AwsRequestError {
  const { kind, awsCode, httpStatus } = classifyAwsError(err, ctx.region);
  const raw = field(err, 'message');
  const detail = typeof raw === 'string' && raw !== '' ? raw.slice(0, 500) : String(err).slice(0, 500);
  const where = ctx.region ? ` (${ctx.region})` : '';
  const msg = `${ctx.what}${where} failed: ${awsCode ? `${awsCode}: ` : ''}${detail}. ${ctx.hint ?? ADVICE[kind]}`;
  return new AwsRequestError(msg, {
    cause: err,
    failure: kind,
    awsCode,
    operation: ctx.operation,
    region: ctx.region,
    httpStatus,
  });
}
