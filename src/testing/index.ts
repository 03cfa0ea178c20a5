/**
 * Test doubles for downstream tools: `FakeCluster` (a kube-apiserver stand-in with real
 * processes behind it) and fake AWS endpoints. Import from `eks-forensics/testing`.
 *
 * @module eks-forensics/testing
 */

// --- runtime interface ---
export type {
  ContainerRuntime,
  RuntimeContainer,
  RuntimeContainerSpec,
  RuntimeExecExit,
  RuntimeExecProcess,
  RuntimeExecSpec,
  RuntimePodRef,
} from './runtime.js';

// --- fake cluster ---
export {
  type EksTokenClaims,
  type EksTokenVerifyOptions,
  type EksTokenVerifyResult,
  verifyEksToken,
} from './fake-cluster/eks-token.js';
export {
  type FakeCheckpointBehavior,
  fakeCheckpointArchives,
  setFakeCheckpointBehavior,
} from './fake-cluster/checkpoint.js';
export { FakeCluster } from './fake-cluster/fake-cluster.js';
export {
  addIdentityFixture,
  type IdentityFixture,
  type IdentityFixtureOptions,
} from './fake-cluster/identity-fixture.js';
export { execNotFoundMessage, randomContainerId } from './fake-cluster/runtimes/common.js';
export { createHostRuntime } from './fake-cluster/runtimes/host.js';
export { createScriptedRuntime } from './fake-cluster/runtimes/scripted.js';
export type {
  FakeClusterApi,
  FakeClusterOptions,
  FakeContainerSpec,
  FakeEksOptions,
  FakeEksPrincipal,
  FakeEphemeralRuntimeChoice,
  FakeEphemeralRuntimeContext,
  FakeEventSpec,
  FakeKubeconfigOptions,
  FakeLogContent,
  FakeLogLine,
  FakeNodeSpec,
  FakePodSpec,
  FakeRbacRule,
  FakeRequestRecord,
  FakeUserSpec,
  HostRuntimeOptions,
  KubeJsonObject,
  ScriptedHandler,
  ScriptedIo,
  ScriptedRuntimeOptions,
} from './fake-cluster/types.js';

// --- sandbox runtime ---
export {
  APP_BINARY,
  type CraftedTarEntry,
  craftedTar,
  createSandboxRuntime,
  deepPathComponents,
  HOSTILE_PATHS,
  type HostileFilesOptions,
  hostileFiles,
  hostileNames,
  hostileProcesses,
  hostileTarEntries,
  type SandboxBinaryEntry,
  type SandboxContainerOptions,
  type SandboxDirEntry,
  type SandboxEntry,
  type SandboxEntryMeta,
  type SandboxFifoEntry,
  type SandboxFileEntry,
  type SandboxFileMap,
  type SandboxGrowingEntry,
  type SandboxHardlinkEntry,
  type SandboxPath,
  type SandboxPreset,
  type SandboxProcessSpec,
  SandboxRuntime,
  type SandboxRuntimeContainer,
  type SandboxRuntimeOptions,
  type SandboxSparseEntry,
  type SandboxSymlinkEntry,
  sandboxEphemeralContainerRuntime,
} from './sandbox/index.js';

// --- fake aws ---

export {
  FakeAws,
  type FakeAwsFailure,
  type FakeAwsOptions,
  type FakeAwsPrincipal,
  type FakeAwsRequestRecord,
  type FakeAwsRole,
  type FakeCloudTrailEventInput,
  type FakeEksClusterInput,
  type FakeGuardDutyDetectorInput,
  type FakePodIdentityAssociationInput,
  type MotoServer,
  motoServerMissing,
  type StartMotoOptions,
  startMotoServer,
} from './fake-aws/index.js';

// --- sink conformance ---

export {
  type ConformanceResult,
  runSinkConformance,
  type SinkUnderTest,
} from './sink-conformance.js';
