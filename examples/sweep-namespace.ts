/**
 * Sweep a namespace: every visible running container of every pod (optionally filtered by a
 * label selector), acquired with bounded concurrency, one bundle per container. Containers the
 * visibility policy hides (system namespaces, distroless images) are listed with the reason.
 *
 *   npx tsx examples/sweep-namespace.ts --cluster prod --region eu-west-1 --namespace shop \
 *       [--selector app=payments-api] [--profile triage] [--concurrency 4] [--out ./evidence]
 *   npx tsx examples/sweep-namespace.ts --local     # moto_server (or FakeAws) + FakeCluster on 127.0.0.1
 *
 * Prints one line per container and a JSON summary as the last line of stdout.
 * Exit code 0 when every container is complete and verifies, 2 when some are partial, 1 otherwise.
 * In your own project import from 'eks-forensics'.
 */
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type AcquisitionTarget, ArtifactCollector, DirectorySink, verifyEvidence } from '../src/index.js';
import { CLUSTER_FLAGS, openCluster, run, UsageError } from './cli.js';
import { LAB_NAMESPACE } from './lab.js';

const { values } = parseArgs({
  options: {
    ...CLUSTER_FLAGS,
    namespace: { type: 'string' },
    selector: { type: 'string' },
    profile: { type: 'string', multiple: true },
    concurrency: { type: 'string', default: '4' },
    out: { type: 'string', default: './evidence' },
    case: { type: 'string' },
  },
});

run(async () => {
  const opened = await openCluster(values, { onStep: (m) => process.stderr.write(`local: ${m}\n`) });
  try {
    const namespace = values.namespace ?? (values.local ? LAB_NAMESPACE : undefined);
    if (!namespace) throw new UsageError('give --namespace');
    const { catalog, cluster, kube, connect } = opened;

    const pods = await catalog.pods(cluster, {
      namespace,
      labelSelector: values.selector,
      includeHidden: true,
      connect,
    });
    const targets: AcquisitionTarget[] = [];
    for (const p of pods) {
      for (const c of p.containers) {
        const hidden = p.hidden || c.hidden;
        if (hidden || c.state !== 'running' || c.kind === 'init') {
          const why = hidden
            ? (c.hiddenReason ?? p.hiddenReason)
            : c.kind === 'init'
              ? 'init container'
              : c.state;
          console.log(`skip     ${p.name}/${c.name}: ${why}`);
          continue;
        }
        targets.push({ kube, namespace, pod: p.name, container: c.name, fs: opened.lab?.fsFor(c.name) });
      }
    }
    if (targets.length === 0)
      throw new UsageError(`no running, visible containers in namespace ${namespace}`);

    const collector = new ArtifactCollector({
      sink: new DirectorySink({ root: resolve(values.out ?? './evidence') }),
      profiles: values.profile ?? ['triage'],
      concurrency: Number(values.concurrency),
      caseId: values.case,
      examiner: userInfo().username,
      cluster: { name: cluster.name, arn: cluster.arn, region: cluster.region, accountId: cluster.accountId },
    });
    collector.on('progress', (e) => {
      if (e.type === 'target-started')
        process.stderr.write(`start    ${e.target.pod}/${e.target.container}\n`);
    });
    const report = await collector.acquire(targets);

    let worst = 0;
    const rows = [];
    for (const t of report.targets) {
      const v = t.location
        ? await verifyEvidence(t.location, { expectedManifestSha256: t.manifestSha256 })
        : undefined;
      const code = !v?.ok || t.status === 'failed' ? 1 : t.status === 'partial' ? 2 : 0;
      worst = code === 1 || worst === 1 ? 1 : Math.max(worst, code);
      console.log(
        `${t.status.padEnd(8)} ${t.target.pod}/${t.target.container}: ${t.artifacts.complete} artifacts, ${t.bytes} B, verify ${v?.status ?? 'no bundle'} → ${t.location ?? '-'}${t.reasons.length ? `\n         ${t.reasons.join('\n         ')}` : ''}`,
      );
      rows.push({
        pod: t.target.pod,
        container: t.target.container,
        status: t.status,
        verify: v?.status,
        location: t.location,
        manifestSha256: t.manifestSha256,
      });
    }
    console.log(JSON.stringify({ namespace, status: report.status, bytes: report.bytes, targets: rows }));
    return worst;
  } finally {
    await opened.close();
  }
});
