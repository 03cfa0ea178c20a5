/**
 * Phase 2, the probe: one exec per shell candidate until one runs the probe script; picks the
 * strategy. Stores `probe.json`, derived from the probe exec that answered.
 */
import {
  type ContentStrategy,
  chooseStrategy,
  noShellProbe,
  type ProbeResult,
  parseProbeOutput,
  probeArgv,
  SHELL_CANDIDATES,
  type Strategy,
} from '../../probe.js';
import type { PhaseEnv } from '../env.js';
import { reason } from '../reasons.js';
import type { Verdict } from '../verdict.js';

/** What the probe found. */
export interface ProbeOutcome {
  probe: ProbeResult;
  strategy: Strategy;
  /** Set when the pod or container turned out not to exist. */
  notFound?: 'pod' | 'container' | undefined;
}

const REFUSED = new Set(['EKSF_FORBIDDEN', 'EKSF_UNAUTHORIZED', 'EKSF_NOT_FOUND']);

/** Runs the probe. */
export async function probePhase(env: PhaseEnv, prefer: ContentStrategy | undefined): Promise<ProbeOutcome> {
  const errors: string[] = [];
  let denied: string | undefined;
  let notFound: ProbeOutcome['notFound'];
  let probe: ProbeResult | undefined;
  let verdict: Verdict | undefined;
  for (const shell of SHELL_CANDIDATES) {
    const res = await env.door.capture({
      step: 'probe',
      argv: probeArgv(shell),
      wrap: false,
      maxBytes: 65_536,
      timeoutMs: Math.min(env.limits.execTimeoutMs, 60_000),
    });
    const out = res.bytes.toString('utf8');
    if (res.outcome.exitCode === 0 && out.includes('\nU\t')) {
      probe = parseProbeOutput(out, shell);
      probe.shellErrors = errors;
      verdict = res.verdict;
      break;
    }
    const o = res.outcome;
    errors.push(
      `${shell}: ${o.error ?? `exit code ${o.exitCode}`}${o.stderr ? ` (${o.stderr.slice(0, 200)})` : ''}`,
    );
    if (env.signal.aborted) break;
    // a 403 or a missing pod will not get better with another shell
    if (o.errorCode && REFUSED.has(o.errorCode)) {
      if (o.errorCode === 'EKSF_NOT_FOUND') notFound = /container/i.test(o.error ?? '') ? 'container' : 'pod';
      denied = `${o.errorCode === 'EKSF_FORBIDDEN' ? 'exec forbidden (grant create and get on pods/exec)' : 'exec refused'}: ${o.error ?? ''}`;
      break;
    }
  }
  if (!probe) {
    probe = noShellProbe(errors);
    if (denied) probe.execDenied = denied;
  }
  const strategy = chooseStrategy(probe, prefer);
  if (strategy.degraded && probe.shell)
    for (const n of strategy.notes) env.reasons.add(reason('degraded', `degraded: ${n}`));
  env.log({ event: 'probe', probe, strategy });
  const body = `${JSON.stringify({ probe, strategy }, null, 2)}\n`;
  const meta = env.meta(
    { kind: 'probe' },
    { argv: probeArgv(probe.shell ?? 'sh'), contentType: 'application/json' },
  );
  // with a shell, probe.json is derived from the exec that answered; without one it records the
  // attempts (its own statement is complete; the target's reasons say what is missing)
  if (verdict) await env.store.derived(env.c('probe.json'), body, meta, [verdict]);
  else await env.store.api(env.c('probe.json'), body, meta);
  return { probe, strategy, notFound };
}
