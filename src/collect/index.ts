/**
 * Collect layer (layer 3): `ArtifactCollector`, the `ArtifactProfile` interface, built-in and
 * declarative profiles, the tool probe and strategy choice, and the hostile-stream receivers.
 *
 * @module
 */
export { Budget, DEFAULT_LIMITS } from './budget.js';
export { BUILTIN_PROFILE_NAMES, BUILTIN_PROFILES, builtinProfile } from './builtin.js';
export { ArtifactCollector, type ArtifactCollectorOptions, targetsFromPods } from './collector.js';
export { demuxFrames, type FrameEvent, newFrameKey } from './frames.js';
export { type CompiledGlob, compileGlob } from './glob.js';
export {
  type ListedEntry,
  type MetadataFindings,
  metadataFindings,
  parseListing,
  renderBodyfile,
} from './listing.js';
export {
  type ContentStrategy,
  chooseStrategy,
  type ListingStrategy,
  PROBE_SCRIPT,
  PROBE_TOOLS,
  type ProbeFeature,
  type ProbeResult,
  type ProbeTool,
  parseProbeOutput,
  probeArgv,
  type Strategy,
} from './probe.js';
export {
  type ApiItem,
  ApiItemSchema,
  type ApiResource,
  ApiResourceSchema,
  type CommandItem,
  CommandItemSchema,
  type FileContentMode,
  FileContentModeSchema,
  type FileItem,
  FileItemSchema,
  type IntegrityItem,
  IntegrityItemSchema,
  loadProfileFile,
  type MemoryItem,
  MemoryItemSchema,
  type ProcField,
  ProcFieldSchema,
  type ProcItem,
  ProcItemSchema,
  type ProfileItem,
  ProfileItemSchema,
  type ProfileSpec,
  type ProfileSpecInput,
  ProfileSpecSchema,
  parseProfileSpec,
  parseProfileText,
} from './schema.js';
export {
  filesArgv,
  listingArgv,
  procBytesArgv,
  type ReadMode,
  statArgv,
  tarArgv,
  volatileArgv,
} from './scripts.js';
export { type EnvironMode, type JwtRecord, jwtRecord, transformEnviron } from './sensitive.js';
export { formatSize, parseSize } from './size.js';
export {
  readTarEntry,
  receiveTar,
  type TarIndexEntry,
  type TarReceiveOptions,
  type TarReceiveResult,
} from './tar.js';
export type {
  AcquisitionReport,
  AcquisitionTarget,
  ApplyDecision,
  ArtifactCounts,
  ArtifactProfile,
  CollectContext,
  CollectLimits,
  CollectorKube,
  ContextArtifactMeta,
  ContextExecOptions,
  ExecCapture,
  FsView,
  Phase,
  ProfileInput,
  ProgressEvent,
  ProgressTarget,
  ResolvedTarget,
  TargetReason,
  TargetReport,
  TargetStatus,
} from './types.js';
