/**
 * The ephemeral debug container itself: options, security profiles (as `kubectl debug --profile`),
 * its name and the exact strategic-merge patch body that adds it.
 */
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { ConfigError } from '../../errors.js';
import type { EphemeralContainerSpec } from '../../kube/index.js';

/**
 * Security profile of the debug container, as `kubectl debug --profile` applies them to
 * ephemeral containers:
 * - `general` (default): adds `SYS_PTRACE`, needed to read `/proc/<pid>/root` and `/proc/<pid>/…`
 *   of a process running as another user.
 * - `sysadmin`: `privileged: true`.
 * - `baseline`: nothing added (passes Pod Security `baseline`); reading the target then works only
 *   when the debug container runs as the target's UID with no fewer capabilities.
 * - `restricted`: `runAsNonRoot`, drop `ALL`, no privilege escalation, `RuntimeDefault` seccomp
 *   (passes Pod Security `restricted`); runs as the target's `runAsUser` when the pod spec gives one.
 * - `custom`: exactly {@link EphemeralContainerOptions.securityContext}.
 */
export type DebugProfile = 'general' | 'sysadmin' | 'baseline' | 'restricted' | 'custom';

/** The debug container profiles, in the order documented. */
export const DEBUG_PROFILES: readonly DebugProfile[] = [
  'general',
  'sysadmin',
  'baseline',
  'restricted',
  'custom',
];

/**
 * Opt-in and settings for acquiring a container through an ephemeral debug container. Adding one
 * changes the pod for good (ephemeral containers cannot be removed), so nothing happens unless
 * `allowEphemeralContainer` is `true`.
 *
 * @example
 * { allowEphemeralContainer: true, image: 'public.ecr.aws/docker/library/busybox:1.36' }
 */
export interface EphemeralContainerOptions {
  /** Must be `true`: the pod spec gets a permanent `spec.ephemeralContainers` entry. */
  allowEphemeralContainer: boolean;
  /** Image of the debug container. It needs `sh`, `sleep`, `readlink`, `ln`, `tr`, `head` (busybox has them). */
  image: string;
  /** Security profile (default `general`: `SYS_PTRACE`). */
  profile?: DebugProfile | undefined;
  /** Security context for `profile: 'custom'` (required then), merged over the profile's otherwise. */
  securityContext?: Record<string, unknown> | undefined;
  /** Run as this UID (e.g. the target's UID with `baseline`/`restricted`). */
  runAsUser?: number | undefined;
  /** `Always` | `IfNotPresent` | `Never` (default: the cluster's default for the tag). */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never' | undefined;
  /** Name prefix; a dash and 5 random characters are appended (default `eksf-debug`). */
  namePrefix?: string | undefined;
  /** How long the debug container lives (`sleep` argument, seconds; default 3600). */
  lifetimeSeconds?: number | undefined;
  /** How long to wait for it to run (default 120 000 ms). */
  startTimeoutMs?: number | undefined;
  /** Poll interval of the wait (default 500 ms). */
  pollIntervalMs?: number | undefined;
  /** Check RBAC with SelfSubjectAccessReview before changing the pod (default true). */
  preflight?: boolean | undefined;
  /** The target's main PID in the shared PID namespace, when known (skips the choice heuristics). */
  targetPid?: number | undefined;
}

/** Options after validation, with defaults. */
export interface ResolvedEphemeralOptions {
  /** Debug image. */
  image: string;
  /** Security profile. */
  profile: DebugProfile;
  /** Extra (or, for `custom`, the whole) security context. */
  securityContext: Record<string, unknown> | undefined;
  /** UID to run as. */
  runAsUser: number | undefined;
  /** Image pull policy, when set. */
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never' | undefined;
  /** Container name prefix. */
  namePrefix: string;
  /** `sleep` argument. */
  lifetimeSeconds: number;
  /** Bound of the wait for running. */
  startTimeoutMs: number;
  /** Poll interval of the wait. */
  pollIntervalMs: number;
  /** Whether to check RBAC first. */
  preflight: boolean;
  /** Caller-given target PID. */
  targetPid: number | undefined;
}

const OptionsSchema = z.object({
  allowEphemeralContainer: z.boolean(),
  image: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[^\s]+$/, 'an image reference has no whitespace'),
  profile: z.enum(['general', 'sysadmin', 'baseline', 'restricted', 'custom']).optional(),
  securityContext: z.record(z.string(), z.unknown()).optional(),
  runAsUser: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .optional(),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  namePrefix: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/, 'a DNS label of at most 52 characters')
    .optional(),
  lifetimeSeconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 86_400)
    .optional(),
  startTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
  pollIntervalMs: z.number().int().min(10).max(60_000).optional(),
  preflight: z.boolean().optional(),
  targetPid: z
    .number()
    .int()
    .min(1)
    .max(2 ** 22)
    .optional(),
});

/**
 * Validates ephemeral-container options and fills in defaults.
 *
 * @throws {ConfigError} when the opt-in is missing, or an option is invalid.
 */
export function resolveEphemeralOptions(
  options: EphemeralContainerOptions | undefined,
): ResolvedEphemeralOptions {
  if (options?.allowEphemeralContainer !== true) {
    throw new ConfigError(
      'adding an ephemeral debug container needs the explicit opt-in allowEphemeralContainer: true (it changes the pod spec for good)',
    );
  }
  const r = OptionsSchema.safeParse(options);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new ConfigError(
      `invalid ephemeral container options: ${first ? `${first.path.join('.')}: ${first.message}` : 'invalid'}`,
    );
  }
  const o = r.data;
  const profile = o.profile ?? 'general';
  if (profile === 'custom' && !o.securityContext) {
    throw new ConfigError('profile "custom" needs securityContext');
  }
  return {
    image: o.image,
    profile,
    securityContext: o.securityContext,
    runAsUser: o.runAsUser,
    imagePullPolicy: o.imagePullPolicy,
    namePrefix: o.namePrefix ?? 'eksf-debug',
    lifetimeSeconds: o.lifetimeSeconds ?? 3600,
    startTimeoutMs: o.startTimeoutMs ?? 120_000,
    pollIntervalMs: o.pollIntervalMs ?? 500,
    preflight: o.preflight ?? true,
    targetPid: o.targetPid,
  };
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

/** A container name like `eksf-debug-x7k2q` (kubectl uses `debugger-` + 5 characters from the same alphabet). */
export function debugContainerName(prefix = 'eksf-debug'): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += NAME_CHARS[randomInt(NAME_CHARS.length)];
  return `${prefix}-${s}`;
}

/**
 * The security context a profile gives the debug container.
 *
 * @param targetRunAsUser the target's `runAsUser` from the pod spec (used by `restricted` when no
 *   explicit `runAsUser` was given).
 */
export function debugSecurityContext(
  o: Pick<ResolvedEphemeralOptions, 'profile' | 'securityContext' | 'runAsUser'>,
  targetRunAsUser?: number | undefined,
): Record<string, unknown> | undefined {
  let base: Record<string, unknown> | undefined;
  switch (o.profile) {
    case 'general':
      base = { capabilities: { add: ['SYS_PTRACE'] } };
      break;
    case 'sysadmin':
      base = { privileged: true };
      break;
    case 'baseline':
      base = undefined;
      break;
    case 'restricted':
      base = {
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      };
      break;
    case 'custom':
      return {
        ...(o.securityContext ?? {}),
        ...(o.runAsUser !== undefined ? { runAsUser: o.runAsUser } : {}),
      };
  }
  const uid = o.runAsUser ?? (o.profile === 'restricted' && targetRunAsUser ? targetRunAsUser : undefined);
  const merged = {
    ...(base ?? {}),
    ...(o.securityContext ?? {}),
    ...(uid !== undefined ? { runAsUser: uid } : {}),
  };
  return Object.keys(merged).length ? merged : undefined;
}

/** Capabilities the security context adds (for the custody record); `['ALL (privileged)']` when privileged. */
export function addedCapabilities(sc: Record<string, unknown> | undefined): string[] {
  if (!sc) return [];
  if (sc.privileged === true) return ['ALL (privileged)'];
  const caps = sc.capabilities;
  if (caps && typeof caps === 'object' && Array.isArray((caps as { add?: unknown }).add)) {
    return ((caps as { add: unknown[] }).add ?? []).filter((c): c is string => typeof c === 'string');
  }
  return [];
}

/** The ephemeral container added to the pod. */
export function debugContainerSpec(
  o: ResolvedEphemeralOptions,
  name: string,
  targetContainerName: string,
  targetRunAsUser?: number | undefined,
): EphemeralContainerSpec {
  const sc = debugSecurityContext(o, targetRunAsUser);
  return {
    name,
    image: o.image,
    command: ['sleep', String(o.lifetimeSeconds)],
    targetContainerName,
    ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
    ...(sc ? { securityContext: sc } : {}),
    terminationMessagePolicy: 'File',
  };
}

/**
 * The exact strategic-merge patch body (`application/strategic-merge-patch+json`) sent to
 * `pods/<name>/ephemeralcontainers`: the list merges on `name`, so it appends one entry. This is
 * what `KubeClient.patchEphemeralContainers` sends; it is recorded in the custody record.
 */
export function ephemeralPatchBody(spec: EphemeralContainerSpec): {
  spec: { ephemeralContainers: Record<string, unknown>[] };
} {
  return { spec: { ephemeralContainers: [{ terminationMessagePolicy: 'File', resources: {}, ...spec }] } };
}
