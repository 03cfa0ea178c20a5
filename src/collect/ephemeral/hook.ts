/**
 * The collector's side of the ephemeral path: when a target has no shell and the caller opted in,
 * switch the target to a debug container (exec container + file/proc view) and record it.
 */
import { EphemeralContainerError } from '../../errors.js';
import type { BundleWriter } from '../../evidence/index.js';
import type { Pod } from '../../kube/index.js';
import type { ProbeResult } from '../probe.js';
import type { CollectorKube, ResolvedTarget } from '../types.js';
import { attachDebugContainer, type DebugAttachment, type EphemeralKube } from './attach.js';
import type { EphemeralContainerOptions } from './spec.js';

/** What the collector hands to {@link switchToDebugContainer}. */
export interface EphemeralStepContext {
  /** Cluster client of the target. */
  kube: CollectorKube;
  /** The target; `execContainer` and `fs` are replaced on success. */
  target: ResolvedTarget;
  /** The pod as read at the start. */
  pod: Pod | undefined;
  /** The probe of the target container. */
  probe: ProbeResult | undefined;
  /** The target's bundle (custody change, log, the debug container's own artifacts). */
  bundle: BundleWriter;
  /** The target's cancellation. */
  signal: AbortSignal;
  /** Acquisition log of the target. */
  log(event: Record<string, unknown>): void;
  /** The collector's limits: without an explicit `lifetimeSeconds` the debug container outlives the target budget. */
  limits?: { targetTimeoutMs: number } | undefined;
}

/**
 * Whether the probe result calls for a debug container: no shell could run, and not because exec
 * itself was refused (403/401) or the pod/container is gone — a debug container would not help then.
 */
export function probeNeedsDebugContainer(probe: ProbeResult | undefined): boolean {
  if (!probe || probe.shell !== undefined) return false;
  return !probe.shellErrors.some((e) =>
    /\b(403|401|forbidden|unauthorized)\b|not found: pods|pods "[^"]*" not found/i.test(e),
  );
}

function hasPatch(kube: CollectorKube): kube is EphemeralKube {
  return typeof (kube as Partial<EphemeralKube>).patchEphemeralContainers === 'function';
}

/**
 * Adds (or reuses) a debug container for a target without a shell and points the target at it:
 * `execContainer` = the debug container, `fs.root` = `/proc/<pid>/root`, `fs.procBase` = the proc
 * view. The custody change is recorded in the target's bundle before anything else can fail.
 *
 * @throws {EphemeralContainerError} when the probe does not call for it, or the container cannot be
 *   added, started or attached (the message says what to grant or change).
 * @throws {ConfigError} without `allowEphemeralContainer: true`.
 */
export async function switchToDebugContainer(
  options: EphemeralContainerOptions,
  ctx: EphemeralStepContext,
): Promise<DebugAttachment> {
  if (!probeNeedsDebugContainer(ctx.probe)) {
    throw new EphemeralContainerError(
      `no debug container added for ${ctx.target.namespace}/${ctx.target.pod}/${ctx.target.container}: exec itself failed (${(ctx.probe?.shellErrors ?? []).join('; ').slice(0, 300)}), which a debug container would not fix`,
      { failure: 'rejected' },
    );
  }
  if (!hasPatch(ctx.kube)) {
    throw new EphemeralContainerError(
      "the target's kube client cannot add ephemeral containers (no patchEphemeralContainers): pass a KubeClient",
      { failure: 'not-supported' },
    );
  }
  const t = ctx.target;
  ctx.log({
    event: 'ephemeral-start',
    reason: 'no shell in the target container',
    shellErrors: ctx.probe?.shellErrors ?? [],
  });
  const budget = ctx.limits ? Math.ceil(ctx.limits.targetTimeoutMs / 1000) + 300 : 0;
  const lifetimeSeconds = options.lifetimeSeconds ?? Math.min(7 * 86_400, Math.max(3600, budget));
  const att = await attachDebugContainer(
    { ...options, lifetimeSeconds },
    {
      kube: ctx.kube,
      namespace: t.namespace,
      pod: t.pod,
      container: t.container,
      podObject: ctx.pod,
      signal: ctx.signal,
      recorder: {
        recordChange: (c) => ctx.bundle.recordChange(c),
        log: (e) => ctx.log(e),
        writeArtifact: (p, b, m) => ctx.bundle.writeArtifact(p, b, m),
      },
    },
  );
  if (att.reused) {
    ctx.bundle.recordChange({
      kind: 'ephemeral-container-used',
      target: {
        namespace: t.namespace,
        pod: t.pod,
        ...(t.podUid ? { podUid: t.podUid } : {}),
        container: t.container,
      },
      description: `acquired through ephemeral container ${att.containerName} added by an earlier acquisition (image ${att.image}); the pod was not changed this time`,
      details: {
        containerName: att.containerName,
        image: att.image,
        securityContext: att.securityContext ?? null,
      },
    });
  }
  t.execContainer = att.containerName;
  t.fs = { root: att.fs.root, procBase: att.fs.procBase };
  ctx.log({
    event: 'ephemeral-switched',
    execContainer: att.containerName,
    fs: t.fs,
    targetPid: att.target.pid,
    method: att.target.method,
    detail: att.target.detail,
  });
  return att;
}
