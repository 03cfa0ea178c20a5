/**
 * Public option and input types of {@link FakeCluster}. Kept apart from the implementation so
 * other code can be written against them.
 *
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../../util/index.js';
import type { ContainerRuntime, RuntimeContainer } from '../runtime.js';

/** A JSON object as the fake API server serves it (pods, nodes, events, Status…). */
export type KubeJsonObject = { [key: string]: unknown };

/**
 * One RBAC rule. A request is allowed when any rule of the user (or of one of its groups) matches.
 *
 * - `verbs`: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, or `*`.
 * - `resources`: `pods`, `pods/exec`, `pods/log`, `pods/ephemeralcontainers`, `nodes`, `events`,
 *   `selfsubjectaccessreviews`, … As in RBAC, `*` matches every resource and subresource, a
 *   star followed by `/exec` matches that subresource of any resource, and `pods` alone does
 *   not cover `pods/exec`.
 * - `namespaces`: omit for cluster-wide (ClusterRoleBinding); list names for RoleBindings.
 * - `apiGroups`: omit to match any group.
 * - `resourceNames`: omit to match any object name.
 */
export interface FakeRbacRule {
  /** Verbs allowed (`*` = any). */
  verbs: readonly string[];
  /** Resources, with subresources as `pods/exec` (`*` = any). */
  resources: readonly string[];
  /** Namespaces the rule applies to; omitted = every namespace and cluster-scoped objects. */
  namespaces?: readonly string[] | undefined;
  /** API groups (`''` = core); omitted = any group. */
  apiGroups?: readonly string[] | undefined;
  /** Object names the rule is limited to; omitted = any. */
  resourceNames?: readonly string[] | undefined;
}

/** A user that authenticates with a static bearer token. */
export interface FakeUserSpec {
  /** Username (as shown by `kubectl auth whoami` and in 403 messages). */
  name: string;
  /** Bearer token; generated when omitted (read it back with `cluster.tokenFor(name)`). */
  token?: string | undefined;
  /** Groups; `system:authenticated` is always added. */
  groups?: readonly string[] | undefined;
  /** User UID reported by SelfSubjectReview. */
  uid?: string | undefined;
  /** RBAC rules granted to this user directly. */
  rules?: readonly FakeRbacRule[] | undefined;
}

/** An IAM principal that may authenticate with an EKS (`k8s-aws-v1.`) token. */
export interface FakeEksPrincipal {
  /** Access key id found in the token's `X-Amz-Credential`. */
  accessKeyId: string;
  /** IAM ARN of the principal (reported in `extra.arn`). */
  arn: string;
  /** Kubernetes username it maps to (aws-auth / access entry). */
  username: string;
  /** Kubernetes groups it maps to. */
  groups?: readonly string[] | undefined;
  /** RBAC rules; when omitted the rules of the `users` entry with the same name apply. */
  rules?: readonly FakeRbacRule[] | undefined;
}

/** EKS token authentication (structural aws-iam-authenticator checks, no STS call). */
export interface FakeEksOptions {
  /**
   * Cluster name. Informational: the real check of `x-k8s-aws-id` happens inside STS's signature
   * verification, which an offline fake cannot repeat.
   */
  clusterName: string;
  /** Principals that may authenticate, keyed by access key id. Unmapped keys get 401. */
  principals: readonly FakeEksPrincipal[];
  /** AWS partition of the verifier (`aws`, `aws-cn`, `aws-us-gov`, …). Default `aws`. */
  partition?: string | undefined;
  /** Region of the verifier (its own STS host is always accepted). Default `us-east-1`. */
  region?: string | undefined;
}

/** What runs a PATCHed ephemeral container: a runtime name and that runtime's options. */
export interface FakeEphemeralRuntimeChoice {
  /** Runtime name (`scripted`, `host`, `sandbox`, or a key of `options.runtimes`). */
  runtime: string;
  /** Options for that runtime. */
  options?: unknown;
  /**
   * Never start the container: it stays `waiting` with this reason (e.g. `ErrImagePull`,
   * `ImagePullBackOff`) — to test image-pull failures.
   */
  waitingReason?: string | undefined;
}

/** Context passed to {@link FakeClusterOptions.ephemeralContainerRuntime}. */
export interface FakeEphemeralRuntimeContext {
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Ephemeral container name. */
  container: string;
  /** `targetContainerName`, when given. */
  targetContainerName?: string | undefined;
  /** Runtime of the target container, when there is one. */
  targetRuntime?: string | undefined;
  /** The ephemeral container spec as PATCHed (JSON). */
  spec: KubeJsonObject;
}

/** Options of {@link FakeCluster.start}. Every field is optional. */
export interface FakeClusterOptions {
  /** Static-token users. An `admin` user in `system:masters` always exists (see `adminToken`). */
  users?: readonly FakeUserSpec[] | undefined;
  /** RBAC rules granted to groups (`system:masters` always gets everything). */
  groupRules?: Readonly<Record<string, readonly FakeRbacRule[]>> | undefined;
  /** Accept EKS tokens. */
  eks?: FakeEksOptions | undefined;
  /** Extra runtimes by name (`scripted` and `host` are built in), e.g. `{ sandbox: await createSandboxRuntime() }`. Closed by `close()`. */
  runtimes?: Readonly<Record<string, ContainerRuntime>> | undefined;
  /**
   * Chooses the runtime of a PATCHed ephemeral container from its image. Default: the target
   * container's runtime and options (or `scripted` without handlers when there is no target).
   */
  ephemeralContainerRuntime?:
    | ((image: string, context: FakeEphemeralRuntimeContext) => FakeEphemeralRuntimeChoice)
    | undefined;
  /** Largest `limit` honoured on list calls (larger limits are capped). Default 500. */
  maxPageSize?: number | undefined;
  /** Lifetime of continue tokens; older tokens get 410 Expired. Default 5 minutes. */
  continueTokenTtlMs?: number | undefined;
  /** Emulate Kubernetes 1.35: WebSocket exec needs `create` as well as `get` on `pods/exec`. Default false. */
  execRequiresCreate?: boolean | undefined;
  /** Extra DNS name in the server certificate (for `tlsServerName` tests). */
  tlsServerName?: string | undefined;
  /** Version served at `/version`. Default `v1.33.0` (`gitVersion` like `v1.33.0-eks-fake`). */
  version?: { major: string; minor: string; gitVersion?: string | undefined } | undefined;
  /** Clock used for EKS token expiry, timestamps and continue-token expiry. Default `Date.now`. */
  clock?: (() => number) | undefined;
  /** Cluster name used in kubeconfig contexts. Default `fake`. */
  name?: string | undefined;
  /** Logger for server diagnostics. Default silent. */
  logger?: Logger | undefined;
  /** Bytes of pod log (and of other request bodies) the server accepts in a PATCH/POST. Default 1 MiB. */
  maxRequestBodyBytes?: number | undefined;
}

/** One log line with its own timestamp (for `timestamps`, `sinceSeconds`, `sinceTime`). */
export interface FakeLogLine {
  /** When the line was written. */
  time: Date | string | number;
  /** Line text, without the trailing newline. */
  text: string;
}

/** Log content: text/bytes (all lines stamped with the container start time) or stamped lines. */
export type FakeLogContent = string | Uint8Array | readonly FakeLogLine[];

/** A container of a pod passed to {@link FakeCluster.addPod}. */
export interface FakeContainerSpec {
  /** Container name. */
  name: string;
  /** Image reference. */
  image: string;
  /** Image digest reference for `status.imageID`; derived from the image when omitted. */
  imageID?: string | undefined;
  /** Runtime name: `scripted` (default), `host`, `sandbox` or a key of `options.runtimes`. */
  runtime?: string | undefined;
  /**
   * Runtime-specific options: {@link ScriptedRuntimeOptions} for `scripted`,
   * {@link HostRuntimeOptions} for `host`, the sandbox runtime's own options for `sandbox`.
   */
  options?: ScriptedRuntimeOptions | HostRuntimeOptions | object | undefined;
  /** Entrypoint argv (`spec.containers[].command`); a runtime may start it as the main process. */
  command?: readonly string[] | undefined;
  /** `spec.containers[].args`. */
  args?: readonly string[] | undefined;
  /** Environment. */
  env?: Readonly<Record<string, string>> | undefined;
  /** Working directory. */
  workingDir?: string | undefined;
  /** Container state. `running` (default) starts it; `waiting` and `terminated` do not. */
  state?: 'running' | 'waiting' | 'terminated' | undefined;
  /** Waiting reason (default `ContainerCreating`) or terminated reason (default `Completed`/`Error`). */
  reason?: string | undefined;
  /** Exit code for `terminated`. Default 0. */
  exitCode?: number | undefined;
  /** Restart count. Default 0 (1 when `logs.previous` is given). */
  restartCount?: number | undefined;
  /** Logs served by `pods/log` (`previous` = the last terminated instance). */
  logs?: { current?: FakeLogContent | undefined; previous?: FakeLogContent | undefined } | undefined;
  /** Extra JSON merged into the container spec entry (securityContext, ports…). */
  extraSpec?: KubeJsonObject | undefined;
}

/** A pod passed to {@link FakeCluster.addPod}. */
export interface FakePodSpec {
  /** Namespace. Default `default`. */
  namespace?: string | undefined;
  /** Pod name. */
  name: string;
  /** UID; generated when omitted. */
  uid?: string | undefined;
  /** Node name; default the first node added (a `fake-node-1` node is created when none exist). `null` = unscheduled. */
  nodeName?: string | null | undefined;
  /** Labels. */
  labels?: Readonly<Record<string, string>> | undefined;
  /** Annotations. */
  annotations?: Readonly<Record<string, string>> | undefined;
  /** Owner references (JSON as in the API). */
  ownerReferences?: readonly KubeJsonObject[] | undefined;
  /** Service account. Default `default`. */
  serviceAccountName?: string | undefined;
  /** Regular containers. */
  containers: readonly FakeContainerSpec[];
  /** Init containers (default state `terminated` with exit code 0). */
  initContainers?: readonly FakeContainerSpec[] | undefined;
  /** Phase. Default `Running` (`Pending` when a container is waiting). */
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown' | undefined;
  /** `spec.shareProcessNamespace`. */
  shareProcessNamespace?: boolean | undefined;
  /** `spec.hostNetwork`. */
  hostNetwork?: boolean | undefined;
  /** Pod IP. Default `10.0.x.y`. */
  podIP?: string | undefined;
}

/** A node passed to {@link FakeCluster.addNode}. */
export interface FakeNodeSpec {
  /** Node name. */
  name: string;
  /** `spec.providerID`, e.g. `aws:///us-east-1a/i-0123456789abcdef0`. */
  providerID?: string | undefined;
  /** Labels. */
  labels?: Readonly<Record<string, string>> | undefined;
  /** Annotations. */
  annotations?: Readonly<Record<string, string>> | undefined;
  /** Internal IP. */
  internalIP?: string | undefined;
  /** Kubelet version. Default the served version. */
  kubeletVersion?: string | undefined;
  /** Container runtime version. Default `containerd://1.7.27`. */
  containerRuntimeVersion?: string | undefined;
}

/** An event passed to {@link FakeCluster.addEvent}. */
export interface FakeEventSpec {
  /** Namespace. Default the involved object's namespace, or `default`. */
  namespace?: string | undefined;
  /** Event name; generated when omitted. */
  name?: string | undefined;
  /** Involved object (for pods, `{ kind: 'Pod', namespace, name, uid }`). */
  involvedObject: { kind: string; namespace?: string; name: string; uid?: string; fieldPath?: string };
  /** `Normal` or `Warning`. Default `Normal`. */
  type?: string | undefined;
  /** Reason, e.g. `Pulled`. */
  reason: string;
  /** Message. */
  message: string;
  /** Times (default now). */
  firstTimestamp?: Date | string | undefined;
  /** Last time seen (default `firstTimestamp`). */
  lastTimestamp?: Date | string | undefined;
  /** Count. Default 1. */
  count?: number | undefined;
  /** Reporting component. Default `kubelet`. */
  source?: { component?: string; host?: string } | undefined;
}

/** Options of {@link FakeCluster.kubeconfig}. */
export interface FakeKubeconfigOptions {
  /** User whose token goes in (default `admin`). */
  user?: string | undefined;
  /** Explicit token (overrides `user`'s). */
  token?: string | undefined;
  /** Default namespace of the context. */
  namespace?: string | undefined;
  /** `tls-server-name` to write (the certificate carries `options.tlsServerName`). */
  tlsServerName?: string | undefined;
  /** Server URL override (e.g. through a proxy). */
  server?: string | undefined;
}

/** Record of one request the fake API server answered (for assertions in tests). */
export interface FakeRequestRecord {
  /** HTTP method. */
  method: string;
  /** Path and query. */
  url: string;
  /** Authenticated username, if any. */
  user?: string | undefined;
  /** HTTP status answered (101 for upgrades). */
  status: number;
  /** `Accept` header. */
  accept?: string | undefined;
}

/** I/O given to a scripted command handler. */
export interface ScriptedIo {
  /** Client stdin (ends on v5 CLOSE); an empty, ended stream when stdin was not requested. */
  stdin: Readable;
  /** Writes to stdout (respect the return value of `write` / use `pipeline` for backpressure). */
  stdout: Writable;
  /** Writes to stderr (merged into stdout with `tty`). */
  stderr: Writable;
  /** Container environment. */
  env: Readonly<Record<string, string>>;
  /** Whether a TTY was requested. */
  tty: boolean;
  /** Aborted when the exec is killed or the cluster closes. */
  signal: AbortSignal;
  /** Pod and container this command runs in. */
  container: { namespace: string; pod: string; name: string };
}

/**
 * A scripted command: gets argv and I/O, resolves to the exit code. Return `null` to report
 * "executable file not found" (as a missing binary would). Throwing reports the exec as failed
 * (an `InternalError` status carrying the message), which makes handler bugs visible.
 */
export type ScriptedHandler = (
  argv: readonly string[],
  io: ScriptedIo,
) => Promise<number | null> | number | null;

/** Options of a `scripted` container. */
export interface ScriptedRuntimeOptions {
  /** Handlers by command name (argv[0], also matched by its basename). */
  commands?: Readonly<Record<string, ScriptedHandler>> | undefined;
  /** Fallback for commands not in `commands`; default: command not found. */
  handler?: ScriptedHandler | undefined;
  /** When false the container reports not running (exec → InternalError). Default true. */
  running?: boolean | undefined;
}

/** Options of a `host` container: exec runs argv on the host with no isolation. */
export interface HostRuntimeOptions {
  /** Working directory of exec'd processes (overridden by the container's `workingDir`). */
  cwd?: string | undefined;
  /** Extra environment (on top of the host's `PATH`/`HOME` and the container's `env`). */
  env?: Readonly<Record<string, string>> | undefined;
  /** Inherit the whole host environment. Default false (only `PATH`, `HOME`, `LANG`). */
  inheritEnv?: boolean | undefined;
}

/**
 * The shape of {@link FakeCluster} (implemented in `fake-cluster.ts`). Start one with
 * `await FakeCluster.start(options)`; always `await cluster.close()`.
 */
export interface FakeClusterApi {
  /** `https://127.0.0.1:<port>`. */
  readonly server: string;
  /** CA certificate (PEM) that signed the server certificate. */
  readonly caData: string;
  /** The admin user's token (`system:masters`). */
  readonly adminToken: string;
  /** Requests answered so far (bounded to the last 10,000). */
  readonly requests: readonly FakeRequestRecord[];
  /** Static token of a user from `options.users` (or `admin`). Throws `ConfigError` for unknown users. */
  tokenFor(user: string): string;
  /** A kubeconfig (YAML) real kubectl accepts. */
  kubeconfig(options?: FakeKubeconfigOptions): string;
  /** Adds a node; returns its JSON. */
  addNode(spec: FakeNodeSpec): KubeJsonObject;
  /** The runtime's handle of a started container, or `undefined` (not started / no such container). */
  runtimeContainer(namespace: string, pod: string, container: string): RuntimeContainer | undefined;
  /** Adds a pod and starts its running containers; returns the pod JSON. */
  addPod(spec: FakePodSpec): Promise<KubeJsonObject>;
  /** Current pod JSON, or `undefined`. */
  getPod(namespace: string, name: string): KubeJsonObject | undefined;
  /** Removes a pod and stops its containers. */
  removePod(namespace: string, name: string): Promise<void>;
  /** Stops a container (state becomes terminated; exec then fails like the real API). */
  stopContainer(
    namespace: string,
    pod: string,
    container: string,
    options?: { exitCode?: number; reason?: string },
  ): Promise<void>;
  /** Appends to a container's current log. */
  appendLog(namespace: string, pod: string, container: string, content: FakeLogContent): void;
  /** Adds an event; returns its JSON. */
  addEvent(spec: FakeEventSpec): KubeJsonObject;
  /** Stops servers, sessions, runtimes and processes. Idempotent. */
  close(): Promise<void>;
}
