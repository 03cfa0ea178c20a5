/**
 * Ephemeral debug containers for distroless or hardened targets: specs, attach/stop/switch,
 * process choice inside the pod, the probe that decides when one is needed.
 *
 * @module eks-forensics/ephemeral
 */
export {
  addedCapabilities,
  attachDebugContainer,
  chooseTargetProcess,
  DEBUG_PROFILES,
  debugContainerName,
  debugContainerSpec,
  debugSecurityContext,
  ephemeralPatchBody,
  parseScan,
  probeNeedsDebugContainer,
  resolveEphemeralOptions,
  stopDebugContainer,
  switchToDebugContainer,
} from '../collect/ephemeral/index.js';
export {
  chooseStrategy,
  PROBE_TOOLS,
  parseProbeOutput,
  probeArgv,
} from '../collect/index.js';
