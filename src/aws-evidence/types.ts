/**
 * Plain-data inputs of the AWS-side evidence steps, so they work with the library's own `Pod` and
 * `Node` objects as well as with anything a caller already has.
 */
import type { BundleWriter } from '../evidence/index.js';

/** The part of an evidence bundle writer the AWS-side steps use. */
export type AwsEvidenceWriter = Pick<
  BundleWriter,
  'acquisitionId' | 'writeArtifact' | 'recordArtifact' | 'log' | 'recordChange'
>;

/** The pod an acquisition is about. */
export interface PodRef {
  /** Namespace of the pod. */
  namespace: string;
  /** Pod name. */
  name: string;
  /** `metadata.uid`. */
  uid?: string | undefined;
  /** `spec.nodeName`. */
  nodeName?: string | undefined;
  /** Pod labels (Fargate pods carry `eks.amazonaws.com/fargate-profile`). */
  labels?: Readonly<Record<string, string>> | undefined;
}

/** The node a pod runs on. */
export interface NodeRef {
  /** Node name (`metadata.name`). */
  name: string;
  /** `spec.providerID`, e.g. `aws:///us-east-1a/i-0abc123…`. */
  providerID?: string | undefined;
  /** Node labels, e.g. `eks.amazonaws.com/compute-type: fargate`. */
  labels?: Readonly<Record<string, string>> | undefined;
}

/** A Kubernetes Pod object (the library's zod-inferred `Pod` fits). */
export interface PodObjectLike {
  /** Object metadata. */
  metadata?:
    | {
        /** Pod name. */
        name?: string | undefined;
        /** Namespace. */
        namespace?: string | undefined;
        /** Pod UID. */
        uid?: string | undefined;
        /** Pod labels. */
        labels?: Readonly<Record<string, string>> | null | undefined;
      }
    | undefined;
  /** Pod spec. */
  spec?:
    | {
        /** Node the pod is scheduled on. */
        nodeName?: string | undefined;
      }
    | undefined;
}

/** A Kubernetes Node object (the library's zod-inferred `Node` fits). */
export interface NodeObjectLike {
  /** Object metadata. */
  metadata?:
    | {
        /** Node name. */
        name?: string | undefined;
        /** Node labels. */
        labels?: Readonly<Record<string, string>> | null | undefined;
      }
    | undefined;
  /** Node spec. */
  spec?:
    | {
        /** e.g. `aws:///us-east-1a/i-0abc…`. */
        providerID?: string | undefined;
      }
    | undefined;
}

function isObjectLike(v: object): v is { metadata?: unknown } {
  return 'metadata' in v || 'spec' in v;
}

/** Normalises a {@link PodRef} or a Pod object. Returns undefined when name or namespace is missing. */
export function toPodRef(pod: PodRef | PodObjectLike | undefined): PodRef | undefined {
  if (!pod) return undefined;
  if (!isObjectLike(pod)) return pod as PodRef;
  const p = pod as PodObjectLike;
  const name = p.metadata?.name;
  const namespace = p.metadata?.namespace;
  if (!name || !namespace) return undefined;
  return {
    name,
    namespace,
    uid: p.metadata?.uid,
    nodeName: p.spec?.nodeName,
    labels: p.metadata?.labels ?? undefined,
  };
}

/** Normalises a {@link NodeRef} or a Node object. Returns undefined when the name is missing. */
export function toNodeRef(node: NodeRef | NodeObjectLike | undefined): NodeRef | undefined {
  if (!node) return undefined;
  if (!isObjectLike(node)) return node as NodeRef;
  const n = node as NodeObjectLike;
  const name = n.metadata?.name;
  if (!name) return undefined;
  return { name, providerID: n.spec?.providerID, labels: n.metadata?.labels ?? undefined };
}
