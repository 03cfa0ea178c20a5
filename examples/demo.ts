/**
 * `npm run demo`: a full triage of a compromised pod, end to end, on this machine — no AWS
 * account, no cluster. It starts a local lab (fake EKS/STS APIs + FakeCluster with a compromised
 * workload) and then does exactly what you would do against real EKS:
 *
 *   ClusterCatalog (discover, check access, pods) → EksAuth (EKS token) + KubeClient
 *   → ArtifactCollector ('triage') → DirectorySink (./evidence/) → verifyEvidence
 *
 *   npx tsx examples/demo.ts [--out ./evidence] [--runtime auto|sandbox|emulated] [--concurrency 2]
 *
 * Where the sandbox cannot run (not root, no bwrap), the workload is an emulation: canned files and
 * /proc with the same scenario, labelled as such in the output, the case id and pod.json.
 * Exit code 0 only when every claim it prints held: bundles finalized, complete and verified, every
 * planted indicator found in the evidence, and none in the clean container's.
 * In your own project import from 'eks-forensics' and 'eks-forensics/testing'.
 */
import { userInfo } from 'node:os';
import { relative, resolve } from 'node:path';
import { decodeEksToken } from '../src/entries/auth.js';
import {
  type AcquisitionTarget,
  ArtifactCollector,
  ClusterCatalog,
  DirectorySink,
  EksAuth,
  isEksForensicsError,
  KubeClient,
  type ProgressEvent,
  type TargetReport,
  verifyEvidence,
} from '../src/index.js';
import { parseFlags } from './cli.js';
import { formatIndicators, type Indicators, indicatorCount, readIndicators } from './indicators.js';
import { LAB_NAMESPACE, type LabRuntime, startLab } from './lab.js';

// The AWS SDK warns that Node 20 support ends in 2027; that is noise for a demo.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USAGE = `usage: npm run demo -- [--out DIR] [--runtime auto|sandbox|emulated] [--concurrency N]

  --out DIR          where the bundles go (default ./evidence)
  --runtime R        auto (default): the sandbox when this machine can run it (root, bwrap,
                     busybox-static, nsenter), else the emulated workload; sandbox: fail without
                     it; emulated: canned files and /proc with the same scenario
  --concurrency N    containers acquired at once (default 2)
  -h, --help         this text

The demo always runs against its own local lab (no AWS account, no cluster). The other examples
take --local for the same lab, e.g. npx tsx examples/acquire-container.ts --local
`;

const values = parseFlags(
  {
    out: { type: 'string', default: './evidence' },
    runtime: { type: 'string', default: 'auto' },
    concurrency: { type: 'string', default: '2' },
  },
  USAGE,
);

const started = Date.now();
const tty = process.stdout.isTTY === true;
const clock = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
let statusShown = false;

function clearStatus(): void {
  if (tty && statusShown) process.stdout.write('\r\x1b[2K');
  statusShown = false;
}
function say(line: string): void {
  clearStatus();
  process.stdout.write(`${line}\n`);
}
function step(n: number, tag: string, line: string): void {
  say(`${clock()} [${n}/6] ${tag.padEnd(8)} ${line}`);
}
function detail(line: string): void {
  say(`${' '.repeat(21)}${line}`);
}
const shown = (p: string) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
};
const mb = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;

/** A failure the demo explains without a stack trace. */
class DemoFailure extends Error {}

async function main(): Promise<number> {
  const runtimeArg = values.runtime as LabRuntime;
  if (!['auto', 'sandbox', 'emulated', 'host'].includes(runtimeArg))
    throw new DemoFailure(`--runtime must be auto, sandbox or emulated\n\n${USAGE}`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new DemoFailure(`--concurrency must be a whole number ≥ 1\n\n${USAGE}`);
  const outDir = resolve(values.out ?? './evidence');
  say('eks-forensics demo: triage of a compromised pod in a local stand-in for EKS\n');

  // 1. the lab: stands in for your AWS account and EKS cluster
  const lab = await startLab({
    runtime: runtimeArg,
    onStep: detail,
  });
  try {
    step(1, 'lab', `ready (${lab.runtime} runtime, ${lab.awsBackend})`);

    // 2. discover the cluster like in a real account
    const catalog = new ClusterCatalog(lab.catalogOptions);
    const { clusters, problems } = await catalog.discover();
    if (problems.length)
      throw new DemoFailure(`discovery problems: ${problems.map((p) => p.message).join('; ')}`);
    const cluster = clusters.find((c) => c.name === lab.clusterName);
    if (!cluster) throw new DemoFailure(`cluster ${lab.clusterName} not discovered`);
    step(
      2,
      'discover',
      `ClusterCatalog: ${cluster.name} (${cluster.region}, Kubernetes ${cluster.kubernetesVersion ?? '?'}, ${cluster.reachability.kind} endpoint, auth ${cluster.authenticationMode ?? 'CONFIG_MAP'})`,
    );

    // 3. get in: an EKS token (presigned STS GetCallerIdentity) and an access preflight
    const auth = new EksAuth({ region: cluster.region, credentials: lab.credentials });
    const token = await auth.getToken({ clusterName: cluster.name });
    const host = decodeEksToken(token.token).url.host;
    step(
      3,
      'access',
      `EksAuth signed a token for ${cluster.name} via ${host}, valid until ${token.expiresAt.toISOString().slice(11, 19)} UTC (never printed)`,
    );
    const access = await catalog.checkAccess(cluster, { namespace: LAB_NAMESPACE, connect: lab.connect });
    const required = access.permissions.filter((p) => p.required);
    const granted = required.filter((p) => p.allowed).length;
    detail(
      `cluster sees us as "${access.identity.username ?? '?'}" (${access.identity.iamArn ?? 'no IAM ARN'}); ${granted}/${required.length} required permissions granted`,
    );
    if (!access.ok) throw new DemoFailure(`not ready for acquisition:\n${access.remediation ?? ''}`);

    // 4. targets: every visible container of the namespace, reached with a KubeClient that
    // authenticates with EksAuth's tokens — what `catalog.connect(cluster, lab.connect)` builds for
    // you; the lab's endpoint stands in for cluster.endpoint (as an SSM port forward would)
    const kube = new KubeClient({
      server: lab.connect.endpoint ?? cluster.endpoint ?? '',
      caData: lab.connect.caData ?? cluster.certificateAuthority,
      token: async () => (await auth.getToken({ clusterName: cluster.name })).token,
    });
    const pods = await catalog.pods(cluster, { namespace: LAB_NAMESPACE, connect: lab.connect });
    const targets: AcquisitionTarget[] = pods.flatMap((p) =>
      p.containers
        .filter((c) => c.state === 'running')
        .map((c) => ({
          kube,
          namespace: p.namespace,
          pod: p.name,
          container: c.name,
          fs: lab.fsFor(c.name),
        })),
    );
    if (targets.length === 0) throw new DemoFailure(`no running containers in namespace ${LAB_NAMESPACE}`);
    step(
      4,
      'targets',
      `${targets.length} running container(s) in namespace ${LAB_NAMESPACE}: ${pods.map((p) => `${p.name}/${p.containers.map((c) => c.name).join(',')}`).join('  ')}`,
    );

    // 5. acquire with the triage profile into ./evidence/
    // Ctrl-C stops the acquisition cleanly: bundles in progress are kept, marked incomplete
    const interrupt = new AbortController();
    process.once('SIGINT', () => {
      say('interrupted: stopping; bundles in progress stay on disk, marked incomplete');
      interrupt.abort(new Error('interrupted by the user'));
    });
    const collector = new ArtifactCollector({
      signal: interrupt.signal,
      sink: new DirectorySink({ root: outDir }),
      profiles: ['triage'],
      concurrency,
      // The case id travels into every custody record: an emulated run says so there.
      caseId: `DEMO${lab.runtime === 'emulated' ? '-EMULATED' : ''}-${new Date().toISOString().slice(0, 10)}`,
      examiner: userInfo().username,
      cluster: { name: cluster.name, arn: cluster.arn, region: cluster.region, accountId: cluster.accountId },
    });
    step(5, 'acquire', `ArtifactCollector, profile triage, concurrency ${concurrency} → ${shown(outDir)}/`);
    let artifacts = 0;
    let runBytes = 0;
    let lastPrint = 0;
    const running = new Set<string>();
    collector.on('progress', (e: ProgressEvent) => {
      const name = `${e.target.pod}/${e.target.container}`;
      if (e.type === 'target-started') {
        running.add(name);
        detail(`▶ ${name}`);
      } else if (e.type === 'target-finished') {
        running.delete(name);
        detail(
          `${e.status === 'complete' ? '✔' : '✖'} ${name}: ${e.status}${e.reasons.length ? ` (${e.reasons.join('; ')})` : ''}`,
        );
      } else if (e.type === 'artifact-finished') {
        artifacts++;
      } else if (e.type === 'bytes') {
        runBytes = e.runBytes;
      }
      const now = Date.now();
      if (e.type === 'artifact-finished' || e.type === 'bytes') {
        const line = `… ${running.size} running · ${artifacts} artifacts · ${mb(runBytes)}`;
        if (tty) {
          process.stdout.write(`\r\x1b[2K${' '.repeat(21)}${line}`);
          statusShown = true;
        } else if (now - lastPrint > 1000) {
          lastPrint = now;
          detail(line);
        }
      }
    });
    const report = await collector.acquire(targets);
    clearStatus();
    if (report.aborted) {
      say(
        '\nInterrupted. What was acquired stays on disk; verifyEvidence reports these bundles as incomplete:',
      );
      for (const t of report.targets)
        if (t.location) say(`  ${t.target.pod}/${t.target.container}: ${shown(t.location)}`);
      return 130;
    }

    // 6. verify every bundle again from disk
    const failures: string[] = [];
    let verified = 0;
    for (const t of report.targets) {
      if (!t.location) {
        failures.push(`${t.target.pod}/${t.target.container}: no bundle (${t.reasons.join('; ')})`);
        continue;
      }
      const v = await verifyEvidence(t.location, { expectedManifestSha256: t.manifestSha256 });
      if (v.ok) verified++;
      else failures.push(`${t.location}: ${v.status} ${v.problems.map((p) => p.message).join('; ')}`);
    }
    step(
      6,
      'verify',
      `verifyEvidence re-hashed ${verified}/${report.targets.length} bundle(s): ${failures.length ? 'PROBLEMS' : 'valid'}`,
    );

    // summary
    const sum = (k: keyof TargetReport['artifacts']) =>
      report.targets.reduce((n, t) => n + t.artifacts[k], 0);
    const byStatus = (s: string) => report.targets.filter((t) => t.status === s).length;
    say('\nSummary');
    say(
      `  targets     ${report.targets.length} (${byStatus('complete')} complete, ${byStatus('partial')} partial, ${byStatus('failed')} failed)`,
    );
    say(
      `  artifacts   ${sum('complete') + sum('truncated') + sum('failed') + sum('skipped')} (${sum('complete')} complete, ${sum('truncated')} truncated, ${sum('failed')} failed, ${sum('skipped')} skipped by policy)`,
    );
    say(
      `  bytes       ${mb(report.bytes)} in ${((Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000).toFixed(1)} s`,
    );
    say(`  runtime     ${lab.runtimeNote}`);
    if (lab.runtime === 'emulated') {
      say(
        "              (not emulated: the bytes of running and deleted executables, whose exe links dangle, so those artifacts and the executable hashes are not complete and the targets partial; the shell and clock are the host's)",
      );
    }
    say('  look at first:');
    const found = new Map<string, Indicators>();
    for (const t of report.targets) {
      if (!t.location) continue;
      const ind = await readIndicators(t.location, t.target.container);
      found.set(t.target.container, ind);
      const lines = formatIndicators(ind, '      ');
      say(
        `    ${t.target.namespace}/${t.target.pod}/${t.target.container}${lab.runtime === 'emulated' ? ' (emulated)' : ''}${lines.length ? '' : ': nothing obvious'}`,
      );
      for (const l of lines) say(l);
    }
    say('  bundles:');
    for (const t of report.targets) {
      say(`    ${t.target.pod}/${t.target.container}: ${t.location ? shown(t.location) : '?'}`);
      say(`      manifest sha256 ${t.manifestSha256 ?? '-'}`);
    }
    const first =
      report.targets.find((t) => {
        const ind = found.get(t.target.container);
        return t.location !== undefined && ind !== undefined && indicatorCount(ind) > 0;
      }) ?? report.targets.find((t) => t.location);
    if (first?.location) {
      say('  verify again:');
      say(
        `    npx tsx examples/verify-bundle.ts ${shown(first.location)} --expected-sha256 ${first.manifestSha256 ?? ''}`,
      );
    }

    // every claim above must hold
    for (const t of report.targets) {
      if (t.status === 'failed' || !t.finalized)
        failures.push(`${t.target.pod}/${t.target.container}: ${t.status}`);
      // An emulation cannot serve the bytes of executables (deleted ones, or for hashing): only
      // those may be missing.
      const expected = (r: string) =>
        lab.runtime === 'emulated' &&
        (/proc\/\d+\/exe\.bin: (not readable|exit code [1-9])/.test(r) ||
          /^containers\/\w+\/proc\/exe-hashes\.json: truncated: exe-hashes: \d+ hashes are of a prefix, by path, or missing/.test(
            r,
          ));
      if (t.status !== 'complete' && !(t.status === 'partial' && t.reasons.every(expected))) {
        failures.push(`${t.target.pod}/${t.target.container} is ${t.status}: ${t.reasons.join('; ')}`);
      }
    }
    const app = found.get('app');
    const cart = found.get('cart');
    if (cart && indicatorCount(cart) > 0) {
      failures.push('the clean container (cart) shows indicators: the evidence is not only its own');
    }
    const expect: Array<[string, boolean]> = [
      ['a process running from a deleted binary', (app?.deletedBinaries.length ?? 0) > 0],
      ['/etc/ld.so.preload content', (app?.ldSoPreload.length ?? 0) > 0],
      ['the planted authorized_keys', (app?.authorizedKeys.length ?? 0) > 0],
      ['the cron entry', (app?.cron.length ?? 0) > 0],
      ['the reverse-shell connection', (app?.connections.length ?? 0) > 0],
    ];
    for (const [what, ok] of expect) if (!ok) failures.push(`indicator missing from the evidence: ${what}`);
    if (failures.length) {
      say('\nFAILED:');
      for (const f of failures) say(`  ${f}`);
      return 1;
    }
    say(
      `\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s. Next: docs/getting-started.md (real EKS in ~15 lines).`,
    );
    return 0;
  } finally {
    const t = Date.now();
    await lab.close();
    if (process.env.DEBUG) say(`lab closed in ${Date.now() - t} ms`);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    clearStatus();
    if (err instanceof DemoFailure) console.error(`\ndemo failed: ${err.message}`);
    else if (isEksForensicsError(err)) console.error(`\ndemo failed [${err.code}]: ${err.message}`);
    else console.error(`\ndemo failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.DEBUG && err instanceof Error) console.error(err.stack);
    process.exitCode = 1;
  },
);
