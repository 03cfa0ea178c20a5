import { type AwsFailureKind, AwsRequestError } from '../errors.js';
import { EKS_OPT_IN_REGIONS } from './regions.js';

const ACCESS = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
  'SignatureDoesNotMatch',
  'AuthFailure',
  'InvalidSignatureException',
]);
const THROTTLE = new Set([
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'SlowDown',
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

function field(err: unknown, key: string): unknown {
  return err !== null && typeof err === 'object' ? (err as Record<string, unknown>)[key] : undefined;
}

/** Classifies an AWS SDK error (or a network error) into an {@link AwsFailureKind}. */
export function classifyAwsError(err: unknown, region?: string): { kind: AwsFailureKind; awsCode?: string } {
  const name = field(err, 'name');
  const code = field(err, 'code') ?? field(field(err, 'cause'), 'code');
  const meta = field(err, '$metadata');
  const httpStatus = field(meta, 'httpStatusCode');
  const awsCode = typeof name === 'string' && name !== 'Error' ? name : undefined;
  if (typeof code === 'string' && NETWORK.has(code)) return { kind: 'unreachable', awsCode: code };
  if (awsCode === 'TimeoutError' || awsCode === 'RequestTimeout') return { kind: 'unreachable', awsCode };
  if (awsCode === 'RegionDisabledException' || awsCode === 'OptInRequired') {
    return { kind: 'region-disabled', awsCode };
  }
  if (awsCode && ACCESS.has(awsCode)) {
    const optIn = region !== undefined && EKS_OPT_IN_REGIONS.includes(region);
    const tokenRejected = awsCode === 'UnrecognizedClientException' || awsCode === 'InvalidClientTokenId';
    return { kind: optIn && tokenRejected ? 'region-disabled' : 'access-denied', awsCode };
  }
  if (awsCode && THROTTLE.has(awsCode)) return { kind: 'throttled', awsCode };
  if (httpStatus === 429) return { kind: 'throttled', ...(awsCode ? { awsCode } : {}) };
  if (awsCode === 'ResourceNotFoundException' || awsCode === 'NotFoundException') {
    return { kind: 'not-found', awsCode };
  }
  if (awsCode === 'InvalidParameterException' || awsCode === 'ValidationError') {
    return { kind: 'invalid', awsCode };
  }
  if (httpStatus === 403) return { kind: 'access-denied', ...(awsCode ? { awsCode } : {}) };
  return { kind: 'error', ...(awsCode ? { awsCode } : {}) };
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
  const { kind, awsCode } = classifyAwsError(err, ctx.region);
  const raw = field(err, 'message');
  const detail = typeof raw === 'string' && raw !== '' ? raw.slice(0, 500) : String(err).slice(0, 500);
  const where = ctx.region ? ` (${ctx.region})` : '';
  const msg = `${ctx.what}${where} failed: ${awsCode ? `${awsCode}: ` : ''}${detail}. ${ctx.hint ?? ADVICE[kind]}`;
  const httpStatus = field(field(err, '$metadata'), 'httpStatusCode');
  return new AwsRequestError(msg, {
    cause: err,
    failure: kind,
    awsCode,
    operation: ctx.operation,
    region: ctx.region,
    httpStatus: typeof httpStatus === 'number' ? httpStatus : undefined,
  });
}
