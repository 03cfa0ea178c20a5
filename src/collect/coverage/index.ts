/**
 * Coverage items a responder needs beyond files and /proc text: process memory as an ELF core,
 * installed-file integrity, executable hashes, the environment policy and the kubelet checkpoint.
 * Each item is a self-contained argv builder (POSIX sh, read-only in the target) plus a hostile-safe
 * decoder; the collector wires them into its phases.
 *
 * @module
 */

export { type CheckpointCustody, checkpointCustody } from './checkpoint.js';
export {
  applyEnvPolicy,
  type EnvCategory,
  envCategory,
  HISTORY_FILES,
  historyPaths,
  MAX_CLEAR_VALUE,
  type PasswdEntry,
  type PolicyEnvEntry,
  parsePasswd,
  redactProxyCredentials,
} from './env-policy.js';
export {
  decodeExeInventory,
  decodeExePull,
  EXE_INVENTORY_SCRIPT,
  EXE_PULL_SCRIPT,
  type ExecutableHashes,
  type ExeHash,
  type ExeInventory,
  exeInventoryArgv,
  exePullArgv,
  type HashExecutablesOptions,
  hashExecutables,
  type MappedObject,
} from './exe-hashes.js';
export {
  type CoverageExec,
  type CoverageExecSession,
  type ExecEnd,
  sendStdin,
  settle,
} from './exec.js';
export {
  compareIntegrity,
  decodeExecutableList,
  decodePackageDb,
  decodePulledFiles,
  INTEGRITY_DB_SCRIPT,
  INTEGRITY_DIRS,
  INTEGRITY_LIST_SCRIPT,
  INTEGRITY_PULL_SCRIPT,
  type IntegrityDbCaps,
  type IntegrityFinding,
  type IntegrityPlanOptions,
  type IntegrityReport,
  type IntegrityRow,
  integrityDbArgv,
  integrityListArgv,
  integrityPullArgv,
  PULL_ARGV_BYTES,
  type PulledFile,
  planIntegrityPull,
  usrMergedPath,
} from './integrity.js';
export {
  emptyPackageDb,
  type InstalledPackage,
  md5sumsPackage,
  normalizeDbPath,
  type PackageDb,
  type PackageDbLimits,
  type PackageDigestAlgo,
  type PackageFile,
  parseApkInstalled,
  parseDpkgStatus,
  parseMd5sums,
} from './integrity-db.js';
export { type CheckIntegrityOptions, checkIntegrity } from './integrity-run.js';
export {
  type MemoryIndex,
  type ProcessMemoryOptions,
  type ProcessMemoryPlan,
  planProcessMemory,
  streamProcessCore,
} from './memory.js';
export {
  buildCoreNotes,
  type CoreMachine,
  type CoreProcessInfo,
  machineFromElf,
} from './memory-core.js';
export {
  type MapsParseLimits,
  type MapsRegion,
  type MemoryPlan,
  type MemoryPlanLimits,
  type ParsedMaps,
  type PlannedRegion,
  parseMaps,
  planMemoryRead,
  type RegionSkipReason,
  SPECIAL_REGIONS,
} from './memory-maps.js';
export {
  CoreAssembler,
  type CoreAssemblyResult,
  classifyReadError,
  decodeMemoryInfo,
  type ProcessMemoryInfo,
  type RegionRecord,
  type RegionStatus,
} from './memory-receive.js';
export {
  MEMORY_INFO_SCRIPT,
  MEMORY_READ_SCRIPT,
  memoryInfoArgv,
  memoryReadArgv,
  memoryReadInput,
} from './memory-script.js';
