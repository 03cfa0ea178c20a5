/**
 * Environment for ephemeral-container tests: FakeCluster with the sandbox runtime, ephemeral
 * containers run as sandbox busybox containers joined to the target's PID namespace, except two
 * images that never run (`stuck.example/never:1` stays ContainerCreating, `missing.example/none:1`
 * stays in ImagePullBackOff).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectorySink } from '../../src/evidence/index.js';
import { KubeClient } from '../../src/kube/index.js';
import { FakeCluster } from '../../src/testing/index.js';
import { createSandboxRuntime, type SandboxContainerOptions } from '../../src/testing/sandbox/index.js';

export { sandboxMissing } from '../sandbox/support.js';

/** Debug image that runs. */
export const DEBUG_IMAGE = 'public.ecr.aws/docker/library/busybox:1.36';
/** Debug image that stays ContainerCreating. */
export const STUCK_IMAGE = 'stuck.example/never:1';
/** A debug image whose container cannot start (no `sleep`, no shell): StartError. */
export const BROKEN_IMAGE = 'broken.example/no-sleep:1';
/** Debug image whose pull fails. */
export const MISSING_IMAGE = 'missing.example/none:1';

/** A started environment. */
export interface EphemeralEnv {
  cluster: FakeCluster;
  /** Admin client. */
  kube: KubeClient;
  /** Client of a user who may read pods and exec, but not patch pods/ephemeralcontainers. */
  limited: KubeClient;
  sink: DirectorySink;
  dir: string;
  close(): Promise<void>;
}

function client(cluster: FakeCluster, token: string): KubeClient {
  return new KubeClient({ server: cluster.server, caData: cluster.caData, token, timeoutMs: 30_000 });
}

/** Starts the environment. */
export async function startEphemeralEnv(): Promise<EphemeralEnv> {
  const sandbox = await createSandboxRuntime();
  const cluster = await FakeCluster.start({
    runtimes: { sandbox },
    users: [
      {
        name: 'responder',
        rules: [
          { verbs: ['get', 'list'], resources: ['pods'] },
          { verbs: ['get', 'create'], resources: ['pods/exec'] },
          { verbs: ['get'], resources: ['pods/log'] },
          { verbs: ['list'], resources: ['events'] },
        ],
      },
    ],
    ephemeralContainerRuntime: (image) => {
      if (image === STUCK_IMAGE) return { runtime: 'sandbox', waitingReason: 'ContainerCreating' };
      if (image === BROKEN_IMAGE)
        return { runtime: 'sandbox', options: { preset: 'none' } satisfies SandboxContainerOptions };
      if (image === MISSING_IMAGE) return { runtime: 'sandbox', waitingReason: 'ImagePullBackOff' };
      return { runtime: 'sandbox', options: { preset: 'busybox' } satisfies SandboxContainerOptions };
    },
  });
  const dir = await mkdtemp(join(tmpdir(), 'eksf-ephemeral-'));
  return {
    cluster,
    kube: client(cluster, cluster.adminToken),
    limited: client(cluster, cluster.tokenFor('responder')),
    sink: new DirectorySink({ root: dir, fsyncArtifacts: false }),
    dir,
    async close() {
      await cluster.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
