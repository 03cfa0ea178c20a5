/**
 * The collector-test recipe of docs/testing.md, as a test that runs: a FakeCluster container on the
 * `sandbox` runtime with a planted file and a miner from a deleted binary, the `triage` profile
 * into a MemorySink, and assertions on what the bundle holds. The block between the `recipe`
 * markers is the code docs/testing.md shows (test/examples/collector-recipe.test.ts checks they
 * are the same, with the imports spelled as a consumer writes them).
 *
 *   npx vitest run test/examples/collector-recipe.test.ts
 */
// recipe:start
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTarEntry } from '../src/entries/codecs.js';
import { SandboxUnavailableError } from '../src/entries/errors.js';
import { ArtifactCollector, KubeClient, MemorySink, verifyEvidence } from '../src/index.js';
import { createSandboxRuntime, FakeCluster } from '../src/testing/index.js';

// Collectors run shell scripts in the target, so the container must be real: the sandbox runtime
// (Linux, root, bwrap, busybox-static, nsenter). Skip, rather than fail, where it cannot run.
const sandbox = await createSandboxRuntime().catch((err: unknown) => {
  if (err instanceof SandboxUnavailableError) return undefined;
  throw err;
});

describe.skipIf(!sandbox)('a collector test with FakeCluster and a MemorySink', () => {
  let cluster: FakeCluster;
  let kube: KubeClient;

  beforeAll(async () => {
    cluster = await FakeCluster.start({ runtimes: sandbox ? { sandbox } : {} });
    kube = new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.adminToken });
    await cluster.addPod({
      namespace: 'shop',
      name: 'api-0',
      containers: [
        {
          name: 'app',
          image: 'example.com/api:1.0',
          runtime: 'sandbox',
          command: ['sleep', 'infinity'],
          options: {
            preset: 'busybox',
            files: { '/etc/ld.so.preload': { content: '/usr/local/lib/libhide.so\n' } },
            processes: [
              { argv: ['/tmp/.x/xmrig', '--donate-level', '1'], binary: 'sleeper', deleteAfterStart: true },
            ],
          },
        },
      ],
    });
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('finds the miner and the preload in the evidence, and the bundle verifies', async () => {
    const sink = new MemorySink();
    const collector = new ArtifactCollector({ sink, profiles: ['triage'] });
    const report = await collector.acquire({ kube, namespace: 'shop', pod: 'api-0', container: 'app' });
    const target = report.targets[0];
    expect(target?.status).toBe('complete');

    // A MemorySink bundle is a Map of bundle paths to bytes, listed in manifest.json with their hashes.
    const bundle = sink.bundles.get(target?.acquisitionId ?? '');
    if (!bundle) throw new Error('no bundle');
    const json = (path: string): unknown => JSON.parse(bundle.files.get(path)?.toString('utf8') ?? 'null');

    // proc/processes.json: one row per process as /proc showed it (the collector's own shell is
    // flagged `collector: true`): pid, ppid, name, uid, state, cmdline, exe, exeDeleted, cwd, root,
    // fds and ns (link targets). Raw per-process files sit beside it in proc/<pid>/.
    const { processes } = json('containers/app/proc/processes.json') as {
      processes: Array<{
        pid: number;
        cmdline: string;
        exe: string;
        exeDeleted: boolean;
        collector: boolean;
      }>;
    };
    const miner = processes.find((p) => p.exeDeleted && !p.collector);
    expect(miner?.exe).toBe('/tmp/.x/xmrig (deleted)');
    expect(miner?.cmdline).toBe('/tmp/.x/xmrig --donate-level 1');

    // files/index.json: one row per file found; copied files live in tar streams (stream + entry).
    const { files } = json('containers/app/files/index.json') as {
      files: Array<{ path: string; status: string; stream?: string; entry?: string }>;
    };
    const preload = files.find((f) => f.path === '/etc/ld.so.preload');
    expect(preload?.status).toBe('copied');
    const tar = bundle.files.get(preload?.stream ?? '');
    const bytes = tar && (await readTarEntry(tar, preload?.entry ?? ''));
    expect(bytes?.toString('utf8')).toBe('/usr/local/lib/libhide.so\n');

    // Re-hash everything against the manifest hash the report returned.
    const verdict = await verifyEvidence(bundle, { expectedManifestSha256: target?.manifestSha256 ?? '' });
    expect(verdict.status).toBe('valid');
  });
});
// recipe:end
