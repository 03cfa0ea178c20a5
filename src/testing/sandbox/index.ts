/**
 * The `sandbox` runtime for FakeCluster: real namespace containers (bubblewrap + static busybox
 * + nsenter) with rootfs built from a file map, and hostile content for collector tests.
 *
 * @module
 */

export {
  type CraftedTarEntry,
  craftedTar,
  deepPathComponents,
  HOSTILE_PATHS,
  type HostileFilesOptions,
  hostileFiles,
  hostileNames,
  hostileProcesses,
  hostileTarEntries,
} from './hostile.js';
export { APP_BINARY, type SandboxPreset } from './presets.js';
export type {
  SandboxBinaryEntry,
  SandboxDirEntry,
  SandboxEntry,
  SandboxEntryMeta,
  SandboxFifoEntry,
  SandboxFileEntry,
  SandboxFileMap,
  SandboxGrowingEntry,
  SandboxHardlinkEntry,
  SandboxPath,
  SandboxSparseEntry,
  SandboxSymlinkEntry,
} from './rootfs.js';
export {
  createSandboxRuntime,
  type SandboxContainerOptions,
  type SandboxProcessSpec,
  SandboxRuntime,
  type SandboxRuntimeContainer,
  type SandboxRuntimeOptions,
  sandboxEphemeralContainerRuntime,
} from './runtime.js';
