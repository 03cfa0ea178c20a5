/**
 * Programmatic profiles: the CollectContext they receive. Their execs go through the same door;
 * what they write themselves from `exec()` output may name the captures it came from
 * (`meta.from`) to inherit their status.
 */
import { Readable } from 'node:stream';
import type { ArtifactBody, ArtifactRecord, BundleWriter } from '../../evidence/index.js';
import type { Logger } from '../../util/index.js';
import type { ArtifactProfile, CollectContext, ContextArtifactMeta, ExecCapture, Phase } from '../types.js';
import type { PhaseEnv } from './env.js';
import { errMessage } from './env.js';
import { reason } from './reasons.js';
import { isVerdict, type Verdict } from './verdict.js';

const VERDICTS = new WeakMap<ExecCapture, Verdict>();

function contextFor(env: PhaseEnv, profile: string, bundle: BundleWriter, logger: Logger): CollectContext {
  const metaOf = (m?: ContextArtifactMeta) =>
    env.meta(
      { kind: m?.kind ?? 'profile', profile, item: m?.item },
      {
        ...(m?.argv ? { argv: m.argv } : {}),
        ...(m?.contentType ? { contentType: m.contentType } : {}),
        ...(m?.details ? { details: m.details } : {}),
      },
    );
  return {
    target: { ...env.view, fs: { ...env.view.fs } },
    pod: env.pod,
    probe: env.probe,
    strategy: env.strategy,
    limits: env.limits,
    signal: env.signal,
    logger,
    kube: env.kube,
    bundle,
    log: (e) => env.log({ profile, ...e }),
    async exec(argv, opts = {}): Promise<ExecCapture> {
      const res = await env.door.capture({
        step: opts.step ?? `${profile}:exec`,
        argv,
        maxBytes: opts.maxBytes ?? 16 * 1024 * 1024,
        ...(opts.stdin !== undefined ? { stdin: Buffer.from(opts.stdin).toString('latin1') } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      });
      const cap: ExecCapture = {
        argv,
        exitCode: res.outcome.exitCode,
        stdout: res.bytes,
        stderr: res.outcome.stderr,
        truncated: res.verdict.reasons.some((r) => r.code === 'cap'),
        error: res.outcome.error,
        status: res.verdict.status,
        ...(res.verdict.status !== 'complete'
          ? { reason: res.verdict.reasons.map((r) => r.text).join('; ') }
          : {}),
      };
      VERDICTS.set(cap, res.verdict);
      return cap;
    },
    async execToArtifact(path, argv, meta = {}) {
      const res = await env.door.toArtifact({
        step: `artifact:${path}`,
        argv,
        path: env.c(path),
        meta: metaOf(meta),
        timeoutMs: meta.timeoutMs,
        maxBytes: meta.maxBytes,
      });
      return res.record;
    },
    writeArtifact: async (path, body: ArtifactBody, meta): Promise<ArtifactRecord> => {
      const from = (meta?.from ?? []).map((c) => VERDICTS.get(c)).filter(isVerdict);
      if (typeof body === 'string' || body instanceof Uint8Array) {
        const b = Buffer.from(body);
        return from.length
          ? env.store.derived(env.c(path), b, metaOf(meta), from)
          : env.store.api(env.c(path), b, metaOf(meta));
      }
      const r = body instanceof Readable ? body : Readable.from(body);
      return env.store.apiStream(env.c(path), r, metaOf(meta));
    },
    recordArtifact: (path, status, why, meta) => env.store.record(env.c(path), status, why, metaOf(meta)),
  };
}

/** Runs the programmatic profiles of `phase`. */
export async function runCodeProfiles(
  env: PhaseEnv,
  profiles: readonly ArtifactProfile[],
  phase: Phase,
  bundle: BundleWriter,
  logger: Logger,
): Promise<void> {
  for (const p of profiles) {
    if ((p.phase ?? 'content') !== phase || env.signal.aborted) continue;
    const needs = p.needs ?? 'exec';
    const path = env.c(`profiles/${p.name}`);
    if (needs === 'exec' && env.strategy.content === 'none') {
      await env.store.record(
        path,
        'skipped',
        'profile needs exec and the container has no usable shell',
        env.meta({ kind: 'profile', profile: p.name }),
      );
      continue;
    }
    const decision = p.appliesTo?.({
      target: { ...env.view, fs: { ...env.view.fs } },
      pod: env.pod,
      probe: env.probe,
    }) ?? {
      applies: true,
    };
    if (!decision.applies) {
      env.log({ event: 'profile-not-applicable', profile: p.name, reason: decision.reason });
      await env.store.record(
        path,
        'skipped',
        `not applicable: ${decision.reason}`,
        env.meta({ kind: 'profile', profile: p.name }),
      );
      continue;
    }
    try {
      await p.collect(contextFor(env, p.name, bundle, logger));
    } catch (err) {
      env.reasons.add(reason('profile-failed', `profile ${p.name} failed: ${errMessage(err)}`));
      env.log({ event: 'profile-error', profile: p.name, error: errMessage(err) });
    }
  }
}
