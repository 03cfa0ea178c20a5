/**
 * Writing an evidence sink outside this package: the storage primitives a sink implements
 * (`BundleBackend`, `ArtifactStore`), `openBundleWriter()` which puts the library's bundle writer
 * (hashes, journal, manifest, custody, seal, signature, timestamp) on top of them, and
 * `BundleSource`, through which `verifyEvidence({ source })` reads what the sink wrote with every
 * check the built-in readers get. `runSinkConformance()` in `eks-forensics/testing` checks a sink.
 * The writer's types (`BundleInit`, `BundleWriter`, `ArtifactMeta`…) are here too; `EvidenceSink`
 * is on the root.
 *
 * @module eks-forensics/sink-kit
 */
export {
  type ArtifactBody,
  type ArtifactMeta,
  type ArtifactMetaUpdate,
  type ArtifactStore,
  type BundleBackend,
  type BundleIdentity,
  type BundleInit,
  type BundleSource,
  type BundleSourceEntry,
  type BundleWriter,
  type CustodyInput,
  type FailedStore,
  type FinalizeResult,
  openBundleWriter,
  type RecordArtifactMeta,
  type StoredInfo,
} from '../evidence/index.js';
