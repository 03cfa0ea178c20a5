/**
 * Acquisition of one target: API state, probe, volatile /proc state, file metadata, file contents,
 * then programmatic profiles, in order of volatility. Internal to the collect layer.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { podIdentityContext } from '../catalog/index.js';
import { isEksForensicsError } from '../errors.js';
import type { ArtifactBody, ArtifactMeta, ArtifactRecord, BundleWriter } from '../evidence/index.js';
import type { Pod, UserInfo } from '../kube/index.js';
import { type Logger, withTimeout } from '../util/index.js';
import { Budget, tee } from './budget.js';
import {
  type EphemeralContainerOptions,
  probeNeedsDebugContainer,
  switchToDebugContainer,
} from './ephemeral/index.js';
import { type ExecOutcome, runExec } from './exec-runner.js';
import { demuxFrames, newFrameKey } from './frames.js';
import { compileExcludes, compileGlob, isExcluded } from './glob.js';
import {
  applyStatOutput,
  type ListedEntry,
  metadataFindings,
  parseListing,
  renderBodyfile,
} from './listing.js';
import {
  type ContentStrategy,
  chooseStrategy,
  noShellProbe,
  type ProbeResult,
  parseProbeOutput,
  probeArgv,
  SHELL_CANDIDATES,
  type Strategy,
} from './probe.js';
import type { ApiItem, CommandItem, FileContentMode, FileItem, ProcItem, ProfileSpec } from './schema.js';
import {
  batchByChars,
  filesArgv,
  listingArgv,
  procBytesArgv,
  type ReadMode,
  statArgv,
  tarArgv,
  volatileArgv,
} from './scripts.js';
import { type EnvironMode, jwtRecord, transformEnviron } from './sensitive.js';
import { receiveTar } from './tar.js';
import type {
  ArtifactCounts,
  ArtifactProfile,
  CollectContext,
  CollectLimits,
  CollectorKube,
  ContextArtifactMeta,
  ContextExecOptions,
  ExecCapture,
  Phase,
  ProgressEvent,
  ProgressTarget,
  ResolvedTarget,
  TargetReport,
  TargetStatus,
} from './types.js';

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
  identity: () => Promise<UserInfo | undefined>;
  caseId?: string | undefined;
  /** Opt-in: acquire a target without a shell through an ephemeral debug container. */
  ephemeral?: EphemeralContainerOptions | undefined;
}

interface FileRow {
  path: string;
  items: string[];
  mode: FileContentMode;
  type: ListedEntry['type'];
  listedSize?: number | undefined;
  take: number;
  status: 'copied' | 'hashed' | 'claims' | 'link' | 'skipped' | 'failed' | 'truncated';
  reason?: string | undefined;
  sha256?: string | undefined;
  bytes?: number | undefined;
  stream?: string | undefined;
  entry?: string | undefined;
  offset?: number | undefined;
  linkTarget?: string | undefined;
}

const WRITABLE_EXE = /^(\/tmp\/|\/var\/tmp\/|\/dev\/shm\/|\/run\/|\/home\/|\/root\/|memfd:)/;

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class CountingLimiter extends Transform {
  bytes = 0;
  stopped: string | undefined;
  constructor(
    private readonly cap: number,
    private readonly budget: Budget,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.stopped) {
      cb();
      return;
    }
    let c = chunk;
    if (this.bytes + c.length > this.cap) {
      c = c.subarray(0, this.cap - this.bytes);
      this.stopped = `artifact cap of ${this.cap} bytes reached`;
    }
    if (c.length > 0 && !this.budget.takeBytes(c.length)) {
      this.stopped = `${this.budget.exhaustedBy(c.length) ?? 'byte'} budget exhausted`;
      c = Buffer.alloc(0);
    }
    this.bytes += c.length;
    if (c.length) this.push(c);
    if (this.stopped) this.push(null);
    cb();
  }
}

/** Runs one target. */
export class TargetRun {
  readonly counts: ArtifactCounts = { complete: 0, truncated: 0, failed: 0, skipped: 0 };
  readonly reasons: string[] = [];
  bytes = 0;
  pod: Pod | undefined;
  probe: ProbeResult | undefined;
  strategy: Strategy = chooseStrategy(noShellProbe([]));
  needsEphemeral = false;
  readonly budget: Budget;
  readonly #o: TargetRunOptions;
  readonly #pt: ProgressTarget;
  readonly #prefix: string;
  #seq = 0;
  #canExec = true;

  constructor(o: TargetRunOptions) {
    this.#o = o;
    this.budget = new Budget('target', o.limits.maxTargetBytes, o.limits.maxEntriesPerTarget, o.runBudget);
    this.#pt = {
      index: o.index,
      namespace: o.target.namespace,
      pod: o.target.pod,
      container: o.target.container,
    };
    this.#prefix = `containers/${o.target.container}/`;
  }

  get progressTarget(): ProgressTarget {
    return this.#pt;
  }

  // ---------- artifact helpers ----------

  #tally(rec: ArtifactRecord): ArtifactRecord {
    this.counts[rec.status] += 1;
    this.bytes += rec.bytes;
    this.#o.emit({
      type: 'artifact-finished',
      target: this.#pt,
      path: rec.path,
      status: rec.status,
      bytes: rec.bytes,
    });
    this.#o.emit({ type: 'bytes', target: this.#pt, targetBytes: this.bytes, runBytes: this.#o.runBytes() });
    if (rec.status === 'failed') this.reasons.push(`${rec.requestedPath}: ${rec.reason ?? 'failed'}`);
    if (rec.status === 'truncated') this.reasons.push(`${rec.requestedPath}: truncated: ${rec.reason ?? ''}`);
    return rec;
  }

  #meta(
    source: { kind: string; profile?: string | undefined; item?: string | undefined },
    extra: Partial<ArtifactMeta> = {},
  ): ArtifactMeta {
    const t = this.#o.target;
    return {
      source: {
        kind: source.kind,
        ...(source.profile ? { profile: source.profile } : {}),
        ...(source.item ? { item: source.item } : {}),
      },
      target: {
        namespace: t.namespace,
        pod: t.pod,
        container: t.container,
        ...(t.podUid ? { podUid: t.podUid } : {}),
      },
      ...extra,
    };
  }

  /** Writes a small in-memory artifact (charged to the budgets first). */
  async storeBuffer(path: string, body: Buffer | string, meta: ArtifactMeta): Promise<ArtifactRecord> {
    const len = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    this.#o.emit({ type: 'artifact-started', target: this.#pt, path });
    if (!this.budget.takeBytes(len)) {
      return this.#tally(
        await this.#o.bundle.recordArtifact(path, {
          ...meta,
          status: 'skipped',
          reason: `${this.budget.exhaustedBy(len) ?? 'byte'} budget exhausted`,
        }),
      );
    }
    return this.#tally(await this.#o.bundle.writeArtifact(path, body, meta));
  }

  /**
   * Splits `stdout` in two: one branch is stored raw at `path` (as received, hashed by the sink),
   * the other is returned for parsing. `stop()` ends both when the parser gives up.
   */
  #storeTee(
    stdout: Readable,
    path: string,
    meta: ArtifactMeta,
    after?: Parameters<TargetRun['storeStream']>[3],
  ): { parse: Readable; stored: Promise<ArtifactRecord>; stop: () => void } {
    const [toStore, parse, stop] = tee(stdout);
    return { parse, stored: this.storeStream(path, toStore, meta, after), stop };
  }

  /** Streams an artifact through the artifact cap and budgets. */
  async storeStream(
    path: string,
    body: Readable,
    meta: ArtifactMeta,
    after?: () => {
      status?: 'complete' | 'truncated' | 'failed';
      reason?: string;
      exitCode?: number | null;
      details?: Record<string, unknown>;
    },
  ): Promise<ArtifactRecord> {
    this.#o.emit({ type: 'artifact-started', target: this.#pt, path });
    const lim = new CountingLimiter(this.#o.limits.maxArtifactBytes, this.budget);
    body.on('error', () => lim.end());
    body.pipe(lim);
    const rec = await this.#o.bundle.writeArtifact(path, lim, {
      ...meta,
      finish: () => {
        // stop pulling from the producer when the limiter cut it off
        if (lim.stopped) body.unpipe(lim);
        const a = after?.() ?? {};
        if (lim.stopped)
          return {
            ...a,
            status: 'truncated' as const,
            reason: [lim.stopped, a.reason].filter(Boolean).join('; '),
          };
        return a;
      },
    });
    if (lim.stopped) {
      body.unpipe(lim);
      body.resume();
    }
    return this.#tally(rec);
  }

  async record(
    path: string,
    status: 'failed' | 'truncated' | 'skipped',
    reason: string,
    meta: ArtifactMeta,
  ): Promise<ArtifactRecord> {
    this.#o.emit({ type: 'artifact-started', target: this.#pt, path });
    return this.#tally(await this.#o.bundle.recordArtifact(path, { ...meta, status, reason }));
  }

  log(event: Record<string, unknown>): void {
    this.#o.bundle.log({ target: this.#pt, ...event });
  }

  #c(path: string): string {
    return `${this.#prefix}${path}`;
  }

  #exec<T>(
    step: string,
    argv: readonly string[],
    consume: (s: Readable) => Promise<T>,
    opts: { stdin?: string; timeoutMs?: number } = {},
  ): Promise<ExecOutcome<T>> {
    const t = this.#o.target;
    return runExec({
      kube: this.#o.kube,
      namespace: t.namespace,
      pod: t.pod,
      container: t.execContainer,
      argv,
      stdin: opts.stdin,
      timeoutMs: opts.timeoutMs ?? this.#o.limits.execTimeoutMs,
      noProgressMs: this.#o.limits.noProgressMs,
      signal: this.#o.signal,
      consume,
      log: (e) => this.log(e),
      step,
    });
  }

  // ---------- the run ----------

  async run(): Promise<void> {
    const o = this.#o;
    const t = o.target;
    this.log({
      event: 'target-start',
      namespace: t.namespace,
      pod: t.pod,
      container: t.container,
      execContainer: t.execContainer,
      fs: t.fs,
      limits: o.limits,
    });
    // API state first (always possible)
    const pod = await this.#readPod();
    this.#checkContainer(pod);
    const specs = o.profiles
      .filter((p): p is { kind: 'spec'; spec: ProfileSpec } => p.kind === 'spec')
      .map((p) => p.spec);
    const code = o.profiles
      .filter((p): p is { kind: 'code'; profile: ArtifactProfile } => p.kind === 'code')
      .map((p) => p.profile);
    await this.#guard('api', () => this.#apiPhase(specs));
    await this.#runCode(code, 'api');
    const wantsExec =
      specs.some((s) => s.items.some((i) => i.kind !== 'api')) ||
      code.some((p) => (p.needs ?? 'exec') === 'exec');
    // API-only profiles never exec into the container (not even the probe)
    if (this.#canExec && wantsExec) await this.#guard('probe', () => this.#probe());
    else this.strategy = chooseStrategy(noShellProbe([]));
    const eph = o.ephemeral;
    if (wantsExec && eph && this.strategy.content === 'none' && probeNeedsDebugContainer(this.probe)) {
      const via = await this.#guard('ephemeral', () =>
        switchToDebugContainer(eph, { ...o, pod: this.pod, probe: this.probe, log: (e) => this.log(e) }),
      );
      if (via) {
        const stale = this.reasons.filter((r) => r.includes('needs an ephemeral debug container'));
        for (const r of stale) this.reasons.splice(this.reasons.indexOf(r), 1);
        await this.#guard('probe', () => this.#probe());
      }
    }
    if (this.strategy.content === 'none') {
      if (wantsExec) {
        this.needsEphemeral = Boolean(this.probe && !this.probe.shell && !this.probe.execDenied);
        const why = this.needsEphemeral
          ? 'needs ephemeral container: no shell in the container, only API state was acquired'
          : this.probe?.execDenied
            ? `${this.probe.execDenied}; only API state was acquired`
            : 'exec not possible: only API state was acquired';
        this.reasons.push(why);
        await this.record(
          this.#c('exec-profiles'),
          'skipped',
          why,
          this.#meta({ kind: 'exec' }, { details: { shellErrors: this.probe?.shellErrors ?? [] } }),
        );
      }
    } else {
      await this.#guard('volatile', () => this.#volatilePhase(specs));
      await this.#runCode(code, 'volatile');
      const listing = await this.#guard('metadata', () => this.#metadataPhase(specs));
      await this.#runCode(code, 'metadata');
      if (listing) await this.#guard('content', () => this.#contentPhase(specs, listing));
    }
    await this.#runCode(code, 'content');
  }

  async #guard<T>(phase: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#o.signal.aborted) return undefined;
    try {
      return await fn();
    } catch (err) {
      if (this.#o.signal.aborted) return undefined;
      const msg = `${phase} phase failed: ${errMessage(err)}`;
      this.reasons.push(msg);
      this.log({
        event: 'phase-error',
        phase,
        error: errMessage(err),
        code: isEksForensicsError(err) ? err.code : undefined,
      });
      return undefined;
    }
  }

  async #readPod(): Promise<Pod | undefined> {
    const o = this.#o;
    const { signal, dispose } = withTimeout(o.signal, o.limits.apiTimeoutMs, 'get pod');
    try {
      const pod = await o.kube.getPod(o.target.namespace, o.target.pod, { signal });
      this.pod = pod;
      const uid = pod.metadata?.uid;
      if (typeof uid === 'string') o.target.podUid = uid;
      return pod;
    } catch (err) {
      this.reasons.push(`cannot read the pod: ${errMessage(err)}`);
      this.log({ event: 'api-error', call: 'getPod', error: errMessage(err) });
      return undefined;
    } finally {
      dispose();
    }
  }

  #checkContainer(pod: Pod | undefined): void {
    if (!pod) return;
    const name = this.#o.target.execContainer;
    const statuses = [
      ...(pod.status?.containerStatuses ?? []),
      ...(pod.status?.ephemeralContainerStatuses ?? []),
    ];
    const st = statuses.find((s) => s.name === name);
    const inSpec = [...(pod.spec?.containers ?? []), ...(pod.spec?.ephemeralContainers ?? [])].some(
      (c) => c.name === name,
    );
    if (!inSpec) {
      this.#canExec = false;
      this.reasons.push(`container ${name} is not in the pod spec`);
    } else if (st && !st.state?.running) {
      this.#canExec = false;
      this.reasons.push(`container ${name} is not running: exec impossible, only API state acquired`);
    }
  }

  async #runCode(profiles: readonly ArtifactProfile[], phase: Phase): Promise<void> {
    for (const p of profiles) {
      if ((p.phase ?? 'content') !== phase || this.#o.signal.aborted) continue;
      const needs = p.needs ?? 'exec';
      if (needs === 'exec' && this.strategy.content === 'none') {
        await this.record(
          this.#c(`profiles/${p.name}`),
          'skipped',
          'profile needs exec and the container has no usable shell',
          this.#meta({ kind: 'profile', profile: p.name }),
        );
        continue;
      }
      const decision = p.appliesTo?.({ target: this.#o.target, pod: this.pod, probe: this.probe }) ?? {
        applies: true,
      };
      if (!decision.applies) {
        this.log({ event: 'profile-not-applicable', profile: p.name, reason: decision.reason });
        await this.record(
          this.#c(`profiles/${p.name}`),
          'skipped',
          `not applicable: ${decision.reason}`,
          this.#meta({ kind: 'profile', profile: p.name }),
        );
        continue;
      }
      try {
        await p.collect(this.#context(p.name));
      } catch (err) {
        this.reasons.push(`profile ${p.name} failed: ${errMessage(err)}`);
        this.log({ event: 'profile-error', profile: p.name, error: errMessage(err) });
      }
    }
  }

  #context(profile: string): CollectContext {
    const self = this;
    const o = this.#o;
    const metaOf = (m?: ContextArtifactMeta) =>
      this.#meta(
        { kind: m?.kind ?? 'profile', profile, item: m?.item },
        {
          ...(m?.argv ? { argv: m.argv } : {}),
          ...(m?.contentType ? { contentType: m.contentType } : {}),
          ...(m?.details ? { details: m.details } : {}),
        },
      );
    return {
      target: o.target,
      pod: this.pod,
      probe: this.probe,
      strategy: this.strategy,
      limits: o.limits,
      signal: o.signal,
      logger: o.logger,
      kube: o.kube,
      bundle: o.bundle,
      log: (e) => self.log({ profile, ...e }),
      async exec(argv: readonly string[], opts: ContextExecOptions = {}): Promise<ExecCapture> {
        const cap = opts.maxBytes ?? 16 * 1024 * 1024;
        let truncated = false;
        const res = await self.#exec(
          opts.step ?? `${profile}:exec`,
          argv,
          async (s) => {
            const parts: Buffer[] = [];
            let n = 0;
            for await (const c of s) {
              const b = c as Buffer;
              if (n + b.length > cap) {
                parts.push(b.subarray(0, cap - n));
                truncated = true;
                break;
              }
              parts.push(b);
              n += b.length;
            }
            return Buffer.concat(parts);
          },
          {
            ...(opts.stdin !== undefined ? { stdin: Buffer.from(opts.stdin).toString('latin1') } : {}),
            ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
          },
        );
        return {
          argv,
          exitCode: res.exitCode,
          stdout: res.value ?? Buffer.alloc(0),
          stderr: res.stderr,
          truncated,
          error: res.error,
        };
      },
      async execToArtifact(path, argv, meta = {}) {
        return self.#execArtifact(self.#c(path), argv, metaOf(meta), meta.timeoutMs, meta.maxBytes);
      },
      writeArtifact: (path, body: ArtifactBody, meta) => {
        if (typeof body === 'string' || body instanceof Uint8Array)
          return self.storeBuffer(self.#c(path), Buffer.from(body), metaOf(meta));
        const r = body instanceof Readable ? body : Readable.from(body);
        return self.storeStream(self.#c(path), r, metaOf(meta));
      },
      recordArtifact: (path, status, reason, meta) =>
        self.record(self.#c(path), status, reason, metaOf(meta)),
    };
  }

  /** Runs argv and streams stdout into an artifact. */
  async #execArtifact(
    path: string,
    argv: readonly string[],
    meta: ArtifactMeta,
    timeoutMs?: number,
    maxBytes?: number,
  ): Promise<ArtifactRecord> {
    let recP: Promise<ArtifactRecord> | undefined;
    let outcome: ExecOutcome<void> | undefined;
    const cap = Math.min(maxBytes ?? this.#o.limits.maxArtifactBytes, this.#o.limits.maxArtifactBytes);
    let capHit = false;
    outcome = await this.#exec(
      `artifact:${path}`,
      argv,
      async (s) => {
        const limited = new Transform({
          transform(chunk: Buffer, _e, cb) {
            if (capHit) return cb();
            let c = chunk;
            const done = (limited as unknown as { n?: number }).n ?? 0;
            if (done + c.length > cap) {
              c = c.subarray(0, cap - done);
              capHit = true;
            }
            (limited as unknown as { n: number }).n = done + c.length;
            this.push(c);
            if (capHit) this.push(null);
            cb();
          },
        });
        s.pipe(limited);
        recP = this.storeStream(path, limited, { ...meta, argv }, () => {
          if (capHit)
            return {
              status: 'truncated',
              reason: `output cap of ${cap} bytes reached`,
              exitCode: outcome?.exitCode ?? null,
            };
          if (outcome?.error) return { status: 'failed', reason: outcome.error, exitCode: outcome.exitCode };
          return {
            exitCode: outcome?.exitCode ?? null,
            details: outcome?.stderr ? { stderr: outcome.stderr } : undefined,
          };
        });
        await new Promise<void>((resolve) => {
          limited.on('end', resolve);
          limited.on('close', resolve);
        });
        if (capHit) s.unpipe(limited);
      },
      timeoutMs ? { timeoutMs } : {},
    );
    if (!recP)
      return this.record(path, 'failed', outcome.error ?? 'exec produced no stream', { ...meta, argv });
    const rec = await recP;
    return rec;
  }

  // ---------- phase: api ----------

  async #apiPhase(specs: readonly ProfileSpec[]): Promise<void> {
    const o = this.#o;
    const items: { profile: string; item: ApiItem }[] = [];
    for (const s of specs)
      for (const i of s.items) if (i.kind === 'api') items.push({ profile: s.name, item: i });
    if (items.length === 0) return;
    const wanted = new Set(items.flatMap((x) => x.item.resources));
    const src = (res: string) => {
      const owner = items.find((x) => x.item.resources.some((r) => r === res));
      return { kind: 'api', profile: owner?.profile, item: owner?.item.id };
    };
    const maxLog = Math.max(...items.map((x) => x.item.maxLogBytes ?? 64 * 1024 * 1024));
    const pod = this.pod;
    const t = o.target;
    const call = async <T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
      const w = withTimeout(o.signal, o.limits.apiTimeoutMs, what);
      try {
        return await fn(w.signal);
      } finally {
        w.dispose();
      }
    };
    if (wanted.has('pod')) {
      if (pod)
        await this.storeBuffer(
          'pod/pod.json',
          `${JSON.stringify(pod, null, 2)}\n`,
          this.#meta(src('pod'), { contentType: 'application/json' }),
        );
      else await this.record('pod/pod.json', 'failed', 'the pod could not be read', this.#meta(src('pod')));
    }
    if (wanted.has('events')) {
      if (o.kube.podEvents) {
        try {
          const events = await call(
            'pod events',
            (signal) =>
              o.kube.podEvents?.({ namespace: t.namespace, uid: t.podUid, name: t.pod, signal }) ??
              Promise.resolve([]),
          );
          await this.storeBuffer(
            'pod/events.json',
            `${JSON.stringify(events, null, 2)}\n`,
            this.#meta(src('events'), { contentType: 'application/json' }),
          );
        } catch (err) {
          await this.record('pod/events.json', 'failed', errMessage(err), this.#meta(src('events')));
        }
      } else
        await this.record(
          'pod/events.json',
          'skipped',
          'the client has no podEvents()',
          this.#meta(src('events')),
        );
    }
    for (const [res, previous] of [
      ['logs', false],
      ['previousLogs', true],
    ] as const) {
      if (!wanted.has(res)) continue;
      const path = `pod/logs/${t.container}${previous ? '.previous' : ''}.log`;
      if (!o.kube.podLogs) {
        await this.record(path, 'skipped', 'the client has no podLogs()', this.#meta(src(res)));
        continue;
      }
      const st = pod?.status?.containerStatuses?.find((c) => c.name === t.container);
      if (previous && st && !st.lastState?.terminated && (st.restartCount ?? 0) === 0) {
        await this.record(path, 'skipped', 'no previous instance (restartCount 0)', this.#meta(src(res)));
        continue;
      }
      try {
        const w = withTimeout(o.signal, o.limits.apiTimeoutMs, 'pod logs');
        const stream = await o.kube
          .podLogs({
            namespace: t.namespace,
            pod: t.pod,
            container: t.container,
            previous,
            timestamps: true,
            limitBytes: maxLog,
            signal: w.signal,
          })
          .finally(() => w.dispose());
        await this.storeStream(path, stream, this.#meta(src(res), { contentType: 'text/plain' }));
      } catch (err) {
        await this.record(path, previous ? 'skipped' : 'failed', errMessage(err), this.#meta(src(res)));
      }
    }
    if (wanted.has('owners') && pod) {
      const owners = {
        ownerReferences: pod.metadata?.ownerReferences ?? [],
        note: 'owner references as recorded on the pod; owners beyond the first level are not resolved',
      };
      await this.storeBuffer(
        'pod/owners.json',
        `${JSON.stringify(owners, null, 2)}\n`,
        this.#meta(src('owners'), { contentType: 'application/json' }),
      );
    }
    if (wanted.has('serviceAccount') && pod) {
      const spec = (pod.spec ?? {}) as Record<string, unknown>;
      const volumes = Array.isArray(spec.volumes) ? (spec.volumes as Record<string, unknown>[]) : [];
      const sa = {
        serviceAccountName: spec.serviceAccountName ?? spec.serviceAccount ?? 'default',
        automountServiceAccountToken: spec.automountServiceAccountToken,
        projectedVolumes: volumes.filter((v) => v && typeof v === 'object' && 'projected' in v),
        env: (pod.spec?.containers ?? []).map((c) => ({
          container: c.name,
          envNames:
            ((c as Record<string, unknown>).env as { name?: string }[] | undefined)?.map((e) => e.name) ?? [],
        })),
      };
      await this.storeBuffer(
        'pod/service-account.json',
        `${JSON.stringify(sa, null, 2)}\n`,
        this.#meta(src('serviceAccount'), { contentType: 'application/json' }),
      );
    }
    if (wanted.has('node')) {
      const nodeName = pod?.spec?.nodeName;
      if (!nodeName)
        await this.record('pod/node.json', 'skipped', 'pod is not scheduled', this.#meta(src('node')));
      else if (!o.kube.getNode)
        await this.record('pod/node.json', 'skipped', 'the client has no getNode()', this.#meta(src('node')));
      else {
        try {
          const node = await call(
            'get node',
            (signal) => o.kube.getNode?.(nodeName, { signal }) ?? Promise.reject(new Error('no getNode')),
          );
          await this.storeBuffer(
            'pod/node.json',
            `${JSON.stringify(node, null, 2)}\n`,
            this.#meta(src('node'), { contentType: 'application/json' }),
          );
        } catch (err) {
          await this.record(
            'pod/node.json',
            'failed',
            `${errMessage(err)} (grant get on nodes to capture it)`,
            this.#meta(src('node')),
          );
        }
      }
    }
    if (wanted.has('identity') && pod) {
      const { getObject, listObjects } = o.kube;
      const path = 'pod/identity-context.json';
      if (!getObject || !listObjects) {
        await this.record(
          path,
          'skipped',
          'the client has no getObject()/listObjects()',
          this.#meta(src('identity')),
        );
      } else {
        const kube = {
          getPod: o.kube.getPod.bind(o.kube),
          getObject: getObject.bind(o.kube),
          listObjects: listObjects.bind(o.kube),
        };
        try {
          const doc = await call('pod identity context', (signal) =>
            podIdentityContext(kube, pod, { signal }),
          );
          const reason = `identity context incomplete: ${doc.skipped.map((x) => `${x.item} (${x.code})`).join(', ') || 'a list bound was reached'}; see docs/permissions.md`;
          await this.storeBuffer(
            path,
            `${JSON.stringify(doc, null, 2)}\n`,
            this.#meta(src('identity'), {
              contentType: 'application/json',
              ...(doc.complete ? {} : { status: 'truncated', reason }),
            }),
          );
        } catch (err) {
          await this.record(path, 'failed', errMessage(err), this.#meta(src('identity')));
        }
      }
    }
  }

  // ---------- probe ----------

  async #probe(): Promise<void> {
    const errors: string[] = [];
    let denied: string | undefined;
    for (const shell of SHELL_CANDIDATES) {
      const argv = probeArgv(shell);
      const res = await this.#exec(
        'probe',
        argv,
        async (s) => {
          const parts: Buffer[] = [];
          let n = 0;
          for await (const c of s) {
            const b = c as Buffer;
            if (n < 65536) parts.push(b.subarray(0, 65536 - n));
            n += b.length;
          }
          return Buffer.concat(parts).toString('utf8');
        },
        { timeoutMs: Math.min(this.#o.limits.execTimeoutMs, 60_000) },
      );
      if (res.exitCode === 0 && res.value && res.value.includes('\nU\t')) {
        this.probe = parseProbeOutput(res.value, shell);
        this.probe.shellErrors = errors;
        break;
      }
      errors.push(
        `${shell}: ${res.error ?? `exit code ${res.exitCode}`}${res.stderr ? ` (${res.stderr.slice(0, 200)})` : ''}`,
      );
      if (this.#o.signal.aborted) return;
      // a 403 or a missing pod will not get better with another shell
      if (
        res.errorCode &&
        ['EKSF_FORBIDDEN', 'EKSF_UNAUTHORIZED', 'EKSF_NOT_FOUND'].includes(res.errorCode)
      ) {
        denied = `${res.errorCode === 'EKSF_FORBIDDEN' ? 'exec forbidden (grant create and get on pods/exec)' : 'exec refused'}: ${res.error ?? ''}`;
        break;
      }
    }
    if (!this.probe) {
      this.probe = noShellProbe(errors);
      if (denied) this.probe.execDenied = denied;
    }
    this.strategy = chooseStrategy(this.probe, this.#o.preferStrategy);
    if (this.strategy.degraded) for (const n of this.strategy.notes) this.reasons.push(`degraded: ${n}`);
    this.log({ event: 'probe', probe: this.probe, strategy: this.strategy });
    await this.storeBuffer(
      this.#c('probe.json'),
      `${JSON.stringify({ probe: this.probe, strategy: this.strategy }, null, 2)}\n`,
      this.#meta(
        { kind: 'probe' },
        { argv: probeArgv(this.probe.shell ?? 'sh'), contentType: 'application/json' },
      ),
    );
  }

  #readMode(): ReadMode {
    if (this.strategy.volatile === 'builtins') return 'builtins';
    return this.strategy.headCap ? 'head' : 'cat';
  }

  // ---------- phase: volatile ----------

  async #volatilePhase(specs: readonly ProfileSpec[]): Promise<void> {
    const procItems: { profile: string; item: ProcItem }[] = [];
    const commands: { profile: string; item: CommandItem }[] = [];
    for (const s of specs)
      for (const i of s.items) {
        if (i.kind === 'proc') procItems.push({ profile: s.name, item: i });
        if (i.kind === 'command') commands.push({ profile: s.name, item: i });
      }
    for (const c of commands) await this.#command(c.profile, c.item);
    if (procItems.length > 0) await this.#procStep(procItems);
  }

  async #command(profile: string, item: CommandItem): Promise<void> {
    const requires = item.requires ?? [item.argv[0] ?? ''];
    const tools = this.probe?.tools ?? {};
    const missing = requires.filter((r) => !(r in tools) && !r.startsWith('/'));
    const path = this.#c(`commands/${item.id}.out`);
    const meta = this.#meta({ kind: 'exec', profile, item: item.id }, { argv: item.argv });
    if (missing.length > 0) {
      await this.record(path, 'skipped', `not in the container: ${missing.join(', ')}`, meta);
      return;
    }
    await this.#execArtifact(
      path,
      item.argv,
      meta,
      item.timeoutMs ?? 30_000,
      item.maxBytes ?? 16 * 1024 * 1024,
    );
  }

  async #procStep(items: readonly { profile: string; item: ProcItem }[]): Promise<void> {
    const o = this.#o;
    const files = [...new Set(items.flatMap((x) => x.item.files ?? []))];
    const per = items.map((x) => x.item.perProcess).filter((p) => p !== undefined);
    const fields = [...new Set(per.flatMap((p) => p.fields))];
    const links = per.some((p) => p.links ?? true);
    const environ: EnvironMode = per.find((p) => p.environ)?.environ ?? 'hash';
    const exeMode = per.find((p) => p.exe)?.exe ?? 'deleted';
    const maxExe = Math.max(0, ...per.map((p) => p.maxExeBytes ?? 20 * 1024 * 1024));
    const maxProcs = Math.max(1, ...per.map((p) => p.maxProcesses ?? 2000));
    const cap = Math.max(...items.map((x) => x.item.maxBytesPerFile ?? 4 * 1024 * 1024));
    const profile = items
      .map((x) => x.profile)
      .filter((v, i, a) => a.indexOf(v) === i)
      .join(',');
    const itemIds = items.map((x) => x.item.id).join(',');
    const shell = this.probe?.shell ?? 'sh';
    const mode = this.#readMode();
    const argv = volatileArgv({
      shell,
      mode,
      readlink: this.strategy.readlink,
      procBase: o.target.fs.procBase,
      capPerFile: cap,
      maxProcesses: per.length ? maxProcs : 0,
      fields: per.length ? fields : [],
      links: per.length > 0 && links,
      globalFiles: files,
    });
    const key = newFrameKey();
    const src = { kind: 'proc', profile, item: itemIds };
    const procs = new Map<
      string,
      {
        cmdline?: string;
        status?: string;
        comm?: string;
        links: Record<string, string>;
        fds: Record<string, string>;
        ns: Record<string, string>;
      }
    >();
    const proc = (pid: string) => {
      let p = procs.get(pid);
      if (!p) {
        p = { links: {}, fds: {}, ns: {} };
        procs.set(pid, p);
      }
      return p;
    };
    let selfPid: string | undefined;
    const anomalies: string[] = [];
    let frames = 0;
    const out = await this.#exec(
      'volatile',
      argv,
      async (stdout) => {
        let cur: { header: string[]; parts: Buffer[]; len: number; over: boolean } | undefined;
        for await (const ev of demuxFrames(stdout, key)) {
          if (ev.type === 'error') {
            anomalies.push(`framing: ${ev.reason} at byte ${ev.offset}`);
            return;
          }
          if (ev.type === 'begin') {
            if (!this.budget.takeEntry() || ++frames > o.limits.maxEntriesPerArtifact) {
              anomalies.push('entry cap reached: stopped reading /proc');
              return;
            }
            cur = { header: ev.header, parts: [], len: 0, over: false };
            continue;
          }
          if (!cur) continue;
          if (ev.type === 'data') {
            if (!this.budget.takeBytes(ev.chunk.length)) {
              anomalies.push('byte budget exhausted during /proc read');
              return;
            }
            if (cur.len + ev.chunk.length > cap) {
              cur.parts.push(ev.chunk.subarray(0, Math.max(0, cap - cur.len)));
              cur.len = cap;
              cur.over = true;
            } else {
              cur.parts.push(Buffer.from(ev.chunk));
              cur.len += ev.chunk.length;
            }
            continue;
          }
          // end
          const h = cur.header;
          const body = Buffer.concat(cur.parts);
          const rcNote = ev.rc === 0 || ev.rc === null ? {} : { details: { rc: ev.rc } };
          const trunc = cur.over
            ? { status: 'truncated' as const, reason: `per-file cap of ${cap} bytes` }
            : {};
          cur = undefined;
          if (h[0] === 'S' && h.length === 2) {
            selfPid = /^\d{1,10}$/.test(body.toString()) ? body.toString() : undefined;
          } else if (h[0] === 'G' && h.length === 2 && files.includes(h[1] ?? '')) {
            if (ev.rc !== 0 && body.length === 0) {
              await this.record(
                this.#c(`proc/system/${h[1]}`),
                'skipped',
                `not readable (rc ${ev.rc})`,
                this.#meta(src),
              );
            } else
              await this.storeBuffer(
                this.#c(`proc/system/${h[1]}`),
                body,
                this.#meta(src, { ...rcNote, ...trunc }),
              );
          } else if (
            h[0] === 'P' &&
            h.length === 3 &&
            /^\d{1,10}$/.test(h[1] ?? '') &&
            fields.includes(h[2] as (typeof fields)[number])
          ) {
            const pid = h[1] as string;
            const field = h[2] as string;
            const p = proc(pid);
            if (field === 'cmdline')
              p.cmdline = body.toString('utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
            if (field === 'status') p.status = body.toString('utf8').slice(0, 65536);
            if (field === 'comm') p.comm = body.toString('utf8').trim();
            if (ev.rc !== 0 && body.length === 0) continue;
            if (field === 'environ') {
              const env = transformEnviron(body, environ);
              await this.storeBuffer(
                this.#c(`proc/${pid}/environ.json`),
                `${JSON.stringify({ mode: environ, variables: env }, null, 2)}\n`,
                this.#meta(src, { contentType: 'application/json', ...trunc }),
              );
            } else
              await this.storeBuffer(
                this.#c(`proc/${pid}/${field.replace('/', '_')}`),
                body,
                this.#meta(src, { ...rcNote, ...trunc }),
              );
          } else if (
            h[0] === 'L' &&
            h.length === 3 &&
            /^\d{1,10}$/.test(h[1] ?? '') &&
            ['exe', 'cwd', 'root'].includes(h[2] ?? '')
          ) {
            if (body.length)
              proc(h[1] as string).links[h[2] as string] = body.toString('utf8').replace(/\n$/, '');
          } else if (
            h[0] === 'D' &&
            h.length === 3 &&
            /^\d{1,10}$/.test(h[1] ?? '') &&
            ['fd', 'ns'].includes(h[2] ?? '')
          ) {
            const p = proc(h[1] as string);
            const parts = body.toString('utf8').split('\0');
            for (let i = 0; i + 1 < parts.length; i += 2) {
              const name = parts[i] as string;
              if (!/^[0-9a-z_]{1,32}$/.test(name)) continue;
              (h[2] === 'fd' ? p.fds : p.ns)[name] = (parts[i + 1] as string).replace(/\n$/, '');
            }
          } else if (h[0] === 'M') {
            anomalies.push(`more than ${maxProcs} processes: the rest were not read`);
          } else {
            anomalies.push(`unexpected frame header ${JSON.stringify(h.join(' ').slice(0, 100))}`);
          }
        }
      },
      { stdin: `${key}\n` },
    );
    if (out.error) this.reasons.push(`volatile exec: ${out.error}`);
    for (const a of anomalies) this.reasons.push(`volatile: ${a}`);
    // per-process summary and links
    const table: Record<string, unknown>[] = [];
    for (const [pid, p] of [...procs].sort((a, b) => Number(a[0]) - Number(b[0]))) {
      const st = (k: string) => p.status?.match(new RegExp(`^${k}:\\s*(.*)$`, 'm'))?.[1]?.trim();
      const exe = p.links.exe;
      table.push({
        pid: Number(pid),
        ppid: st('PPid') !== undefined ? Number(st('PPid')) : undefined,
        name: st('Name') ?? p.comm,
        uid: st('Uid')?.split(/\s+/)[0],
        state: st('State'),
        cmdline: p.cmdline,
        exe,
        exeDeleted: exe?.endsWith(' (deleted)') ?? false,
        cwd: p.links.cwd,
        root: p.links.root,
        fds: p.fds,
        ns: p.ns,
        collector: pid === selfPid,
      });
    }
    if (per.length > 0) {
      await this.storeBuffer(
        this.#c('proc/processes.json'),
        `${JSON.stringify({ collectorShellPid: selfPid ? Number(selfPid) : undefined, processes: table }, null, 2)}\n`,
        this.#meta(src, {
          argv,
          contentType: 'application/json',
          ...(anomalies.length ? { details: { anomalies } } : {}),
        }),
      );
    }
    // bytes of deleted / writable-dir executables and deleted fds
    if (exeMode === 'none' || maxExe === 0 || per.length === 0) return;
    if (mode === 'builtins') {
      if (table.some((r) => r.exeDeleted))
        this.reasons.push('deleted executables present but not recoverable with shell builtins only');
      return;
    }
    const rels: string[] = [];
    const seenTargets = new Set<string>();
    for (const r of table) {
      if (r.collector) continue;
      const exe = typeof r.exe === 'string' ? r.exe : undefined;
      if (exe) {
        const want =
          exeMode === 'all' ||
          (exe.endsWith(' (deleted)') && true) ||
          (exeMode === 'writable' && WRITABLE_EXE.test(exe));
        if (want && !seenTargets.has(exe)) {
          seenTargets.add(exe);
          rels.push(`${r.pid}/exe`);
        }
      }
      for (const [fd, target] of Object.entries((r.fds as Record<string, string>) ?? {})) {
        if (!/^\d+$/.test(fd)) continue;
        if (
          (target.startsWith('memfd:') || (target.endsWith(' (deleted)') && !target.startsWith('/dev/'))) &&
          !seenTargets.has(`${r.pid}:${target}`)
        ) {
          seenTargets.add(`${r.pid}:${target}`);
          rels.push(`${r.pid}/fd/${fd}`);
        }
      }
    }
    if (rels.length === 0) return;
    for (const batch of batchByChars(rels, (r) => r, o.limits.maxArgvChars)) {
      await this.#procBytes(batch, maxExe, mode, src, table);
    }
  }

  async #procBytes(
    rels: readonly string[],
    cap: number,
    mode: ReadMode,
    src: { kind: string; profile?: string; item?: string },
    table: Record<string, unknown>[],
  ): Promise<void> {
    const shell = this.probe?.shell ?? 'sh';
    const argv = procBytesArgv(shell, mode, this.#o.target.fs.procBase, cap, rels);
    const key = newFrameKey();
    const anomalies: string[] = [];
    const out = await this.#exec(
      'process-bytes',
      argv,
      async (stdout) => {
        let cur:
          | {
              rel: string;
              stream: Readable & { push(c: Buffer | null): boolean };
              hash: ReturnType<typeof createHash>;
              len: number;
              rec: Promise<ArtifactRecord>;
            }
          | undefined;
        for await (const ev of demuxFrames(stdout, key)) {
          if (ev.type === 'error') {
            anomalies.push(ev.reason);
            cur?.stream.push(null);
            if (cur) await cur.rec;
            return;
          }
          if (ev.type === 'begin') {
            const rel = ev.header[0] === 'X' && ev.header.length === 2 ? (ev.header[1] ?? '') : '';
            if (!rels.includes(rel)) {
              anomalies.push('unexpected frame');
              return;
            }
            const stream = new Readable({ read() {} });
            const row = table.find((r) => String(r.pid) === rel.split('/')[0]);
            const name = rel.endsWith('/exe')
              ? `proc/${rel.split('/')[0]}/exe.bin`
              : `proc/${rel.replace('/fd/', '/fd-')}.bin`;
            const hash = createHash('sha256');
            const c = {
              rel,
              stream,
              hash,
              len: 0,
              rec: Promise.resolve(undefined as unknown as ArtifactRecord),
            };
            c.rec = this.storeStream(
              this.#c(name),
              stream,
              this.#meta(src, {
                argv,
                contentType: 'application/octet-stream',
                details: {
                  process: row ? { pid: row.pid, exe: row.exe, cmdline: row.cmdline } : undefined,
                  cap,
                },
              }),
              () =>
                c.len >= cap
                  ? {
                      status: 'truncated',
                      reason: `capped at ${cap} bytes (UAC-style cap for process images)`,
                    }
                  : {},
            );
            cur = c;
            continue;
          }
          if (!cur) continue;
          if (ev.type === 'data') {
            if (cur.len >= cap) continue;
            const piece = ev.chunk.subarray(0, cap - cur.len);
            cur.len += piece.length;
            cur.hash.update(piece);
            cur.stream.push(Buffer.from(piece));
            continue;
          }
          cur.stream.push(null);
          await cur.rec;
          cur = undefined;
        }
      },
      { stdin: `${key}\n` },
    );
    if (out.error) this.reasons.push(`process bytes exec: ${out.error}`);
    for (const a of anomalies) this.reasons.push(`process bytes: ${a}`);
  }

  // ---------- phase: metadata ----------

  async #metadataPhase(specs: readonly ProfileSpec[]): Promise<Map<string, ListedEntry> | undefined> {
    const o = this.#o;
    const items: { profile: string; item: FileItem }[] = [];
    for (const s of specs)
      for (const i of s.items) if (i.kind === 'file') items.push({ profile: s.name, item: i });
    if (items.length === 0) return undefined;
    const roots = new Map<string, number>();
    for (const { item } of items) {
      for (const p of item.paths) {
        const g = compileGlob(p, item.maxDepth ?? 8);
        roots.set(g.root, Math.max(roots.get(g.root) ?? 0, g.depth));
      }
    }
    const prefix = o.target.fs.root.replace(/\/+$/, '');
    const rootList = [...roots].map(([root, maxDepth]) => ({ root: `${prefix}${root}`, maxDepth }));
    const shell = this.probe?.shell ?? 'sh';
    const kind =
      this.strategy.listing === 'find-stat'
        ? 'find'
        : this.strategy.listing === 'find'
          ? 'find-typed'
          : 'shell';
    const argv = listingArgv(shell, kind, rootList);
    const src = {
      kind: 'listing',
      profile: [...new Set(items.map((i) => i.profile))].join(','),
      item: 'file-items',
    };
    const cap = Math.min(o.limits.maxArtifactBytes, 256 * 1024 * 1024);
    let raw: Buffer = Buffer.alloc(0);
    let over = false;
    let rec: Promise<ArtifactRecord> | undefined;
    const out = await this.#exec('listing', argv, async (stdout) => {
      let res: ExecOutcome<void> | undefined;
      const {
        parse: toParse,
        stored,
        stop: stopTee,
      } = this.#storeTee(
        stdout,
        this.#c('files/listing.raw'),
        this.#meta(src, { argv, contentType: 'application/octet-stream' }),
        () => (res?.error ? { status: 'failed', reason: res.error } : {}),
      );
      rec = stored;
      const parts: Buffer[] = [];
      let n = 0;
      for await (const c of toParse) {
        const b = c as Buffer;
        if (n + b.length > cap) {
          over = true;
          stopTee();
          break;
        }
        parts.push(b);
        n += b.length;
      }
      raw = Buffer.concat(parts);
      await rec;
    });
    void out;
    if (out.error) this.reasons.push(`listing exec: ${out.error}`);
    if (over) this.reasons.push('listing larger than 256 MiB: cut');
    const parsed = parseListing(raw, prefix, o.limits.maxEntriesPerArtifact);
    if (parsed.capped)
      this.reasons.push(`listing has more than ${o.limits.maxEntriesPerArtifact} entries: cut`);
    const entries = new Map<string, ListedEntry>();
    for (const e of parsed.entries) entries.set(e.path, e);
    if (this.strategy.stat) {
      const wanted = parsed.entries.filter((e) => e.requestable);
      const batches = batchByChars(wanted, (e) => `${prefix}${e.path}`, o.limits.maxArgvChars);
      let bi = 0;
      for (const batch of batches) {
        if (o.signal.aborted) return entries;
        const expected = batch.map((entry) => ({ full: `${prefix}${entry.path}`, entry }));
        const sargv = statArgv(expected.map((x) => x.full));
        const sres = await this.#exec(`stat-${bi}`, sargv, async (stdout) => {
          const { parse: toParse, stored: r } = this.#storeTee(
            stdout,
            this.#c(`files/stat-${String(bi).padStart(3, '0')}.raw`),
            this.#meta(src, {
              argv: ['stat', '-c', sargv[2] as string, '--', `<${expected.length} listed paths>`],
              contentType: 'text/plain',
            }),
          );
          const parts: Buffer[] = [];
          for await (const c of toParse) parts.push(c as Buffer);
          await r;
          return Buffer.concat(parts).toString('utf8');
        });
        if (sres.value) applyStatOutput(sres.value, expected);
        bi++;
      }
    }
    const list = [...entries.values()];
    await this.storeBuffer(
      this.#c('files/bodyfile.txt'),
      renderBodyfile(list),
      this.#meta(src, {
        contentType: 'text/plain',
        details: { entries: list.length, rejectedRecords: parsed.rejected, listing: this.strategy.listing },
      }),
    );
    if (this.strategy.stat) {
      await this.storeBuffer(
        this.#c('files/findings.json'),
        `${JSON.stringify(metadataFindings(list, this.#containerStartedAt()), null, 2)}\n`,
        this.#meta(src, { contentType: 'application/json' }),
      );
    }
    return entries;
  }

  /** When the target container (re)started, from the pod status (epoch seconds). */
  #containerStartedAt(): number | undefined {
    const st = this.pod?.status?.containerStatuses?.find((c) => c.name === this.#o.target.container);
    const t = st?.state?.running?.startedAt;
    const ms = typeof t === 'string' ? Date.parse(t) : Number.NaN;
    return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
  }

  // ---------- phase: content ----------

  async #contentPhase(specs: readonly ProfileSpec[], listing: Map<string, ListedEntry>): Promise<void> {
    const o = this.#o;
    const rows = new Map<string, FileRow>();
    const skipped: FileRow[] = [];
    for (const s of specs) {
      for (const item of s.items) {
        if (item.kind !== 'file') continue;
        let mode: FileContentMode = item.content ?? 'copy';
        if (item.sensitive && o.copySensitive && mode !== 'metadata') mode = 'copy';
        if (mode === 'metadata') continue;
        const globs = item.paths.map((p) => compileGlob(p, item.maxDepth ?? 8));
        const excludes = compileExcludes(item.exclude);
        const maxSize = item.maxFileSize ?? 10 * 1024 * 1024;
        let count = 0;
        for (const e of listing.values()) {
          if (e.type === 'd' || e.type === 'o') continue;
          if (!globs.some((g) => g.matches(e.path)) || isExcluded(e.path, excludes)) continue;
          const existing = rows.get(e.path);
          if (existing) {
            if (!existing.items.includes(item.id)) existing.items.push(item.id);
            continue;
          }
          const row: FileRow = {
            path: e.path,
            items: [item.id],
            mode,
            type: e.type,
            listedSize: e.size,
            take: 0,
            status: 'skipped',
          };
          if (!e.requestable) {
            row.reason = 'name is not valid UTF-8: cannot be passed to exec';
            skipped.push(row);
            continue;
          }
          if (++count > (item.maxFiles ?? 5000)) {
            row.reason = `item ${item.id} matched more than ${item.maxFiles ?? 5000} files`;
            skipped.push(row);
            continue;
          }
          if (e.size !== undefined && e.size > maxSize && e.type === 'f') {
            row.reason = `larger than maxFileSize (${e.size} > ${maxSize} bytes): metadata only`;
            skipped.push(row);
            continue;
          }
          row.take = e.type === 'l' ? 0 : Math.min(e.size ?? maxSize, maxSize);
          if (mode === 'jwt') row.take = Math.min(row.take || 64 * 1024, 64 * 1024);
          rows.set(e.path, row);
        }
      }
    }
    const tokens: Record<string, unknown>[] = [];
    for (const mode of ['copy', 'hash', 'jwt'] as const) {
      const group = [...rows.values()].filter((r) => r.mode === mode);
      if (group.length === 0) continue;
      const batches = batchByChars(
        group,
        (r) => `${o.target.fs.root}${r.path}12345678`,
        o.limits.maxArgvChars,
      );
      for (const batch of batches) {
        if (o.signal.aborted) break;
        if (this.strategy.content === 'tar') await this.#tarBatch(batch, mode, tokens);
        else await this.#framedBatch(batch, mode, tokens);
      }
    }
    const all = [...rows.values(), ...skipped].sort((a, b) => (a.path < b.path ? -1 : 1));
    const src = { kind: 'files', profile: specs.map((s) => s.name).join(','), item: 'file-items' };
    await this.storeBuffer(
      this.#c('files/index.json'),
      `${JSON.stringify({ strategy: this.strategy.content, root: o.target.fs.root, files: all }, null, 2)}\n`,
      this.#meta(src, { contentType: 'application/json' }),
    );
    if (tokens.length) {
      await this.storeBuffer(
        this.#c('files/tokens.json'),
        `${JSON.stringify(tokens, null, 2)}\n`,
        this.#meta(
          { ...src, item: 'jwt' },
          {
            contentType: 'application/json',
            details: { note: 'decoded header and claims only; raw tokens and signatures are not stored' },
          },
        ),
      );
    }
  }

  async #tarBatch(
    batch: FileRow[],
    mode: 'copy' | 'hash' | 'jwt',
    tokens: Record<string, unknown>[],
  ): Promise<void> {
    const o = this.#o;
    const prefix = o.target.fs.root.replace(/\/+$/, '');
    const expected = new Map<string, string>();
    for (const r of batch) expected.set(`${prefix}${r.path}`.replace(/^\/+/, ''), r.path);
    const argv = tarArgv(batch.map((r) => `${prefix}${r.path}`));
    const n = ++this.#seq;
    const streamPath = this.#c(`files/content-${String(n).padStart(3, '0')}.tar`);
    const src = {
      kind: 'files',
      profile: undefined,
      item: [...new Set(batch.flatMap((r) => r.items))].join(','),
    };
    const kept = new Map<string, Buffer>();
    let result: Awaited<ReturnType<typeof receiveTar>> | undefined;
    let storedRecord: ArtifactRecord | undefined;
    const outcome = await this.#exec(`content-${n}`, argv, async (stdout) => {
      let parseSide: Readable = stdout;
      let rec: Promise<ArtifactRecord> | undefined;
      let stopTee: (() => void) | undefined;
      if (mode === 'copy') {
        ({
          parse: parseSide,
          stored: rec,
          stop: stopTee,
        } = this.#storeTee(
          stdout,
          streamPath,
          this.#meta(src, {
            argv: ['tar', 'cf', '-', '--', `<${batch.length} paths, see files/index.json>`],
            contentType: 'application/x-tar',
          }),
          () =>
            result && !result.ok ? { status: 'failed', reason: result.reason ?? 'archive rejected' } : {},
        ));
      }
      result = await receiveTar(parseSide, {
        expected,
        maxEntries: Math.min(o.limits.maxEntriesPerArtifact, batch.length * 4 + 16),
        maxBytes: o.limits.maxArtifactBytes,
        keepBytes: mode === 'jwt' ? 64 * 1024 : 0,
        // in copy mode the sink hashes the very same bytes: one hash less per byte
        hashStream: mode !== 'copy',
        onKept: (e, b) => {
          if (e.requestedPath) kept.set(e.requestedPath, b);
        },
        onBytes: mode === 'copy' ? undefined : (len) => this.budget.takeBytes(len),
      });
      if (!result.ok) {
        if (stopTee) stopTee();
        else parseSide.destroy();
      }
      if (rec) storedRecord = await rec;
    });
    const r = result;
    for (const row of batch) {
      row.stream = mode === 'copy' ? streamPath : undefined;
      const e = r?.entries.find((x) => x.requestedPath === row.path);
      if (!e) {
        row.status = 'failed';
        row.reason =
          r?.ok === false
            ? `not received: ${r.reason}`
            : outcome.error
              ? `not received: ${outcome.error}`
              : 'not in the archive (vanished or unreadable)';
        continue;
      }
      row.entry = e.name;
      row.bytes = e.bytes;
      row.sha256 = e.sha256;
      if (e.type === 'symlink') {
        row.status = 'link';
        row.linkTarget = e.linkname;
        row.reason = 'symbolic link: not followed';
        row.sha256 = undefined;
      } else if (e.type !== 'file') {
        row.status = 'skipped';
        row.reason = `archive entry is a ${e.type}`;
        row.sha256 = undefined;
      } else if (e.flags.includes('short-content')) {
        row.status = 'failed';
        row.reason = 'entry shorter than its header claims';
      } else {
        row.status = mode === 'copy' ? 'copied' : mode === 'hash' ? 'hashed' : 'claims';
        if (mode === 'jwt')
          tokens.push({
            path: row.path,
            ...jwtRecord(kept.get(row.path) ?? Buffer.alloc(0), e.bytes, e.sha256),
          });
      }
    }
    if (r && !r.ok) this.reasons.push(`tar stream ${streamPath}: ${r.reason}`);
    if (outcome.error) this.reasons.push(`tar exec ${streamPath}: ${outcome.error}`);
    if (r) {
      const suspicious = r.entries.filter((e) =>
        e.flags.some((f) => f !== 'duplicate-entry' && !f.endsWith('-not-followed')),
      );
      const idx = {
        argv,
        exitCode: outcome.exitCode,
        error: outcome.error,
        ok: r.ok,
        reason: r.reason,
        streamBytes: r.streamBytes,
        streamSha256: r.streamSha256 ?? storedRecord?.sha256,
        sawEndOfArchive: r.sawEndOfArchive,
        missing: r.missing,
        suspicious: suspicious.length,
        entries: r.entries,
      };
      await this.storeBuffer(
        `${streamPath.replace(/\.tar$/, '')}.index.json`,
        `${JSON.stringify(idx, null, 2)}\n`,
        this.#meta(src, { contentType: 'application/json', details: { mode } }),
      );
    }
  }

  async #framedBatch(
    batch: FileRow[],
    mode: 'copy' | 'hash' | 'jwt',
    tokens: Record<string, unknown>[],
  ): Promise<void> {
    const o = this.#o;
    const prefix = o.target.fs.root.replace(/\/+$/, '');
    const shell = this.probe?.shell ?? 'sh';
    const readMode: ReadMode =
      this.strategy.content === 'builtins' ? 'builtins' : this.strategy.headCap ? 'head' : 'cat';
    const argv = filesArgv(
      shell,
      readMode,
      batch.map((r) => ({ path: `${prefix}${r.path}`, take: r.take })),
    );
    const n = ++this.#seq;
    const streamPath = this.#c(`files/content-${String(n).padStart(3, '0')}.frames`);
    const src = {
      kind: 'files',
      profile: undefined,
      item: [...new Set(batch.flatMap((r) => r.items))].join(','),
    };
    const key = newFrameKey();
    const anomalies: string[] = [];
    const outcome = await this.#exec(
      `content-${n}`,
      argv,
      async (stdout) => {
        let parseSide: Readable = stdout;
        let rec: Promise<ArtifactRecord> | undefined;
        let stopTee: (() => void) | undefined;
        if (mode === 'copy') {
          ({
            parse: parseSide,
            stored: rec,
            stop: stopTee,
          } = this.#storeTee(
            stdout,
            streamPath,
            this.#meta(src, {
              argv: [shell, '-c', '<files script>', `<${batch.length} paths, see files/index.json>`],
              contentType: 'application/octet-stream',
              details: {
                format:
                  'frames: \\n<key> B <i> F|L|N [take]\\n<bytes>\\n<key> E <rc>\\n; key in files/index.json',
              },
            }),
            () => (anomalies.length ? { status: 'failed', reason: anomalies.join('; ') } : {}),
          ));
        }
        let cur:
          | {
              row: FileRow;
              hash: ReturnType<typeof createHash>;
              len: number;
              over: boolean;
              kept: Buffer[];
              kind: string;
              offset: number;
              link: Buffer[];
            }
          | undefined;
        for await (const ev of demuxFrames(parseSide, key)) {
          if (ev.type === 'error') {
            anomalies.push(`${ev.reason} at byte ${ev.offset}`);
            break;
          }
          if (ev.type === 'begin') {
            const idx = Number(ev.header[0]);
            const row = Number.isInteger(idx) ? batch[idx] : undefined;
            if (!row || !this.budget.takeEntry()) {
              anomalies.push(
                row
                  ? 'entry budget exhausted'
                  : `unexpected frame ${JSON.stringify(ev.header.join(' ').slice(0, 80))}`,
              );
              break;
            }
            cur = {
              row,
              hash: createHash('sha256'),
              len: 0,
              over: false,
              kept: [],
              kind: ev.header[1] ?? '?',
              offset: ev.offset,
              link: [],
            };
            continue;
          }
          if (!cur) continue;
          if (ev.type === 'data') {
            if (mode !== 'copy' && !this.budget.takeBytes(ev.chunk.length)) {
              anomalies.push(`${this.budget.exhaustedBy(ev.chunk.length) ?? 'byte'} budget exhausted`);
              break;
            }
            if (cur.kind === 'L') {
              if (cur.len < 4096) cur.link.push(Buffer.from(ev.chunk.subarray(0, 4096 - cur.len)));
              cur.len += ev.chunk.length;
              continue;
            }
            const room = cur.row.take - cur.len;
            const piece = room >= ev.chunk.length ? ev.chunk : ev.chunk.subarray(0, Math.max(0, room));
            if (piece.length < ev.chunk.length) cur.over = true;
            cur.hash.update(piece);
            if (mode === 'jwt') cur.kept.push(Buffer.from(piece));
            cur.len += ev.chunk.length;
            continue;
          }
          const row = cur.row;
          row.stream = mode === 'copy' ? streamPath : undefined;
          if (cur.kind === 'L') {
            row.status = 'link';
            row.linkTarget = Buffer.concat(cur.link).toString('utf8').replace(/\n$/, '');
            row.reason = 'symbolic link: not followed';
          } else if (cur.kind === 'N') {
            row.status = 'skipped';
            row.reason = 'not a regular file (or vanished) when read';
          } else {
            row.bytes = Math.min(cur.len, row.take);
            row.sha256 = cur.hash.digest('hex');
            row.offset = cur.offset;
            if (cur.over) {
              row.status = 'failed';
              row.reason = `received ${cur.len} bytes for a frame of ${row.take}: the reader in the container did not honour the cap (hash covers the first ${row.take})`;
            } else if (ev.rc !== 0 && cur.len === 0) {
              row.status = 'failed';
              row.reason = `not readable (rc ${ev.rc})`;
              row.sha256 = undefined;
            } else {
              row.status = mode === 'copy' ? 'copied' : mode === 'hash' ? 'hashed' : 'claims';
              if (cur.len < row.take) row.reason = `file shrank while read (${cur.len} of ${row.take} bytes)`;
              if (row.listedSize !== undefined && row.listedSize > row.take) {
                row.status = 'truncated';
                row.reason = `read the first ${row.take} of ${row.listedSize} bytes`;
              }
              if (readMode === 'builtins')
                row.reason = [row.reason, 'read with shell builtins: text only, NUL bytes lost']
                  .filter(Boolean)
                  .join('; ');
              if (mode === 'jwt')
                tokens.push({ path: row.path, ...jwtRecord(Buffer.concat(cur.kept), row.bytes, row.sha256) });
            }
          }
          cur = undefined;
        }
        if (anomalies.length) {
          if (stopTee) stopTee();
          else parseSide.destroy();
        }
        if (rec) await rec;
      },
      { stdin: `${key}\n` },
    );
    for (const row of batch) {
      if (row.status === 'skipped' && !row.reason) {
        row.status = 'failed';
        row.reason = anomalies[0] ?? outcome.error ?? 'no frame received';
      }
    }
    if (anomalies.length) this.reasons.push(`framed stream ${streamPath}: ${anomalies.join('; ')}`);
    if (mode === 'copy') {
      await this.storeBuffer(
        `${streamPath.replace(/\.frames$/, '')}.index.json`,
        `${JSON.stringify({ argv, key, exitCode: outcome.exitCode, error: outcome.error, anomalies, entries: batch.map((r) => ({ path: r.path, status: r.status, offset: r.offset, bytes: r.bytes, sha256: r.sha256, reason: r.reason })) }, null, 2)}\n`,
        this.#meta(src, { contentType: 'application/json' }),
      );
    }
  }

  /** Builds the report after finalize/abort. */
  report(
    startedAt: Date,
    location: string | undefined,
    acquisitionId: string | undefined,
    manifestSha256: string | undefined,
    finalized: boolean,
  ): TargetReport {
    const t = this.#o.target;
    let status: TargetStatus = 'complete';
    const reasons = [...new Set(this.reasons)];
    if (!finalized || reasons.length > 0 || this.counts.failed > 0 || this.counts.truncated > 0)
      status = 'partial';
    if (!this.pod && this.counts.complete === 0) status = 'failed';
    if (!finalized && this.counts.complete === 0) status = 'failed';
    return {
      target: { namespace: t.namespace, pod: t.pod, container: t.container, podUid: t.podUid },
      status,
      reasons,
      strategy: this.strategy,
      needsEphemeralContainer: this.needsEphemeral,
      acquisitionId,
      location,
      manifestSha256,
      finalized,
      artifacts: { ...this.counts },
      bytes: this.bytes,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    };
  }
}
