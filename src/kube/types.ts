/**
 * Public option and result types of KubeClient.
 */
import type { Agent } from 'node:https';
import type { Readable, Writable } from 'node:stream';
import type { KubeStatus } from '../errors.js';
import type { Logger } from '../util/index.js';
import type { ExecProtocol } from './exec/codec.js';

/**
 * Returns a bearer token. Called before requests; called again with `{ forceRefresh: true }` once
 * after a 401 so an expired token can be replaced. Implementations should cache.
 */
export type TokenProvider = (opts?: { forceRefresh?: boolean }) => Promise<string>;

/** How to reach and authenticate to one API server. */
export interface KubeClientOptions {
  /** API server URL, e.g. `https://ABC.gr7.eu-west-1.eks.amazonaws.com` (`http://` only for tests). */
  server: string;
  /** Cluster CA: PEM text, or base64 of PEM as EKS `certificateAuthority.data` gives it. */
  caData?: string | undefined;
  /** A static bearer token or a provider (re-asked once on 401). */
  token: string | TokenProvider;
  /**
   * Name to send as TLS SNI and to check the server certificate against, when `server` is a
   * tunnel or proxy address (e.g. `https://127.0.0.1:8443`) rather than the cluster's own name.
   */
  tlsServerName?: string | undefined;
  /** Custom HTTPS agent (proxy, tunnel). TLS options (CA, SNI) are still applied per request. */
  agent?: Agent | undefined;
  /** Timeout of one REST request until its body is read (default 30 000 ms); idle timeout for log streams. */
  timeoutMs?: number | undefined;
  /** Cancels every call made by this client. */
  signal?: AbortSignal | undefined;
  /** Logger (silent by default). Tokens are never logged. */
  logger?: Logger | undefined;
  /**
   * Retries of idempotent calls (GET, and the read-only review POSTs) on 429/5xx/connection reset:
   * `attempts` in total (default 4), exponential backoff from `baseDelayMs` (default 250) with
   * jitter, each wait (including a server's `Retry-After`) capped at `maxDelayMs` (default 10 000).
   * The ephemeral-container PATCH and exec are never retried (a 401 is re-tried once with a
   * refreshed token for every call).
   */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number } | undefined;
  /** Largest JSON response body accepted (default 64 MiB). */
  maxResponseBytes?: number | undefined;
}

/** Options common to every call. */
export interface CallOptions {
  /** Cancels this call. */
  signal?: AbortSignal | undefined;
}

/** Options of {@link eks-forensics!KubeClient.listPods}. */
export interface ListPodsOptions extends CallOptions {
  /** Namespace; omit to list all namespaces. */
  namespace?: string | undefined;
  /** Label selector, e.g. `app=web`. */
  labelSelector?: string | undefined;
  /** Field selector, e.g. `spec.nodeName=ip-10-0-0-1`. */
  fieldSelector?: string | undefined;
  /** Page size (default 500). */
  limit?: number | undefined;
}

/** Options of {@link eks-forensics!KubeClient.podLogs}. */
export interface PodLogsOptions extends CallOptions {
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Container name. */
  container: string;
  /** Logs of the previous (terminated) instance of the container. */
  previous?: boolean | undefined;
  /** Prefix each line with an RFC3339 timestamp. */
  timestamps?: boolean | undefined;
  /** Only lines newer than this many seconds. */
  sinceSeconds?: number | undefined;
  /** Only lines after this time (Date or RFC3339 string). */
  sinceTime?: Date | string | undefined;
  /** Server-side cap on bytes returned (approximate, per the API). */
  limitBytes?: number | undefined;
}

/** Options of {@link eks-forensics!KubeClient.podEvents}: the pod's UID (preferred) and/or name. */
export interface PodEventsOptions extends CallOptions {
  /** Namespace of the pod. */
  namespace: string;
  /** Pod UID (`involvedObject.uid`). */
  uid?: string | undefined;
  /** Pod name (`involvedObject.name`). */
  name?: string | undefined;
  /** Most events returned (default 10 000); more gives LimitExceededError. */
  maxEvents?: number | undefined;
}

/** A SelfSubjectAccessReview question. */
export interface CanIOptions extends CallOptions {
  /** Verb, e.g. `get`, `create`, `patch`. */
  verb: string;
  /** Resource, e.g. `pods`. */
  resource: string;
  /** Subresource, e.g. `exec`, `log`, `ephemeralcontainers`. */
  subresource?: string | undefined;
  /** Namespace (omit for cluster-wide). */
  namespace?: string | undefined;
  /** Object name. */
  name?: string | undefined;
  /** API group (`""` = core, the default). */
  group?: string | undefined;
}

/** The answer to {@link eks-forensics!KubeClient.canI}. */
export interface CanIResult {
  /** Whether the request would be allowed. */
  allowed: boolean;
  /** The authorizer's reason, when it gave one. */
  reason?: string | undefined;
}

/** An ephemeral container to add with {@link eks-forensics!KubeClient.patchEphemeralContainers}. */
export interface EphemeralContainerSpec {
  /** Unique name within the pod. */
  name: string;
  /** Image to run. */
  image: string;
  /** Entrypoint. */
  command?: string[] | undefined;
  /** Arguments. */
  args?: string[] | undefined;
  /** Environment variables. */
  env?: Array<{ name: string; value: string }> | undefined;
  /** Container whose namespaces (PID, IPC…) to join. */
  targetContainerName?: string | undefined;
  /** Keep stdin open. */
  stdin?: boolean | undefined;
  /** Allocate a TTY. */
  tty?: boolean | undefined;
  /** `Always` | `IfNotPresent` | `Never`. */
  imagePullPolicy?: string | undefined;
  /** Security context, e.g. `{ capabilities: { add: ['SYS_PTRACE'] } }`. */
  securityContext?: Record<string, unknown> | undefined;
  /** Defaults to `File`, as kubectl sends. */
  terminationMessagePolicy?: string | undefined;
}

/** Options of {@link eks-forensics!KubeClient.exec}. */
export interface ExecOptions extends CallOptions {
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Container name (may be omitted for a one-container pod). */
  container?: string | undefined;
  /** argv, run directly (no shell). */
  command: string[];
  /** Open stdin (`session.stdin` is a Writable then). Default false. */
  stdin?: boolean | undefined;
  /** Allocate a TTY (stderr is merged into stdout). Default false. */
  tty?: boolean | undefined;
  /** Receive stdout. Default true. */
  stdout?: boolean | undefined;
  /** Receive stderr. Default true (forced false with `tty`). */
  stderr?: boolean | undefined;
  /** Whole-session timeout from the call until the result; rejects with TimeoutError. */
  timeoutMs?: number | undefined;
  /** Subprotocols to offer, in order (default `v5.channel.k8s.io`, `v4.channel.k8s.io`). */
  protocols?: readonly ExecProtocol[] | undefined;
  /** Ping interval (default 5000 ms). */
  pingIntervalMs?: number | undefined;
  /** Give up when nothing (pong or data) arrives for this long while reading (default 60 000 ms). */
  pongTimeoutMs?: number | undefined;
}

/** How an exec ended. */
export interface ExecResult {
  /** Process exit code (0..255). */
  exitCode: number;
  /** The Status from the status channel. */
  status: KubeStatus;
  /** Negotiated subprotocol. */
  protocol: ExecProtocol;
  /** Bytes received on stdout. */
  stdoutBytes: number;
  /** Bytes received on stderr. */
  stderrBytes: number;
}

/**
 * A running exec. Read `stdout` and `stderr` (both, or request only one: an unread stream that
 * fills its buffer pauses the socket, so the other stalls too). Await `result`.
 *
 * On an abnormal end (no status, abort, timeout, protocol error) `stdout`/`stderr` are destroyed
 * with the same error `result` rejects with, so a `pipeline()` from them fails instead of looking
 * complete; on a normal end they end cleanly. Destroying `stdout` or `stderr` discards the rest of
 * that stream (its bytes are still counted) and the session goes on to its status.
 */
export interface ExecSession {
  /**
   * Standard output (empty and ended when not requested). Chunks are yours and never rewritten,
   * but each is a view of a read slab of up to 256 KiB that it keeps alive: copy small pieces
   * you hold for long (`Buffer.from(piece)`).
   */
  readonly stdout: Readable;
  /** Standard error (empty and ended when not requested or with tty). */
  readonly stderr: Readable;
  /**
   * Standard input when requested, else null. With v5 `end()` sends CLOSE `[255,0]` (EOF to the
   * process). With v4 there is no half-close: `end()` fails with ExecProtocolError and the session
   * continues (stdin stays open on the server; abort the session or let the command finish).
   */
  readonly stdin: Writable | null;
  /** Negotiated subprotocol. */
  readonly protocol: ExecProtocol;
  /** Whether `stdin.end()` can deliver EOF (true on v5). */
  readonly canCloseStdin: boolean;
  /**
   * Settles when the status arrives (or the socket breaks). Rejects with ExecFailedError,
   * ExecIncompleteError, ExecProtocolError, AbortedError or TimeoutError. Never rejects unobserved.
   */
  readonly result: Promise<ExecResult>;
  /** Closes the socket now; `result` rejects with AbortedError (or `reason` when it is an AbortedError). */
  abort(reason?: unknown): void;
}
