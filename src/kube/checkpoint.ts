/**
 * Kubelet checkpoint through the API server's node proxy (KEP-2008): the request, the answer's
 * schema, and the mapping of each failure to the piece that is missing.
 */
import { z } from 'zod';
import {
  CheckpointError,
  EksForensicsError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
} from '../errors.js';
import type { KubeTransport } from './http.js';
import type { CallOptions } from './types.js';

/** Options of {@link eks-forensics!KubeClient.checkpointContainer}. */
export interface CheckpointOptions extends CallOptions {
  /** Node the pod runs on (`spec.nodeName`). */
  node: string;
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Container name. */
  container: string;
  /** Seconds the kubelet may take (its `timeout` query parameter; kubelet default 60). */
  timeoutSeconds?: number | undefined;
}

/** A checkpoint taken: the archive stays on the node. */
export interface CheckpointResult {
  /** Node whose kubelet wrote the archive. */
  node: string;
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Container name. */
  container: string;
  /** Archive paths on the node, as the kubelet reported them. */
  archives: string[];
  /** When the request was answered (ISO 8601). */
  at: string;
}

/** The kubelet's answer: `{"items": ["/var/lib/kubelet/checkpoints/checkpoint-…tar"]}`. */
export const checkpointResponseSchema = z.object({
  items: z
    .array(
      z
        .string()
        .max(4096)
        .regex(/^\/[^\0\n]*\.tar$/, 'an absolute path of a .tar archive'),
    )
    .min(1)
    .max(16),
});

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Sends the checkpoint request; maps failures to {@link CheckpointError} with `missing` set. */
export async function checkpointContainer(t: KubeTransport, o: CheckpointOptions): Promise<CheckpointResult> {
  for (const [k, v] of [
    ['node', o.node],
    ['namespace', o.namespace],
    ['pod', o.pod],
    ['container', o.container],
  ] as const) {
    if (typeof v !== 'string' || !NAME.test(v))
      throw new CheckpointError(`invalid ${k} name ${JSON.stringify(v)}`, { missing: 'target' });
  }
  const timeout =
    o.timeoutSeconds !== undefined && Number.isInteger(o.timeoutSeconds) && o.timeoutSeconds > 0
      ? `?timeout=${o.timeoutSeconds}`
      : '';
  const what = `checkpoint ${o.namespace}/${o.pod}/${o.container} on node ${o.node}`;
  try {
    const r = await t.json(
      {
        method: 'POST',
        path: `/api/v1/nodes/${o.node}/proxy/checkpoint/${o.namespace}/${o.pod}/${o.container}${timeout}`,
        idempotent: false,
        signal: o.signal,
        what,
      },
      checkpointResponseSchema,
    );
    return {
      node: o.node,
      namespace: o.namespace,
      pod: o.pod,
      container: o.container,
      archives: r.items,
      at: new Date().toISOString(),
    };
  } catch (err) {
    throw explainCheckpointError(err, what);
  }
}

/** Names the missing piece for a failed checkpoint request (other errors pass through). */
export function explainCheckpointError(err: unknown, what: string): unknown {
  if (!(err instanceof EksForensicsError) || err instanceof UnauthorizedError) return err;
  const base = { cause: err, status: err.status, httpStatus: err.httpStatus };
  const msg = err.message;
  if (err instanceof ForbiddenError) {
    return new CheckpointError(
      `${what}: RBAC denies "create" on "nodes/proxy" (403). Grant it to this identity (a ClusterRole rule: apiGroups [""], resources ["nodes/proxy"], verbs ["create"]); it reaches the kubelet API, so grant it only for the response.`,
      { ...base, missing: 'rbac' },
    );
  }
  if (err instanceof NotFoundError) {
    if (/does not exist|not found: pod|no such container/i.test(msg) && !/404 page not found/.test(msg)) {
      return new CheckpointError(`${what}: the kubelet does not know this pod or container (404): ${msg}`, {
        ...base,
        missing: 'target',
      });
    }
    if (err.status?.details?.kind === 'nodes') {
      return new CheckpointError(`${what}: node not found (404). Use the pod's spec.nodeName.`, {
        ...base,
        missing: 'target',
      });
    }
    return new CheckpointError(
      `${what}: the kubelet has no checkpoint endpoint (404): its ContainerCheckpoint feature gate is off (beta and on by default since Kubernetes 1.30). Enable it in the kubelet configuration (featureGates: ContainerCheckpoint: true).`,
      { ...base, missing: 'feature-gate' },
    );
  }
  if (err.httpStatus !== undefined && err.httpStatus >= 500) {
    return new CheckpointError(
      `${what}: the container runtime could not checkpoint (${err.httpStatus}): ${msg.slice(0, 400)}. Checkpointing needs a runtime that implements it (CRI-O with CRIU, or containerd 2.0+ with CRIU on the node); EKS AMIs with containerd 1.x answer "Unimplemented".`,
      { ...base, missing: 'runtime' },
    );
  }
  return err;
}
