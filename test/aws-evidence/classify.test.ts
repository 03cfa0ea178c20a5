import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../src/entries/auth.js';

function awsErr(name: string, status?: number, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(`${name} happened`), {
    name,
    ...(status !== undefined ? { $metadata: { httpStatusCode: status } } : {}),
    ...extra,
  });
}

describe('one AWS error classifier for discovery and AWS-side evidence', () => {
  it.each([
    ['AccessDeniedException', 400, 'access-denied'],
    ['UnauthorizedAccess', 401, 'access-denied'], // GuardDuty's name for a denial
    ['UnauthorizedOperation', 403, 'access-denied'], // EC2
    ['ThrottlingException', 400, 'throttled'],
    ['RequestLimitExceeded', 503, 'throttled'], // EC2
    ['LimitExceededException', 400, 'throttled'], // CloudWatch Logs
    ['InvalidInstanceID.NotFound', 400, 'not-found'], // EC2 dotted codes
    ['ResourceNotFoundException', 404, 'not-found'],
    ['InvalidLookupAttributesException', 400, 'invalid'], // CloudTrail
    ['ValidationException', 400, 'invalid'],
    ['SomethingNew', 409, 'invalid'],
    ['SomethingNew', 500, 'error'],
  ])('%s (%i) is %s', (name, status, kind) => {
    expect(classifyAwsError(awsErr(name, status)).kind).toBe(kind);
  });

  it('marks throttling and transient 5xx as retryable, denials and bad requests not', () => {
    expect(classifyAwsError(awsErr('ThrottlingException', 400)).retryable).toBe(true);
    expect(classifyAwsError(awsErr('X', 400, { $retryable: { throttling: true } })).kind).toBe('throttled');
    const unavailable = classifyAwsError(awsErr('ServiceUnavailableException', 503));
    expect(unavailable).toMatchObject({ kind: 'error', retryable: true, httpStatus: 503 });
    expect(classifyAwsError(awsErr('AccessDeniedException', 400)).retryable).toBe(false);
    expect(classifyAwsError(awsErr('ValidationException', 400)).retryable).toBe(false);
  });

  it('a rejected token in an opt-in region is region-disabled, elsewhere access-denied', () => {
    const e = awsErr('UnrecognizedClientException', 403);
    expect(classifyAwsError(e, 'ap-east-1').kind).toBe('region-disabled');
    expect(classifyAwsError(e, 'us-east-1').kind).toBe('access-denied');
    expect(classifyAwsError(awsErr('OptInRequired', 403)).kind).toBe('region-disabled');
  });

  it('network failures are unreachable with the socket code; a plain bug is not', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(classifyAwsError(refused)).toMatchObject({ kind: 'unreachable', awsCode: 'ECONNREFUSED' });
    const wrapped = new Error('fetch failed', { cause: { code: 'ENOTFOUND' } });
    expect(classifyAwsError(wrapped).kind).toBe('unreachable');
    expect(classifyAwsError(new TypeError('x is not a function')).kind).toBe('error');
  });

  it('reads the query-protocol `Code` field before the class name', () => {
    expect(classifyAwsError(awsErr('Error', 400, { Code: 'Throttling' })).kind).toBe('throttled');
  });
});
