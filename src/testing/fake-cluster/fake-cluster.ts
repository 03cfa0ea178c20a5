/**
 * FakeCluster: a kube-apiserver stand-in on 127.0.0.1 over HTTPS, with real exec over WebSocket
 * and pluggable container runtimes.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_CIPHERS } from 'node:tls';
import { WebSocketServer } from 'ws';
import { stringify as yamlStringify } from 'yaml';
import { ConfigError } from '../../errors.js';
import { type Logger, silentLogger } from '../../util/index.js';
import type { ContainerRuntime, RuntimeContainer } from '../runtime.js';
import { chooseProtocol, ExecSession, MAX_FRAME_BYTES, V5 } from './exec.js';
import {
  type ContainerEntry,
  containerSpecJson,
  imageIdFor,
  type LogLine,
  logTimestamp,
  type NodeEntry,
  nodeJson,
  type PodEntry,
  podJson,
  podTable,
  rfc3339,
  toLogLines,
} from './objects.js';
import { generatePki } from './pki.js';
import { decodeAccessReviewSpec, PROTOBUF_CONTENT_TYPE } from './protobuf.js';
import {
  Authenticator,
  type AuthUser,
  forbiddenStatus,
  type RequestAttributes,
  unauthorizedStatus,
} from './rbac.js';
import { randomContainerId } from './runtimes/common.js';
import { createHostRuntime } from './runtimes/host.js';
import { createScriptedRuntime } from './runtimes/scripted.js';
import type {
  FakeClusterApi,
  FakeClusterOptions,
  FakeContainerSpec,
  FakeEventSpec,
  FakeKubeconfigOptions,
  FakeLogContent,
  FakeNodeSpec,
  FakePodSpec,
  FakeRequestRecord,
  KubeJsonObject,
} from './types.js';

/** TLS 1.3 suites in Go's server preference (AES hardware), then Node's TLS 1.2 list. */
const GO_TLS13_ORDER = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  ...DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_')),
].join(':');

const EXPIRED_MESSAGE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

const POD_FIELDS = new Set([
  'metadata.name',
  'metadata.namespace',
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.schedulerName',
  'spec.serviceAccountName',
  'spec.hostNetwork',
  'status.phase',
  'status.podIP',
  'status.nominatedNodeName',
]);
const EVENT_FIELDS = new Set([
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
  'metadata.name',
  'metadata.namespace',
]);
const NODE_FIELDS = new Set(['metadata.name', 'spec.unschedulable']);

/** An HTTP answer with a Status body (thrown inside handlers). */
class HttpStatus extends Error {
  constructor(
    readonly code: number,
    readonly body: KubeJsonObject,
  ) {
    super(typeof body.message === 'string' ? body.message : `HTTP ${code}`);
  }
}

function status(code: number, reason: string, message: string, details?: KubeJsonObject): HttpStatus {
  const body: KubeJsonObject = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
  };
  if (details) body.details = details;
  body.code = code;
  return new HttpStatus(code, body);
}

const badRequest = (message: string): HttpStatus => status(400, 'BadRequest', message);
const notFound = (resource: string, name: string): HttpStatus =>
  status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });

function invalid(kind: string, name: string, field: string, reason: string, detail: string): HttpStatus {
  return status(422, 'Invalid', `${kind} "${name}" is invalid: ${field}: ${detail}`, {
    name,
    kind,
    causes: [{ reason, message: detail, field }],
  });
}

/** Go's `Convert_Slice_string_To_bool`: absent → false, `0`/`false` → false, anything else → true. */
function queryBool(q: URLSearchParams, key: string): boolean {
  const v = q.get(key);
  if (v === null) return false;
  return !(v === '0' || v.toLowerCase() === 'false');
}

function queryInt(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw badRequest(`invalid ${key} parameter: ${JSON.stringify(v)}`);
  return Number(v);
}

type Requirement = {
  key: string;
  op: 'eq' | 'ne' | 'in' | 'notin' | 'exists' | 'notexists';
  values: string[];
};

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p.length > 0);
}

function parseLabelSelector(sel: string | null): Requirement[] {
  if (!sel) return [];
  return splitTopLevel(sel).map((part): Requirement => {
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) {
      const values = (m[3] ?? '').split(',').map((v) => v.trim());
      return { key: m[1] ?? '', op: m[2] === 'in' ? 'in' : 'notin', values };
    }
    m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(part);
    if (m) return { key: m[1] ?? '', op: m[2] === '!=' ? 'ne' : 'eq', values: [m[3] ?? ''] };
    m = /^(!?)([^\s!=()]+)$/.exec(part);
    if (m) return { key: m[2] ?? '', op: m[1] ? 'notexists' : 'exists', values: [] };
    throw badRequest(`unable to parse requirement: ${part}`);
  });
}

function matchLabels(reqs: Requirement[], labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
        return v === r.values[0];
      case 'ne':
        return v !== r.values[0];
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case 'notexists':
        return v === undefined;
    }
    return false;
  });
}

function parseFieldSelector(sel: string | null, allowed: Set<string>): Requirement[] {
  if (!sel) return [];
  return splitTopLevel(sel).map((part): Requirement => {
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${sel}'; can't understand '${part}'`);
    const key = m[1] ?? '';
    if (!allowed.has(key)) throw badRequest(`field label not supported: ${key}`);
    return { key, op: m[2] === '!=' ? 'ne' : 'eq', values: [m[3] ?? ''] };
  });
}

function matchFields(reqs: Requirement[], fields: Record<string, string>): boolean {
  return reqs.every((r) => (r.op === 'ne' ? fields[r.key] !== r.values[0] : fields[r.key] === r.values[0]));
}

const APPLICATION_JSON = 'application/json';

function writeJson(res: ServerResponse, code: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(code, {
    'Content-Type': APPLICATION_JSON,
    'Content-Length': String(data.length),
    'Cache-Control': 'no-cache, private',
    'Audit-Id': randomUUID(),
  });
  res.end(data);
}

function writeRawStatus(socket: Duplex, code: number, body: KubeJsonObject | string): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain; charset=utf-8' : APPLICATION_JSON;
  const reason: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    500: 'Internal Server Error',
  };
  const head =
    `HTTP/1.1 ${code} ${reason[code] ?? 'Error'}\r\n` +
    (text.length > 0 ? `Content-Type: ${type}\r\nCache-Control: no-cache, private\r\n` : '') +
    `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + text);
}

interface ListPage<T> {
  items: T[];
  meta: KubeJsonObject;
}

interface EventEntry {
  namespace: string;
  name: string;
  json: KubeJsonObject;
}

const liveClusters = new Set<FakeCluster>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of liveClusters) void c.close();
  });
}

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
  private readonly pods = new Map<string, PodEntry>();
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly events: EventEntry[] = [];
  private readonly runtimes: Map<string, ContainerRuntime>;
  private readonly snapshots = new Map<number, number>();
  private readonly sockets = new Set<Socket | Duplex>();
  private readonly sessions = new Set<Promise<void>>();
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly version: { major: string; minor: string; gitVersion: string };
  private rv = 1000;
  private podIpCounter = 0;
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
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? Date.now;
    const v = options.version ?? { major: '1', minor: '33' };
    this.version = {
      major: v.major,
      minor: v.minor,
      gitVersion: v.gitVersion ?? `v${v.major}.${v.minor}.0-eks-fake`,
    };
    this.runtimes = new Map<string, ContainerRuntime>([
      ['scripted', createScriptedRuntime() as ContainerRuntime],
      ['host', createHostRuntime() as ContainerRuntime],
    ]);
    for (const [name, rt] of Object.entries(options.runtimes ?? {})) this.runtimes.set(name, rt);
  }

  /**
   * Starts a FakeCluster. Throws `ConfigError` for inconsistent options (duplicate users,
   * reserved names).
   */
  static async start(options: FakeClusterOptions = {}): Promise<FakeCluster> {
    const clock = options.clock ?? Date.now;
    const auth = new Authenticator(options, clock);
    const pki = await generatePki(options.tlsServerName ? [options.tlsServerName] : []);
    const httpServer = createServer({
      cert: pki.serverCert,
      key: pki.serverKey,
      ca: pki.caCert,
      // Go's crypto/tls, as in kube-apiserver, picks the TLS 1.3 suite itself and prefers
      // AES-128-GCM on CPUs with AES instructions, whatever the client lists first. OpenSSL would
      // follow the client's order (Node clients list AES-256 first), so FakeCluster states Go's order.
      ciphers: GO_TLS13_ORDER,
      honorCipherOrder: true,
    });
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handleProtocols: (_protocols, req) => {
        const chosen = (req as IncomingMessage & { fakeProtocol?: string }).fakeProtocol;
        return chosen ? chosen : false;
      },
    });
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (httpServer.address() as AddressInfo).port;
    const cluster = new FakeCluster(options, httpServer, wss, auth, port, pki.caCert);
    httpServer.on('request', (req, res) => cluster.onRequest(req, res));
    httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      cluster.onUpgrade(req, socket, head),
    );
    httpServer.on('secureConnection', (s: Socket) => {
      cluster.sockets.add(s);
      s.once('close', () => cluster.sockets.delete(s));
    });
    httpServer.on('tlsClientError', () => {});
    liveClusters.add(cluster);
    installExitHook();
    return cluster;
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

  // ---------------------------------------------------------------- state

  private bump(): number {
    this.rv += 1;
    return this.rv;
  }

  /** Adds a node; returns its JSON. */
  addNode(spec: FakeNodeSpec): KubeJsonObject {
    if (this.nodes.has(spec.name)) throw new ConfigError(`node "${spec.name}" already exists`);
    const entry: NodeEntry = {
      spec,
      uid: randomUUID(),
      createdAt: this.clock(),
      resourceVersion: this.bump(),
      internalIP: spec.internalIP ?? `192.168.${this.nodes.size + 1}.10`,
    };
    this.nodes.set(spec.name, entry);
    return nodeJson(entry, this.version.gitVersion);
  }

  private runtime(name: string): ContainerRuntime {
    const rt = this.runtimes.get(name);
    if (!rt) {
      throw new ConfigError(
        `FakeCluster has no runtime "${name}"; available: ${[...this.runtimes.keys()].join(', ')} (add more with options.runtimes)`,
      );
    }
    return rt;
  }

  private makeEntry(kind: ContainerEntry['kind'], c: FakeContainerSpec, now: number): ContainerEntry {
    const defaultState = kind === 'init' ? 'terminated' : 'running';
    const state = c.state ?? defaultState;
    const previous = c.logs?.previous;
    return {
      kind,
      name: c.name,
      image: c.image,
      imageID: c.imageID ?? imageIdFor(c.image),
      runtime: c.runtime ?? 'scripted',
      options: c.options,
      specJson: containerSpecJson(c),
      env: { ...(c.env ?? {}) },
      command: c.command ? [...c.command, ...(c.args ?? [])] : undefined,
      workingDir: c.workingDir,
      state,
      reason: c.reason,
      exitCode: c.exitCode ?? 0,
      startedAt: now,
      finishedAt: state === 'terminated' ? now : undefined,
      restartCount: c.restartCount ?? (previous !== undefined ? 1 : 0),
      containerId: state === 'waiting' ? undefined : randomContainerId(),
      logs: toLogLines(c.logs?.current, now),
      previousLogs: previous !== undefined ? toLogLines(previous, now - 60_000) : undefined,
    };
  }

  private async startEntry(pod: PodEntry, c: ContainerEntry, target?: RuntimeContainer): Promise<void> {
    const rt = this.runtime(c.runtime);
    const started = await rt.start({
      pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
      name: c.name,
      image: c.image,
      command: c.command,
      env: c.env,
      workingDir: c.workingDir,
      target,
      options: c.options,
    });
    c.runtimeContainer = started;
    c.containerId = started.id;
  }

  /** Adds a pod and starts its running containers; returns the pod JSON. Throws `ConfigError` on bad specs. */
  async addPod(spec: FakePodSpec): Promise<KubeJsonObject> {
    const namespace = spec.namespace ?? 'default';
    const key = `${namespace}/${spec.name}`;
    if (this.pods.has(key)) throw new ConfigError(`pod ${key} already exists`);
    const names = new Set<string>();
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      if (names.has(c.name)) throw new ConfigError(`pod ${key} declares container "${c.name}" twice`);
      names.add(c.name);
      this.runtime(c.runtime ?? 'scripted');
    }
    let nodeName: string | null;
    if (spec.nodeName === null) nodeName = null;
    else if (spec.nodeName !== undefined) {
      nodeName = spec.nodeName;
      if (!this.nodes.has(nodeName)) this.addNode({ name: nodeName });
    } else {
      if (this.nodes.size === 0) this.addNode({ name: 'fake-node-1' });
      nodeName = [...this.nodes.keys()][0] ?? 'fake-node-1';
    }
    const now = this.clock();
    this.podIpCounter += 1;
    const pod: PodEntry = {
      namespace,
      name: spec.name,
      uid: spec.uid ?? randomUUID(),
      createdAt: now,
      resourceVersion: this.bump(),
      generation: 1,
      spec,
      nodeName,
      podIP: spec.podIP ?? `10.0.${Math.floor(this.podIpCounter / 250)}.${(this.podIpCounter % 250) + 2}`,
      hostIP: nodeName !== null ? (this.nodes.get(nodeName)?.internalIP ?? '192.168.1.10') : '',
      containers: spec.containers.map((c) => this.makeEntry('regular', c, now)),
      initContainers: (spec.initContainers ?? []).map((c) => this.makeEntry('init', c, now)),
      ephemeralContainers: [],
    };
    if (nodeName === null) {
      for (const c of pod.containers) {
        c.state = 'waiting';
        c.containerId = undefined;
      }
    }
    this.pods.set(key, pod);
    try {
      for (const c of pod.containers) if (c.state === 'running') await this.startEntry(pod, c);
    } catch (err) {
      await this.removePod(namespace, spec.name);
      throw err;
    }
    pod.resourceVersion = this.bump();
    return podJson(pod);
  }

  /** Containers whose runtime says they stopped (e.g. a sandbox entrypoint exited) become terminated. */
  private syncStates(): void {
    const now = this.clock();
    for (const p of this.pods.values()) {
      for (const c of [...p.containers, ...p.ephemeralContainers]) {
        if (c.state === 'running' && c.runtimeContainer && !c.runtimeContainer.running()) {
          c.state = 'terminated';
          c.exitCode = 0;
          c.reason = 'Completed';
          c.finishedAt = now;
          p.resourceVersion = this.bump();
        }
      }
    }
  }

  /** The runtime's handle of a started container (e.g. to reach a sandbox's main process), or `undefined`. */
  runtimeContainer(namespace: string, pod: string, container: string): RuntimeContainer | undefined {
    const p = this.pods.get(`${namespace}/${pod}`);
    const all = p ? [...p.containers, ...p.initContainers, ...p.ephemeralContainers] : [];
    return all.find((c) => c.name === container)?.runtimeContainer;
  }

  /** Current pod JSON, or `undefined`. */
  getPod(namespace: string, name: string): KubeJsonObject | undefined {
    this.syncStates();
    const p = this.pods.get(`${namespace}/${name}`);
    return p ? podJson(p) : undefined;
  }

  /** Removes a pod and stops its containers. */
  async removePod(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const p = this.pods.get(key);
    if (!p) return;
    this.pods.delete(key);
    this.bump();
    await Promise.all(
      [...p.containers, ...p.initContainers, ...p.ephemeralContainers].map((c) => c.runtimeContainer?.stop()),
    );
  }

  private findContainer(
    namespace: string,
    pod: string,
    container: string,
  ): { pod: PodEntry; c: ContainerEntry } {
    const p = this.pods.get(`${namespace}/${pod}`);
    if (!p) throw new ConfigError(`FakeCluster has no pod ${namespace}/${pod}`);
    const c = [...p.containers, ...p.initContainers, ...p.ephemeralContainers].find(
      (x) => x.name === container,
    );
    if (!c) throw new ConfigError(`pod ${namespace}/${pod} has no container "${container}"`);
    return { pod: p, c };
  }

  /** Stops a container: it becomes terminated, and exec into it fails like the real API. */
  async stopContainer(
    namespace: string,
    pod: string,
    container: string,
    options: { exitCode?: number; reason?: string } = {},
  ): Promise<void> {
    const { pod: p, c } = this.findContainer(namespace, pod, container);
    await c.runtimeContainer?.stop();
    c.state = 'terminated';
    c.exitCode = options.exitCode ?? 0;
    c.reason = options.reason;
    c.finishedAt = this.clock();
    p.resourceVersion = this.bump();
  }

  /** Appends to a container's current log. */
  appendLog(namespace: string, pod: string, container: string, content: FakeLogContent): void {
    const { c } = this.findContainer(namespace, pod, container);
    c.logs.push(...toLogLines(content, this.clock()));
  }

  /** Adds an event; returns its JSON. */
  addEvent(spec: FakeEventSpec): KubeJsonObject {
    const namespace = spec.namespace ?? spec.involvedObject.namespace ?? 'default';
    const first = spec.firstTimestamp ? new Date(spec.firstTimestamp).getTime() : this.clock();
    const last = spec.lastTimestamp ? new Date(spec.lastTimestamp).getTime() : first;
    const name =
      spec.name ?? `${spec.involvedObject.name}.${(first * 1000 + this.events.length).toString(16)}`;
    const involved: KubeJsonObject = {
      kind: spec.involvedObject.kind,
      namespace: spec.involvedObject.namespace ?? namespace,
      name: spec.involvedObject.name,
    };
    if (spec.involvedObject.uid) involved.uid = spec.involvedObject.uid;
    involved.apiVersion = 'v1';
    if (spec.involvedObject.fieldPath) involved.fieldPath = spec.involvedObject.fieldPath;
    const source: KubeJsonObject = { component: spec.source?.component ?? 'kubelet' };
    if (spec.source?.host) source.host = spec.source.host;
    const json: KubeJsonObject = {
      metadata: {
        name,
        namespace,
        uid: randomUUID(),
        resourceVersion: String(this.bump()),
        creationTimestamp: rfc3339(first),
      },
      involvedObject: involved,
      reason: spec.reason,
      message: spec.message,
      source,
      firstTimestamp: rfc3339(first),
      lastTimestamp: rfc3339(last),
      count: spec.count ?? 1,
      type: spec.type ?? 'Normal',
      eventTime: null,
      reportingComponent: spec.source?.component ?? 'kubelet',
      reportingInstance: spec.source?.host ?? '',
    };
    this.events.push({ namespace, name, json });
    return { kind: 'Event', apiVersion: 'v1', ...json };
  }

  // ---------------------------------------------------------------- HTTP

  private record(rec: FakeRequestRecord): void {
    this.requestLog.push(rec);
    if (this.requestLog.length > 10_000) this.requestLog.splice(0, this.requestLog.length - 10_000);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    let user: AuthUser | undefined;
    res.once('finish', () =>
      this.record({
        method: req.method ?? '',
        url: req.url ?? '',
        user: user?.username,
        status: res.statusCode,
        accept: req.headers.accept,
      }),
    );
    user = this.auth.authenticate(req.headers.authorization);
    this.handle(req, res, user).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpStatus) {
        writeJson(res, err.code, err.body);
        return;
      }
      this.logger.error({ err: String(err), url: req.url }, 'FakeCluster handler failed');
      const e = status(500, 'InternalError', `Internal error occurred: ${String(err)}`);
      writeJson(res, 500, e.body);
    });
  }

  private async readRaw(req: IncomingMessage): Promise<Buffer> {
    const max = this.options.maxRequestBodyBytes ?? 1 << 20;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw status(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${max}`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const raw = await this.readRaw(req);
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    if (type === PROTOBUF_CONTENT_TYPE) {
      // kubectl sends built-in types as protobuf; only the access reviews are needed here.
      try {
        return { spec: decodeAccessReviewSpec(raw) };
      } catch (err) {
        throw badRequest(`the body of the request was in an unknown format: ${String(err)}`);
      }
    }
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch (err) {
      throw badRequest(`the body of the request was in an unknown format: ${String(err)}`);
    }
  }

  private authorizeOrThrow(user: AuthUser, a: RequestAttributes): void {
    if (!this.auth.authorize(user, a).allowed) throw new HttpStatus(403, forbiddenStatus(user, a));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, user: AuthUser | undefined): Promise<void> {
    if (!user) throw new HttpStatus(401, unauthorizedStatus());
    this.syncStates();
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    let seg: string[];
    try {
      seg = path
        .split('/')
        .filter((s) => s.length > 0)
        .map(decodeURIComponent);
    } catch {
      throw badRequest(`invalid escape in request path ${JSON.stringify(path)}`);
    }

    // Discovery and other non-resource paths.
    const discovery = this.discovery(path);
    if (discovery !== undefined) {
      if (method !== 'GET')
        throw status(
          405,
          'MethodNotAllowed',
          `the server does not allow this method on the requested resource`,
        );
      writeJson(res, 200, discovery);
      return;
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }

    if (seg[0] === 'apis' && seg[2] === 'v1' && seg.length === 4) {
      const group = seg[1] ?? '';
      const resource = seg[3] ?? '';
      if (
        (group === 'authorization.k8s.io' && resource === 'selfsubjectaccessreviews') ||
        (group === 'authentication.k8s.io' && resource === 'selfsubjectreviews')
      ) {
        if (method !== 'POST')
          throw status(
            405,
            'MethodNotAllowed',
            'the server does not allow this method on the requested resource',
          );
        this.authorizeOrThrow(user, { verb: 'create', resource, apiGroup: group });
        const body = await this.readBody(req);
        writeJson(
          res,
          201,
          resource === 'selfsubjectreviews' ? this.selfSubjectReview(user) : this.accessReview(user, body),
        );
        return;
      }
    }

    if (seg[0] !== 'api' || seg[1] !== 'v1')
      throw status(404, 'NotFound', 'the server could not find the requested resource', {});
    const rest = seg.slice(2);
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest.splice(0, 2);
    }
    const [resource = '', name, subresource, ...extra] = rest;
    if (extra.length > 0 || !['pods', 'events', 'nodes', 'namespaces'].includes(resource)) {
      throw status(404, 'NotFound', 'the server could not find the requested resource', {});
    }
    const verb =
      method === 'GET'
        ? name === undefined
          ? queryBool(q, 'watch')
            ? 'watch'
            : 'list'
          : 'get'
        : method === 'POST'
          ? 'create'
          : method === 'PATCH'
            ? 'patch'
            : method === 'PUT'
              ? 'update'
              : method === 'DELETE'
                ? name === undefined
                  ? 'deletecollection'
                  : 'delete'
                : method.toLowerCase();
    const attrs: RequestAttributes = { verb, resource, subresource, namespace, name, apiGroup: '' };
    this.authorizeOrThrow(user, attrs);
    if (verb === 'watch')
      throw status(405, 'MethodNotAllowed', 'FakeCluster does not support watch; poll with get/list');

    if (resource === 'pods') {
      if (name === undefined) {
        if (method !== 'GET')
          throw status(
            405,
            'MethodNotAllowed',
            'the server does not allow this method on the requested resource',
          );
        this.listPods(req, res, namespace, q);
        return;
      }
      if (namespace === undefined)
        throw status(404, 'NotFound', 'the server could not find the requested resource', {});
      const pod = this.pods.get(`${namespace}/${name}`);
      if (!pod) throw notFound('pods', name);
      if (subresource === undefined) {
        if (method !== 'GET') throw status(405, 'MethodNotAllowed', 'FakeCluster only serves get on pods');
        const accept = req.headers.accept ?? '';
        if (accept.includes('as=Table')) {
          writeJson(
            res,
            200,
            podTable(
              [pod],
              this.clock(),
              { resourceVersion: String(pod.resourceVersion) },
              q.get('includeObject') ?? 'Metadata',
            ),
          );
        } else writeJson(res, 200, podJson(pod));
        return;
      }
      if (subresource === 'log') {
        this.podLog(res, pod, q);
        return;
      }
      if (subresource === 'exec') {
        this.execPreflight(pod, q);
        throw badRequest('Upgrade request required');
      }
      if (subresource === 'ephemeralcontainers') {
        if (method === 'GET') {
          writeJson(res, 200, podJson(pod));
          return;
        }
        if (method === 'PATCH' || method === 'PUT') {
          const body = await this.readBody(req);
          await this.patchEphemeral(pod, method, req.headers['content-type'] ?? '', body);
          writeJson(res, 200, podJson(pod));
          return;
        }
        throw status(
          405,
          'MethodNotAllowed',
          'the server does not allow this method on the requested resource',
        );
      }
      throw status(404, 'NotFound', 'the server could not find the requested resource', {});
    }
    if (method !== 'GET' || subresource !== undefined) {
      throw status(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    }
    if (resource === 'nodes') {
      if (name !== undefined) {
        const node = this.nodes.get(name);
        if (!node) throw notFound('nodes', name);
        writeJson(res, 200, nodeJson(node, this.version.gitVersion));
        return;
      }
      const fields = parseFieldSelector(q.get('fieldSelector'), NODE_FIELDS);
      const labels = parseLabelSelector(q.get('labelSelector'));
      const all = [...this.nodes.values()]
        .filter(
          (n) =>
            matchLabels(labels, n.spec.labels) &&
            matchFields(fields, { 'metadata.name': n.spec.name, 'spec.unschedulable': 'false' }),
        )
        .sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1));
      const page = this.paginate(all, (n) => n.spec.name, q);
      writeJson(res, 200, {
        kind: 'NodeList',
        apiVersion: 'v1',
        metadata: page.meta,
        items: page.items.map((n) => nodeJson(n, this.version.gitVersion, false)),
      });
      return;
    }
    if (resource === 'namespaces') {
      const names = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);
      for (const p of this.pods.values()) names.add(p.namespace);
      const ns = (n: string): KubeJsonObject => ({
        metadata: {
          name: n,
          uid: randomUUID(),
          resourceVersion: '1',
          creationTimestamp: rfc3339(this.clock()),
          labels: { 'kubernetes.io/metadata.name': n },
        },
        spec: { finalizers: ['kubernetes'] },
        status: { phase: 'Active' },
      });
      if (name !== undefined) {
        if (!names.has(name)) throw notFound('namespaces', name);
        writeJson(res, 200, { kind: 'Namespace', apiVersion: 'v1', ...ns(name) });
        return;
      }
      writeJson(res, 200, {
        kind: 'NamespaceList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.rv) },
        items: [...names].sort().map(ns),
      });
      return;
    }
    // events
    if (name !== undefined) {
      const ev = this.events.find((e) => e.namespace === namespace && e.name === name);
      if (!ev) throw notFound('events', name);
      writeJson(res, 200, { kind: 'Event', apiVersion: 'v1', ...ev.json });
      return;
    }
    const fields = parseFieldSelector(q.get('fieldSelector'), EVENT_FIELDS);
    const all = this.events
      .filter((e) => namespace === undefined || e.namespace === namespace)
      .filter((e) => {
        const io = e.json.involvedObject as Record<string, string | undefined>;
        const src = e.json.source as Record<string, string | undefined>;
        return matchFields(fields, {
          'involvedObject.kind': io.kind ?? '',
          'involvedObject.namespace': io.namespace ?? '',
          'involvedObject.name': io.name ?? '',
          'involvedObject.uid': io.uid ?? '',
          'involvedObject.apiVersion': io.apiVersion ?? '',
          'involvedObject.resourceVersion': io.resourceVersion ?? '',
          'involvedObject.fieldPath': io.fieldPath ?? '',
          reason: String(e.json.reason ?? ''),
          reportingComponent: String(e.json.reportingComponent ?? ''),
          source: src.component ?? '',
          type: String(e.json.type ?? ''),
          'metadata.name': e.name,
          'metadata.namespace': e.namespace,
        });
      })
      .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
    const page = this.paginate(all, (e) => `${e.namespace}/${e.name}`, q);
    writeJson(res, 200, {
      kind: 'EventList',
      apiVersion: 'v1',
      metadata: page.meta,
      items: page.items.map((e) => e.json),
    });
  }

  private discovery(path: string): KubeJsonObject | undefined {
    const rl = (groupVersion: string, resources: KubeJsonObject[]): KubeJsonObject => ({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion,
      resources,
    });
    const all = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
    const group = (name: string): KubeJsonObject => ({
      name,
      versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
      preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
    });
    const sub = (name: string, kind: string, verbs: string[]): KubeJsonObject => ({
      name,
      singularName: '',
      namespaced: true,
      kind,
      verbs,
    });
    switch (path) {
      case '/version':
        return {
          major: this.version.major,
          minor: this.version.minor,
          gitVersion: this.version.gitVersion,
          gitCommit: '0000000000000000000000000000000000000000',
          gitTreeState: 'clean',
          buildDate: '2025-01-01T00:00:00Z',
          goVersion: 'go1.24.0',
          compiler: 'gc',
          platform: 'linux/amd64',
        };
      case '/api':
        return {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [
            { clientCIDR: '0.0.0.0/0', serverAddress: this.server.replace('https://', '') },
          ],
        };
      case '/apis':
        return {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: [group('authentication.k8s.io'), group('authorization.k8s.io')],
        };
      case '/apis/authentication.k8s.io':
        return { kind: 'APIGroup', apiVersion: 'v1', ...group('authentication.k8s.io') };
      case '/apis/authorization.k8s.io':
        return { kind: 'APIGroup', apiVersion: 'v1', ...group('authorization.k8s.io') };
      case '/apis/authentication.k8s.io/v1':
        return rl('authentication.k8s.io/v1', [
          {
            name: 'selfsubjectreviews',
            singularName: 'selfsubjectreview',
            namespaced: false,
            kind: 'SelfSubjectReview',
            verbs: ['create'],
          },
          {
            name: 'tokenreviews',
            singularName: 'tokenreview',
            namespaced: false,
            kind: 'TokenReview',
            verbs: ['create'],
          },
        ]);
      case '/apis/authorization.k8s.io/v1':
        return rl('authorization.k8s.io/v1', [
          {
            name: 'localsubjectaccessreviews',
            singularName: 'localsubjectaccessreview',
            namespaced: true,
            kind: 'LocalSubjectAccessReview',
            verbs: ['create'],
          },
          {
            name: 'selfsubjectaccessreviews',
            singularName: 'selfsubjectaccessreview',
            namespaced: false,
            kind: 'SelfSubjectAccessReview',
            verbs: ['create'],
          },
          {
            name: 'selfsubjectrulesreviews',
            singularName: 'selfsubjectrulesreview',
            namespaced: false,
            kind: 'SelfSubjectRulesReview',
            verbs: ['create'],
          },
          {
            name: 'subjectaccessreviews',
            singularName: 'subjectaccessreview',
            namespaced: false,
            kind: 'SubjectAccessReview',
            verbs: ['create'],
          },
        ]);
      case '/api/v1':
        return rl('v1', [
          {
            name: 'events',
            singularName: 'event',
            namespaced: true,
            kind: 'Event',
            verbs: all,
            shortNames: ['ev'],
          },
          {
            name: 'namespaces',
            singularName: 'namespace',
            namespaced: false,
            kind: 'Namespace',
            verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
            shortNames: ['ns'],
          },
          {
            name: 'nodes',
            singularName: 'node',
            namespaced: false,
            kind: 'Node',
            verbs: all,
            shortNames: ['no'],
          },
          {
            name: 'pods',
            singularName: 'pod',
            namespaced: true,
            kind: 'Pod',
            verbs: all,
            shortNames: ['po'],
            categories: ['all'],
          },
          sub('pods/attach', 'PodAttachOptions', ['create', 'get']),
          sub('pods/ephemeralcontainers', 'Pod', ['get', 'patch', 'update']),
          sub('pods/exec', 'PodExecOptions', ['create', 'get']),
          sub('pods/log', 'Pod', ['get']),
          sub('pods/status', 'Pod', ['get', 'patch', 'update']),
        ]);
      default:
        return undefined;
    }
  }

  private selfSubjectReview(user: AuthUser): KubeJsonObject {
    const userInfo: KubeJsonObject = { username: user.username, uid: user.uid, groups: user.groups };
    if (Object.keys(user.extra).length > 0) userInfo.extra = user.extra;
    return {
      kind: 'SelfSubjectReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: null },
      status: { userInfo },
    };
  }

  private accessReview(user: AuthUser, body: unknown): KubeJsonObject {
    const spec = (body && typeof body === 'object' ? (body as KubeJsonObject).spec : undefined) as
      | KubeJsonObject
      | undefined;
    const attrs = spec && typeof spec === 'object' ? spec : {};
    const ra = attrs.resourceAttributes as Record<string, unknown> | undefined;
    const nra = attrs.nonResourceAttributes as Record<string, unknown> | undefined;
    if (!ra && !nra) {
      throw invalid(
        'SelfSubjectAccessReview',
        '',
        'spec.resourceAttributes',
        'FieldValueRequired',
        'Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified',
      );
    }
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
    let result: { allowed: boolean; reason: string };
    if (ra) {
      result = this.auth.authorize(user, {
        verb: str(ra.verb) ?? '',
        resource: str(ra.resource) ?? '',
        subresource: str(ra.subresource),
        namespace: str(ra.namespace),
        name: str(ra.name),
        apiGroup: typeof ra.group === 'string' ? ra.group : '',
      });
    } else {
      const isMaster = user.groups.includes('system:masters');
      result =
        isMaster || str(nra?.verb) === 'get' ? { allowed: true, reason: '' } : { allowed: false, reason: '' };
    }
    const st: KubeJsonObject = { allowed: result.allowed };
    if (result.reason) st.reason = result.reason;
    return {
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec,
      status: st,
    };
  }

  private paginate<T>(all: T[], key: (item: T) => string, q: URLSearchParams): ListPage<T> {
    const limitRaw = queryInt(q, 'limit');
    const max = this.options.maxPageSize ?? 500;
    const limit = limitRaw !== undefined && limitRaw > 0 ? Math.min(limitRaw, max) : undefined;
    const cont = q.get('continue');
    let rv = this.rv;
    let start = '';
    const now = this.clock();
    const ttl = this.options.continueTokenTtlMs ?? 5 * 60_000;
    if (cont) {
      let parsed: { v?: unknown; rv?: unknown; start?: unknown };
      try {
        parsed = JSON.parse(Buffer.from(cont, 'base64').toString('utf8')) as typeof parsed;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data or invalid JSON');
      }
      if (
        parsed.v !== 'meta.k8s.io/v1' ||
        typeof parsed.rv !== 'number' ||
        typeof parsed.start !== 'string'
      ) {
        throw badRequest(
          'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
        );
      }
      start = parsed.start;
      const issued = this.snapshots.get(parsed.rv);
      if (issued === undefined || now - issued > ttl) {
        const fresh = this.continueToken(this.rv, start, now);
        const e = status(410, 'Expired', EXPIRED_MESSAGE);
        e.body.metadata = { continue: fresh };
        throw e;
      }
      rv = parsed.rv;
    } else {
      if (!this.snapshots.has(rv)) this.snapshots.set(rv, now);
    }
    const remaining = all.filter((item) => key(item) >= start);
    const items = limit !== undefined ? remaining.slice(0, limit) : remaining;
    const meta: KubeJsonObject = { resourceVersion: String(rv) };
    if (limit !== undefined && remaining.length > items.length) {
      const last = items[items.length - 1];
      if (last !== undefined) {
        meta.continue = this.continueToken(rv, `${key(last)}\u0000`, now);
        meta.remainingItemCount = remaining.length - items.length;
      }
    }
    return { items, meta };
  }

  private continueToken(rv: number, start: string, now: number): string {
    if (!this.snapshots.has(rv)) this.snapshots.set(rv, now);
    return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64');
  }

  private podFields(p: PodEntry): Record<string, string> {
    const json = podJson(p);
    const st = json.status as Record<string, unknown>;
    return {
      'metadata.name': p.name,
      'metadata.namespace': p.namespace,
      'spec.nodeName': p.nodeName ?? '',
      'spec.restartPolicy': 'Always',
      'spec.schedulerName': 'default-scheduler',
      'spec.serviceAccountName': p.spec.serviceAccountName ?? 'default',
      'spec.hostNetwork': String(p.spec.hostNetwork ?? false),
      'status.phase': String(st.phase ?? ''),
      'status.podIP': typeof st.podIP === 'string' ? st.podIP : '',
      'status.nominatedNodeName': '',
    };
  }

  private listPods(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string | undefined,
    q: URLSearchParams,
  ): void {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), POD_FIELDS);
    const all = [...this.pods.values()]
      .filter((p) => namespace === undefined || p.namespace === namespace)
      .filter((p) => matchLabels(labels, p.spec.labels) && matchFields(fields, this.podFields(p)))
      .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
    const page = this.paginate(all, (p) => `${p.namespace}/${p.name}`, q);
    if ((req.headers.accept ?? '').includes('as=Table')) {
      writeJson(
        res,
        200,
        podTable(page.items, this.clock(), page.meta, q.get('includeObject') ?? 'Metadata'),
      );
      return;
    }
    writeJson(res, 200, {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: page.meta,
      items: page.items.map((p) => podJson(p, false)),
    });
  }

  private selectContainer(pod: PodEntry, requested: string | null): ContainerEntry {
    const everything = [...pod.containers, ...pod.initContainers, ...pod.ephemeralContainers];
    if (!requested) {
      if (pod.containers.length === 1 && pod.containers[0]) return pod.containers[0];
      if (everything.length === 0) throw badRequest(`a container name must be specified for pod ${pod.name}`);
      throw badRequest(
        `a container name must be specified for pod ${pod.name}, choose one of: [${everything.map((c) => c.name).join(' ')}]`,
      );
    }
    const c = everything.find((x) => x.name === requested);
    if (!c) throw badRequest(`container ${requested} is not valid for pod ${pod.name}`);
    return c;
  }

  private podLog(res: ServerResponse, pod: PodEntry, q: URLSearchParams): void {
    const c = this.selectContainer(pod, q.get('container'));
    const tailLines = queryInt(q, 'tailLines');
    const limitBytes = queryInt(q, 'limitBytes');
    const sinceSeconds = queryInt(q, 'sinceSeconds');
    const sinceTimeRaw = q.get('sinceTime');
    const inv = (field: string, value: number | string, detail: string): HttpStatus =>
      invalid('PodLogOptions', pod.name, field, 'FieldValueInvalid', `Invalid value: ${value}: ${detail}`);
    if (tailLines !== undefined && tailLines < 0)
      throw inv('tailLines', tailLines, 'must be greater than or equal to 0');
    if (limitBytes !== undefined && limitBytes < 1)
      throw inv('limitBytes', limitBytes, 'must be greater than 0');
    if (sinceSeconds !== undefined && sinceSeconds < 1)
      throw inv('sinceSeconds', sinceSeconds, 'must be greater than 0');
    if (sinceSeconds !== undefined && sinceTimeRaw) {
      throw invalid(
        'PodLogOptions',
        pod.name,
        '',
        'FieldValueForbidden',
        'at most one of `sinceTime` or `sinceSeconds` may be specified',
      );
    }
    let since: number | undefined;
    if (sinceTimeRaw) {
      since = Date.parse(sinceTimeRaw);
      if (Number.isNaN(since))
        throw badRequest(`parsing time "${sinceTimeRaw}" as "2006-01-02T15:04:05Z07:00": cannot parse`);
    } else if (sinceSeconds !== undefined) since = this.clock() - sinceSeconds * 1000;
    if (pod.nodeName === null) {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '0' });
      res.end();
      return;
    }
    const previous = queryBool(q, 'previous');
    if (previous) {
      if (!c.previousLogs)
        throw badRequest(`previous terminated container "${c.name}" in pod "${pod.name}" not found`);
    } else if (c.state === 'waiting') {
      throw badRequest(
        `container "${c.name}" in pod "${pod.name}" is waiting to start: ${c.reason ?? 'ContainerCreating'}`,
      );
    }
    let lines: LogLine[] = previous ? (c.previousLogs ?? []) : c.logs;
    if (since !== undefined) {
      const s = since;
      lines = lines.filter((l) => l.timeMs >= s);
    }
    if (tailLines !== undefined) lines = tailLines === 0 ? [] : lines.slice(-tailLines);
    const timestamps = queryBool(q, 'timestamps');
    let out = Buffer.concat(
      lines.map((l) => (timestamps ? Buffer.concat([Buffer.from(`${logTimestamp(l)} `), l.data]) : l.data)),
    );
    if (limitBytes !== undefined && out.length > limitBytes) out = out.subarray(0, limitBytes);
    res.writeHead(200, {
      'Content-Type': 'text/plain',
      'Content-Length': String(out.length),
      'Cache-Control': 'no-cache, private',
    });
    res.end(out);
  }

  private async patchEphemeral(
    pod: PodEntry,
    method: string,
    contentType: string,
    body: unknown,
  ): Promise<void> {
    const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    const existing = pod.ephemeralContainers.map((c) => c.specJson);
    let next: KubeJsonObject[];
    const asList = (v: unknown): KubeJsonObject[] => {
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v) || v.some((x) => !x || typeof x !== 'object' || Array.isArray(x))) {
        throw badRequest('spec.ephemeralContainers must be a list of objects');
      }
      return v as KubeJsonObject[];
    };
    const specOf = (b: unknown): KubeJsonObject => {
      const s = b && typeof b === 'object' ? (b as KubeJsonObject).spec : undefined;
      return s && typeof s === 'object' ? (s as KubeJsonObject) : {};
    };
    if (method === 'PUT') {
      next = asList(specOf(body).ephemeralContainers);
    } else if (type === 'application/strategic-merge-patch+json') {
      next = existing.map((e) => ({ ...e }));
      for (const item of asList(specOf(body).ephemeralContainers)) {
        const idx = next.findIndex((e) => e.name === item.name);
        const clean = Object.fromEntries(Object.entries(item).filter(([k]) => !k.startsWith('$')));
        if (idx >= 0) next[idx] = { ...next[idx], ...clean };
        else next.push(clean);
      }
    } else if (type === 'application/merge-patch+json') {
      const s = specOf(body);
      next = 'ephemeralContainers' in s ? asList(s.ephemeralContainers) : existing;
    } else if (type === 'application/json-patch+json') {
      if (!Array.isArray(body)) throw badRequest('json patch must be a list of operations');
      next = existing.map((e) => ({ ...e }));
      for (const op of body as Array<Record<string, unknown>>) {
        if (op.op === 'test') continue;
        if (op.op === 'add' && op.path === '/spec/ephemeralContainers/-')
          next.push(asList([op.value])[0] ?? {});
        else if ((op.op === 'add' || op.op === 'replace') && op.path === '/spec/ephemeralContainers')
          next = asList(op.value);
        else
          throw status(
            422,
            'Invalid',
            `FakeCluster supports only adding to /spec/ephemeralContainers (got ${String(op.op)} ${String(op.path)})`,
          );
      }
    } else {
      throw status(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
      );
    }
    // Existing entries may not change or disappear.
    for (const [i, e] of existing.entries()) {
      const n = next.find((x) => x.name === e.name);
      if (!n || JSON.stringify(n) !== JSON.stringify(e)) {
        throw invalid(
          'Pod',
          pod.name,
          'spec.ephemeralContainers',
          'FieldValueForbidden',
          `Forbidden: existing ephemeral containers "${String(e.name)}" may not be removed or changed`,
        );
      }
      void i;
    }
    const taken = new Set(
      [...pod.containers, ...pod.initContainers, ...pod.ephemeralContainers].map((c) => c.name),
    );
    const added = next.filter((n) => !existing.some((e) => e.name === n.name));
    for (const [i, n] of added.entries()) {
      const field = `spec.ephemeralContainers[${existing.length + i}]`;
      if (typeof n.name !== 'string' || n.name === '')
        throw invalid('Pod', pod.name, `${field}.name`, 'FieldValueRequired', 'Required value');
      if (taken.has(n.name))
        throw invalid(
          'Pod',
          pod.name,
          `${field}.name`,
          'FieldValueDuplicate',
          `Duplicate value: "${n.name}"`,
        );
      if (typeof n.image !== 'string' || n.image === '')
        throw invalid('Pod', pod.name, `${field}.image`, 'FieldValueRequired', 'Required value');
      const t = n.targetContainerName;
      if (t !== undefined && (typeof t !== 'string' || !pod.containers.some((c) => c.name === t))) {
        throw invalid(
          'Pod',
          pod.name,
          `${field}.targetContainerName`,
          'FieldValueNotFound',
          `Not found: "${String(t)}"`,
        );
      }
      taken.add(n.name);
    }
    if (added.length === 0) return;
    for (const n of added) {
      const name = n.name as string;
      const image = n.image as string;
      const targetName = typeof n.targetContainerName === 'string' ? n.targetContainerName : undefined;
      const target = targetName ? pod.containers.find((c) => c.name === targetName) : undefined;
      const choice = this.options.ephemeralContainerRuntime
        ? this.options.ephemeralContainerRuntime(image, {
            namespace: pod.namespace,
            pod: pod.name,
            container: name,
            targetContainerName: targetName,
            targetRuntime: target?.runtime,
            spec: n,
          })
        : { runtime: target?.runtime ?? 'scripted', options: target?.options };
      const env: Record<string, string> = {};
      if (Array.isArray(n.env)) {
        for (const e of n.env as Array<Record<string, unknown>>) {
          if (typeof e.name === 'string' && typeof e.value === 'string') env[e.name] = e.value;
        }
      }
      const specJson: KubeJsonObject = {
        resources: {},
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: image.includes(':') && !image.endsWith(':latest') ? 'IfNotPresent' : 'Always',
        ...n,
      };
      const entry: ContainerEntry = {
        kind: 'ephemeral',
        name,
        image,
        imageID: imageIdFor(image),
        runtime: choice.runtime,
        options: choice.options,
        specJson,
        env,
        command: Array.isArray(n.command)
          ? [...(n.command as string[]), ...((n.args as string[] | undefined) ?? [])]
          : undefined,
        workingDir: typeof n.workingDir === 'string' ? n.workingDir : undefined,
        targetContainerName: targetName,
        state: 'waiting',
        reason: choice.waitingReason ?? 'ContainerCreating',
        exitCode: 0,
        startedAt: this.clock(),
        restartCount: 0,
        logs: [],
      };
      pod.ephemeralContainers.push(entry);
      if (choice.waitingReason) {
        entry.containerId = undefined;
        continue;
      }
      const run = (async () => {
        try {
          await this.startEntry(pod, entry, target?.runtimeContainer);
          entry.state = 'running';
          entry.reason = undefined;
          entry.startedAt = this.clock();
        } catch (err) {
          entry.state = 'terminated';
          entry.exitCode = 128;
          entry.reason = 'StartError';
          entry.containerId = randomContainerId();
          entry.finishedAt = this.clock();
          this.logger.warn({ err: String(err), container: name }, 'ephemeral container failed to start');
        }
        pod.resourceVersion = this.bump();
      })();
      this.sessions.add(run);
      void run.finally(() => this.sessions.delete(run));
    }
    pod.generation += 1;
    pod.resourceVersion = this.bump();
  }

  // ---------------------------------------------------------------- exec

  private execPreflight(pod: PodEntry, q: URLSearchParams): ContainerEntry {
    if (pod.nodeName === null) throw badRequest(`pod ${pod.name} does not have a host assigned`);
    const c = this.selectContainer(pod, q.get('container'));
    if (!queryBool(q, 'stdin') && !queryBool(q, 'stdout') && !queryBool(q, 'stderr')) {
      throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
    }
    return c;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let recordStatus = 101;
    const user = this.auth.authenticate(req.headers.authorization);
    const finish = (code: number): void => {
      recordStatus = code;
      this.record({
        method: req.method ?? '',
        url: req.url ?? '',
        user: user?.username,
        status: recordStatus,
        accept: req.headers.accept,
      });
    };
    try {
      const url = new URL(req.url ?? '/', 'https://127.0.0.1');
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec\/?$/.exec(url.pathname);
      if (!m) throw status(404, 'NotFound', 'the server could not find the requested resource', {});
      let namespace: string;
      let name: string;
      try {
        namespace = decodeURIComponent(m[1] ?? '');
        name = decodeURIComponent(m[2] ?? '');
      } catch {
        throw badRequest('invalid escape in request path');
      }
      const method = req.method ?? 'GET';
      if (method !== 'GET' && method !== 'POST') {
        throw status(
          405,
          'MethodNotAllowed',
          'the server does not allow this method on the requested resource',
        );
      }
      if (!user) throw new HttpStatus(401, unauthorizedStatus());
      const attrs: RequestAttributes = {
        verb: method === 'GET' ? 'get' : 'create',
        resource: 'pods',
        subresource: 'exec',
        namespace,
        name,
        apiGroup: '',
      };
      this.authorizeOrThrow(user, attrs);
      if (
        method === 'GET' &&
        this.options.execRequiresCreate &&
        !this.auth.authorize(user, { ...attrs, verb: 'create' }).allowed
      ) {
        throw status(403, 'Forbidden', `pods "${name}" is forbidden: `, { name, kind: 'pods' });
      }
      const pod = this.pods.get(`${namespace}/${name}`);
      if (!pod) throw notFound('pods', name);
      const c = this.execPreflight(pod, url.searchParams);
      if (method === 'POST' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
        throw badRequest(
          'FakeCluster serves exec over WebSocket only (v5.channel.k8s.io or the legacy channel.k8s.io protocols), not SPDY',
        );
      }
      const firstLine = (() => {
        for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
          if ((req.rawHeaders[i] ?? '').toLowerCase() === 'sec-websocket-protocol')
            return req.rawHeaders[i + 1];
        }
        return undefined;
      })();
      const choice = chooseProtocol(firstLine);
      if ('reject' in choice) {
        finish(403);
        writeRawStatus(socket, 403, '');
        return;
      }
      const running = c.state === 'running' && c.runtimeContainer?.running() === true;
      if (!running && choice.protocol !== V5) {
        finish(500);
        writeRawStatus(socket, 500, `container not found ("${c.name}")`);
        return;
      }
      (req as IncomingMessage & { fakeProtocol?: string }).fakeProtocol = choice.protocol;
      const q = url.searchParams;
      const streams = {
        stdin: queryBool(q, 'stdin'),
        stdout: queryBool(q, 'stdout'),
        stderr: queryBool(q, 'stderr'),
        tty: queryBool(q, 'tty'),
      };
      const command = q.getAll('command');
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        finish(101);
        const session = new ExecSession(ws, socket, choice.protocol, streams);
        if (!running || !c.runtimeContainer) {
          session.notRunning(c.name);
          return;
        }
        const controller = new AbortController();
        ws.once('close', () => controller.abort());
        const proc = c.runtimeContainer.exec({
          command,
          stdin: streams.stdin,
          tty: streams.tty,
          signal: controller.signal,
        });
        const done = session.run(proc, command).catch((err: unknown) => {
          this.logger.error({ err: String(err) }, 'exec session failed');
          ws.terminate();
        });
        this.sessions.add(done);
        void done.finally(() => this.sessions.delete(done));
      });
    } catch (err) {
      if (err instanceof HttpStatus) {
        finish(err.code);
        writeRawStatus(socket, err.code, err.body);
        return;
      }
      finish(500);
      writeRawStatus(socket, 500, String(err));
    }
  }

  // ---------------------------------------------------------------- close

  /** Stops servers, sessions, containers and runtimes. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    liveClusters.delete(this);
    this.closing = (async () => {
      for (const ws of this.wss.clients) ws.terminate();
      const serverClosed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
      this.httpServer.closeAllConnections();
      for (const s of this.sockets) s.destroy();
      const stops: Array<Promise<void>> = [];
      for (const p of this.pods.values()) {
        for (const c of [...p.containers, ...p.initContainers, ...p.ephemeralContainers]) {
          if (c.runtimeContainer) stops.push(c.runtimeContainer.stop());
        }
      }
      for (const rt of this.runtimes.values()) stops.push(rt.close());
      this.wss.close();
      await Promise.allSettled(stops);
      await Promise.allSettled([...this.sessions]);
      await serverClosed;
    })();
    return this.closing;
  }
}
