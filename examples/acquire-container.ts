/**
 * Acquire one container: find the cluster, connect with an EKS token, run profiles into a
 * DirectorySink, verify the bundle.
 *
 *   npx tsx examples/acquire-container.ts --cluster prod --region eu-west-1 \
 *       --namespace shop --pod payments-api-7f9c6d5b8-x2x4q --container app \
 *       [--profile triage] [--profile ./my-profile.yaml] [--out ./evidence] [--case IR-2026-042]
 *       [--role <arn> --external-id <id>] [--endpoint https://127.0.0.1:8443 --tls-server-name <host>]
 *   npx tsx examples/acquire-container.ts --local     # moto_server (or FakeAws) + FakeCluster on 127.0.0.1
 *
 * Prints the report as JSON on stdout (progress on stderr). Exit code 0 when the bundle is
 * complete and verifies, 2 when it is partial, 1 on failure.
 * In your own project import from 'eks-forensics'.
 */
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProfileInput } from '../src/entries/types.js';
import { ArtifactCollector, DirectorySink, loadProfileFile, verifyEvidence } from '../src/index.js';
import { CLUSTER_FLAGS, openCluster, run, UsageError } from './cli.js';
import { LAB_COMPROMISED_POD, LAB_NAMESPACE } from './lab.js';

const { values } = parseArgs({
  options: {
    ...CLUSTER_FLAGS,
    namespace: { type: 'string' },
    pod: { type: 'string' },
    container: { type: 'string' },
    profile: { type: 'string', multiple: true },
    out: { type: 'string', default: './evidence' },
    case: { type: 'string' },
  },
});

run(async () => {
  const opened = await openCluster(values, { onStep: (m) => process.stderr.write(`local: ${m}\n`) });
  try {
    const namespace = values.namespace ?? (values.local ? LAB_NAMESPACE : undefined);
    const pod = values.pod ?? (values.local ? LAB_COMPROMISED_POD : undefined);
    const container = values.container ?? (values.local ? 'app' : undefined);
    if (!namespace || !pod || !container) throw new UsageError('give --namespace, --pod and --container');

    // built-in profile names as they are, anything with a slash or extension is a profile file
    const profiles: ProfileInput[] = [];
    for (const p of values.profile ?? ['triage']) {
      profiles.push(/[/.]/.test(p) ? await loadProfileFile(p) : p);
    }
    const { cluster, kube } = opened;
    // fail early with the API's own 404/403 message when the pod is not there or not ours to read
    const podObject = await kube.getPod(namespace, pod);
    const names = [...(podObject.spec?.containers ?? []), ...(podObject.spec?.initContainers ?? [])].map(
      (c) => c.name,
    );
    if (!names.includes(container)) {
      throw new UsageError(
        `pod ${namespace}/${pod} has no container "${container}" (it has: ${names.join(', ')})`,
      );
    }
    const collector = new ArtifactCollector({
      sink: new DirectorySink({ root: resolve(values.out ?? './evidence') }),
      profiles,
      caseId: values.case,
      examiner: userInfo().username,
      cluster: { name: cluster.name, arn: cluster.arn, region: cluster.region, accountId: cluster.accountId },
    });
    collector.on('progress', (e) => {
      if (e.type === 'artifact-finished')
        process.stderr.write(`  ${e.status.padEnd(9)} ${e.path} (${e.bytes} B)\n`);
    });
    const report = await collector.acquire({
      kube,
      namespace,
      pod,
      container,
      fs: opened.lab?.fsFor(container),
    });
    const t = report.targets[0];
    if (!t?.location) throw new UsageError(`no bundle was written: ${t?.reasons.join('; ') ?? 'unknown'}`);
    const verified = await verifyEvidence(t.location, { expectedManifestSha256: t.manifestSha256 });
    process.stdout.write(
      `${JSON.stringify(
        {
          target: t.target,
          status: t.status,
          reasons: t.reasons,
          strategy: t.strategy.content,
          needsEphemeralContainer: t.needsEphemeralContainer,
          artifacts: t.artifacts,
          bytes: t.bytes,
          location: t.location,
          manifestSha256: t.manifestSha256,
          verify: { status: verified.status, checked: verified.checked, problems: verified.problems },
        },
        null,
        2,
      )}\n`,
    );
    if (!verified.ok) return 1;
    return t.status === 'complete' ? 0 : t.status === 'partial' ? 2 : 1;
  } finally {
    await opened.close();
  }
});
