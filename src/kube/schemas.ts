/**
 * zod schemas for the Kubernetes objects KubeClient reads. Objects are "loose": fields we do not
 * name are kept as they came, so `JSON.stringify(pod)` is the server's object (for evidence),
 * while the fields we rely on are type-checked.
 */
import { z } from 'zod';

const str = z.string().max(1_000_000);
const stringMap = z.record(z.string(), z.string());

/** `metadata.ownerReferences[]`. */
export const ownerReferenceSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  name: str.optional(),
  uid: str.optional(),
  controller: z.boolean().optional(),
});

/** `metav1.ObjectMeta` (the fields we read). */
export const objectMetaSchema = z.looseObject({
  name: str.optional(),
  namespace: str.optional(),
  uid: str.optional(),
  resourceVersion: str.optional(),
  generation: z.number().optional(),
  creationTimestamp: str.nullable().optional(),
  deletionTimestamp: str.nullable().optional(),
  labels: stringMap.nullable().optional(),
  annotations: stringMap.nullable().optional(),
  ownerReferences: z.array(ownerReferenceSchema).nullable().optional(),
});

/** A container in `spec.containers`, `spec.initContainers` or `spec.ephemeralContainers`. */
export const containerSchema = z.looseObject({
  name: str,
  image: str.optional(),
  command: z.array(str).nullable().optional(),
  args: z.array(str).nullable().optional(),
  workingDir: str.optional(),
  restartPolicy: str.optional(),
  targetContainerName: str.optional(),
  securityContext: z.looseObject({}).nullable().optional(),
});

const containerStateSchema = z.looseObject({
  waiting: z.looseObject({ reason: str.optional(), message: str.optional() }).nullable().optional(),
  running: z.looseObject({ startedAt: str.nullable().optional() }).nullable().optional(),
  terminated: z
    .looseObject({
      exitCode: z.number().int().optional(),
      signal: z.number().int().optional(),
      reason: str.optional(),
      message: str.optional(),
      startedAt: str.nullable().optional(),
      finishedAt: str.nullable().optional(),
      containerID: str.optional(),
    })
    .nullable()
    .optional(),
});

/** `status.containerStatuses[]` (also init and ephemeral). Join to the spec by `name`, never by index. */
export const containerStatusSchema = z.looseObject({
  name: str,
  ready: z.boolean().optional(),
  restartCount: z.number().int().optional(),
  image: str.optional(),
  imageID: str.optional(),
  containerID: str.optional(),
  started: z.boolean().optional(),
  state: containerStateSchema.optional(),
  lastState: containerStateSchema.optional(),
});

/** Metadata of a stored object as a real API server returns it: the name is always present. */
const storedMetaSchema = objectMetaSchema.extend({ name: str });

/** A `v1.Pod` (metadata `name` and `namespace` are required). */
export const podSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: storedMetaSchema.extend({ namespace: str }),
  spec: z
    .looseObject({
      nodeName: str.optional(),
      serviceAccountName: str.optional(),
      shareProcessNamespace: z.boolean().optional(),
      containers: z.array(containerSchema).max(10_000),
      initContainers: z.array(containerSchema).max(10_000).nullable().optional(),
      ephemeralContainers: z.array(containerSchema).max(10_000).nullable().optional(),
    })
    .optional(),
  status: z
    .looseObject({
      phase: str.optional(),
      podIP: str.optional(),
      hostIP: str.optional(),
      startTime: str.nullable().optional(),
      containerStatuses: z.array(containerStatusSchema).max(10_000).nullable().optional(),
      initContainerStatuses: z.array(containerStatusSchema).max(10_000).nullable().optional(),
      ephemeralContainerStatuses: z.array(containerStatusSchema).max(10_000).nullable().optional(),
    })
    .optional(),
});

/** `metav1.ListMeta`. */
export const listMetaSchema = z.looseObject({
  resourceVersion: str.optional(),
  continue: str.optional(),
  remainingItemCount: z.number().int().optional(),
});

/** A `v1.PodList`. */
export const podListSchema = z.looseObject({
  kind: str.optional(),
  metadata: listMetaSchema.optional(),
  items: z.array(podSchema).nullable(),
});

/** A `v1.Node` (the fields we read; metadata `name` is required). */
export const nodeSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: storedMetaSchema,
  spec: z.looseObject({ providerID: str.optional() }).optional(),
  status: z
    .looseObject({
      addresses: z
        .array(z.looseObject({ type: str.optional(), address: str.optional() }))
        .nullable()
        .optional(),
      nodeInfo: z.looseObject({}).optional(),
    })
    .optional(),
});

/** A core `v1.Event`. */
export const eventSchema = z.looseObject({
  metadata: objectMetaSchema,
  involvedObject: z
    .looseObject({
      kind: str.optional(),
      namespace: str.optional(),
      name: str.optional(),
      uid: str.optional(),
      fieldPath: str.optional(),
    })
    .optional(),
  reason: str.optional(),
  message: str.optional(),
  type: str.optional(),
  count: z.number().int().optional(),
  firstTimestamp: str.nullable().optional(),
  lastTimestamp: str.nullable().optional(),
  eventTime: str.nullable().optional(),
  reportingComponent: str.optional(),
  source: z.looseObject({ component: str.optional(), host: str.optional() }).optional(),
});

/** A `v1.EventList`. */
export const eventListSchema = z.looseObject({
  metadata: listMetaSchema.optional(),
  items: z.array(eventSchema).nullable(),
});

/** `authentication.k8s.io/v1` `UserInfo`. */
export const userInfoSchema = z.object({
  username: str.optional(),
  uid: str.optional(),
  groups: z.array(str).max(10_000).optional(),
  extra: z.record(z.string(), z.array(str)).optional(),
});

/** `SelfSubjectReview` response. */
export const selfSubjectReviewSchema = z.looseObject({
  status: z.looseObject({ userInfo: userInfoSchema.optional() }).optional(),
});

/** `SelfSubjectAccessReview` response. */
export const selfSubjectAccessReviewSchema = z.looseObject({
  status: z
    .looseObject({
      allowed: z.boolean(),
      denied: z.boolean().optional(),
      reason: str.optional(),
      evaluationError: str.optional(),
    })
    .optional(),
});

/** A `metav1.Status` error body, including `metadata.continue` (present on some 410 answers). */
export const errorStatusSchema = z.looseObject({
  kind: str.optional(),
  apiVersion: str.optional(),
  metadata: listMetaSchema.optional(),
  status: str.optional(),
  message: str.optional(),
  reason: str.optional(),
  code: z.number().int().optional(),
  details: z
    .looseObject({
      name: str.optional(),
      kind: str.optional(),
      group: str.optional(),
      causes: z
        .array(z.object({ reason: str.optional(), message: str.optional(), field: str.optional() }))
        .max(1000)
        .optional(),
    })
    .optional(),
});

/** A pod, as validated by {@link podSchema}. Unknown fields are kept. */
export type Pod = z.infer<typeof podSchema>;
/** A container spec entry. */
export type Container = z.infer<typeof containerSchema>;
/** A container status entry. */
export type ContainerStatus = z.infer<typeof containerStatusSchema>;
/** A node, as validated by {@link nodeSchema}. */
export type Node = z.infer<typeof nodeSchema>;
/** A core event. */
export type KubeEvent = z.infer<typeof eventSchema>;
/** Who the API server thinks we are (SelfSubjectReview). */
export type UserInfo = z.infer<typeof userInfoSchema>;
