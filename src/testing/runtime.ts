/**
 * The seam between FakeCluster's API server and whatever runs a container's processes.
 * `scripted` and `host` runtimes ship with FakeCluster; `sandbox` plugs in through the same interface.
 */
import type { Readable, Writable } from 'node:stream';

/** Identity of the pod a container belongs to. */
export interface RuntimePodRef {
  /** Pod namespace. */
  namespace: string;
  /** Pod name. */
  name: string;
  /** Pod UID. */
  uid: string;
}

/** What a runtime is asked to start. `options` carries the runtime-specific part of the container spec. */
export interface RuntimeContainerSpec<Options = unknown> {
  /** The pod. Runtimes may use it to share state (e.g. a network namespace) between a pod's containers. */
  pod: RuntimePodRef;
  /** Container name. */
  name: string;
  /** Image reference as it appears in the pod spec. */
  image: string;
  /** Entrypoint argv (command + args), when the container has a main process. */
  command?: readonly string[] | undefined;
  /** Environment of the main process and of exec'd processes. */
  env?: Readonly<Record<string, string>> | undefined;
  /** Working directory of exec'd processes. */
  workingDir?: string | undefined;
  /** For an ephemeral container: the running container whose namespaces it joins (`targetContainerName`). */
  target?: RuntimeContainer | undefined;
  /** Runtime-specific options. */
  options?: Options | undefined;
}

/** One exec request, already validated by the API server. */
export interface RuntimeExecSpec {
  /** argv, run directly (no shell). */
  command: readonly string[];
  /** Whether the client asked for stdin. */
  stdin: boolean;
  /** Whether the client asked for a TTY (stderr is merged into stdout then). */
  tty: boolean;
  /** Aborted when the client goes away or the cluster closes. */
  signal: AbortSignal;
}

/** How an exec'd process ended. `error` means it never started (e.g. executable not found). */
export type RuntimeExecExit =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'signaled'; signal: string }
  | { kind: 'error'; message: string };

/** A running exec'd process. Output streams must respect backpressure (pause when not read). */
export interface RuntimeExecProcess {
  /** Process stdout. */
  stdout: Readable;
  /** Process stderr (empty when `tty`). */
  stderr: Readable;
  /** Process stdin, or `null` when not requested. */
  stdin: Writable | null;
  /** Settles once the process has ended and both output streams have ended. Never rejects. */
  result: Promise<RuntimeExecExit>;
  /** Sends a signal to the process (default SIGKILL). */
  kill(signal?: NodeJS.Signals): void;
}

/** A started container. */
export interface RuntimeContainer {
  /** Runtime container ID (without the `runtime://` prefix). */
  readonly id: string;
  /** Runtime name used as the `containerID` prefix, e.g. `containerd`. */
  readonly runtimeName: string;
  /** Whether the container's main process is alive (containers without one count as running until stopped). */
  running(): boolean;
  /** Starts a process inside the container. Must not throw for a missing binary: report it in `result`. */
  exec(spec: RuntimeExecSpec): RuntimeExecProcess;
  /** Stops the container and everything it started. Idempotent. */
  stop(): Promise<void>;
}

/** A container runtime behind FakeCluster. */
export interface ContainerRuntime<Options = unknown> {
  /** Short name: `scripted`, `host`, `sandbox`. */
  readonly name: string;
  /** Starts a container. */
  start(spec: RuntimeContainerSpec<Options>): Promise<RuntimeContainer>;
  /** Stops every container this runtime started and frees what it created. Idempotent. */
  close(): Promise<void>;
}
