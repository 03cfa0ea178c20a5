/**
 * Public types of the collect layer: targets, the programmatic profile interface, limits,
 * progress events and reports.
 */
import type { Readable } from 'node:stream';
import type { ArtifactBody, ArtifactRecord, BundleWriter } from '../evidence/index.js';
import type {
  CallOptions,
  ExecOptions,
  ExecSession,
  KubeClient,
  KubeEvent,
  Node,
  Pod,
  PodEventsOptions,
  PodLogsOptions,
  UserInfo,
} from '../kube/index.js';
import type { Logger } from '../util/index.js';
import type { ProbeResult, Strategy } from './probe.js';
import type { ProfileSpec, ProfileSpecInput } from './schema.js';

/**
 * The part of `KubeClient` the collector uses. A `KubeClient` satisfies it; `exec` and `getPod`
 * are required, the rest are used when present.
 */
export interface CollectorKube {
  /** Runs a command in a container over the exec WebSocket. */
  exec(options: ExecOptions): Promise<ExecSession>;
  /** Reads a pod. */
  getPod(namespace: string, name: string, options?: CallOptions): Promise<Pod>;
  /** Events of a pod. */
  podEvents?(options: PodEventsOptions): Promise<KubeEvent[]>;
  /** Container logs as a stream. */
  podLogs?(options: PodLogsOptions): Promise<Readable>;
  /** Reads a node. */
  getNode?(name: string, options?: CallOptions): Promise<Node>;
  /** Who the caller is (for the custody record). */
  selfSubjectReview?(options?: CallOptions): Promise<UserInfo>;
  /** Reads one object of a known kind (the `identity` API resource). */
  getObject?: KubeClient['getObject'];
  /** Lists objects of a known kind (the `identity` API resource). */
  listObjects?: KubeClient['listObjects'];
}

/**
 * Where a target's files and processes are seen from. The defaults (`''` and `/proc`) read the
 * container's own view; an ephemeral debug container sharing the PID namespace reads the target
 * through `root: '/proc/<pid>/root'`.
 */
export interface FsView {
  /** Prefix prepended to every file path (no trailing slash; `''` for the container's own root). */
  root: string;
  /** Where /proc is (default `/proc`). */
  procBase: string;
}

/** One container to acquire: a plain object or a ClusterCatalog target with the same fields. */
export interface AcquisitionTarget {
  /** Client for the cluster the pod runs in. */
  kube: CollectorKube;
  /** Pod namespace (may be omitted when `pod` is an object carrying its namespace, e.g. a PodInfo). */
  namespace?: string | undefined;
  /** Pod name (or an object with `name`, as catalog listings give). */
  pod: string | { name: string; namespace?: string | undefined };
  /** Container name (or an object with `name`). */
  container: string | { name: string };
  /** Container to exec in when it differs from `container` (an ephemeral debug container). */
  execContainer?: string | undefined;
  /** How the target's files are reached from the exec container (default: its own root). */
  fs?: Partial<FsView> | undefined;
  /** Case id for this target's bundle (default: the collector's). */
  caseId?: string | undefined;
}

/** A target after normalisation. */
export interface ResolvedTarget {
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Container name. */
  container: string;
  /** Container exec'd into. */
  execContainer: string;
  /** File and proc view. */
  fs: FsView;
  /** Pod UID, once the pod was read. */
  podUid?: string | undefined;
}

/** Bounds for one acquisition. Every value has a default; see {@link DEFAULT_LIMITS}. */
export interface CollectLimits {
  /** Bytes of one artifact stream (raw tar/framed stream, one log, one command output). */
  maxArtifactBytes: number;
  /** Bytes per target (all artifacts of one container). */
  maxTargetBytes: number;
  /** Bytes per `acquire()` call (all targets). */
  maxRunBytes: number;
  /** Entries (files, frames) in one stream. */
  maxEntriesPerArtifact: number;
  /** Entries per target. */
  maxEntriesPerTarget: number;
  /** Entries per run. */
  maxRunEntries: number;
  /** Timeout of one exec. */
  execTimeoutMs: number;
  /** An exec that sends no byte for this long is cancelled. */
  noProgressMs: number;
  /** Timeout of one API call (pod, events, logs). */
  apiTimeoutMs: number;
  /** Budget for one whole target. */
  targetTimeoutMs: number;
  /**
   * Longest argv of one exec, counted URL-encoded as the exec request carries it; longer file lists
   * are split into several execs. Keep well under the API server's request-line limit.
   */
  maxArgvChars: number;
  /**
   * Names the metadata phase keeps for one target across all its listing roots (default
   * 1 000 000, about 250 MiB): past it the roots still to list are recorded as not listed, so a
   * container with millions of files (or thousands of top-level directories) cannot grow memory
   * without bound.
   */
  maxListedEntriesPerTarget: number;
}

/** Phases in order of volatility. */
export type Phase = 'api' | 'volatile' | 'metadata' | 'content';

/** Whether a profile applies to a target, and why not. */
export type ApplyDecision = { applies: true } | { applies: false; reason: string };

/** Output of {@link CollectContext.exec}: stdout and stderr kept in memory (bounded). */
export interface ExecCapture {
  /** argv as sent. */
  argv: readonly string[];
  /** Exit code, `null` when the command did not finish. */
  exitCode: number | null;
  /** Stdout up to the cap. */
  stdout: Buffer;
  /** First bytes of stderr. */
  stderr: string;
  /** Whether stdout hit the cap. */
  truncated: boolean;
  /** Why the exec did not complete, when it did not. */
  error?: string | undefined;
  /** The collector's decision on this output (the same one it records for exec artifacts). */
  status: 'complete' | 'truncated' | 'failed';
  /** Why it is not complete. */
  reason?: string | undefined;
}

/** Options of one exec made through the context. */
export interface ContextExecOptions {
  /** Bytes to send on stdin (the stream is then closed). */
  stdin?: string | Uint8Array | undefined;
  /** Timeout (default: limits.execTimeoutMs). */
  timeoutMs?: number | undefined;
  /** Stdout cap (default 16 MiB for {@link CollectContext.exec}, limits.maxArtifactBytes for artifacts). */
  maxBytes?: number | undefined;
  /** Label for the acquisition log. */
  step?: string | undefined;
}

/** Extra facts to store with an artifact written through the context. */
export interface ContextArtifactMeta {
  /** Item id (the profile name is added). */
  item?: string | undefined;
  /** `exec`, `api`, `logs`, … (default `profile`). */
  kind?: string | undefined;
  /** argv, when the bytes came from a command. */
  argv?: readonly string[] | undefined;
  /** MIME type. */
  contentType?: string | undefined;
  /** Extra facts for the manifest. */
  details?: Record<string, unknown> | undefined;
  /**
   * The `exec()` captures the bytes were made from: the artifact then inherits their worst
   * status instead of being recorded complete.
   */
  from?: readonly ExecCapture[] | undefined;
}

/** What a profile's collect step receives. Paths are relative to the container's folder in the bundle. */
export interface CollectContext {
  /** The target. */
  readonly target: ResolvedTarget;
  /** The pod as read at the start (undefined when it could not be read). */
  readonly pod: Pod | undefined;
  /** The probe result (undefined before the probe or when exec is impossible). */
  readonly probe: ProbeResult | undefined;
  /** The strategy chosen from the probe. */
  readonly strategy: Strategy;
  /** Limits in force. */
  readonly limits: CollectLimits;
  /** Cancelled when the acquisition is aborted. */
  readonly signal: AbortSignal;
  /** Diagnostics. */
  readonly logger: Logger;
  /** The cluster client. */
  readonly kube: CollectorKube;
  /** Runs argv (never through a shell unless argv says so) with timeout and watchdog; logged. */
  exec(argv: readonly string[], options?: ContextExecOptions): Promise<ExecCapture>;
  /** Runs argv and streams stdout into an artifact (bounded, hashed, logged). */
  execToArtifact(
    path: string,
    argv: readonly string[],
    meta?: ContextArtifactMeta & ContextExecOptions,
  ): Promise<ArtifactRecord>;
  /** Writes an artifact under the container's folder. */
  writeArtifact(path: string, body: ArtifactBody, meta?: ContextArtifactMeta): Promise<ArtifactRecord>;
  /** Records an artifact that has no bytes (skipped, failed) and why. */
  recordArtifact(
    path: string,
    status: 'failed' | 'truncated' | 'skipped',
    reason: string,
    meta?: ContextArtifactMeta,
  ): Promise<ArtifactRecord>;
  /** Adds a line to the acquisition log. */
  log(event: Record<string, unknown>): void;
  /** The raw bundle writer (for advanced profiles). */
  readonly bundle: BundleWriter;
}

/**
 * A profile written in code. Declarative profiles ({@link ProfileSpec}) are accepted wherever an
 * ArtifactProfile is.
 *
 * @example
 * const p: ArtifactProfile = {
 *   name: 'nginx-conf', description: 'nginx configuration', phase: 'content', needs: 'exec',
 *   async collect(ctx) { await ctx.execToArtifact('nginx-T.txt', ['nginx', '-T']); },
 * };
 */
export interface ArtifactProfile {
  /** Unique name, e.g. `nginx-conf`. */
  readonly name: string;
  /** One line for reports and docs. */
  readonly description: string;
  /** When it runs relative to other work (default `content`). */
  readonly phase?: Phase | undefined;
  /** `api` profiles run for every container; `exec` profiles need a shell-capable container. Default `exec`. */
  readonly needs?: 'api' | 'exec' | undefined;
  /** Whether it applies to this target (default: always). */
  appliesTo?(ctx: {
    target: ResolvedTarget;
    pod: Pod | undefined;
    probe: ProbeResult | undefined;
  }): ApplyDecision;
  /** Collects; throwing marks the profile failed for this target (the acquisition goes on). */
  collect(ctx: CollectContext): Promise<void>;
}

/** A profile given to the collector: programmatic, declarative (validated or as written), or a built-in's name. */
export type ProfileInput = ArtifactProfile | ProfileSpec | ProfileSpecInput | string;

/** Per-target outcome. */
export type TargetStatus = 'complete' | 'partial' | 'failed';

/** Counts of artifacts by status. */
export interface ArtifactCounts {
  /** Complete artifacts. */
  complete: number;
  /** Truncated at a limit. */
  truncated: number;
  /** Failed. */
  failed: number;
  /** Skipped (policy, missing tools, not applicable). */
  skipped: number;
}

/** One reason of a target report. */
export interface TargetReason {
  /**
   * Stable code: `pod-not-found`, `container-not-found`, `container-not-running`, `pod-unreadable`,
   * `exec-denied`, `no-shell`, `degraded`, `exec-error`, `exec-exit-code`, `watchdog`, `timeout`,
   * `aborted`, `cap`, `budget`, `stream-rejected`, `listing-root-truncated`, `artifact-failed`,
   * `artifact-truncated`, `volatile-anomaly`, `cleanup-not-guaranteed`, `phase-failed`,
   * `profile-failed`, `ephemeral`, `target-timeout`, `finalize-failed`.
   */
  readonly code: string;
  /** One line for people. */
  readonly text: string;
  /** Bundle path of the artifact concerned. */
  readonly artifact?: string | undefined;
}

/** The report of one target. */
export interface TargetReport {
  /** Namespace, pod, container. */
  target: { namespace: string; pod: string; container: string; podUid?: string | undefined };
  /** `complete` only when every artifact is complete and nothing was skipped for lack of tools. */
  status: TargetStatus;
  /** Why it is not complete (one line each). */
  reasons: string[];
  /** The same reasons with a stable code (and the artifact concerned): decide on `code`, never on the text. */
  reasonDetails: TargetReason[];
  /** How bytes were taken out. */
  strategy: Strategy;
  /** True when the container has no usable shell: only API state was acquired. */
  needsEphemeralContainer: boolean;
  /** Bundle id. */
  acquisitionId: string | undefined;
  /** Where the bundle is. */
  location: string | undefined;
  /** SHA-256 of manifest.json, when the bundle was finalized. */
  manifestSha256: string | undefined;
  /** Whether the bundle was finalized (false: marked incomplete). */
  finalized: boolean;
  /** Artifact counts. */
  artifacts: ArtifactCounts;
  /** Bytes stored. */
  bytes: number;
  /** When the target started (UTC ISO). */
  startedAt: string;
  /** When it finished (UTC ISO). */
  finishedAt: string;
}

/** The report of one `acquire()` call. */
export interface AcquisitionReport {
  /** One report per target, in input order. */
  targets: TargetReport[];
  /** Worst status of all targets. */
  status: TargetStatus;
  /** Whether the run was cancelled. */
  aborted: boolean;
  /** Bytes stored by all targets. */
  bytes: number;
  /** Start (UTC ISO). */
  startedAt: string;
  /** End (UTC ISO). */
  finishedAt: string;
}

/** Target identity in progress events. */
export interface ProgressTarget {
  /** Index in the `acquire()` input. */
  index: number;
  /** Namespace. */
  namespace: string;
  /** Pod. */
  pod: string;
  /** Container. */
  container: string;
}

/** Typed progress events emitted as `collector.on('progress', e => …)`. */
export type ProgressEvent =
  | { type: 'target-started'; target: ProgressTarget }
  | { type: 'target-finished'; target: ProgressTarget; status: TargetStatus; reasons: string[] }
  | { type: 'artifact-started'; target: ProgressTarget; path: string }
  | {
      type: 'artifact-finished';
      target: ProgressTarget;
      path: string;
      status: ArtifactRecord['status'];
      bytes: number;
    }
  | { type: 'bytes'; target: ProgressTarget; targetBytes: number; runBytes: number };

/** Re-exported for convenience of profile authors. */
export type { ProfileSpec };
