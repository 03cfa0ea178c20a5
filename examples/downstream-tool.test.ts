/**
 * How a downstream tool tests itself with `eks-forensics/testing`: no AWS, no cluster, no root.
 *
 * The "tool" below (`huntMiners`) is ordinary code written against the public API: it lists the
 * pods of a namespace, execs `ps` in each running container and flags cryptominer command lines.
 * The tests start a FakeCluster whose containers run on the `scripted` runtime (a JS handler per
 * command), with RBAC like a real cluster, and assert on what the tool reports — including the
 * cases a tool must survive: no `ps` in the image, 403 on `pods/exec`, an acquisition to an
 * in-memory sink that is then verified.
 *
 *   npx vitest run test/examples/downstream-tool.test.ts
 *
 * In your project: `import { FakeCluster } from 'eks-forensics/testing'` and
 * `import { KubeClient, … } from 'eks-forensics'` (this repository imports the sources directly).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecFailedError } from '../src/entries/errors.js';
import { ArtifactCollector, ForbiddenError, KubeClient, MemorySink, verifyEvidence } from '../src/index.js';
import { FakeCluster, type ScriptedHandler } from '../src/testing/index.js';

// ---------------------------------------------------------------- the downstream tool

/** One finding of {@link huntMiners}. */
interface MinerFinding {
  pod: string;
  container: string;
  verdict: 'miner' | 'clean' | 'no-ps' | 'forbidden';
  evidence?: string;
}

const MINER_RE = /stratum\+tcp:\/\/|xmrig|--donate-level/;

/** Execs `ps -eo pid,args` in every running container of `namespace` and flags miners. */
async function huntMiners(kube: KubeClient, namespace: string): Promise<MinerFinding[]> {
  const findings: MinerFinding[] = [];
  for await (const pod of kube.listPods({ namespace })) {
    for (const status of pod.status?.containerStatuses ?? []) {
      if (!status.state?.running) continue;
      const base = { pod: pod.metadata.name, container: status.name };
      try {
        const session = await kube.exec({
          namespace,
          pod: pod.metadata.name,
          container: status.name,
          command: ['ps', '-eo', 'pid,args'],
          timeoutMs: 10_000,
        });
        let out = '';
        session.stdout.on('data', (d: Buffer) => {
          if (out.length < 1 << 20) out += d.toString('utf8');
        });
        session.stderr.resume();
        await session.result;
        const hit = out.split('\n').find((l) => MINER_RE.test(l));
        findings.push(
          hit ? { ...base, verdict: 'miner', evidence: hit.trim() } : { ...base, verdict: 'clean' },
        );
      } catch (err) {
        if (err instanceof ForbiddenError)
          findings.push({ ...base, verdict: 'forbidden', evidence: err.message });
        else if (err instanceof ExecFailedError)
          findings.push({ ...base, verdict: 'no-ps', evidence: err.message });
        else throw err;
      }
    }
  }
  return findings.sort((a, b) => `${a.pod}/${a.container}`.localeCompare(`${b.pod}/${b.container}`));
}

// ---------------------------------------------------------------- its tests

const psOutput =
  (rows: string[]): ScriptedHandler =>
  async (_argv, io) => {
    io.stdout.end(`  PID COMMAND\n${rows.join('\n')}\n`);
    return 0;
  };

describe('huntMiners (a downstream tool) against FakeCluster', () => {
  let cluster: FakeCluster;
  let admin: KubeClient;

  beforeAll(async () => {
    cluster = await FakeCluster.start({
      users: [{ name: 'viewer', rules: [{ verbs: ['get', 'list'], resources: ['pods'] }] }],
    });
    admin = new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.adminToken });
    await cluster.addPod({
      namespace: 'shop',
      name: 'api-0',
      containers: [
        {
          name: 'api',
          image: 'example.com/api:1.0',
          runtime: 'scripted',
          options: {
            commands: {
              ps: psOutput([
                '    1 /app/server --port 8080',
                '   42 /tmp/.x/xmrig --url stratum+tcp://pool.example.invalid:3333 --donate-level 1',
              ]),
            },
          },
          logs: { current: 'GET / 200\n' },
        },
        {
          name: 'sidecar',
          image: 'example.com/proxy:2.1',
          runtime: 'scripted',
          options: { commands: { ps: psOutput(['    1 /usr/bin/envoy -c /etc/envoy.yaml']) } },
        },
      ],
    });
    await cluster.addPod({
      namespace: 'shop',
      name: 'distroless-0',
      // no handler for `ps`: the exec fails like "executable file not found in $PATH"
      containers: [{ name: 'app', image: 'gcr.io/distroless/static:nonroot', runtime: 'scripted' }],
    });
    await cluster.addPod({
      namespace: 'shop',
      name: 'batch-0',
      containers: [{ name: 'job', image: 'example.com/job:1', runtime: 'scripted', state: 'terminated' }],
    });
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('flags the miner, passes the clean sidecar, reports the image without ps, skips stopped containers', async () => {
    const findings = await huntMiners(admin, 'shop');
    expect(findings.map((f) => `${f.pod}/${f.container}:${f.verdict}`)).toEqual([
      'api-0/api:miner',
      'api-0/sidecar:clean',
      'distroless-0/app:no-ps',
    ]);
    expect(findings[0]?.evidence).toContain('stratum+tcp://pool.example.invalid:3333');
    expect(findings[2]?.evidence).toMatch(/not found/i);
  });

  it('reports 403 on pods/exec as a finding, with the RBAC detail, instead of crashing', async () => {
    const viewer = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.tokenFor('viewer'),
    });
    const findings = await huntMiners(viewer, 'shop');
    expect(findings.every((f) => f.verdict === 'forbidden')).toBe(true);
    expect(findings[0]?.evidence).toMatch(/pods\/exec|"exec"/);
    expect(findings[0]?.evidence).toContain('viewer');
  });

  it('acquires API state into a MemorySink and the bundle verifies', async () => {
    const sink = new MemorySink();
    const collector = new ArtifactCollector({ sink, profiles: ['pod-state'] });
    const report = await collector.acquire({
      kube: admin,
      namespace: 'shop',
      pod: 'api-0',
      container: 'api',
    });
    const t = report.targets[0];
    expect(t?.finalized).toBe(true);
    const bundle = sink.bundles.get(t?.acquisitionId ?? '');
    expect(bundle).toBeDefined();
    if (!bundle) return;
    const pod = JSON.parse(bundle.files.get('pod/pod.json')?.toString('utf8') ?? '{}') as {
      metadata?: { name?: string };
    };
    expect(pod.metadata?.name).toBe('api-0');
    // logs are stored with the API server's timestamps
    expect(bundle.files.get('pod/logs/api.log')?.toString('utf8')).toMatch(/^\S+Z GET \/ 200\n$/);
    const v = await verifyEvidence(bundle, { expectedManifestSha256: t?.manifestSha256 });
    expect(v.status).toBe('valid');
    // tampering with the in-memory bundle is caught
    bundle.files.set('pod/logs/api.log', Buffer.from('GET / 500\n'));
    const again = await verifyEvidence(bundle);
    expect(again.ok).toBe(false);
    expect(again.modified).toContain('pod/logs/api.log');
  });
});
