import { AbortedError, TimeoutError } from '../errors.js';

/** Throws an {@link AbortedError} (or {@link TimeoutError}) when `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'operation'): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/** The error to reject with when `signal` has fired; keeps the signal's reason as `cause`. */
export function abortError(signal: AbortSignal, what = 'operation'): AbortedError {
  const reason: unknown = signal.reason;
  if (reason instanceof AbortedError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new TimeoutError(`${what} timed out`, { cause: reason });
  }
  return new AbortedError(`${what} was aborted`, { cause: reason });
}

/**
 * Combines an optional caller signal with an optional timeout. The returned `signal` aborts with a
 * {@link TimeoutError} reason when the timeout fires. Call `dispose()` when done to clear the timer.
 */
export function withTimeout(
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  what = 'operation',
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  if (signal) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  let timer: NodeJS.Timeout | undefined;
  if (timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
    timer = setTimeout(
      () => controller.abort(new TimeoutError(`${what} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref?.();
  }
  return {
    signal: controller.signal,
    dispose: () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
