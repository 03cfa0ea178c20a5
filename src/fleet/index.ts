/**
 * Fleet layer (top): sweep many containers across accounts, regions and clusters with stateless
 * workers, an SQS queue and the S3 sink as the shared store. Published as `eks-forensics/fleet`.
 *
 * @module
 */

export {
  type FleetPolicyDocument,
  type FleetPolicyOptions,
  fleetPlannerPolicy,
  fleetWorkerPolicy,
} from './iam.js';
export {
  type EnqueueOptions,
  type EnqueueResult,
  enqueueSweep,
  newSweepId,
  planSweep,
  type SweepCatalog,
  type SweepPlan,
  type SweepSelector,
  sweepTarget,
} from './plan.js';
export {
  type SweepReport,
  type SweepReportOptions,
  type SweepTargetProgress,
  type SweepTargetState,
  sweepReport,
  watchSweep,
} from './report.js';
export {
  type CreateSweepQueuesOptions,
  createSweepQueues,
  type SendFailure,
  type SweepQueue,
} from './sqs.js';
export type { SweepStore } from './store.js';
export {
  type AttemptRecord,
  AttemptRecordSchema,
  type AttemptState,
  AttemptStateSchema,
  acquisitionIdFor,
  bundleIdFor,
  type DeadLetterRecord,
  DeadLetterRecordSchema,
  type FinalRecord,
  FinalRecordSchema,
  FLEET_SCHEMA_VERSION,
  type SweepCluster,
  SweepClusterSchema,
  type SweepManifest,
  SweepManifestSchema,
  type SweepTarget,
  SweepTargetSchema,
  targetKey,
} from './types.js';
export {
  type CatalogConnectorOptions,
  catalogConnector,
  parseSweepTarget,
  processSweepMessage,
  runSweepWorker,
  type SweepConnector,
  type SweepMessage,
  type SweepOutcome,
  type SweepWorkerEvent,
  type SweepWorkerOptions,
  type SweepWorkerSummary,
} from './worker.js';
