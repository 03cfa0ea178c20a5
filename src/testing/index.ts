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

// --- sandbox runtime ---

// --- fake aws ---
