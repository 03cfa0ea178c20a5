/**
 * The evidence bundle format and the API objects read: zod schemas, JSON Schemas, bundle file
 * names and path rules, the seal payload. For tools that read or check bundles themselves.
 *
 * @module eks-forensics/schemas
 */
export {
  identitySkipSchema,
  podIdentityContextSchema,
} from '../catalog/index.js';
export {
  ApiItemSchema,
  ApiResourceSchema,
  CommandItemSchema,
  FileContentModeSchema,
  FileItemSchema,
  IntegrityItemSchema,
  MemoryItemSchema,
  ProcFieldSchema,
  ProcItemSchema,
  ProfileItemSchema,
  ProfileSpecSchema,
} from '../collect/index.js';
export {
  ArtifactRecordSchema,
  ArtifactSourceSchema,
  ArtifactStatusSchema,
  BUNDLE_FILES,
  CustodySchema,
  CustodyTargetSchema,
  collisionKey,
  EVIDENCE_SCHEMA_VERSION,
  EVIDENCE_TOOL,
  evidenceJsonSchemas,
  JournalEntrySchema,
  ManifestSchema,
  PATH_LIMITS,
  PathAllocator,
  RecordedChangeSchema,
  S3_MIN_PART_SIZE,
  SealSchema,
  sanitizeBundlePath,
  sealPayload,
  TargetChangeSchema,
  TargetRefSchema,
  TIMESTAMP_FILE,
} from '../evidence/index.js';
export {
  containerSchema,
  containerStatusSchema,
  eventSchema,
  KUBE_RESOURCES,
  nodeSchema,
  podListSchema,
  podSchema,
  statusSchema,
  userInfoSchema,
} from '../kube/index.js';
