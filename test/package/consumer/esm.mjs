// The README's first example, shaped for FakeCluster (same calls after the connection), run from an
// ESM consumer against the installed tarball. Prints one JSON line for the test.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactCollector, DirectorySink, KubeClient, verifyEvidence } from 'eks-forensics';
import * as errors from 'eks-forensics/errors';
import { FakeCluster } from 'eks-forensics/testing';

const cluster = await FakeCluster.start();
try {
  await cluster.addPod({
    namespace: 'shop',
    name: 'web-0',
    containers: [
      {
        name: 'nginx',
        image: 'nginx:1.27',
        options: {
          commands: {
            cat: async (_argv, io) => {
              io.stdout.write('root:x:0:0::/root:/bin/sh\n');
              return 0;
            },
          },
        },
      },
    ],
  });
  const kube = new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.adminToken });
  const root = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'consumer-evidence-'));
  const collector = new ArtifactCollector({ sink: new DirectorySink({ root }), profiles: ['triage'] });
  const report = await collector.acquire({ kube, namespace: 'shop', pod: 'web-0', container: 'nginx' });
  const targets = [];
  for (const t of report.targets) {
    if (!t.location || !t.manifestSha256) {
      targets.push({ status: t.status, reasons: t.reasons });
      continue;
    }
    const v = await verifyEvidence(t.location, { expectedManifestSha256: t.manifestSha256 });
    targets.push({ status: t.status, verify: v.status, manifestSha256: t.manifestSha256 });
  }
  const errorClasses = Object.entries(errors)
    .filter(([, v]) => typeof v === 'function' && v.prototype instanceof Error)
    .map(([k, v]) => [k, v.name, instanceName(v)]);
  // Every subpath loads; `types` holds types only, so it has no runtime names.
  const subpaths = {};
  for (const p of [
    'errors',
    'types',
    'schemas',
    'iam',
    'auth',
    'ephemeral',
    'codecs',
    'sink-kit',
    'testing',
    'fleet',
  ])
    subpaths[p] = Object.keys(await import(`eks-forensics/${p}`)).length;
  console.log(JSON.stringify({ format: 'esm', targets, errorClasses, subpaths }));
} finally {
  await cluster.close();
}

/** The constructor name an instance reports (classes whose constructor needs more than a message: its prototype's). */
function instanceName(C) {
  try {
    return new C('x').constructor.name;
  } catch {
    return Object.create(C.prototype).constructor.name;
  }
}
