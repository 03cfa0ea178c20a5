/**
 * Helpers for collector tests: a FakeCluster with the sandbox runtime, a KubeClient, a directory
 * sink in a temp dir, and readers for bundle content.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import {
  ArtifactCollector,
  type ArtifactCollectorOptions,
  readTarEntry,
  type TargetReport,
} from '../../src/collect/index.js';
import { DirectorySink } from '../../src/evidence/index.js';
import { KubeClient } from '../../src/kube/index.js';
import { FakeCluster, type FakeClusterOptions } from '../../src/testing/index.js';
import { createSandboxRuntime, type SandboxContainerOptions } from '../../src/testing/sandbox/index.js';

export { sandboxMissing } from '../sandbox/support.js';

/** A started environment. */
export interface Env {
  cluster: FakeCluster;
  kube: KubeClient;
  dir: string;
  sink: DirectorySink;
  close(): Promise<void>;
}

/** Starts FakeCluster with a sandbox runtime and a DirectorySink under a fresh temp dir. */
export async function startEnv(options: Omit<FakeClusterOptions, 'runtimes'> = {}): Promise<Env> {
  const sandbox = await createSandboxRuntime();
  const cluster = await FakeCluster.start({ ...options, runtimes: { sandbox } });
  const kube = new KubeClient({
    server: cluster.server,
    caData: cluster.caData,
    token: cluster.adminToken,
    timeoutMs: 30_000,
  });
  const dir = await mkdtemp(join(tmpdir(), 'eksf-collect-'));
  const sink = new DirectorySink({ root: dir, fsyncArtifacts: false });
  return {
    cluster,
    kube,
    dir,
    sink,
    async close() {
      await cluster.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let podSeq = 0;

/** Adds a one-container sandbox pod; returns its name. */
export async function addSandboxPod(
  env: Env,
  options: SandboxContainerOptions,
  extra: {
    name?: string;
    namespace?: string;
    container?: string;
    command?: string[];
    env?: Record<string, string>;
    logs?: { current?: string; previous?: string };
  } = {},
): Promise<{ namespace: string; pod: string; container: string }> {
  const namespace = extra.namespace ?? 'default';
  const pod = extra.name ?? `target-${process.pid}-${podSeq++}`;
  const container = extra.container ?? 'app';
  await env.cluster.addPod({
    namespace,
    name: pod,
    containers: [
      {
        name: container,
        image: 'busybox:1.36',
        runtime: 'sandbox',
        options,
        ...(extra.command ? { command: extra.command } : {}),
        ...(extra.env ? { env: extra.env } : {}),
        ...(extra.logs ? { logs: extra.logs } : {}),
      },
    ],
  });
  return { namespace, pod, container };
}

/** Reads a bundle file as text (throws when missing). */
export function bundleText(location: string, path: string): string {
  return readFileSync(join(location, path), 'utf8');
}

/** Whether a bundle file exists. */
export function bundleHas(location: string, path: string): boolean {
  return existsSync(join(location, path));
}

/** Parses a bundle JSON file. */
export function bundleJson<T = Record<string, unknown>>(location: string, path: string): T {
  return JSON.parse(bundleText(location, path)) as T;
}

/** A row of files/index.json. */
export interface FileRowJson {
  path: string;
  status: string;
  reason?: string;
  sha256?: string;
  bytes?: number;
  stream?: string;
  entry?: string;
  offset?: number;
  linkTarget?: string;
  mode: string;
  items: string[];
}

/** The files index of a container. */
export function filesIndex(location: string, container = 'app'): FileRowJson[] {
  return bundleJson<{ files: FileRowJson[] }>(location, `containers/${container}/files/index.json`).files;
}

/** Content of a collected file, read back out of the stored raw stream (tar or frames). */
export async function collectedFile(
  location: string,
  path: string,
  container = 'app',
): Promise<Buffer | undefined> {
  const row = filesIndex(location, container).find((r) => r.path === path);
  if (!row?.stream || row.status !== 'copied') return undefined;
  const raw = readFileSync(join(location, row.stream));
  if (row.stream.endsWith('.tar')) return readTarEntry(raw, row.entry ?? '');
  if (row.offset === undefined || row.bytes === undefined) return undefined;
  return raw.subarray(row.offset, row.offset + row.bytes);
}

/**
 * Starts an environment before the tests of the enclosing `describe` and closes it after. The
 * returned object stands for it (read its fields inside tests and hooks, not at collection time).
 */
export function useEnv(closeTimeoutMs = 120_000): Env {
  let env: Env | undefined;
  beforeAll(async () => {
    env = await startEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.close();
  }, closeTimeoutMs);
  return new Proxy({} as Env, {
    get(_, key) {
      if (!env) throw new Error('the test environment did not start');
      return env[key as keyof Env];
    },
  });
}

/** A manifest record, as the collector tests read it. */
export interface ManifestRecord {
  path: string;
  status: string;
  reason?: string;
  bytes: number;
  details?: Record<string, unknown>;
}

/**
 * Adds a one-container sandbox pod (busybox images run `sleep`, others their entrypoint), acquires
 * it with a collector on the environment's sink, and returns the target's report, its bundle
 * folder and its manifest records.
 */
export async function acquireSandbox(
  env: Env,
  pod: SandboxContainerOptions,
  options: Omit<ArtifactCollectorOptions, 'sink'>,
): Promise<{ report: TargetReport; loc: string; artifacts: ManifestRecord[] }> {
  const busybox = (pod.preset ?? 'busybox') === 'busybox';
  const t = await addSandboxPod(env, pod, busybox ? { command: ['sleep', '86400'] } : {});
  const collector = new ArtifactCollector({ sink: env.sink, ...options });
  const report = (await collector.acquire({ kube: env.kube, ...t })).targets[0] as TargetReport;
  const loc = report.location as string;
  return {
    report,
    loc,
    artifacts: bundleJson<{ artifacts: ManifestRecord[] }>(loc, 'manifest.json').artifacts,
  };
}
