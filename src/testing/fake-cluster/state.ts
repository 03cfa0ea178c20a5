/**
 * FakeCluster's objects: pods and their containers (started on runtimes), nodes, events, and the
 * resource-version counter. No HTTP here.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { ConfigError } from '../../errors.js';
import { type Logger, silentLogger } from '../../util/index.js';
import type { ContainerRuntime, RuntimeContainer } from '../runtime.js';
import { FakeObjectStore } from './object-store.js';
import {
  type ContainerEntry,
  containerSpecJson,
  imageIdFor,
  type NodeEntry,
  nodeJson,
  type PodEntry,
  podJson,
  rfc3339,
  toLogLines,
} from './objects.js';
import { randomContainerId } from './runtimes/common.js';
import { createHostRuntime } from './runtimes/host.js';
import { createScriptedRuntime } from './runtimes/scripted.js';
import type {
  FakeClusterOptions,
  FakeContainerSpec,
  FakeEventSpec,
  FakeLogContent,
  FakeNodeSpec,
  FakePodSpec,
  KubeJsonObject,
} from './types.js';

/** A stored event. */
export interface EventEntry {
  namespace: string;
  name: string;
  json: KubeJsonObject;
}

/** The version `/version` reports and nodes carry. */
export interface ClusterVersion {
  major: string;
  minor: string;
  gitVersion: string;
}

/** Every container of a pod: regular, init and ephemeral. */
export function allContainers(p: PodEntry): ContainerEntry[] {
  return [...p.containers, ...p.initContainers, ...p.ephemeralContainers];
}

/** The objects a FakeCluster serves, and the runtimes its containers run on. */
export class ClusterState {
  /** Pods by `namespace/name`. */
  readonly pods = new Map<string, PodEntry>();
  /** Nodes by name. */
  readonly nodes = new Map<string, NodeEntry>();
  /** Events in creation order. */
  readonly events: EventEntry[] = [];
  /** RBAC and workload objects served by get and list (see `object-store.ts`). */
  readonly stored = new FakeObjectStore();
  readonly logger: Logger;
  readonly clock: () => number;
  readonly version: ClusterVersion;
  private readonly runtimes: Map<string, ContainerRuntime>;
  private readonly background = new Set<Promise<void>>();
  private rv = 1000;
  private podIpCounter = 0;

  constructor(options: FakeClusterOptions) {
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

  /** The current resource version. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Advances the resource version and returns it. */
  bump(): number {
    this.rv += 1;
    return this.rv;
  }

  /** Keeps a background task (exec session, container start) so `close` can wait for it. */
  track(task: Promise<void>): void {
    this.background.add(task);
    void task.finally(() => this.background.delete(task));
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

  /** A runtime by name; `ConfigError` listing the available ones otherwise. */
  runtime(name: string): ContainerRuntime {
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

  /** Starts a container on its runtime (sharing `target`'s namespaces for ephemeral containers). */
  async startEntry(pod: PodEntry, c: ContainerEntry, target?: RuntimeContainer): Promise<void> {
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
  syncStates(): void {
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

  /** The runtime's handle of a started container, or `undefined`. */
  runtimeContainer(namespace: string, pod: string, container: string): RuntimeContainer | undefined {
    const p = this.pods.get(`${namespace}/${pod}`);
    const all = p ? allContainers(p) : [];
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
    await Promise.all(allContainers(p).map((c) => c.runtimeContainer?.stop()));
  }

  private findContainer(
    namespace: string,
    pod: string,
    container: string,
  ): { pod: PodEntry; c: ContainerEntry } {
    const p = this.pods.get(`${namespace}/${pod}`);
    if (!p) throw new ConfigError(`FakeCluster has no pod ${namespace}/${pod}`);
    const c = allContainers(p).find((x) => x.name === container);
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

  /** Stops every container and runtime, then waits for background tasks. */
  async close(): Promise<void> {
    const stops: Array<Promise<void>> = [];
    for (const p of this.pods.values()) {
      for (const c of allContainers(p)) if (c.runtimeContainer) stops.push(c.runtimeContainer.stop());
    }
    for (const rt of this.runtimes.values()) stops.push(rt.close());
    await Promise.allSettled(stops);
    await Promise.allSettled([...this.background]);
  }
}
