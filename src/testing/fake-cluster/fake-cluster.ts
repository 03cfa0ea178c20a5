/**
 * FakeCluster: a kube-apiserver stand-in on 127.0.0.1 over HTTPS, with real exec over WebSocket
 * and pluggable container runtimes.
 *
 * The class is the public face and owns the lifecycle; the work is done in rooms:
 * `server.ts` (listening), `state.ts` (objects), `router.ts` (REST routes: `discovery.ts`,
 * `reviews.ts`, `core.ts` → `pods.ts`, `nodes.ts`, `namespaces.ts`, `events.ts`), `selectors.ts`
 * and `paging.ts` (lists), `ephemeral-patch.ts`, `exec-upgrade.ts` → `exec.ts` (the exec wire).
 *
 * @module
 */
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { stringify as yamlStringify } from 'yaml';
import type { RuntimeContainer } from '../runtime.js';
import type { ClusterContext } from './context.js';
import { serveUpgrade } from './exec-upgrade.js';
import { Pager } from './paging.js';
import { generatePki } from './pki.js';
import { Authenticator } from './rbac.js';
import { serveRequest } from './router.js';
import { closeOnExit, forgetOnExit, listen } from './server.js';
import { ClusterState } from './state.js';
import type {
  FakeClusterApi,
  FakeClusterOptions,
  FakeEventSpec,
  FakeKubeconfigOptions,
  FakeLogContent,
  FakeNodeSpec,
  FakePodSpec,
  FakeRequestRecord,
  KubeJsonObject,
} from './types.js';

/**
 * A kube-apiserver stand-in for tests: HTTPS on 127.0.0.1 with its own CA, static-token and EKS
 * token authentication, RBAC rules, pods/nodes/events/logs, SelfSubject reviews, ephemeral
 * containers and exec over WebSocket (v5 and the legacy v4/v1 path) exactly as the real server
 * frames it. Containers run on pluggable runtimes (`scripted`, `host`, or your own).
 *
 * Not served: `watch` (405), SPDY exec (400 with a clear message; kubectl ≥ 1.30 uses WebSocket),
 * attach and port-forward, writes other than ephemeral containers. `follow=true` logs return the
 * current content and end. A client that disconnects mid-exec gets its process killed.
 *
 * @example
 * const cluster = await FakeCluster.start();
 * await cluster.addPod({ name: 'web', containers: [{ name: 'app', image: 'busybox', runtime: 'host' }] });
 * writeFileSync(kubeconfigPath, cluster.kubeconfig());
 * // … kubectl --kubeconfig kubeconfigPath exec web -- echo hi
 * await cluster.close();
 */
export class FakeCluster implements FakeClusterApi {
  /** `https://127.0.0.1:<port>`. */
  readonly server: string;
  /** CA certificate (PEM). */
  readonly caData: string;
  /** Admin token (`system:masters`). */
  readonly adminToken: string;
  private readonly requestLog: FakeRequestRecord[] = [];
  private readonly state: ClusterState;
  private readonly context: ClusterContext;
  private readonly sockets = new Set<Socket | Duplex>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly options: FakeClusterOptions,
    private readonly httpServer: Server,
    private readonly wss: WebSocketServer,
    private readonly auth: Authenticator,
    port: number,
    caPem: string,
  ) {
    this.server = `https://127.0.0.1:${port}`;
    this.caData = caPem;
    this.adminToken = auth.adminToken;
    this.state = new ClusterState(options);
    const state = this.state;
    const pager = new Pager({
      maxPageSize: options.maxPageSize,
      continueTokenTtlMs: options.continueTokenTtlMs,
      clock: state.clock,
      resourceVersion: () => state.resourceVersion,
    });
    this.context = { state, auth, options, pager, server: this.server };
  }

  /**
   * Starts a FakeCluster. Throws `ConfigError` for inconsistent options (duplicate users,
   * reserved names).
   */
  static async start(options: FakeClusterOptions = {}): Promise<FakeCluster> {
    const clock = options.clock ?? Date.now;
    const auth = new Authenticator(options, clock);
    const pki = await generatePki(options.tlsServerName ? [options.tlsServerName] : []);
    const { httpServer, wss, port } = await listen(pki);
    const cluster = new FakeCluster(options, httpServer, wss, auth, port, pki.caCert);
    const record = (rec: FakeRequestRecord): void => cluster.record(rec);
    httpServer.on('request', (req, res) => serveRequest(cluster.context, req, res, record));
    httpServer.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      cluster.sockets.add(socket);
      socket.once('close', () => cluster.sockets.delete(socket));
      socket.on('error', () => {});
      serveUpgrade(cluster.context, wss, req, socket, head, record);
    });
    httpServer.on('secureConnection', (s: Socket) => {
      cluster.sockets.add(s);
      s.once('close', () => cluster.sockets.delete(s));
    });
    httpServer.on('tlsClientError', () => {});
    closeOnExit(cluster);
    return cluster;
  }

  private record(rec: FakeRequestRecord): void {
    this.requestLog.push(rec);
    if (this.requestLog.length > 10_000) this.requestLog.splice(0, this.requestLog.length - 10_000);
  }

  /** Requests answered so far (the last 10,000). */
  get requests(): readonly FakeRequestRecord[] {
    return this.requestLog;
  }

  /** Token of a static user (or `admin`). Throws `ConfigError` for unknown users. */
  tokenFor(user: string): string {
    return this.auth.tokenFor(user);
  }

  /** A kubeconfig (YAML) that real kubectl accepts. */
  kubeconfig(options: FakeKubeconfigOptions = {}): string {
    const name = this.options.name ?? 'fake';
    const user = options.user ?? 'admin';
    const token = options.token ?? this.tokenFor(user);
    const cluster: Record<string, string> = {
      server: options.server ?? this.server,
      'certificate-authority-data': Buffer.from(this.caData).toString('base64'),
    };
    if (options.tlsServerName) cluster['tls-server-name'] = options.tlsServerName;
    const context: Record<string, string> = { cluster: name, user };
    if (options.namespace) context.namespace = options.namespace;
    return yamlStringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name, context }],
      'current-context': name,
      preferences: {},
    });
  }

  /**
   * Adds a stored object (ServiceAccount, Role, ClusterRole, RoleBinding, ClusterRoleBinding,
   * ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob, NetworkPolicy), served by get and
   * list; returns it as served.
   */
  addObject(obj: KubeJsonObject): KubeJsonObject {
    return this.state.stored.add(obj, this.state.bump(), this.state.clock());
  }

  /** Removes a stored object added with {@link FakeCluster.addObject}; true when it existed. */
  removeObject(kind: string, namespace: string | undefined, name: string): boolean {
    return this.state.stored.remove(kind, namespace, name);
  }

  /** Adds a node; returns its JSON. */
  addNode(spec: FakeNodeSpec): KubeJsonObject {
    return this.state.addNode(spec);
  }

  /** Adds a pod and starts its running containers; returns the pod JSON. Throws `ConfigError` on bad specs. */
  addPod(spec: FakePodSpec): Promise<KubeJsonObject> {
    return this.state.addPod(spec);
  }

  /** The runtime's handle of a started container (e.g. to reach a sandbox's main process), or `undefined`. */
  runtimeContainer(namespace: string, pod: string, container: string): RuntimeContainer | undefined {
    return this.state.runtimeContainer(namespace, pod, container);
  }

  /** Current pod JSON, or `undefined`. */
  getPod(namespace: string, name: string): KubeJsonObject | undefined {
    return this.state.getPod(namespace, name);
  }

  /** Removes a pod and stops its containers. */
  removePod(namespace: string, name: string): Promise<void> {
    return this.state.removePod(namespace, name);
  }

  /** Stops a container: it becomes terminated, and exec into it fails like the real API. */
  stopContainer(
    namespace: string,
    pod: string,
    container: string,
    options: { exitCode?: number; reason?: string } = {},
  ): Promise<void> {
    return this.state.stopContainer(namespace, pod, container, options);
  }

  /** Appends to a container's current log. */
  appendLog(namespace: string, pod: string, container: string, content: FakeLogContent): void {
    this.state.appendLog(namespace, pod, container, content);
  }

  /** Adds an event; returns its JSON. */
  addEvent(spec: FakeEventSpec): KubeJsonObject {
    return this.state.addEvent(spec);
  }

  /** Stops servers, sessions, containers and runtimes. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    forgetOnExit(this);
    this.closing = (async () => {
      for (const ws of this.wss.clients) ws.terminate();
      const serverClosed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
      this.httpServer.closeAllConnections();
      for (const s of this.sockets) s.destroy();
      this.wss.close();
      await this.state.close();
      await serverClosed;
    })();
    return this.closing;
  }
}
