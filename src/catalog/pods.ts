import type { Container, ContainerStatus, Pod } from '../kube/index.js';
import type { ComputeType, ContainerInfo, ContainerKind, PodInfo, VisibilityPolicy } from './types.js';

/** Namespaces hidden by default: cluster system namespaces of EKS, GKE, AKS, Calico and Tigera. */
export const DEFAULT_HIDDEN_NAMESPACES: readonly string[] = Object.freeze([
  'kube-system',
  'kube-public',
  'kube-node-lease',
  'gke-gmp-system',
  'aks-command',
  'gmp-system',
  'calico-system',
  'tigera-operator',
]);

/** Images hidden by default: distroless images have no shell for exec-based acquisition. */
export const DEFAULT_HIDDEN_IMAGES: readonly (string | RegExp)[] = Object.freeze(['gcr.io/distroless']);

/** The default visibility policy. */
export const DEFAULT_VISIBILITY: VisibilityPolicy = Object.freeze({
  hiddenNamespaces: DEFAULT_HIDDEN_NAMESPACES,
  hiddenImages: DEFAULT_HIDDEN_IMAGES,
});

/** Fills a partial policy with the defaults. */
export function resolveVisibility(partial: Partial<VisibilityPolicy> | undefined): VisibilityPolicy {
  return {
    hiddenNamespaces: partial?.hiddenNamespaces ?? DEFAULT_HIDDEN_NAMESPACES,
    hiddenImages: partial?.hiddenImages ?? DEFAULT_HIDDEN_IMAGES,
  };
}

const DIGEST_RE = /sha256:[0-9a-f]{64}/;

/** The `sha256:…` digest in an `imageID` (`docker-pullable://repo@sha256:…`, `repo@sha256:…`, `sha256:…`). */
export function imageDigestOf(imageID: string | undefined, image?: string | undefined): string | undefined {
  const fromId = imageID ? DIGEST_RE.exec(imageID)?.[0] : undefined;
  if (fromId) return fromId;
  const at = image?.indexOf('@') ?? -1;
  return at >= 0 && image ? DIGEST_RE.exec(image.slice(at))?.[0] : undefined;
}

function imageHidden(image: string | undefined, policy: VisibilityPolicy): string | undefined {
  if (!image) return undefined;
  for (const p of policy.hiddenImages) {
    const hit = typeof p === 'string' ? image.includes(p) : p.test(image);
    if (hit) {
      return `image ${image} matches hidden image pattern ${String(p)} (distroless: no shell; use an ephemeral debug container)`;
    }
  }
  return undefined;
}

function containerInfo(
  spec: Container,
  kind: ContainerKind,
  status: ContainerStatus | undefined,
  policy: VisibilityPolicy,
): ContainerInfo {
  const st = status?.state;
  let state: ContainerInfo['state'] = 'unknown';
  let stateReason: string | undefined;
  let exitCode: number | undefined;
  let startedAt: string | undefined;
  if (st?.running) {
    state = 'running';
    startedAt = st.running.startedAt ?? undefined;
  } else if (st?.terminated) {
    state = 'terminated';
    stateReason = st.terminated.reason;
    exitCode = st.terminated.exitCode;
    startedAt = st.terminated.startedAt ?? undefined;
  } else if (st?.waiting) {
    state = 'waiting';
    stateReason = st.waiting.reason;
  }
  const image = spec.image ?? status?.image;
  const hiddenReason = imageHidden(image, policy) ?? imageHidden(status?.image, policy);
  const info: ContainerInfo = {
    name: spec.name,
    kind,
    image,
    imageDigest: imageDigestOf(status?.imageID, image),
    imageID: status?.imageID || undefined,
    containerId: status?.containerID || undefined,
    state,
    stateReason,
    exitCode,
    startedAt,
    restartCount: status?.restartCount ?? 0,
    ready: status?.ready,
    hidden: hiddenReason !== undefined,
    hiddenReason,
  };
  if (kind === 'ephemeral' && spec.targetContainerName) info.targetContainerName = spec.targetContainerName;
  return info;
}

/** EC2 or Fargate, from the node name, pod labels and (when known) the node's labels. */
export function computeTypeOf(pod: Pod, nodeLabels?: Readonly<Record<string, string>> | null): ComputeType {
  const node = pod.spec?.nodeName;
  const labels = pod.metadata.labels ?? {};
  if (nodeLabels?.['eks.amazonaws.com/compute-type'] === 'fargate') return 'Fargate';
  if (node?.startsWith('fargate-')) return 'Fargate';
  if (labels['eks.amazonaws.com/fargate-profile'] !== undefined) return 'Fargate';
  return node ? 'EC2' : 'unknown';
}

/**
 * Turns a pod into a {@link PodInfo}: containers of every kind with their status joined by
 * name (never by index), image digests, and the visibility verdict.
 */
export function toPodInfo(
  pod: Pod,
  policy: VisibilityPolicy,
  nodeLabels?: Readonly<Record<string, string>> | null,
): PodInfo {
  const byName = (list: readonly ContainerStatus[] | null | undefined) =>
    new Map((list ?? []).map((s) => [s.name, s] as const));
  const regular = byName(pod.status?.containerStatuses);
  const init = byName(pod.status?.initContainerStatuses);
  const eph = byName(pod.status?.ephemeralContainerStatuses);
  const containers: ContainerInfo[] = [];
  for (const c of pod.spec?.initContainers ?? []) {
    containers.push(
      containerInfo(c, c.restartPolicy === 'Always' ? 'sidecar' : 'init', init.get(c.name), policy),
    );
  }
  for (const c of pod.spec?.containers ?? [])
    containers.push(containerInfo(c, 'container', regular.get(c.name), policy));
  for (const c of pod.spec?.ephemeralContainers ?? []) {
    containers.push(containerInfo(c, 'ephemeral', eph.get(c.name), policy));
  }
  const namespace = pod.metadata.namespace ?? 'default';
  let hiddenReason: string | undefined;
  if (policy.hiddenNamespaces.includes(namespace)) {
    hiddenReason = `namespace ${namespace} is a system namespace (hidden by default; pass includeHidden)`;
  } else if (containers.length > 0 && containers.every((c) => c.hidden)) {
    hiddenReason = 'every container is hidden (distroless images)';
  }
  return {
    namespace,
    name: pod.metadata.name ?? '',
    uid: pod.metadata.uid,
    node: pod.spec?.nodeName,
    computeType: computeTypeOf(pod, nodeLabels),
    phase: pod.status?.phase,
    podIP: pod.status?.podIP,
    serviceAccount: pod.spec?.serviceAccountName,
    labels: { ...(pod.metadata.labels ?? {}) },
    containers,
    hidden: hiddenReason !== undefined,
    hiddenReason,
    raw: pod,
  };
}
