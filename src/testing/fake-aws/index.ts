/**
 * Fake AWS endpoints (EKS + STS) and a `moto_server` launcher for tests.
 *
 * @module
 */

export type {
  FakeCloudTrailEventInput,
  FakeGuardDutyDetectorInput,
  FakePodIdentityAssociationInput,
} from './cloud-services.js';
export { type MotoServer, motoServerMissing, type StartMotoOptions, startMotoServer } from './moto.js';
export { FakeAws } from './server.js';
export type {
  FakeAwsFailure,
  FakeAwsOptions,
  FakeAwsPrincipal,
  FakeAwsRequestRecord,
  FakeAwsRole,
  FakeEksClusterInput,
} from './types.js';
