/**
 * One AWS API call with bounded backoff on throttling and errors mapped to {@link AwsRequestError}
 * naming the IAM action, so a denial says exactly what to grant.
 */
import { classifyAwsError } from '../aws/index.js';
import { AbortedError, AwsRequestError } from '../errors.js';
import { abortError, throwIfAborted } from '../util/index.js';

/** Bounded retries of throttled AWS calls (on top of the SDK's own retries). */
export interface AwsRetryOptions {
  /** Total attempts per call, including the first (default 6). */
  attempts?: number | undefined;
  /** First backoff delay in ms (default 200); doubles each time, with full jitter. */
  baseDelayMs?: number | undefined;
  /** Largest single delay in ms (default 5 000). */
  maxDelayMs?: number | undefined;
}

function messageOf(err: unknown): string {
  const m = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return (typeof m === 'string' ? m : String(err)).slice(0, 500);
}

/** Builds the {@link AwsRequestError} for a failed call of IAM `action` on `resource`. */
export function awsError(
  err: unknown,
  action: string,
  resource: string,
  region: string | undefined,
  attempts = 1,
): AwsRequestError {
  const c = classifyAwsError(err, region);
  const failure = c.kind;
  const name = c.awsCode ?? 'Error';
  const detail = messageOf(err);
  const where = region ? ` in ${region}` : '';
  let message: string;
  switch (failure) {
    case 'access-denied':
      message =
        `AWS denied ${action} on ${resource}${where} (${name}). Grant the caller's IAM policy the action ` +
        `"${action}" on that resource (see docs/aws-evidence.md for the full list), then retry.`;
      break;
    case 'throttled':
      message =
        `AWS kept throttling ${action} on ${resource}${where} after ${attempts} attempts (${name}). ` +
        'Retry later, or raise `retry.attempts`.';
      break;
    case 'region-disabled':
      message =
        `${action} on ${resource}${where} failed: the region is not enabled for this account (${name}). ` +
        'Enable the region or leave it out.';
      break;
    case 'not-found':
      message = `${resource} does not exist${where} (${action}: ${name}: ${detail}).`;
      break;
    case 'unreachable':
      message =
        `Could not reach AWS for ${action} on ${resource}${where}: ${detail}. ` +
        'Check network access to the service endpoint.';
      break;
    default:
      message =
        `${action} on ${resource}${where} failed${attempts > 1 ? ` after ${attempts} attempts` : ''}: ` +
        `${name}: ${detail}`;
  }
  return new AwsRequestError(message, {
    cause: err,
    failure,
    awsCode: c.awsCode,
    operation: action,
    region,
    httpStatus: c.httpStatus,
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal, 'AWS backoff'));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal, 'AWS backoff'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Context of one {@link callAws}. */
export interface AwsCallContext {
  /** IAM action, e.g. `logs:FilterLogEvents`. */
  action: string;
  /** What the call is about, for messages (log group, instance id). */
  resource: string;
  region?: string | undefined;
  retry?: AwsRetryOptions | undefined;
  signal?: AbortSignal | undefined;
  /** Told about every throttling retry. */
  onRetry?:
    | ((info: { action: string; attempt: number; delayMs: number; awsCode: string }) => void)
    | undefined;
}

/**
 * Runs `fn` (one SDK `send`), retrying throttling and transient server errors with exponential backoff and full jitter.
 *
 * @throws {@link AwsRequestError} classified by `failure` (`access-denied` names `ctx.action`);
 *   {@link AbortedError} when `ctx.signal` fires.
 */
export async function callAws<T>(
  ctx: AwsCallContext,
  fn: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const attempts = Math.max(1, ctx.retry?.attempts ?? 6);
  const base = Math.max(1, ctx.retry?.baseDelayMs ?? 200);
  const cap = Math.max(base, ctx.retry?.maxDelayMs ?? 5_000);
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(ctx.signal, ctx.action);
    try {
      return await fn(ctx.signal);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      if (ctx.signal?.aborted) throw abortError(ctx.signal, ctx.action);
      const c = classifyAwsError(err, ctx.region);
      if (!c.retryable || attempt >= attempts) {
        throw awsError(err, ctx.action, ctx.resource, ctx.region, attempt);
      }
      const delayMs = Math.floor(Math.random() * Math.min(cap, base * 2 ** (attempt - 1))) + 1;
      ctx.onRetry?.({ action: ctx.action, attempt, delayMs, awsCode: c.awsCode ?? 'Error' });
      await sleep(delayMs, ctx.signal);
    }
  }
}
