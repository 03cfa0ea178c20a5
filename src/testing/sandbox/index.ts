/**
 * The `sandbox` runtime for FakeCluster: real namespace containers (bubblewrap + static busybox
 * + nsenter) with rootfs built from a file map, and hostile content for collector tests.
 *
 * @module
 */
export {
  createSandboxRuntime,
  SandboxRuntime,
  sandboxEphemeralContainerRuntime,
  type SandboxContainerOptions,
  type SandboxProcessSpec,
  type SandboxRuntimeOptions,
} from './runtime.js';
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
  craftedTar,
  deepPathComponents,
  HOSTILE_PATHS,
  hostileFiles,
  hostileNames,
  hostileProcesses,
  hostileTarEntries,
  type CraftedTarEntry,
  type HostileFilesOptions,
} from './hostile.js';
