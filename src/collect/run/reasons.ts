/**
 * Typed reasons: why a target or an artifact is not complete. Code decides on `code`, people read
 * `text`; nothing is ever matched by substring.
 */

/** Stable reason codes. */
export type ReasonCode =
  | 'pod-not-found'
  | 'pod-unreadable'
  | 'container-not-found'
  | 'container-not-running'
  | 'exec-denied'
  | 'no-shell'
  | 'degraded'
  | 'exec-error'
  | 'exec-exit-code'
  | 'watchdog'
  | 'timeout'
  | 'aborted'
  | 'cap'
  | 'budget'
  | 'stream-rejected'
  | 'listing-root-truncated'
  | 'artifact-failed'
  | 'artifact-truncated'
  | 'volatile-anomaly'
  | 'cleanup-not-guaranteed'
  | 'phase-failed'
  | 'profile-failed'
  | 'ephemeral'
  | 'target-timeout'
  | 'finalize-failed';

/** One reason: a code for programs, a line for people, and the artifact it concerns. */
export interface Reason {
  /** Stable code. */
  readonly code: ReasonCode;
  /** One line for people. */
  readonly text: string;
  /** Bundle path of the artifact concerned. */
  readonly artifact?: string | undefined;
}

/** Builds a reason. */
export function reason(code: ReasonCode, text: string, artifact?: string): Reason {
  return artifact === undefined ? { code, text } : { code, text, artifact };
}

/** Codes that mean no evidence of the container itself could be taken: the target is `failed`. */
export const FATAL_CODES: ReadonlySet<ReasonCode> = new Set(['pod-not-found', 'container-not-found']);

/**
 * A list of reasons that only grows, except for the one documented retraction (the ephemeral
 * step replaces the "no shell" reason once a debug container gives a shell).
 */
export class ReasonList {
  readonly #items: Reason[] = [];
  readonly #onAdd: ((r: Reason) => void) | undefined;

  constructor(onAdd?: (r: Reason) => void) {
    this.#onAdd = onAdd;
  }

  /** Adds a reason (duplicates by code+text are kept once). */
  add(r: Reason): void {
    if (this.#items.some((x) => x.code === r.code && x.text === r.text)) return;
    this.#items.push(r);
    this.#onAdd?.(r);
  }

  /** Removes every reason with `code` (used once: the debug container replaced the missing shell). */
  retract(code: ReasonCode): void {
    for (let i = this.#items.length - 1; i >= 0; i--)
      if (this.#items[i]?.code === code) this.#items.splice(i, 1);
  }

  /** Whether a reason with `code` is present. */
  has(code: ReasonCode): boolean {
    return this.#items.some((x) => x.code === code);
  }

  /** A copy of the reasons in order. */
  list(): Reason[] {
    return this.#items.map((r) => ({ ...r }));
  }

  /** Number of reasons. */
  get size(): number {
    return this.#items.length;
  }
}
