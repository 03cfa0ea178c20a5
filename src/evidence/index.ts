/**
 * Evidence layer: sinks (directory, tar, S3, memory), bundle writer, manifest, custody record,
 * seal and {@link eks-forensics!verifyEvidence}.
 *
 * @module
 */
export { type EvidenceLocation, evidenceJsonSchemas, verifyEvidence } from './api.js';
export type { ArtifactStore, BundleBackend, FailedStore, StoredInfo } from './bundle.js';
export { DirectorySink, type DirectorySinkOptions } from './directory.js';
export {
  type BundleIdentity,
  type BundleSource,
  type BundleSourceEntry,
  openBundleWriter,
} from './kit.js';
export { MemorySink, type MemorySinkOptions } from './memory.js';
export { collisionKey, PATH_LIMITS, PathAllocator, sanitizeBundlePath } from './paths.js';
export type { MemoryBundle } from './readers.js';
export {
  S3_MIN_PART_SIZE,
  type S3Encryption,
  type S3EncryptionKms,
  type S3EncryptionS3,
  type S3ObjectLock,
  S3Sink,
  type S3SinkOptions,
} from './s3.js';
export { sealPayload } from './seal.js';
export { TarSink, type TarSinkOptions } from './tar.js';
export {
  TIMESTAMP_FILE,
  type TimestampAuthority,
  type TimestampCheck,
  TimestampingSink,
} from './tsa.js';
export {
  type ArtifactBody,
  type ArtifactMeta,
  type ArtifactMetaUpdate,
  type ArtifactRecord,
  ArtifactRecordSchema,
  type ArtifactSource,
  ArtifactSourceSchema,
  type ArtifactStatus,
  ArtifactStatusSchema,
  BUNDLE_FILES,
  type BundleInit,
  type BundleWriter,
  type Custody,
  type CustodyInput,
  CustodySchema,
  type CustodyTarget,
  CustodyTargetSchema,
  EVIDENCE_SCHEMA_VERSION,
  EVIDENCE_TOOL,
  type EvidenceSink,
  type FinalizeResult,
  type JournalEntry,
  JournalEntrySchema,
  type Manifest,
  ManifestSchema,
  type RecordArtifactMeta,
  RecordedChangeSchema,
  type Seal,
  SealSchema,
  type TargetChange,
  TargetChangeSchema,
  type TargetRef,
  TargetRefSchema,
} from './types.js';
export type {
  ObjectLockFinding,
  VerifyAnchor,
  VerifyOptions,
  VerifyProblem,
  VerifyReport,
} from './verify.js';
