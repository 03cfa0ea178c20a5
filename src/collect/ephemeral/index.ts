/**
 * Distroless and scratch containers through an ephemeral debug container (opt-in): the PATCH,
 * the wait, the target's process in the shared PID namespace, the file/proc view for the
 * collector, custody records, RBAC.
 *
 * @module
 */
export {
  type AttachInput,
  attachDebugContainer,
  type DebugAttachment,
  type EphemeralKube,
  type EphemeralRecorder,
  explainPatchError,
  stopDebugContainer,
} from './attach.js';
export {
  type ChoiceHints,
  chooseTargetProcess,
  type ProcessScan,
  parseScan,
  type ScannedProcess,
  type TargetChoice,
  type TargetPidMethod,
} from './discover.js';
export { type EphemeralStepContext, probeNeedsDebugContainer, switchToDebugContainer } from './hook.js';
export {
  EPHEMERAL_PERMISSIONS,
  type EphemeralPermission,
  type EphemeralRoleOptions,
  ephemeralGrantText,
  ephemeralRoleYaml,
} from './rbac.js';
export {
  addedCapabilities,
  DEBUG_PROFILES,
  type DebugProfile,
  debugContainerName,
  debugContainerSpec,
  debugSecurityContext,
  type EphemeralContainerOptions,
  ephemeralPatchBody,
  type ResolvedEphemeralOptions,
  resolveEphemeralOptions,
} from './spec.js';
