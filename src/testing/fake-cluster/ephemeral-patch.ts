/**
 * The `ephemeralcontainers` subresource: PUT and the three patch types (strategic merge, JSON
 * merge, JSON patch) applied to `spec.ephemeralContainers`, the apiserver's validation (existing
 * entries are immutable, names unique, image required, target must exist), then the start of
 * each new container on the runtime `ephemeralContainerRuntime` picks.
 *
 * @module
 */
import type { ClusterContext } from './context.js';
import { badRequest, invalid, status } from './http.js';
import { type ContainerEntry, imageIdFor, type PodEntry } from './objects.js';
import { randomContainerId } from './runtimes/common.js';
import { allContainers } from './state.js';
import type { KubeJsonObject } from './types.js';

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

/** The ephemeral container list after applying a PUT body or a patch of `contentType`. */
export function applyEphemeralPatch(
  existing: readonly KubeJsonObject[],
  method: string,
  contentType: string,
  body: unknown,
): KubeJsonObject[] {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (method === 'PUT') return asList(specOf(body).ephemeralContainers);
  if (type === 'application/strategic-merge-patch+json') {
    const next = existing.map((e) => ({ ...e }));
    for (const item of asList(specOf(body).ephemeralContainers)) {
      const idx = next.findIndex((e) => e.name === item.name);
      const clean = Object.fromEntries(Object.entries(item).filter(([k]) => !k.startsWith('$')));
      if (idx >= 0) next[idx] = { ...next[idx], ...clean };
      else next.push(clean);
    }
    return next;
  }
  if (type === 'application/merge-patch+json') {
    const s = specOf(body);
    return 'ephemeralContainers' in s ? asList(s.ephemeralContainers) : [...existing];
  }
  if (type === 'application/json-patch+json') {
    if (!Array.isArray(body)) throw badRequest('json patch must be a list of operations');
    let next = existing.map((e) => ({ ...e }));
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
    return next;
  }
  throw status(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
  );
}

/** The entries `next` adds to `existing`, after the apiserver's validation (422 on failure). */
function validateAdded(
  pod: PodEntry,
  existing: readonly KubeJsonObject[],
  next: KubeJsonObject[],
): KubeJsonObject[] {
  for (const e of existing) {
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
  }
  const taken = new Set(allContainers(pod).map((c) => c.name));
  const added = next.filter((n) => !existing.some((e) => e.name === n.name));
  for (const [i, n] of added.entries()) {
    const field = `spec.ephemeralContainers[${existing.length + i}]`;
    if (typeof n.name !== 'string' || n.name === '')
      throw invalid('Pod', pod.name, `${field}.name`, 'FieldValueRequired', 'Required value');
    if (taken.has(n.name))
      throw invalid('Pod', pod.name, `${field}.name`, 'FieldValueDuplicate', `Duplicate value: "${n.name}"`);
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
  return added;
}

/** Adds one validated ephemeral container to the pod and starts it in the background. */
function startEphemeral(cluster: ClusterContext, pod: PodEntry, n: KubeJsonObject): void {
  const { state, options } = cluster;
  const name = n.name as string;
  const image = n.image as string;
  const targetName = typeof n.targetContainerName === 'string' ? n.targetContainerName : undefined;
  const target = targetName ? pod.containers.find((c) => c.name === targetName) : undefined;
  const choice = options.ephemeralContainerRuntime
    ? options.ephemeralContainerRuntime(image, {
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
    startedAt: state.clock(),
    restartCount: 0,
    logs: [],
  };
  pod.ephemeralContainers.push(entry);
  if (choice.waitingReason) {
    entry.containerId = undefined;
    return;
  }
  state.track(
    (async () => {
      try {
        await state.startEntry(pod, entry, target?.runtimeContainer);
        entry.state = 'running';
        entry.reason = undefined;
        entry.startedAt = state.clock();
      } catch (err) {
        entry.state = 'terminated';
        entry.exitCode = 128;
        entry.reason = 'StartError';
        // as the kubelet does: the runtime's error in the status, where a client can show it
        entry.message = (err instanceof Error ? err.message : String(err)).slice(0, 1024);
        entry.containerId = randomContainerId();
        entry.finishedAt = state.clock();
        state.logger.warn({ err: String(err), container: name }, 'ephemeral container failed to start');
      }
      pod.resourceVersion = state.bump();
    })(),
  );
}

/** Applies a PUT/PATCH of `pods/ephemeralcontainers` to the pod and starts what it adds. */
export async function patchEphemeral(
  cluster: ClusterContext,
  pod: PodEntry,
  method: string,
  contentType: string,
  body: unknown,
): Promise<void> {
  const existing = pod.ephemeralContainers.map((c) => c.specJson);
  const next = applyEphemeralPatch(existing, method, contentType, body);
  const added = validateAdded(pod, existing, next);
  if (added.length === 0) return;
  for (const n of added) startEphemeral(cluster, pod, n);
  pod.generation += 1;
  pod.resourceVersion = cluster.state.bump();
}
