/**
 * Helpers shared by FakeCluster runtimes.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ContainerRuntime, RuntimeContainer, RuntimeContainerSpec } from '../../runtime.js';

/** A random 64-hex container or exec id, as containerd makes them. */
export function randomContainerId(): string {
  return randomBytes(32).toString('hex');
}

/**
 * The runtime error containerd/runc gives when an exec'd binary does not exist, e.g.
 * `failed to exec in container: failed to start exec "<id>": OCI runtime exec failed: exec failed:
 * unable to start container process: exec: "ps": executable file not found in $PATH: unknown`.
 * Runtimes report it as `{ kind: 'error', message }`; FakeCluster prefixes
 * `error executing command in container: ` like the kubelet does.
 */
export function execNotFoundMessage(command: string): string {
  const what = command.includes('/') ? 'no such file or directory' : 'executable file not found in $PATH';
  return (
    `failed to exec in container: failed to start exec "${randomContainerId()}": OCI runtime exec failed: ` +
    `exec failed: unable to start container process: exec: "${command}": ${what}: unknown`
  );
}

/**
 * A runtime that makes containers with `make` and stops every one of them on `close()`.
 * Shared by the in-process runtimes, whose containers hold no resources beyond their processes.
 */
export function trackingRuntime<Options>(
  name: string,
  make: (spec: RuntimeContainerSpec<Options>, options: Options | Record<string, never>) => RuntimeContainer,
): ContainerRuntime<Options> {
  const containers = new Set<RuntimeContainer>();
  return {
    name,
    async start(spec) {
      const c = make(spec, spec.options ?? {});
      containers.add(c);
      return c;
    },
    async close() {
      await Promise.all([...containers].map((c) => c.stop()));
      containers.clear();
    },
  };
}
