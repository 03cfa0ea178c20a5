/**
 * ArtifactCollector: acquires one or many containers with profiles, into one evidence bundle per
 * container, with bounded concurrency, typed progress events and cancellation.
 */

import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ContainerInfo, PodInfo } from '../catalog/index.js';
import { ConfigError } from '../errors.js';
import type { BundleWriter, EvidenceSink, FinalizeResult, TimestampAuthority } from '../evidence/index.js';
import type { UserInfo } from '../kube/index.js';
import { type Logger, silentLogger } from '../util/index.js';
import { Budget, DEFAULT_LIMITS } from './budget.js';
import { BUILTIN_PROFILE_NAMES, builtinProfile } from './builtin.js';
import { type EphemeralContainerOptions, resolveEphemeralOptions } from './ephemeral/index.js';
import type { ContentStrategy } from './probe.js';
import { type ResolvedProfile, TargetRun } from './run/target-run.js';
import { type ProfileSpec, type ProfileSpecInput, parseProfileSpec } from './schema.js';
import type {
  AcquisitionReport,
  AcquisitionTarget,
  ArtifactProfile,
  CollectLimits,
  CollectorKube,
  ProfileInput,
  ProgressEvent,
  ResolvedTarget,
  TargetReport,
  TargetStatus,
} from './types.js';

/** Options of {@link ArtifactCollector}. */
export interface ArtifactCollectorOptions {
  /** Where bundles go (one bundle per target). */
  sink: EvidenceSink;
  /** Profiles to run: built-in names, declarative specs or programmatic profiles. Default `['triage']`. */
  profiles?: readonly ProfileInput[] | undefined;
  /** Bounds (each field optional; see {@link DEFAULT_LIMITS}). */
  limits?: Partial<CollectLimits> | undefined;
  /** Targets acquired at the same time (default 4). */
  concurrency?: number | undefined;
  /** Cancels everything; bundles in progress are marked incomplete. */
  signal?: AbortSignal | undefined;
  /** Diagnostics (silent by default). */
  logger?: Logger | undefined;
  /** Case id recorded in every bundle. */
  caseId?: string | undefined;
  /** Examiner name for the custody record. */
  examiner?: string | undefined;
  /**
   * IAM principal ARN of the caller (e.g. from `sts:GetCallerIdentity`) for the custody record.
   * Default: the `arn` the EKS authenticator reports in SelfSubjectReview `extra`, when present.
   */
  callerArn?: string | undefined;
  /**
   * Ed25519 private key (KeyObject or PEM) every bundle's seal is signed with: verify with the
   * public key pinned (`verifyEvidence(location, { publicKey })`), an external anchor.
   */
  signingKey?: KeyObject | string | undefined;
  /** RFC 3161 timestamp authority asked to timestamp every bundle's manifest hash at finalize. */
  timestamp?: TimestampAuthority | undefined;
  /** Copy the content of items marked `sensitive` (shadow, credentials, tokens) instead of hashing them. */
  copySensitive?: boolean | undefined;
  /** Force a content strategy when the container supports it (e.g. `framed` to avoid tar). */
  preferStrategy?: ContentStrategy | undefined;
  /** Cluster facts for custody records. */
  cluster?: { name?: string; arn?: string; region?: string; accountId?: string } | undefined;
  /**
   * Opt-in: acquire containers without a shell (distroless, scratch) through an ephemeral debug
   * container. It changes the pod for good (recorded in custody). See docs/distroless.md.
   */
  ephemeral?: EphemeralContainerOptions | undefined;
}

function isSpec(p: ProfileInput): p is ProfileSpec | ProfileSpecInput {
  return typeof p === 'object' && p !== null && 'items' in p && Array.isArray((p as ProfileSpecInput).items);
}

function resolveProfiles(inputs: readonly ProfileInput[]): ResolvedProfile[] {
  const out: ResolvedProfile[] = [];
  const names = new Set<string>();
  for (const p of inputs) {
    let r: ResolvedProfile;
    if (typeof p === 'string') {
      const spec = builtinProfile(p);
      if (!spec) {
        throw new ConfigError(
          `unknown profile "${p}": built-in profiles are ${BUILTIN_PROFILE_NAMES.join(', ')}`,
        );
      }
      r = { kind: 'spec', spec };
    } else if (isSpec(p)) {
      r = { kind: 'spec', spec: parseProfileSpec(p, `profile ${String((p as { name?: unknown }).name)}`) };
    } else if (
      typeof (p as ArtifactProfile).collect === 'function' &&
      typeof (p as ArtifactProfile).name === 'string'
    ) {
      r = { kind: 'code', profile: p as ArtifactProfile };
    } else {
      throw new ConfigError(
        'a profile must be a built-in name, a declarative spec or an object with name and collect()',
      );
    }
    const name = r.kind === 'spec' ? r.spec.name : r.profile.name;
    if (names.has(name)) continue;
    names.add(name);
    out.push(r);
  }
  // triage/full include pod-state, volatile and files: drop those when given together
  if (names.has('triage') || names.has('full')) {
    return out.filter(
      (r) => !(r.kind === 'spec' && ['pod-state', 'volatile', 'files'].includes(r.spec.name)),
    );
  }
  return out;
}

function nameOf(v: string | { name: string }): string {
  return typeof v === 'string' ? v : v.name;
}

function normalizeTarget(t: AcquisitionTarget): {
  kube: CollectorKube;
  target: ResolvedTarget;
  caseId?: string | undefined;
} {
  if (!t || typeof t !== 'object' || !t.kube || typeof t.kube.exec !== 'function') {
    throw new ConfigError('each target needs { kube, namespace, pod, container } with a KubeClient as kube');
  }
  const pod = nameOf(t.pod);
  const container = nameOf(t.container);
  const namespace = t.namespace ?? (typeof t.pod === 'object' ? t.pod.namespace : undefined);
  if (!namespace || !pod || !container)
    throw new ConfigError('each target needs namespace, pod and container names');
  const root = (t.fs?.root ?? '').replace(/\/+$/, '');
  if (root && (!root.startsWith('/') || root.split('/').includes('..'))) {
    throw new ConfigError(`fs.root must be an absolute path without "..", got ${JSON.stringify(root)}`);
  }
  const procBase = (t.fs?.procBase ?? '/proc').replace(/\/+$/, '') || '/proc';
  return {
    kube: t.kube,
    caseId: t.caseId,
    target: {
      namespace,
      pod,
      container,
      execContainer: t.execContainer ?? container,
      fs: { root, procBase },
    },
  };
}

/**
 * Turns ClusterCatalog pod listings into acquisition targets: one per visible container that is
 * running (regular, sidecar and, with `includeInit`, init containers). Hidden containers are left out.
 *
 * @example
 * const pods = await catalog.pods(cluster, { namespace: 'shop' });
 * await collector.acquire(targetsFromPods(kube, pods));
 */
export function targetsFromPods(
  kube: CollectorKube,
  pods: readonly PodInfo[],
  options: { includeInit?: boolean; filter?: (pod: PodInfo, container: ContainerInfo) => boolean } = {},
): AcquisitionTarget[] {
  const out: AcquisitionTarget[] = [];
  for (const pod of pods) {
    if (pod.hidden) continue;
    for (const c of pod.containers) {
      if (c.hidden || c.state !== 'running' || c.kind === 'ephemeral') continue;
      if (c.kind === 'init' && !options.includeInit) continue;
      if (options.filter && !options.filter(pod, c)) continue;
      out.push({ kube, namespace: pod.namespace, pod: pod.name, container: c.name });
    }
  }
  return out;
}

function worst(a: TargetStatus, b: TargetStatus): TargetStatus {
  const order: TargetStatus[] = ['complete', 'partial', 'failed'];
  return order[Math.max(order.indexOf(a), order.indexOf(b))] as TargetStatus;
}

/**
 * Acquires containers into evidence bundles.
 *
 * @example
 * const collector = new ArtifactCollector({ sink: new DirectorySink({ root: './evidence' }), profiles: ['triage'] });
 * collector.on('progress', (e) => console.log(e.type));
 * const report = await collector.acquire({ kube, namespace: 'default', pod: 'web-1', container: 'nginx' });
 */
export class ArtifactCollector extends EventEmitter<{ progress: [ProgressEvent] }> {
  readonly #sink: EvidenceSink;
  readonly #profiles: ResolvedProfile[];
  readonly #limits: CollectLimits;
  readonly #concurrency: number;
  readonly #signal: AbortSignal | undefined;
  readonly #logger: Logger;
  readonly #opts: ArtifactCollectorOptions;
  readonly #identities = new WeakMap<CollectorKube, Promise<UserInfo | undefined>>();

  /** @throws {ConfigError} for an unknown profile name, bad limits or a bad concurrency. */
  constructor(options: ArtifactCollectorOptions) {
    super();
    if (!options?.sink || typeof options.sink.open !== 'function')
      throw new ConfigError('ArtifactCollector needs a sink');
    this.#opts = options;
    this.#sink = options.sink;
    this.#profiles = resolveProfiles(options.profiles ?? ['triage']);
    if (this.#profiles.length === 0) throw new ConfigError('ArtifactCollector needs at least one profile');
    this.#limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
    for (const [k, v] of Object.entries(this.#limits)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
        throw new ConfigError(`limits.${k} must be a positive number`);
    }
    const c = options.concurrency ?? 4;
    if (!Number.isInteger(c) || c < 1 || c > 256)
      throw new ConfigError('concurrency must be an integer from 1 to 256');
    this.#concurrency = c;
    this.#signal = options.signal;
    this.#logger = options.logger ?? silentLogger;
    if (options.ephemeral) resolveEphemeralOptions(options.ephemeral);
  }

  /** The profiles this collector runs (names). */
  get profileNames(): string[] {
    return this.#profiles.map((p) => (p.kind === 'spec' ? p.spec.name : p.profile.name));
  }

  #identity(kube: CollectorKube): Promise<UserInfo | undefined> {
    let p = this.#identities.get(kube);
    if (!p) {
      p = kube.selfSubjectReview
        ? kube.selfSubjectReview({ signal: this.#signal }).catch(() => undefined)
        : Promise.resolve(undefined);
      this.#identities.set(kube, p);
    }
    return p;
  }

  /**
   * Acquires one or many targets. Resolves with a report per target (never rejects for a target
   * failure: that is in the report). Cancelling the signal stops every target; their bundles are
   * marked incomplete (aborted) and what was stored stays.
   *
   * @throws {ConfigError} for malformed targets.
   */
  async acquire(
    targets: AcquisitionTarget | readonly AcquisitionTarget[],
    options: { signal?: AbortSignal } = {},
  ): Promise<AcquisitionReport> {
    const list = Array.isArray(targets)
      ? (targets as readonly AcquisitionTarget[])
      : [targets as AcquisitionTarget];
    const normalized = list.map(normalizeTarget);
    const startedAt = new Date();
    const controller = new AbortController();
    const onAbort = () => controller.abort(this.#signal?.reason ?? options.signal?.reason);
    for (const s of [this.#signal, options.signal]) {
      if (!s) continue;
      if (s.aborted) controller.abort(s.reason);
      else s.addEventListener('abort', onAbort, { once: true });
    }
    const signal = controller.signal;
    const runBudget = new Budget('run', this.#limits.maxRunBytes, this.#limits.maxRunEntries);
    const reports: TargetReport[] = new Array(normalized.length);
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= normalized.length) return;
        const n = normalized[i];
        if (!n) return;
        reports[i] = await this.#one(i, n, runBudget, signal);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.#concurrency, normalized.length) }, worker));
    } finally {
      for (const s of [this.#signal, options.signal]) s?.removeEventListener('abort', onAbort);
    }
    let status: TargetStatus = 'complete';
    for (const r of reports) status = worst(status, r.status);
    return {
      targets: reports,
      status,
      aborted: signal.aborted,
      bytes: reports.reduce((a, r) => a + r.bytes, 0),
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    };
  }

  async #one(
    index: number,
    n: { kube: CollectorKube; target: ResolvedTarget; caseId?: string | undefined },
    runBudget: Budget,
    signal: AbortSignal,
  ): Promise<TargetReport> {
    const startedAt = new Date();
    const pt = { index, namespace: n.target.namespace, pod: n.target.pod, container: n.target.container };
    this.emit('progress', { type: 'target-started', target: pt });
    const caseId = n.caseId ?? this.#opts.caseId;
    let bundle: BundleWriter;
    try {
      bundle = await this.#sink.open({
        ...(caseId ? { caseId } : {}),
        ...(this.#opts.signingKey !== undefined ? { signingKey: this.#opts.signingKey } : {}),
        ...(this.#opts.timestamp !== undefined ? { timestamp: this.#opts.timestamp } : {}),
        startedAt,
        logger: this.#logger,
      });
    } catch (err) {
      const reason = `cannot open a bundle in the sink: ${err instanceof Error ? err.message : String(err)}`;
      const report: TargetReport = {
        target: { namespace: pt.namespace, pod: pt.pod, container: pt.container },
        status: 'failed',
        reasons: [reason],
        reasonDetails: [{ code: 'finalize-failed', text: reason }],
        strategy: {
          content: 'none',
          volatile: 'none',
          listing: 'none',
          degraded: true,
          notes: [],
          headCap: false,
          readlink: false,
          stat: false,
          wc: false,
        },
        needsEphemeralContainer: false,
        acquisitionId: undefined,
        location: undefined,
        manifestSha256: undefined,
        finalized: false,
        artifacts: { complete: 0, truncated: 0, failed: 0, skipped: 0 },
        bytes: 0,
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
      };
      this.emit('progress', { type: 'target-finished', target: pt, status: 'failed', reasons: [reason] });
      return report;
    }
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new Error(`target budget of ${this.#limits.targetTimeoutMs} ms spent`)),
      this.#limits.targetTimeoutMs,
    );
    timer.unref?.();
    const targetSignal = AbortSignal.any([signal, timeout.signal]);
    const run = new TargetRun({
      index,
      kube: n.kube,
      target: n.target,
      bundle,
      profiles: this.#profiles,
      limits: this.#limits,
      runBudget,
      signal: targetSignal,
      logger: this.#logger,
      emit: (e) => this.emit('progress', e),
      runBytes: () => runBudget.used,
      copySensitive: this.#opts.copySensitive ?? false,
      preferStrategy: this.#opts.preferStrategy,
      ephemeral: this.#opts.ephemeral,
    });
    let finalized: FinalizeResult | undefined;
    try {
      await run.run();
    } catch (err) {
      run.addReason(
        'phase-failed',
        `acquisition failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      clearTimeout(timer);
    }
    if (timeout.signal.aborted && !signal.aborted)
      run.addReason('target-timeout', `target timeout: ${this.#limits.targetTimeoutMs} ms`);
    if (signal.aborted) {
      const why = `acquisition aborted: ${signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'cancelled')}`;
      run.addReason('aborted', why);
      bundle.log({ event: 'aborted', reason: why });
      await bundle.abort(why).catch(() => undefined);
    } else {
      const user = await this.#identity(n.kube);
      const pod = run.pod;
      const statuses = pod?.status?.containerStatuses ?? [];
      const st = statuses.find((s) => s.name === n.target.container);
      const podIp = pod?.status?.podIP;
      bundle.log({
        event: 'target-finish',
        reasons: run.reasons(),
        counts: run.counts,
        strategy: run.strategy,
      });
      try {
        finalized = await bundle.finalize({
          ...(caseId ? { caseId } : {}),
          examiner: {
            ...(this.#opts.examiner ? { name: this.#opts.examiner } : {}),
            ...((this.#opts.callerArn ?? user?.extra?.arn?.[0])
              ? { callerArn: this.#opts.callerArn ?? user?.extra?.arn?.[0] }
              : {}),
            ...(user?.username
              ? { kubernetesUser: { username: user.username, groups: user.groups ?? [] } }
              : {}),
          },
          ...(this.#opts.cluster ? { cluster: this.#opts.cluster } : {}),
          targets: [
            {
              namespace: n.target.namespace,
              pod: {
                name: n.target.pod,
                ...(run.view.podUid ? { uid: run.view.podUid } : {}),
                ...(typeof podIp === 'string' ? { ip: podIp } : {}),
              },
              containers: [
                {
                  name: n.target.container,
                  ...(st?.containerID ? { containerId: st.containerID } : {}),
                  ...(st?.image ? { image: st.image } : {}),
                  ...(st?.imageID ? { imageDigest: st.imageID } : {}),
                  ...(typeof st?.restartCount === 'number' ? { restartCount: st.restartCount } : {}),
                },
              ],
              ...(pod?.spec?.nodeName ? { node: { name: pod.spec.nodeName } } : {}),
            },
          ],
          notes: [
            `profiles: ${this.profileNames.join(', ')}`,
            `strategy: ${run.strategy.content}/${run.strategy.volatile}/${run.strategy.listing}`,
            ...(run.strategy.degraded ? [`degraded: ${run.strategy.notes.join('; ')}`] : []),
            ...(run.needsEphemeral ? ['needs ephemeral container: no shell in the target'] : []),
            ...run
              .reasons()
              .filter((r) => r.code === 'cleanup-not-guaranteed')
              .map((r) => `processes may survive in the target: ${r.text}`),
          ].join('\n'),
        });
      } catch (err) {
        run.addReason(
          'finalize-failed',
          `bundle could not be finalized: ${err instanceof Error ? err.message : String(err)}`,
        );
        await bundle.abort('finalize failed').catch(() => undefined);
      }
    }
    const report = run.report(
      startedAt,
      finalized?.location ?? bundle.location,
      bundle.acquisitionId,
      finalized?.manifestSha256,
      finalized !== undefined,
    );
    this.emit('progress', {
      type: 'target-finished',
      target: pt,
      status: report.status,
      reasons: report.reasons,
    });
    return report;
  }
}
