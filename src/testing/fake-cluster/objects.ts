/**
 * FakeCluster's in-memory objects and their JSON (Pod, Node, Event, Table) in the real API's shapes.
 *
 * @module
 */
import { createHash, randomUUID } from 'node:crypto';
import type { RuntimeContainer } from '../runtime.js';
import type {
  FakeContainerSpec,
  FakeLogContent,
  FakeNodeSpec,
  FakePodSpec,
  KubeJsonObject,
} from './types.js';

/** One stored log line (raw bytes incl. its newline, if any). */
export interface LogLine {
  timeMs: number;
  nanos: number;
  data: Buffer;
}

/** Container state kept by the fake kubelet. */
export interface ContainerEntry {
  kind: 'regular' | 'init' | 'ephemeral';
  name: string;
  image: string;
  imageID: string;
  runtime: string;
  options: unknown;
  specJson: KubeJsonObject;
  env: Record<string, string>;
  command?: readonly string[] | undefined;
  workingDir?: string | undefined;
  targetContainerName?: string | undefined;
  state: 'waiting' | 'running' | 'terminated';
  reason?: string | undefined;
  /** Why it is waiting or terminated, as the kubelet says it (`message` of the state). */
  message?: string | undefined;
  exitCode: number;
  startedAt: number;
  finishedAt?: number | undefined;
  restartCount: number;
  containerId?: string | undefined;
  runtimeContainer?: RuntimeContainer | undefined;
  logs: LogLine[];
  previousLogs?: LogLine[] | undefined;
}

/** A pod kept by FakeCluster. */
export interface PodEntry {
  namespace: string;
  name: string;
  uid: string;
  createdAt: number;
  resourceVersion: number;
  generation: number;
  spec: FakePodSpec;
  nodeName: string | null;
  podIP: string;
  hostIP: string;
  containers: ContainerEntry[];
  initContainers: ContainerEntry[];
  ephemeralContainers: ContainerEntry[];
}

/** A node kept by FakeCluster. */
export interface NodeEntry {
  spec: FakeNodeSpec;
  uid: string;
  createdAt: number;
  resourceVersion: number;
  internalIP: string;
}

/** RFC 3339 UTC without fractional seconds, as metav1.Time marshals. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The kubelet's log timestamp: RFC 3339 with exactly nine fractional digits. */
export function logTimestamp(line: LogLine): string {
  const base = new Date(line.timeMs).toISOString().slice(0, 19);
  const frac = (line.timeMs % 1000) * 1_000_000 + line.nanos;
  return `${base}.${String(frac).padStart(9, '0')}Z`;
}

/** Splits content into stored log lines. Text content is stamped with `defaultTime`. */
export function toLogLines(content: FakeLogContent | undefined, defaultTime: number): LogLine[] {
  if (content === undefined) return [];
  if (typeof content === 'string' || content instanceof Uint8Array) {
    const buf = Buffer.from(content);
    const lines: LogLine[] = [];
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(10, start);
      const end = nl < 0 ? buf.length : nl + 1;
      lines.push({ timeMs: defaultTime, nanos: 0, data: buf.subarray(start, end) });
      start = end;
    }
    return lines;
  }
  return content.map((l) => ({
    timeMs: new Date(l.time).getTime(),
    nanos: 0,
    data: Buffer.from(l.text.endsWith('\n') ? l.text : `${l.text}\n`),
  }));
}

/** `docker.io/library/busybox:latest` style normalisation containerd reports in `status.image`. */
export function normalizeImage(image: string): string {
  let ref = image;
  const firstSlash = ref.indexOf('/');
  const first = firstSlash < 0 ? '' : ref.slice(0, firstSlash);
  if (firstSlash < 0) ref = `docker.io/library/${ref}`;
  else if (!first.includes('.') && !first.includes(':') && first !== 'localhost') ref = `docker.io/${ref}`;
  const lastSlash = ref.lastIndexOf('/');
  if (!ref.includes('@') && !ref.slice(lastSlash).includes(':')) ref = `${ref}:latest`;
  return ref;
}

/** A stable fake digest reference for an image. */
export function imageIdFor(image: string): string {
  const norm = normalizeImage(image);
  if (norm.includes('@')) return norm;
  const repo = norm.slice(0, norm.lastIndexOf(':'));
  return `${repo}@sha256:${createHash('sha256').update(norm).digest('hex')}`;
}

/** Builds the container spec JSON of a declared container. */
export function containerSpecJson(c: FakeContainerSpec): KubeJsonObject {
  const json: KubeJsonObject = { name: c.name, image: c.image };
  if (c.command) json.command = [...c.command];
  if (c.args) json.args = [...c.args];
  if (c.workingDir) json.workingDir = c.workingDir;
  if (c.env) json.env = Object.entries(c.env).map(([name, value]) => ({ name, value }));
  json.resources = {};
  json.terminationMessagePath = '/dev/termination-log';
  json.terminationMessagePolicy = 'File';
  json.imagePullPolicy = c.image.endsWith(':latest') || !c.image.includes(':') ? 'Always' : 'IfNotPresent';
  return { ...json, ...(c.extraSpec ?? {}) };
}

function containerStatus(c: ContainerEntry): KubeJsonObject {
  const containerID = c.containerId ? `containerd://${c.containerId}` : undefined;
  let state: KubeJsonObject;
  if (c.state === 'running') state = { running: { startedAt: rfc3339(c.startedAt) } };
  else if (c.state === 'waiting') state = { waiting: { reason: c.reason ?? 'ContainerCreating' } };
  else {
    const t: KubeJsonObject = {
      exitCode: c.exitCode,
      reason: c.reason ?? (c.exitCode === 0 ? 'Completed' : 'Error'),
      startedAt: rfc3339(c.startedAt),
      finishedAt: rfc3339(c.finishedAt ?? c.startedAt),
    };
    if (containerID) t.containerID = containerID;
    if (c.message) t.message = c.message;
    state = { terminated: t };
  }
  const lastState: KubeJsonObject =
    c.restartCount > 0 && c.previousLogs
      ? {
          terminated: {
            exitCode: 1,
            reason: 'Error',
            startedAt: rfc3339(c.startedAt - 60_000),
            finishedAt: rfc3339(c.startedAt - 1000),
            containerID: `containerd://${createHash('sha256')
              .update(`${c.containerId ?? c.name}-prev`)
              .digest('hex')}`,
          },
        }
      : {};
  const s: KubeJsonObject = {
    name: c.name,
    state,
    lastState,
    ready: c.state === 'running' && c.kind !== 'ephemeral' && c.kind !== 'init',
    restartCount: c.restartCount,
    image: normalizeImage(c.image),
    imageID: c.state === 'waiting' ? '' : c.imageID,
  };
  if (containerID && c.state !== 'waiting') s.containerID = containerID;
  if (c.kind !== 'ephemeral') s.started = c.state === 'running';
  return s;
}

/** Derives the phase a pod reports. */
export function podPhase(p: PodEntry): string {
  if (p.spec.phase) return p.spec.phase;
  if (p.nodeName === null) return 'Pending';
  if (p.containers.some((c) => c.state === 'waiting')) return 'Pending';
  if (p.containers.length > 0 && p.containers.every((c) => c.state === 'terminated')) {
    return p.containers.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
  }
  return 'Running';
}

/** The full Pod JSON. `withType` adds kind/apiVersion (false inside lists). */
export function podJson(p: PodEntry, withType = true): KubeJsonObject {
  const created = rfc3339(p.createdAt);
  const metadata: KubeJsonObject = {
    name: p.name,
    namespace: p.namespace,
    uid: p.uid,
    resourceVersion: String(p.resourceVersion),
    generation: p.generation,
    creationTimestamp: created,
  };
  if (p.spec.labels) metadata.labels = { ...p.spec.labels };
  if (p.spec.annotations) metadata.annotations = { ...p.spec.annotations };
  if (p.spec.ownerReferences) metadata.ownerReferences = p.spec.ownerReferences.map((o) => ({ ...o }));
  const sa = p.spec.serviceAccountName ?? 'default';
  const spec: KubeJsonObject = {
    volumes: [],
    containers: p.containers.map((c) => c.specJson),
  };
  if (p.initContainers.length > 0) spec.initContainers = p.initContainers.map((c) => c.specJson);
  if (p.ephemeralContainers.length > 0)
    spec.ephemeralContainers = p.ephemeralContainers.map((c) => c.specJson);
  Object.assign(spec, {
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
    serviceAccountName: sa,
    serviceAccount: sa,
  });
  if (p.nodeName !== null) spec.nodeName = p.nodeName;
  if (p.spec.hostNetwork) spec.hostNetwork = true;
  if (p.spec.shareProcessNamespace !== undefined) spec.shareProcessNamespace = p.spec.shareProcessNamespace;
  Object.assign(spec, {
    securityContext: {},
    schedulerName: 'default-scheduler',
    tolerations: [
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ],
    priority: 0,
    enableServiceLinks: true,
    preemptionPolicy: 'PreemptLowerPriority',
  });
  const phase = podPhase(p);
  const ready = p.containers.every((c) => c.state === 'running');
  const cond = (type: string, st: boolean): KubeJsonObject => ({
    type,
    status: st ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: created,
  });
  const status: KubeJsonObject = { phase };
  if (p.nodeName !== null) {
    status.conditions = [
      cond('PodReadyToStartContainers', true),
      cond('Initialized', true),
      cond('Ready', ready),
      cond('ContainersReady', ready),
      cond('PodScheduled', true),
    ];
    status.hostIP = p.hostIP;
    status.hostIPs = [{ ip: p.hostIP }];
    status.podIP = p.podIP;
    status.podIPs = [{ ip: p.podIP }];
    status.startTime = created;
    if (p.initContainers.length > 0) status.initContainerStatuses = p.initContainers.map(containerStatus);
    status.containerStatuses = [...p.containers]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map(containerStatus);
    const eph = p.ephemeralContainers.filter(
      (c) =>
        c.state !== 'waiting' ||
        c.containerId ||
        (c.reason !== undefined && c.reason !== 'ContainerCreating'),
    );
    if (eph.length > 0) status.ephemeralContainerStatuses = eph.map(containerStatus);
  } else {
    status.conditions = [
      {
        type: 'PodScheduled',
        status: 'False',
        lastProbeTime: null,
        lastTransitionTime: created,
        reason: 'Unschedulable',
        message: '0/1 nodes are available.',
      },
    ];
  }
  status.qosClass = 'BestEffort';
  const obj: KubeJsonObject = { metadata, spec, status };
  return withType ? { kind: 'Pod', apiVersion: 'v1', ...obj } : obj;
}

/** Node JSON. */
export function nodeJson(n: NodeEntry, version: string, withType = true): KubeJsonObject {
  const s = n.spec;
  const created = rfc3339(n.createdAt);
  const metadata: KubeJsonObject = {
    name: s.name,
    uid: n.uid,
    resourceVersion: String(n.resourceVersion),
    creationTimestamp: created,
    labels: {
      'beta.kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/hostname': s.name,
      'kubernetes.io/os': 'linux',
      ...(s.labels ?? {}),
    },
  };
  if (s.annotations) metadata.annotations = { ...s.annotations };
  const spec: KubeJsonObject = {};
  if (s.providerID) spec.providerID = s.providerID;
  const capacity = { cpu: '2', 'ephemeral-storage': '20959212Ki', memory: '7926476Ki', pods: '29' };
  const obj: KubeJsonObject = {
    metadata,
    spec,
    status: {
      capacity,
      allocatable: capacity,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          lastHeartbeatTime: created,
          lastTransitionTime: created,
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
        },
      ],
      addresses: [
        { type: 'InternalIP', address: n.internalIP },
        { type: 'Hostname', address: s.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: createHash('md5').update(s.name).digest('hex'),
        systemUUID: n.uid,
        bootID: randomUUID(),
        kernelVersion: '6.1.0-fake',
        osImage: 'Amazon Linux 2023',
        containerRuntimeVersion: s.containerRuntimeVersion ?? 'containerd://1.7.27',
        kubeletVersion: s.kubeletVersion ?? version,
        kubeProxyVersion: s.kubeletVersion ?? version,
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  };
  return withType ? { kind: 'Node', apiVersion: 'v1', ...obj } : obj;
}

/** kubectl's `HumanDuration`. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

/** Server-side printing of pods (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`). */
export function podTable(
  pods: readonly PodEntry[],
  now: number,
  listMeta: KubeJsonObject,
  includeObject: string,
): KubeJsonObject {
  const col = (
    name: string,
    type: string,
    description: string,
    priority = 0,
    format = '',
  ): KubeJsonObject => ({
    name,
    type,
    format,
    description,
    priority,
  });
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: [
      col('Name', 'string', 'Name must be unique within a namespace.', 0, 'name'),
      col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'),
      col('Status', 'string', 'The aggregate status of the containers in this pod.'),
      col(
        'Restarts',
        'string',
        'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.',
      ),
      col(
        'Age',
        'string',
        'CreationTimestamp is a timestamp representing the server time when this object was created.',
      ),
      col('IP', 'string', 'IP address allocated to the pod. Routable at least within the cluster.', 1),
      col('Node', 'string', 'NodeName is a request to schedule this pod onto a specific node.', 1),
      col(
        'Nominated Node',
        'string',
        'nominatedNodeName is set when this pod preempts other pods on the node.',
        1,
      ),
      col(
        'Readiness Gates',
        'string',
        'If specified, all readiness gates will be evaluated for pod readiness.',
        1,
      ),
    ],
    rows: pods.map((p) => {
      const ready = p.containers.filter((c) => c.state === 'running').length;
      const restarts = p.containers.reduce((n, c) => n + c.restartCount, 0);
      const waiting = p.containers.find((c) => c.state === 'waiting');
      const terminated = p.containers.find((c) => c.state === 'terminated');
      const status = waiting
        ? (waiting.reason ?? 'ContainerCreating')
        : terminated && podPhase(p) !== 'Running'
          ? (terminated.reason ?? (terminated.exitCode === 0 ? 'Completed' : 'Error'))
          : podPhase(p);
      const row: KubeJsonObject = {
        cells: [
          p.name,
          `${ready}/${p.containers.length}`,
          status,
          restarts,
          humanDuration(now - p.createdAt),
          p.nodeName === null ? '<none>' : p.podIP,
          p.nodeName ?? '<none>',
          '<none>',
          '<none>',
        ],
      };
      if (includeObject === 'Object') row.object = podJson(p);
      else if (includeObject !== 'None') {
        const full = podJson(p);
        row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: full.metadata };
      }
      return row;
    }),
  };
}
