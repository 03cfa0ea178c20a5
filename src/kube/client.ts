/**
 * KubeClient: the Kubernetes REST calls eks-forensics needs, and exec over WebSocket.
 */
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { ConfigError, ExpiredError, LimitExceededError, TimeoutError, UnauthorizedError } from '../errors.js';
import { abortError } from '../util/index.js';
import { type CheckpointOptions, type CheckpointResult, checkpointContainer } from './checkpoint.js';
import { startExec } from './exec/session.js';
import { KubeTransport } from './http.js';
import {
  KUBE_RESOURCES,
  type KubeResourceKind,
  type KubeResourceObject,
  type ListObjectsOptions,
  type ListObjectsResult,
  listSchemaOf,
  resourcePath,
} from './resources.js';
import {
  eventListSchema,
  type KubeEvent,
  type Node,
  nodeSchema,
  type Pod,
  podListSchema,
  podSchema,
  selfSubjectAccessReviewSchema,
  selfSubjectReviewSchema,
  type UserInfo,
} from './schemas.js';
import type {
  CallOptions,
  CanIOptions,
  CanIResult,
  EphemeralContainerSpec,
  ExecOptions,
  ExecSession,
  KubeClientOptions,
  ListPodsOptions,
  PodEventsOptions,
  PodLogsOptions,
} from './types.js';

const seg = (s: string, what: string): string => {
  if (
    typeof s !== 'string' ||
    s.length === 0 ||
    s.length > 253 ||
    /[/\s?#%]/.test(s) ||
    s === '.' ||
    s === '..'
  ) {
    throw new ConfigError(`${what} ${JSON.stringify(s)} is not a valid Kubernetes name`);
  }
  return encodeURIComponent(s);
};

const MAX_LIST_RESTARTS = 3;

/**
 * A client for one Kubernetes API server.
 *
 * @example
 * ```ts
 * const kube = new KubeClient({ server, caData, token: () => auth.getToken({ clusterName }).then((t) => t.token) });
 * for await (const pod of kube.listPods({ namespace: 'default' })) console.log(pod.metadata.name);
 * const s = await kube.exec({ namespace: 'default', pod: 'web', command: ['cat', '/etc/os-release'] });
 * s.stdout.pipe(process.stdout);
 * const { exitCode } = await s.result;
 * ```
 */
export class KubeClient {
  readonly #t: KubeTransport;

  /** @throws {@link eks-forensics/errors!ConfigError} for a bad server URL, CA or token option. */
  constructor(options: KubeClientOptions) {
    this.#t = new KubeTransport(options);
  }

  /** The API server URL this client talks to. */
  get server(): string {
    return this.#t.url.toString();
  }

  /**
   * Lists pods in one namespace (or all), page by page (`limit`/`continue`).
   *
   * 410 Expired (continue token too old): when the 410 Status carries a fresh "inconsistent"
   * continue token, listing resumes with it (objects changed meanwhile may be missed or appear);
   * otherwise the list restarts from the beginning, skipping UIDs already yielded. After 3
   * restarts it throws {@link ExpiredError}.
   *
   * @throws UnauthorizedError, ForbiddenError, ValidationError, ApiUnavailableError, AbortedError.
   */
  async *listPods(options: ListPodsOptions = {}): AsyncIterable<Pod> {
    const base =
      options.namespace === undefined
        ? '/api/v1/pods'
        : `/api/v1/namespaces/${seg(options.namespace, 'namespace')}/pods`;
    const limit = Math.max(1, Math.min(options.limit ?? 500, 10_000));
    const seen = new Set<string>();
    let restarts = 0;
    let cont: string | undefined;
    for (;;) {
      const q = new URLSearchParams();
      q.set('limit', String(limit));
      if (options.labelSelector) q.set('labelSelector', options.labelSelector);
      if (options.fieldSelector) q.set('fieldSelector', options.fieldSelector);
      if (cont) q.set('continue', cont);
      let page: z.infer<typeof podListSchema>;
      try {
        page = await this.#t.json(
          {
            method: 'GET',
            path: `${base}?${q}`,
            idempotent: true,
            signal: options.signal,
            what: 'list pods',
          },
          podListSchema,
        );
      } catch (err) {
        if (err instanceof ExpiredError && cont !== undefined && restarts < MAX_LIST_RESTARTS) {
          restarts++;
          const fresh = (err.status as { continueToken?: string } | undefined)?.continueToken;
          this.#t.logger.warn(
            { restarts, resumed: fresh !== undefined },
            'kube: pod list continue token expired',
          );
          cont = fresh;
          continue;
        }
        throw err;
      }
      for (const pod of page.items ?? []) {
        const uid = pod.metadata.uid;
        if (uid !== undefined) {
          if (seen.has(uid)) continue;
          seen.add(uid);
        }
        yield pod;
      }
      cont = page.metadata?.continue || undefined;
      if (!cont) return;
    }
  }

  /** Gets one pod. @throws NotFoundError when it does not exist. */
  async getPod(namespace: string, name: string, options: CallOptions = {}): Promise<Pod> {
    return this.#t.json(
      {
        method: 'GET',
        path: `/api/v1/namespaces/${seg(namespace, 'namespace')}/pods/${seg(name, 'pod')}`,
        idempotent: true,
        signal: options.signal,
        what: `get pod ${namespace}/${name}`,
      },
      podSchema,
    );
  }

  /**
   * Streams a container's log. The Readable has backpressure (the socket pauses when not read)
   * and is destroyed with AbortedError when the signal fires, or with an error when the
   * connection breaks or stays idle longer than the client's `timeoutMs`.
   *
   * @throws BadRequestError (container waiting, no previous instance…), NotFoundError, ForbiddenError.
   */
  async podLogs(options: PodLogsOptions): Promise<Readable> {
    const q = new URLSearchParams();
    q.set('container', options.container);
    if (options.previous) q.set('previous', 'true');
    if (options.timestamps) q.set('timestamps', 'true');
    if (options.sinceSeconds !== undefined) q.set('sinceSeconds', String(Math.floor(options.sinceSeconds)));
    if (options.sinceTime !== undefined) {
      q.set(
        'sinceTime',
        options.sinceTime instanceof Date ? options.sinceTime.toISOString() : options.sinceTime,
      );
    }
    if (options.limitBytes !== undefined) q.set('limitBytes', String(Math.floor(options.limitBytes)));
    const what = `logs of ${options.namespace}/${options.pod}/${options.container}`;
    const path = `/api/v1/namespaces/${seg(options.namespace, 'namespace')}/pods/${seg(options.pod, 'pod')}/log?${q}`;
    const headerTimeout = AbortSignal.timeout(this.#t.timeoutMs);
    const res = await this.#t.open(
      { method: 'GET', path, idempotent: true, signal: options.signal, what },
      headerTimeout,
    );
    const signal = this.#t.combineSignal(options.signal);
    const onAbort = () => res.destroy(abortError(signal as AbortSignal, what));
    if (signal) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      res.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    res.setTimeout(this.#t.timeoutMs, () =>
      res.destroy(new TimeoutError(`${what}: no data for ${this.#t.timeoutMs} ms; the stream was closed`)),
    );
    return res;
  }

  /** Events whose `involvedObject` is the pod (by UID when given, else by name). */
  async podEvents(options: PodEventsOptions): Promise<KubeEvent[]> {
    const sel: string[] = [];
    if (options.uid) sel.push(`involvedObject.uid=${options.uid}`);
    if (options.name) sel.push(`involvedObject.name=${options.name}`);
    if (sel.length === 0) throw new ConfigError('podEvents needs the pod uid or name');
    const max = options.maxEvents ?? 10_000;
    const out: KubeEvent[] = [];
    let cont: string | undefined;
    do {
      const q = new URLSearchParams({ fieldSelector: sel.join(','), limit: '500' });
      if (cont) q.set('continue', cont);
      const page = await this.#t.json(
        {
          method: 'GET',
          path: `/api/v1/namespaces/${seg(options.namespace, 'namespace')}/events?${q}`,
          idempotent: true,
          signal: options.signal,
          what: 'list events',
        },
        eventListSchema,
      );
      for (const e of page.items ?? []) {
        if (out.length >= max) {
          throw new LimitExceededError(`pod has more than ${max} events; raise maxEvents`, {
            limit: 'maxEvents',
          });
        }
        out.push(e);
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  /** Who am I (SelfSubjectReview, `authentication.k8s.io/v1`, Kubernetes ≥ 1.28). */
  async selfSubjectReview(options: CallOptions = {}): Promise<UserInfo> {
    const r = await this.#t.json(
      {
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
        idempotent: true,
        signal: options.signal,
        what: 'SelfSubjectReview',
      },
      selfSubjectReviewSchema,
    );
    const info = r.status?.userInfo;
    if (!info) throw new UnauthorizedError('SelfSubjectReview returned no userInfo');
    return { ...info, groups: info.groups ?? [], extra: info.extra ?? {} };
  }

  /** Asks the server whether the current identity may do something (SelfSubjectAccessReview). */
  async canI(options: CanIOptions): Promise<CanIResult> {
    const attrs: Record<string, string> = {
      verb: options.verb,
      resource: options.resource,
      group: options.group ?? '',
    };
    if (options.subresource) attrs.subresource = options.subresource;
    if (options.namespace) attrs.namespace = options.namespace;
    if (options.name) attrs.name = options.name;
    const r = await this.#t.json(
      {
        method: 'POST',
        path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: attrs },
        },
        idempotent: true,
        signal: options.signal,
        what: 'SelfSubjectAccessReview',
      },
      selfSubjectAccessReviewSchema,
    );
    const s = r.status;
    const reason = s?.reason || s?.evaluationError || undefined;
    return reason === undefined ? { allowed: s?.allowed === true } : { allowed: s?.allowed === true, reason };
  }

  /** Gets a node. @throws NotFoundError, ForbiddenError. */
  async getNode(name: string, options: CallOptions = {}): Promise<Node> {
    return this.#t.json(
      {
        method: 'GET',
        path: `/api/v1/nodes/${seg(name, 'node')}`,
        idempotent: true,
        signal: options.signal,
        what: `get node ${name}`,
      },
      nodeSchema,
    );
  }

  /**
   * Gets one object of a kind in {@link KUBE_RESOURCES} (ServiceAccount, Role, Deployment…).
   *
   * @throws NotFoundError, ForbiddenError (the message names the missing verb and resource).
   */
  async getObject<K extends KubeResourceKind>(
    kind: K,
    namespace: string | undefined,
    name: string,
    options: CallOptions = {},
  ): Promise<KubeResourceObject<K>> {
    const ns = KUBE_RESOURCES[kind].namespaced ? seg(namespace ?? '', 'namespace') : undefined;
    const schema = KUBE_RESOURCES[kind].schema as unknown as z.ZodType<KubeResourceObject<K>>;
    return this.#t.json(
      {
        method: 'GET',
        path: `${resourcePath(kind, ns === undefined ? undefined : decodeURIComponent(ns))}/${seg(name, kind)}`,
        idempotent: true,
        signal: options.signal,
        what: `get ${kind} ${ns === undefined ? '' : `${namespace}/`}${name}`,
      },
      schema,
    );
  }

  /**
   * Lists the objects of a kind in {@link KUBE_RESOURCES}, page by page, up to `maxItems`.
   *
   * @throws ForbiddenError, ExpiredError (continue token expired), AbortedError.
   */
  async listObjects<K extends KubeResourceKind>(
    kind: K,
    options: ListObjectsOptions = {},
  ): Promise<ListObjectsResult<KubeResourceObject<K>>> {
    const namespaced = KUBE_RESOURCES[kind].namespaced;
    if (namespaced && options.namespace !== undefined) seg(options.namespace, 'namespace');
    const base = resourcePath(kind, namespaced ? options.namespace : undefined);
    const max = Math.max(1, Math.min(options.maxItems ?? 5_000, 100_000));
    const schema = listSchemaOf(kind);
    const items: KubeResourceObject<K>[] = [];
    let cont: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(Math.min(500, max - items.length + 1)) });
      if (options.fieldSelector) q.set('fieldSelector', options.fieldSelector);
      if (options.labelSelector) q.set('labelSelector', options.labelSelector);
      if (cont) q.set('continue', cont);
      const page = await this.#t.json(
        {
          method: 'GET',
          path: `${base}?${q}`,
          idempotent: true,
          signal: options.signal,
          what: `list ${kind}`,
        },
        schema,
      );
      for (const o of page.items ?? []) {
        if (items.length >= max) return { items, truncated: true };
        items.push(o as KubeResourceObject<K>);
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, truncated: false };
  }

  /**
   * Adds ephemeral containers to a pod (strategic-merge PATCH of `pods/ephemeralcontainers`, as
   * `kubectl debug` does). This changes the pod permanently; never retried.
   *
   * @throws NotFoundError (pod missing, or ephemeral containers disabled when `status.details.name` is empty),
   *   BadRequestError (invalid or duplicate), ForbiddenError.
   */
  async patchEphemeralContainers(
    namespace: string,
    pod: string,
    containers: EphemeralContainerSpec[],
    options: CallOptions = {},
  ): Promise<Pod> {
    const body = {
      spec: {
        ephemeralContainers: containers.map((c) => ({
          terminationMessagePolicy: 'File',
          resources: {},
          ...c,
        })),
      },
    };
    return this.#t.json(
      {
        method: 'PATCH',
        path: `/api/v1/namespaces/${seg(namespace, 'namespace')}/pods/${seg(pod, 'pod')}/ephemeralcontainers`,
        body,
        contentType: 'application/strategic-merge-patch+json',
        idempotent: false,
        signal: options.signal,
        what: `add ephemeral container to ${namespace}/${pod}`,
      },
      podSchema,
    );
  }

  /**
   * Asks the node's kubelet to checkpoint a container (`POST /api/v1/nodes/<node>/proxy/checkpoint/…`).
   * The archive is written on the node and stays there; it holds all the container's memory.
   * Never retried. @throws CheckpointError naming the missing piece (rbac, feature-gate, runtime, target).
   */
  async checkpointContainer(options: CheckpointOptions): Promise<CheckpointResult> {
    return checkpointContainer(this.#t, options);
  }

  /**
   * Runs a command in a container over WebSocket (`v5.channel.k8s.io`, else `v4.channel.k8s.io`).
   * Resolves once the upgrade succeeded; errors before the upgrade reject with the typed error
   * and the server's Status (UnauthorizedError, ForbiddenError, NotFoundError, BadRequestError…).
   * See {@link ExecSession} for streams and `result`.
   */
  async exec(options: ExecOptions): Promise<ExecSession> {
    seg(options.namespace, 'namespace');
    seg(options.pod, 'pod');
    return startExec(this.#t, options);
  }
}
