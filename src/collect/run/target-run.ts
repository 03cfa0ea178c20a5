/**
 * One target, as a fixed pipeline of phases in order of volatility:
 * api → probe → (ephemeral) → volatile → metadata → content, with programmatic profiles after the
 * phase they name. This file only orders the phases and assembles the report; each phase is its
 * own module, execs go through the door, artifacts through the store.
 */

import { isEksForensicsError } from '../../errors.js';
import type { ArtifactMeta, BundleWriter } from '../../evidence/index.js';
import type { Pod } from '../../kube/index.js';
import { type Logger, redactSecrets, withTimeout } from '../../util/index.js';
import { Budget } from '../budget.js';
import {
  type EphemeralContainerOptions,
  probeNeedsDebugContainer,
  switchToDebugContainer,
} from '../ephemeral/index.js';
import {
  type ContentStrategy,
  chooseStrategy,
  noShellProbe,
  type ProbeResult,
  type Strategy,
} from '../probe.js';
import type { ApiItem, FileItem, MemoryItem, ProcItem, ProfileItem, ProfileSpec } from '../schema.js';
import type {
  ArtifactProfile,
  CollectLimits,
  CollectorKube,
  Phase,
  ProgressEvent,
  ProgressTarget,
  ResolvedTarget,
  TargetReport,
  TargetStatus,
} from '../types.js';
import { runCodeProfiles } from './context.js';
import { Door } from './door.js';
import { errMessage, type PhaseEnv } from './env.js';
import { expandHomeFiles } from './homes.js';
import { runExecItems } from './kinds.js';
import { apiPhase } from './phases/api.js';
import { contentPhase } from './phases/content.js';
import { integrityStep } from './phases/integrity.js';
import { memoryStep } from './phases/memory.js';
import { metadataPhase } from './phases/metadata.js';
import { probePhase } from './phases/probe.js';
import { procStep } from './phases/volatile.js';
import { FATAL_CODES, type Reason, type ReasonCode, ReasonList, reason } from './reasons.js';
import { type ArtifactSourceInput, TargetStore } from './store.js';
import { type TargetView, viewOf, withView } from './view.js';

/** A declarative profile or a programmatic one, resolved. */
export type ResolvedProfile =
  | { kind: 'spec'; spec: ProfileSpec }
  | { kind: 'code'; profile: ArtifactProfile };

/** Options of a target run. */
export interface TargetRunOptions {
  index: number;
  kube: CollectorKube;
  target: ResolvedTarget;
  bundle: BundleWriter;
  profiles: readonly ResolvedProfile[];
  limits: CollectLimits;
  runBudget: Budget;
  signal: AbortSignal;
  logger: Logger;
  emit: (e: ProgressEvent) => void;
  runBytes: () => number;
  copySensitive: boolean;
  preferStrategy?: ContentStrategy | undefined;
  /** Opt-in: acquire a target without a shell through an ephemeral debug container. */
  ephemeral?: EphemeralContainerOptions | undefined;
}

function redactDeep(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redactSecrets(v);
  if (depth > 6 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => redactDeep(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = redactDeep(x, depth + 1);
  return out;
}

type Item<K extends ProfileItem['kind']> = { profile: string; item: Extract<ProfileItem, { kind: K }> };

function itemsOf<K extends ProfileItem['kind']>(specs: readonly ProfileSpec[], kind: K): Item<K>[] {
  const out: Item<K>[] = [];
  for (const s of specs)
    for (const i of s.items)
      if (i.kind === kind) out.push({ profile: s.name, item: i as Extract<ProfileItem, { kind: K }> });
  return out;
}

/** Runs one target. */
export class TargetRun {
  readonly budget: Budget;
  readonly store: TargetStore;
  readonly #o: TargetRunOptions;
  readonly #pt: ProgressTarget;
  readonly #reasons: ReasonList;
  readonly #door: Door;
  #view: TargetView;
  #pod: Pod | undefined;
  #probe: ProbeResult | undefined;
  #strategy: Strategy = chooseStrategy(noShellProbe([]));
  #needsEphemeral = false;
  #seq = 0;

  constructor(o: TargetRunOptions) {
    this.#o = o;
    this.#view = viewOf(o.target);
    this.budget = new Budget('target', o.limits.maxTargetBytes, o.limits.maxEntriesPerTarget, o.runBudget);
    this.#pt = {
      index: o.index,
      namespace: o.target.namespace,
      pod: o.target.pod,
      container: o.target.container,
    };
    this.#reasons = new ReasonList((r) =>
      o.logger.warn(redactDeep({ target: this.#pt, ...r }) as Record<string, unknown>, r.text),
    );
    this.store = new TargetStore({
      bundle: o.bundle,
      budget: this.budget,
      limits: o.limits,
      progress: this.#pt,
      emit: o.emit,
      runBytes: o.runBytes,
      onIncomplete: (r) => this.#reasons.add(r),
    });
    this.#door = new Door({
      kube: o.kube,
      view: () => this.#view,
      shell: () => this.#probe?.shell,
      limits: o.limits,
      signal: o.signal,
      budget: this.budget,
      store: this.store,
      reasons: this.#reasons,
      log: (e) => this.log(e),
    });
  }

  /** The pod as read at the start. */
  get pod(): Pod | undefined {
    return this.#pod;
  }
  /** The strategy in force. */
  get strategy(): Strategy {
    return this.#strategy;
  }
  /** Whether the target needs an ephemeral debug container. */
  get needsEphemeral(): boolean {
    return this.#needsEphemeral;
  }
  /** Artifact counts. */
  get counts(): TargetReport['artifacts'] {
    return { ...this.store.counts };
  }
  /** The target as now seen (pod UID filled in, exec container after the ephemeral step). */
  get view(): TargetView {
    return this.#view;
  }
  /** Progress identity. */
  get progressTarget(): ProgressTarget {
    return this.#pt;
  }
  /** Reasons so far. */
  reasons(): Reason[] {
    return this.#reasons.list();
  }
  /** Adds a reason from outside the pipeline (timeout, abort, finalize). */
  addReason(code: ReasonCode, text: string): void {
    this.#reasons.add(reason(code, text));
  }

  /** Adds a line to the acquisition log, and to the logger at debug (redacted). */
  log(event: Record<string, unknown>): void {
    this.#o.bundle.log({ target: this.#pt, ...event });
    this.#o.logger.debug(
      redactDeep({ target: this.#pt, ...event }) as Record<string, unknown>,
      String(event.event ?? 'step'),
    );
  }

  #env(): PhaseEnv {
    const o = this.#o;
    const view = this.#view;
    return {
      view,
      pod: this.#pod,
      probe: this.#probe,
      strategy: this.#strategy,
      limits: o.limits,
      signal: o.signal,
      kube: o.kube,
      copySensitive: o.copySensitive,
      store: this.store,
      door: this.#door,
      reasons: this.#reasons,
      budget: this.budget,
      log: (e) => this.log(e),
      c: (p) => `containers/${view.container}/${p}`,
      meta: (source: ArtifactSourceInput, extra: Partial<ArtifactMeta> = {}) => ({
        source: {
          kind: source.kind,
          ...(source.profile ? { profile: source.profile } : {}),
          ...(source.item ? { item: source.item } : {}),
        },
        target: {
          namespace: view.namespace,
          pod: view.pod,
          container: view.container,
          ...(view.podUid ? { podUid: view.podUid } : {}),
        },
        ...extra,
      }),
      nextSeq: () => ++this.#seq,
    };
  }

  async #guard<T>(phase: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#o.signal.aborted) return undefined;
    this.log({ event: 'phase-start', phase });
    try {
      return await fn();
    } catch (err) {
      if (this.#o.signal.aborted) return undefined;
      this.#reasons.add(reason('phase-failed', `${phase} phase failed: ${errMessage(err)}`));
      this.log({
        event: 'phase-error',
        phase,
        error: errMessage(err),
        code: isEksForensicsError(err) ? err.code : undefined,
      });
      return undefined;
    }
  }

  /** Runs the pipeline. */
  async run(): Promise<void> {
    const o = this.#o;
    const t = this.#view;
    this.log({
      event: 'target-start',
      namespace: t.namespace,
      pod: t.pod,
      container: t.container,
      execContainer: t.execContainer,
      fs: t.fs,
      limits: o.limits,
    });
    const specs = o.profiles
      .filter((p): p is { kind: 'spec'; spec: ProfileSpec } => p.kind === 'spec')
      .map((p) => p.spec);
    const code = o.profiles
      .filter((p): p is { kind: 'code'; profile: ArtifactProfile } => p.kind === 'code')
      .map((p) => p.profile);
    const canExec = await this.#readPod();
    const runCode = (phase: Phase) => runCodeProfiles(this.#env(), code, phase, o.bundle, o.logger);
    await this.#guard('api', () =>
      apiPhase(this.#env(), itemsOf(specs, 'api') as { profile: string; item: ApiItem }[]),
    );
    await runCode('api');
    const wantsExec =
      specs.some((s) => s.items.some((i) => i.kind !== 'api')) ||
      code.some((p) => (p.needs ?? 'exec') === 'exec');
    if (!canExec || !wantsExec) {
      if (wantsExec)
        await this.#skipExec(
          this.#reasons.list().find((r) => FATAL_CODES.has(r.code) || r.code === 'container-not-running')
            ?.text ?? 'exec not possible',
        );
      await runCode('volatile');
      await runCode('metadata');
      await runCode('content');
      return;
    }
    await this.#probePhase();
    if (this.#strategy.content === 'none' && o.ephemeral && probeNeedsDebugContainer(this.#probe))
      await this.#ephemeral(o.ephemeral);
    if (this.#strategy.content === 'none') {
      const p = this.#probe;
      this.#needsEphemeral = Boolean(p && !p.shell && !p.execDenied);
      const why = this.#needsEphemeral
        ? 'needs ephemeral container: no shell in the container, only API state was acquired'
        : p?.execDenied
          ? `${p.execDenied}; only API state was acquired`
          : 'exec not possible: only API state was acquired';
      this.#reasons.add(reason(this.#needsEphemeral ? 'no-shell' : 'exec-denied', why));
      await this.#skipExec(why);
    } else {
      await this.#guard('volatile', async () => {
        const env = this.#env();
        await runExecItems(
          env,
          'volatile',
          specs.flatMap((s) => s.items.map((item) => ({ profile: s.name, item }))),
        );
        const table = await procStep(env, itemsOf(specs, 'proc') as { profile: string; item: ProcItem }[]);
        const memory = itemsOf(specs, 'memory') as { profile: string; item: MemoryItem }[];
        if (memory.length > 0) await this.#guard('memory', () => memoryStep(this.#env(), memory, table));
      });
      await runCode('volatile');
      const withHomes = (await this.#guard('homes', () => expandHomeFiles(this.#env(), specs))) ?? specs;
      const files = itemsOf(withHomes, 'file') as { profile: string; item: FileItem }[];
      const listing = await this.#guard('metadata', () =>
        metadataPhase(this.#env(), files, this.#containerStartedAt()),
      );
      await runCode('metadata');
      if (listing)
        await this.#guard('content', () =>
          contentPhase(this.#env(), withHomes, listing.entries, listing.verdicts),
        );
      const integrity = itemsOf(specs, 'integrity');
      if (integrity.length > 0) await this.#guard('integrity', () => integrityStep(this.#env(), integrity));
    }
    await runCode('content');
  }

  async #skipExec(why: string): Promise<void> {
    await this.store.record(
      `containers/${this.#view.container}/exec-profiles`,
      'skipped',
      why,
      this.#env().meta({ kind: 'exec' }, { details: { shellErrors: this.#probe?.shellErrors ?? [] } }),
    );
  }

  async #probePhase(): Promise<void> {
    const res = await this.#guard('probe', () => probePhase(this.#env(), this.#o.preferStrategy));
    if (!res) return;
    this.#probe = res.probe;
    this.#strategy = res.strategy;
    if (res.notFound === 'pod')
      this.#reasons.add(reason('pod-not-found', `pod not found: ${this.#view.namespace}/${this.#view.pod}`));
    if (res.notFound === 'container')
      this.#reasons.add(
        reason(
          'container-not-found',
          `container not found: ${this.#view.container} in ${this.#view.namespace}/${this.#view.pod}`,
        ),
      );
  }

  async #ephemeral(eph: EphemeralContainerOptions): Promise<void> {
    const o = this.#o;
    // the ephemeral step works on a copy and its result becomes a new view
    const draft: ResolvedTarget = { ...this.#view, fs: { ...this.#view.fs } };
    const via = await this.#guard('ephemeral', () =>
      switchToDebugContainer(eph, {
        ...o,
        target: draft,
        pod: this.#pod,
        probe: this.#probe,
        log: (e) => this.log(e),
      }),
    );
    if (!via) return;
    this.#view = withView(this.#view, {
      execContainer: via.containerName,
      fs: { root: via.fs.root, procBase: via.fs.procBase },
    });
    this.#reasons.retract('no-shell');
    this.#reasons.retract('degraded');
    await this.#probePhase();
  }

  /** Reads the pod and checks the container; false when exec cannot work. */
  async #readPod(): Promise<boolean> {
    const o = this.#o;
    const t = this.#view;
    const { signal, dispose } = withTimeout(o.signal, o.limits.apiTimeoutMs, 'get pod');
    try {
      const pod = await o.kube.getPod(t.namespace, t.pod, { signal });
      this.#pod = pod;
      const uid = pod.metadata?.uid;
      if (typeof uid === 'string') this.#view = withView(this.#view, { podUid: uid });
    } catch (err) {
      this.log({ event: 'api-error', call: 'getPod', error: errMessage(err) });
      if (isEksForensicsError(err) && err.code === 'EKSF_NOT_FOUND') {
        this.#reasons.add(reason('pod-not-found', `pod not found: ${t.namespace}/${t.pod}`));
        return false;
      }
      this.#reasons.add(reason('pod-unreadable', `cannot read the pod: ${errMessage(err)}`));
      return true;
    } finally {
      dispose();
    }
    const pod = this.#pod;
    const name = t.execContainer;
    const statuses = [
      ...(pod?.status?.containerStatuses ?? []),
      ...(pod?.status?.ephemeralContainerStatuses ?? []),
    ];
    const st = statuses.find((s) => s.name === name);
    const spec = [
      ...(pod?.spec?.containers ?? []),
      ...(pod?.spec?.initContainers ?? []),
      ...(pod?.spec?.ephemeralContainers ?? []),
    ];
    if (!spec.some((c) => c.name === name)) {
      this.#reasons.add(
        reason(
          'container-not-found',
          `container not found: ${name} is not in the spec of ${t.namespace}/${t.pod}`,
        ),
      );
      return false;
    }
    if (st && !st.state?.running) {
      this.#reasons.add(
        reason(
          'container-not-running',
          `container ${name} is not running: exec impossible, only API state acquired`,
        ),
      );
      return false;
    }
    return true;
  }

  /** When the target container (re)started, from the pod status (epoch seconds). */
  #containerStartedAt(): number | undefined {
    const st = this.#pod?.status?.containerStatuses?.find((c) => c.name === this.#view.container);
    const t = st?.state?.running?.startedAt;
    const ms = typeof t === 'string' ? Date.parse(t) : Number.NaN;
    return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
  }

  /** Builds the report after finalize/abort. */
  report(
    startedAt: Date,
    location: string | undefined,
    acquisitionId: string | undefined,
    manifestSha256: string | undefined,
    finalized: boolean,
  ): TargetReport {
    const t = this.#view;
    const list = this.#reasons.list();
    const counts = this.counts;
    let status: TargetStatus = 'complete';
    if (!finalized || list.length > 0 || counts.failed > 0 || counts.truncated > 0) status = 'partial';
    if (!this.#pod && counts.complete === 0) status = 'failed';
    if (!finalized && counts.complete === 0) status = 'failed';
    if (list.some((r) => FATAL_CODES.has(r.code))) status = 'failed';
    return {
      target: { namespace: t.namespace, pod: t.pod, container: t.container, podUid: t.podUid },
      status,
      reasons: list.map((r) => r.text),
      reasonDetails: list,
      strategy: this.#strategy,
      needsEphemeralContainer: this.#needsEphemeral,
      acquisitionId,
      location,
      manifestSha256,
      finalized,
      artifacts: counts,
      bytes: this.store.bytes,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    };
  }
}
