/**
 * Adds an ephemeral debug container to a pod (opt-in), waits until it runs, finds the target's
 * process in the shared PID namespace and builds the view the collector reads the target through:
 * files under `/proc/<pid>/root`, processes through a proc view without the debug container's own
 * processes. Every change to the pod is recorded in the bundle's custody record as it happens.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BadRequestError,
  EphemeralContainerError,
  type EphemeralFailure,
  isEksForensicsError,
  NotFoundError,
} from '../../errors.js';
import type { ArtifactBody, ArtifactMeta, ArtifactRecord, TargetChange } from '../../evidence/index.js';
import type {
  CallOptions,
  CanIOptions,
  CanIResult,
  ContainerStatus,
  EphemeralContainerSpec,
  Pod,
} from '../../kube/index.js';
import type { CollectorKube, FsView } from '../types.js';
import {
  chooseTargetProcess,
  type ProcessScan,
  parseScan,
  scanArgv,
  type TargetChoice,
  viewArgv,
} from './discover.js';
import { captureExec } from './exec.js';
import { ephemeralGrantText } from './rbac.js';
import {
  addedCapabilities,
  type DebugProfile,
  debugContainerName,
  debugContainerSpec,
  type EphemeralContainerOptions,
  ephemeralPatchBody,
  type ResolvedEphemeralOptions,
  resolveEphemeralOptions,
} from './spec.js';

/** The cluster calls the ephemeral path makes (a `KubeClient` has them all). */
export interface EphemeralKube extends CollectorKube {
  /** Strategic-merge PATCH of `pods/<pod>/ephemeralcontainers`. */
  patchEphemeralContainers(
    namespace: string,
    pod: string,
    containers: EphemeralContainerSpec[],
    options?: CallOptions,
  ): Promise<Pod>;
  /** SelfSubjectAccessReview, for the preflight (skipped when absent). */
  canI?(options: CanIOptions): Promise<CanIResult>;
}

/** Where the ephemeral path records what it did (a `BundleWriter` fits). */
export interface EphemeralRecorder {
  /** Records the change to the pod in the custody record. */
  recordChange(change: TargetChange): void;
  /** Adds a line to the acquisition log. */
  log(event: Record<string, unknown>): void;
  /** Stores the debug container's own artifacts (under `ephemeral/<name>/`). */
  writeArtifact(path: string, body: ArtifactBody, meta: ArtifactMeta): Promise<ArtifactRecord>;
}

/** Input of {@link attachDebugContainer}. */
export interface AttachInput {
  /** Cluster client (a `KubeClient`). */
  kube: EphemeralKube;
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** The target container (`targetContainerName`). */
  container: string;
  /** The pod as already read (read again when absent). */
  podObject?: Pod | undefined;
  /** Where to record the change and the debug container's own artifacts. */
  recorder?: EphemeralRecorder | undefined;
  /** Cancels the wait and the execs (the container, once added, stays). */
  signal?: AbortSignal | undefined;
}

/** A running debug container attached to a target, and how to read the target through it. */
export interface DebugAttachment {
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Name of the ephemeral container (exec into this one). */
  containerName: string;
  /** Image of the debug container. */
  image: string;
  /** Security profile used. */
  profile: DebugProfile;
  /** Security context sent. */
  securityContext: Record<string, unknown> | undefined;
  /** Capabilities added (`ALL (privileged)` for sysadmin). */
  capabilities: string[];
  /** The target container. */
  targetContainerName: string;
  /** Whether an existing debug container of ours was reused (the pod was not changed this time). */
  reused: boolean;
  /** When the PATCH was answered (UTC ISO; of the earlier acquisition when reused). */
  addedAt: string | undefined;
  /** When the debug container was seen running (UTC ISO). */
  runningAt: string;
  /** Debug container's runtime ID. */
  containerId: string | undefined;
  /** The target's main process in the shared PID namespace, and how it was chosen. */
  target: TargetChoice;
  /** What to give the collector: exec container and file/proc view. */
  fs: FsView;
  /** Why the proc view could not be built (the debug container's processes then show up in /proc). */
  viewProblem: string | undefined;
  /** The custody change recorded (undefined when reused). */
  change: TargetChange | undefined;
  /** The raw scan (the debug container's own activity, stored apart from the target's evidence). */
  scan: ProcessScan;
}

const IMAGE_PULL = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'RegistryUnavailable',
  'ImageInspectError',
]);
const START_FAILED = new Set([
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'StartError',
]);

function fail(
  failure: EphemeralFailure,
  message: string,
  opts: { cause?: unknown; podChanged?: boolean; containerName?: string | undefined } = {},
): EphemeralContainerError {
  return new EphemeralContainerError(message, {
    failure,
    ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
    podChanged: opts.podChanged ?? false,
    containerName: opts.containerName,
    ...(isEksForensicsError(opts.cause) && opts.cause.status ? { status: opts.cause.status } : {}),
    ...(isEksForensicsError(opts.cause) && opts.cause.httpStatus
      ? { httpStatus: opts.cause.httpStatus }
      : {}),
  });
}

function statusOf(pod: Pod, name: string): ContainerStatus | undefined {
  return (pod.status?.ephemeralContainerStatuses ?? []).find((s) => s.name === name);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function runAsUserOf(pod: Pod, container: string): number | undefined {
  const c = pod.spec?.containers.find((x) => x.name === container);
  const v = (c?.securityContext as { runAsUser?: unknown } | null | undefined)?.runAsUser;
  const podV = (pod.spec as { securityContext?: { runAsUser?: unknown } } | undefined)?.securityContext
    ?.runAsUser;
  const u = typeof v === 'number' ? v : typeof podV === 'number' ? podV : undefined;
  return u !== undefined && Number.isInteger(u) && u >= 0 ? u : undefined;
}

/** Explains a failed PATCH with what to grant or change. */
export function explainPatchError(
  err: unknown,
  namespace: string,
  pod: string,
  name: string,
): EphemeralContainerError {
  const msg = err instanceof Error ? err.message : String(err);
  const serverMsg = isEksForensicsError(err) ? (err.status?.message ?? msg) : msg;
  const httpStatus = isEksForensicsError(err) ? err.httpStatus : undefined;
  if (/PodSecurity/i.test(serverMsg) && (httpStatus === 403 || httpStatus === 422 || httpStatus === 400)) {
    return fail(
      'pod-security',
      `Pod Security admission rejected the debug container for ${namespace}/${pod}: ${serverMsg.slice(0, 500)}. ` +
        `The default profile 'general' adds SYS_PTRACE, which only the 'privileged' Pod Security level allows. ` +
        `Use profile 'baseline' (no added capability; set runAsUser to the target's UID) or 'restricted' in a restricted namespace, ` +
        `or have a cluster admin relax the namespace: kubectl label namespace ${namespace} pod-security.kubernetes.io/enforce=privileged --overwrite`,
      { cause: err, containerName: name },
    );
  }
  if (/admission webhook/i.test(serverMsg)) {
    return fail(
      'rejected',
      `an admission webhook rejected the debug container for ${namespace}/${pod}: ${serverMsg.slice(0, 500)}. Ask the policy owner for an exception for ephemeral containers with this image and profile`,
      { cause: err, containerName: name },
    );
  }
  if (httpStatus === 403) {
    return fail(
      'forbidden',
      `not allowed to add an ephemeral container to ${namespace}/${pod} (403 on pods/ephemeralcontainers): ${serverMsg.slice(0, 300)}. ${ephemeralGrantText(namespace)}`,
      { cause: err, containerName: name },
    );
  }
  if (err instanceof NotFoundError || httpStatus === 404) {
    const detailName = isEksForensicsError(err) ? err.status?.details?.name : undefined;
    if (detailName === pod) {
      return fail('rejected', `pod ${namespace}/${pod} no longer exists: ${serverMsg.slice(0, 300)}`, {
        cause: err,
        containerName: name,
      });
    }
    return fail(
      'not-supported',
      `the cluster does not serve pods/ephemeralcontainers (404): ephemeral containers need Kubernetes >= 1.23 with the feature enabled`,
      { cause: err, containerName: name },
    );
  }
  if (err instanceof BadRequestError || httpStatus === 422 || httpStatus === 400) {
    return fail(
      'rejected',
      `the API server rejected the debug container for ${namespace}/${pod}: ${serverMsg.slice(0, 500)}`,
      {
        cause: err,
        containerName: name,
      },
    );
  }
  return fail('rejected', `adding the debug container to ${namespace}/${pod} failed: ${msg.slice(0, 500)}`, {
    cause: err,
    containerName: name,
  });
}

async function preflight(
  kube: EphemeralKube,
  namespace: string,
  pod: string,
  signal?: AbortSignal,
): Promise<void> {
  if (typeof kube.canI !== 'function') return;
  const checks: CanIOptions[] = [
    { verb: 'patch', resource: 'pods', subresource: 'ephemeralcontainers', namespace, name: pod },
    { verb: 'get', resource: 'pods', namespace, name: pod },
    { verb: 'get', resource: 'pods', subresource: 'exec', namespace, name: pod },
  ];
  const denied: string[] = [];
  for (const c of checks) {
    let r: CanIResult;
    try {
      r = await kube.canI({ ...c, ...(signal ? { signal } : {}) });
    } catch {
      return; // cannot ask: the PATCH itself will tell
    }
    if (!r.allowed) denied.push(`${c.verb} on ${c.resource}${c.subresource ? `/${c.subresource}` : ''}`);
  }
  if (denied.length) {
    throw fail(
      'forbidden',
      `not allowed to acquire ${namespace}/${pod} through an ephemeral container (denied: ${denied.join(', ')}); the pod was not changed. ${ephemeralGrantText(namespace)}`,
    );
  }
}

/**
 * A running debug container of ours with the same image, target and security context, with enough
 * of its `sleep` left (at least min(lifetimeSeconds, 600) s), so a re-acquisition adds nothing.
 */
function findReusable(
  pod: Pod,
  o: ResolvedEphemeralOptions,
  spec: EphemeralContainerSpec,
): string | undefined {
  for (const c of pod.spec?.ephemeralContainers ?? []) {
    const raw = c as Record<string, unknown>;
    if (!c.name.startsWith(`${o.namePrefix}-`)) continue;
    if (raw.image !== spec.image || raw.targetContainerName !== spec.targetContainerName) continue;
    if (!sameJson(raw.securityContext, spec.securityContext)) continue;
    const cmd = Array.isArray(raw.command) ? raw.command : [];
    const lifetime = cmd[0] === 'sleep' && /^\d{1,9}$/.test(String(cmd[1])) ? Number(cmd[1]) : 0;
    const started = Date.parse(String(statusOf(pod, c.name)?.state?.running?.startedAt ?? ''));
    if (!Number.isFinite(started)) continue;
    const left = started / 1000 + lifetime - Date.now() / 1000;
    if (left >= Math.min(o.lifetimeSeconds, 600)) return c.name;
  }
  return undefined;
}

async function waitRunning(
  kube: EphemeralKube,
  input: AttachInput,
  o: ResolvedEphemeralOptions,
  name: string,
  log: (e: Record<string, unknown>) => void,
): Promise<{ pod: Pod; status: ContainerStatus }> {
  const deadline = Date.now() + o.startTimeoutMs;
  let last: ContainerStatus | undefined;
  let lastErr: string | undefined;
  let polls = 0;
  for (;;) {
    if (input.signal?.aborted) {
      throw fail('timeout', `cancelled while waiting for debug container ${name} to run`, {
        cause: input.signal.reason,
        podChanged: true,
        containerName: name,
      });
    }
    let pod: Pod | undefined;
    try {
      pod = await kube.getPod(input.namespace, input.pod, {
        signal: AbortSignal.any([
          ...(input.signal ? [input.signal] : []),
          AbortSignal.timeout(Math.max(1000, Math.min(30_000, deadline - Date.now()))),
        ]),
      });
    } catch (err) {
      if (isEksForensicsError(err) && err.httpStatus === 403) {
        throw fail(
          'forbidden',
          `cannot read pod ${input.namespace}/${input.pod} to wait for debug container ${name}: ${err.message}. ${ephemeralGrantText(input.namespace)}`,
          { cause: err, podChanged: true, containerName: name },
        );
      }
      lastErr = err instanceof Error ? err.message : String(err);
    }
    const st = pod ? statusOf(pod, name) : undefined;
    if (pod && st) {
      last = st;
      if (st.state?.running) return { pod, status: st };
      const waiting = st.state?.waiting?.reason ?? undefined;
      const terminated = st.state?.terminated;
      if (waiting && IMAGE_PULL.has(waiting)) {
        throw fail(
          'image-pull',
          `debug container ${name} cannot pull image ${o.image} (${waiting}${st.state?.waiting?.message ? `: ${String(st.state.waiting.message).slice(0, 300)}` : ''}). ` +
            `Use an image the node can pull (e.g. a mirror in your ECR; private registries need imagePullSecrets on the pod). ` +
            `The container stays in the pod spec (ephemeral containers cannot be removed).`,
          { podChanged: true, containerName: name },
        );
      }
      if ((waiting && START_FAILED.has(waiting)) || terminated) {
        const why = terminated
          ? `terminated (${String(terminated.reason ?? 'exit')} ${String(terminated.exitCode ?? '')}${terminated.message ? `: ${String(terminated.message).slice(0, 200)}` : ''})`
          : `${waiting}${st.state?.waiting?.message ? `: ${String(st.state.waiting.message).slice(0, 300)}` : ''}`;
        throw fail(
          'start-failed',
          `debug container ${name} did not start: ${why}. Check that image ${o.image} has sleep and sh. It stays in the pod spec.`,
          { podChanged: true, containerName: name },
        );
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const state = last?.state?.waiting?.reason ?? (last ? 'not running' : 'no status yet');
      throw fail(
        'timeout',
        `debug container ${name} was not running after ${o.startTimeoutMs} ms (last state: ${state}${lastErr ? `; last error: ${lastErr.slice(0, 200)}` : ''}). ` +
          `The node may still be pulling ${o.image}, or the runtime may not support ephemeral containers; raise startTimeoutMs or check pod events. It stays in the pod spec.`,
        { podChanged: true, containerName: name },
      );
    }
    log({ event: 'ephemeral-waiting', container: name, state: last?.state ?? null });
    polls += 1;
    const interval = Math.min(
      Math.max(o.pollIntervalMs, 2000),
      o.pollIntervalMs * 1.5 ** Math.min(polls, 10),
    );
    await sleep(
      Math.min(interval, left),
      undefined,
      input.signal ? { signal: input.signal } : undefined,
    ).catch(() => undefined);
  }
}

/**
 * Adds (or reuses) an ephemeral debug container targeting `input.container`, waits until it runs,
 * chooses the target's main process and prepares the proc view.
 *
 * Custody: right after the PATCH is answered, the change (container name, image, security
 * context, capabilities, targetContainerName, exact patch body, time) is recorded through
 * `input.recorder.recordChange`, before anything else can fail. The debug container's own scan is
 * stored under `ephemeral/<name>/` with source kind `ephemeral-container`, apart from the target's
 * evidence.
 *
 * @throws {ConfigError} without `allowEphemeralContainer: true` (nothing is changed).
 * @throws {EphemeralContainerError} `forbidden` (with what to grant), `pod-security`, `image-pull`,
 *   `start-failed`, `timeout`, `not-supported`, `rejected`, `target-process`; `podChanged` says
 *   whether the container was already added.
 */
export async function attachDebugContainer(
  options: EphemeralContainerOptions,
  input: AttachInput,
): Promise<DebugAttachment> {
  const o = resolveEphemeralOptions(options);
  const { kube, namespace, container } = input;
  const log = (e: Record<string, unknown>) => input.recorder?.log({ ...e });
  if (typeof kube.patchEphemeralContainers !== 'function') {
    throw fail('not-supported', 'the kube client has no patchEphemeralContainers(): pass a KubeClient');
  }
  let pod =
    input.podObject ??
    (await kube.getPod(namespace, input.pod, input.signal ? { signal: input.signal } : {}));
  const spec0 = pod.spec?.containers.find((c) => c.name === container);
  if (!spec0) {
    throw fail(
      'rejected',
      `container ${container} is not a regular container of ${namespace}/${input.pod}: an ephemeral container can only target one of ${(pod.spec?.containers ?? []).map((c) => c.name).join(', ')}`,
    );
  }
  const targetStatus = (pod.status?.containerStatuses ?? []).find((s) => s.name === container);
  if (targetStatus && !targetStatus.state?.running) {
    throw fail(
      'rejected',
      `container ${container} is not running: its processes and files cannot be reached`,
    );
  }
  const podUid = typeof pod.metadata.uid === 'string' ? pod.metadata.uid : undefined;
  let name = debugContainerName(o.namePrefix);
  let spec = debugContainerSpec(o, name, container, runAsUserOf(pod, container));
  const reuse = findReusable(pod, o, { ...spec, name: '' });
  let change: TargetChange | undefined;
  let addedAt: string | undefined;
  if (reuse) {
    name = reuse;
    spec = { ...spec, name };
    log({ event: 'ephemeral-reused', container: name, image: o.image, targetContainerName: container });
  } else {
    if (o.preflight) await preflight(kube, namespace, input.pod, input.signal);
    const body = ephemeralPatchBody(spec);
    const requestedAt = new Date().toISOString();
    log({
      event: 'ephemeral-patch',
      container: name,
      requestedAt,
      contentType: 'application/strategic-merge-patch+json',
      body,
    });
    let patched: Pod | undefined;
    try {
      patched = await kube.patchEphemeralContainers(
        namespace,
        input.pod,
        [spec],
        input.signal ? { signal: input.signal } : {},
      );
    } catch (err) {
      // A lost answer may hide a PATCH that went through: look before concluding.
      if (!isEksForensicsError(err) || err.httpStatus === undefined) {
        const now = await kube.getPod(namespace, input.pod).catch(() => undefined);
        if (now?.spec?.ephemeralContainers?.some((c) => c.name === name)) patched = now;
      }
      if (!patched) {
        const e = explainPatchError(err, namespace, input.pod, name);
        log({ event: 'ephemeral-patch-failed', container: name, failure: e.failure, error: e.message });
        throw e;
      }
    }
    pod = patched;
    addedAt = new Date().toISOString();
    const capabilities = addedCapabilities(spec.securityContext);
    change = {
      at: addedAt,
      kind: 'ephemeral-container-added',
      target: { namespace, pod: input.pod, ...(podUid ? { podUid } : {}), container },
      description:
        `added ephemeral container ${name} (image ${o.image}, profile ${o.profile}` +
        `${capabilities.length ? `, capabilities ${capabilities.join(' ')}` : ''}) targeting container ${container}; ` +
        'ephemeral containers cannot be removed: it stays in spec.ephemeralContainers for the life of the pod',
      details: {
        containerName: name,
        image: o.image,
        profile: o.profile,
        securityContext: spec.securityContext ?? null,
        capabilities,
        targetContainerName: container,
        command: spec.command ?? [],
        requestedAt,
        patchedAt: addedAt,
        contentType: 'application/strategic-merge-patch+json',
        patch: body,
        podGeneration: (pod.metadata as { generation?: unknown }).generation ?? null,
        podResourceVersion: pod.metadata.resourceVersion ?? null,
      },
    };
    input.recorder?.recordChange(change);
  }
  const { pod: running, status } = await waitRunning(kube, input, o, name, log);
  const runningAt = new Date().toISOString();
  log({
    event: 'ephemeral-running',
    container: name,
    at: runningAt,
    containerID: status.containerID ?? null,
    imageID: status.imageID ?? null,
  });
  // Find the target's process: a read-only scan in the debug container.
  const scanRes = await captureExec(kube, {
    namespace,
    pod: input.pod,
    container: name,
    argv: scanArgv(8192),
    maxBytes: 16 * 1024 * 1024,
    timeoutMs: 120_000,
    signal: input.signal,
  });
  const scan = parseScan(scanRes.stdout.toString('utf8'), 8192);
  const where = { namespace, pod: input.pod, ...(podUid ? { podUid } : {}), container: name };
  const own = async (file: string, value: unknown, item: string) => {
    if (!input.recorder) return;
    await input.recorder.writeArtifact(`ephemeral/${name}/${file}`, `${JSON.stringify(value, null, 2)}\n`, {
      source: { kind: 'ephemeral-container', item },
      target: where,
      contentType: 'application/json',
    });
  };
  const choice =
    scanRes.exitCode === 0 || scan.processes.length > 0
      ? chooseTargetProcess(scan, {
          containerId: targetStatus?.containerID ?? undefined,
          command: [
            ...(spec0.command ?? []),
            ...(((spec0 as { args?: unknown }).args as string[] | undefined) ?? []),
          ],
          targetPid: o.targetPid,
        })
      : `the process scan in ${name} failed: ${scanRes.error ?? `exit code ${scanRes.exitCode}`} ${scanRes.stderr.slice(0, 200)}`;
  await own(
    'scan.json',
    {
      note: 'processes seen from the debug container (its own included); the debug container is not part of the target',
      argv: scanArgv(8192),
      exitCode: scanRes.exitCode,
      truncated: scan.truncated || scanRes.truncated,
      selfMountNamespace: scan.selfMnt,
      choice,
      processes: scan.processes,
    },
    'process-scan',
  );
  if (typeof choice === 'string') {
    log({ event: 'ephemeral-target-process-failed', container: name, reason: choice });
    throw fail('target-process', `cannot find the target's process from debug container ${name}: ${choice}`, {
      podChanged: true,
      containerName: name,
    });
  }
  log({
    event: 'ephemeral-target-process',
    container: name,
    pid: choice.pid,
    method: choice.method,
    detail: choice.detail,
    debugPids: choice.debugPids,
  });
  // The proc view: the target's processes only, `self` = the target's main process.
  const viewDir = `/tmp/eksf-proc-${name}`;
  const viewRes = await captureExec(kube, {
    namespace,
    pod: input.pod,
    container: name,
    argv: viewArgv(viewDir, choice.pid),
    stdin: `${choice.targetPids.join('\n')}\n`,
    maxBytes: 4096,
    timeoutMs: 60_000,
    signal: input.signal,
  });
  const viewOk = viewRes.exitCode === 0 && viewRes.stdout.toString().includes('eksf-view-ok');
  const viewProblem = viewOk
    ? undefined
    : `the proc view could not be built in ${name} (${viewRes.error ?? `exit code ${viewRes.exitCode}`}${viewRes.stderr ? `: ${viewRes.stderr.slice(0, 200)}` : ''}); /proc is read directly and the debug container's processes (${choice.debugPids.join(', ')}) appear in the process list`;
  log({ event: 'ephemeral-proc-view', container: name, viewDir, ok: viewOk, problem: viewProblem ?? null });
  await own(
    'attachment.json',
    {
      containerName: name,
      image: o.image,
      profile: o.profile,
      securityContext: spec.securityContext ?? null,
      targetContainerName: container,
      reused: Boolean(reuse),
      addedAt: addedAt ?? null,
      runningAt,
      containerID: status.containerID ?? null,
      imageID: status.imageID ?? null,
      targetPid: choice.pid,
      targetPidMethod: choice.method,
      targetPidDetail: choice.detail,
      debugPids: choice.debugPids,
      fs: { root: `/proc/${choice.pid}/root`, procBase: viewOk ? viewDir : '/proc' },
      viewProblem: viewProblem ?? null,
      podAfter: { resourceVersion: running.metadata.resourceVersion ?? null },
    },
    'attachment',
  );
  return {
    namespace,
    pod: input.pod,
    containerName: name,
    image: o.image,
    profile: o.profile,
    securityContext: spec.securityContext,
    capabilities: addedCapabilities(spec.securityContext),
    targetContainerName: container,
    reused: Boolean(reuse),
    addedAt,
    runningAt,
    containerId: status.containerID ?? undefined,
    target: choice,
    fs: { root: `/proc/${choice.pid}/root`, procBase: viewOk ? viewDir : '/proc' },
    viewProblem,
    change,
    scan,
  };
}

/** Stops only processes that share the debug container's own mount namespace (checked right before). */
const STOP_SCRIPT = [
  's=$(readlink /proc/self/ns/mnt) || exit 3',
  'l=',
  'n=0',
  'for p in "$@"; do',
  '  case $p in *[!0-9]*|"") continue;; esac',
  '  [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$s" ] || continue',
  '  l="$l $p"; n=$((n+1))',
  'done',
  'echo "stopped $n"',
  '[ "$n" -gt 0 ] || exit 0',
  // the container ends with its main process, and this exec with it: print first
  'exec kill -TERM $l',
].join('\n');

/**
 * Ends the debug container early: sends SIGTERM to its `sleep` (the PIDs the scan attributed to it,
 * re-checked to be in the debug container's own mount namespace, so no target process can be hit).
 * The container then shows as terminated; its spec entry stays (it cannot be removed). Optional:
 * without it the container exits by itself after `lifetimeSeconds`.
 *
 * @returns how many processes were signalled, and the exec's error when it failed (never throws).
 */
export async function stopDebugContainer(
  kube: EphemeralKube,
  attachment: DebugAttachment,
  options: { signal?: AbortSignal | undefined; recorder?: Pick<EphemeralRecorder, 'log'> | undefined } = {},
): Promise<{ stopped: number; error?: string | undefined }> {
  const pids = attachment.scan.processes
    .filter(
      (p) =>
        attachment.target.debugPids.includes(p.pid) &&
        p.pid !== attachment.scan.selfPid &&
        (p.cmdline ?? '').startsWith('sleep '),
    )
    .map((p) => String(p.pid));
  if (pids.length === 0)
    return { stopped: 0, error: "the debug container's sleep was not identified by the scan" };
  const r = await captureExec(kube, {
    namespace: attachment.namespace,
    pod: attachment.pod,
    container: attachment.containerName,
    argv: ['sh', '-c', STOP_SCRIPT, 'eksf-ephemeral-stop', ...pids],
    maxBytes: 4096,
    timeoutMs: 30_000,
    signal: options.signal,
  });
  const m = /stopped (\d+)/.exec(r.stdout.toString());
  // the exec may be cut when its container ends: the count then comes from the output alone
  const stopped = m ? Number(m[1]) : 0;
  const error = m ? undefined : (r.error ?? `exit code ${r.exitCode}`);
  options.recorder?.log({
    event: 'ephemeral-stopped',
    container: attachment.containerName,
    pids,
    stopped,
    error: error ?? null,
  });
  return error ? { stopped, error } : { stopped };
}
