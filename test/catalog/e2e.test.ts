/**
 * End to end: clusters discovered in moto_server (and in FakeAws), their endpoint replaced via
 * `connect({ endpoint })` by a FakeCluster that accepts EKS tokens structurally and maps access
 * key ids to principals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterCatalog,
  type ClusterInfo,
  type ConnectOptions,
  ForbiddenError,
  KubeClient,
  NotMappedError,
} from '../../src/index.js';
import { FakeCluster, type FakeRbacRule } from '../../src/testing/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  BASE_ACCOUNT,
  BASE_CREDS,
  type Backend,
  EXTERNAL_ID,
  motoMissing,
  ROLE_ARN,
  seed,
  startFake,
  startMoto,
} from './backends.js';

const LIMITED = { accessKeyId: 'AKIALIMITEDVIEWER001', secretAccessKey: 'limited-secret' };
const UNMAPPED = { accessKeyId: 'AKIAUNMAPPEDPRINCIPA', secretAccessKey: 'unmapped-secret' };
const DIGEST = `sha256:${'ab'.repeat(32)}`;

// what clusterRoleYaml() grants, as FakeCluster rules for group "cado"
const CADO_RULES: FakeRbacRule[] = [
  { verbs: ['get', 'list'], resources: ['pods'] },
  { verbs: ['get', 'create'], resources: ['pods/exec'] },
  { verbs: ['get'], resources: ['pods/log'] },
  { verbs: ['list'], resources: ['events'] },
  { verbs: ['get'], resources: ['nodes'] },
];

function e2eSuite(start: () => Promise<Backend>) {
  let backend: Backend;
  let fc: FakeCluster;
  let clusters: ClusterInfo[];
  let via: ConnectOptions;

  const catalogAs = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
    new ClusterCatalog({
      regions: ['us-east-1', 'eu-west-1'],
      credentials,
      accounts: [{ roleArn: ROLE_ARN, externalId: EXTERNAL_ID }],
      endpoints: { eks: backend.endpoint, sts: backend.endpoint },
      maxAttempts: 1,
    });
  const cluster = (name: string) => {
    const c = clusters.find((x) => x.name === name);
    if (!c) throw new Error(`cluster ${name} not discovered`);
    return c;
  };

  beforeAll(async () => {
    backend = await start();
    backend.fake?.addPrincipal({
      accessKeyId: LIMITED.accessKeyId,
      arn: `arn:aws:iam::${BASE_ACCOUNT}:user/viewer`,
    });
    backend.fake?.addPrincipal({
      accessKeyId: UNMAPPED.accessKeyId,
      arn: `arn:aws:iam::${BASE_ACCOUNT}:user/stranger`,
    });
    await seed(backend);
    ({ clusters } = await catalogAs(BASE_CREDS).discover());
    const betaHost = new URL(cluster('beta').endpoint ?? '').hostname;
    fc = await FakeCluster.start({
      name: 'alpha',
      tlsServerName: betaHost,
      groupRules: { cado: CADO_RULES },
      users: [{ name: 'viewer', rules: [{ verbs: ['get', 'list'], resources: ['pods'] }] }],
      eks: {
        clusterName: 'alpha',
        principals: [
          {
            accessKeyId: BASE_CREDS.accessKeyId,
            arn: `arn:aws:iam::${BASE_ACCOUNT}:user/responder`,
            username: 'responder',
            groups: ['cado'],
          },
          {
            accessKeyId: LIMITED.accessKeyId,
            arn: `arn:aws:iam::${BASE_ACCOUNT}:user/viewer`,
            username: 'viewer',
          },
        ],
      },
    });
    via = { endpoint: fc.server, caData: fc.caData };
    fc.addNode({ name: 'ip-10-0-1-23.ec2.internal', providerID: 'aws:///us-east-1a/i-0123456789abcdef0' });
    fc.addNode({
      name: 'fargate-ip-10-0-9-9.ec2.internal',
      labels: { 'eks.amazonaws.com/compute-type': 'fargate' },
    });
    await fc.addPod({
      namespace: 'default',
      name: 'web',
      nodeName: 'ip-10-0-1-23.ec2.internal',
      initContainers: [
        { name: 'setup', image: 'busybox:1.36', state: 'terminated', exitCode: 0 },
        {
          name: 'log-shipper',
          image: 'fluent/fluent-bit:3.1',
          state: 'running',
          extraSpec: { restartPolicy: 'Always' },
        },
      ],
      containers: [
        { name: 'app', image: 'nginx:1.27', imageID: `docker.io/library/nginx@${DIGEST}`, restartCount: 2 },
      ],
    });
    await fc.addPod({
      namespace: 'default',
      name: 'static-site',
      nodeName: 'ip-10-0-1-23.ec2.internal',
      containers: [{ name: 'srv', image: 'gcr.io/distroless/static-debian12:nonroot' }],
    });
    await fc.addPod({
      namespace: 'kube-system',
      name: 'coredns-7d8b9',
      nodeName: 'ip-10-0-1-23.ec2.internal',
      containers: [{ name: 'coredns', image: 'coredns/coredns:1.11.1' }],
    });
    await fc.addPod({
      namespace: 'payments',
      name: 'api',
      nodeName: 'fargate-ip-10-0-9-9.ec2.internal',
      labels: { 'eks.amazonaws.com/fargate-profile': 'payments' },
      containers: [
        { name: 'api', image: 'example.com/payments/api:2.4' },
        { name: 'waiter', image: 'busybox:1.36', state: 'waiting', reason: 'CrashLoopBackOff' },
      ],
    });
  });
  afterAll(async () => {
    await fc?.close();
    await backend?.close();
  });

  it('pods(): containers of every kind with digest, id, state, restarts, node, compute type; hidden left out', async () => {
    const catalog = catalogAs(BASE_CREDS);
    const pods = await catalog.pods(cluster('alpha'), { connect: via });
    expect(pods.map((p) => `${p.namespace}/${p.name}`).sort()).toEqual(['default/web', 'payments/api']);
    const web = pods.find((p) => p.name === 'web');
    expect(web).toMatchObject({ node: 'ip-10-0-1-23.ec2.internal', computeType: 'EC2', hidden: false });
    const byName = new Map(web?.containers.map((c) => [c.name, c]));
    expect(byName.get('setup')).toMatchObject({ kind: 'init', state: 'terminated', exitCode: 0 });
    expect(byName.get('log-shipper')).toMatchObject({ kind: 'sidecar', state: 'running' });
    const app = byName.get('app');
    expect(app).toMatchObject({
      kind: 'container',
      image: 'nginx:1.27',
      imageDigest: DIGEST,
      state: 'running',
      restartCount: 2,
    });
    expect(app?.containerId).toMatch(/^[a-z]+:\/\/[0-9a-f]+/);
    const api = pods.find((p) => p.name === 'api');
    expect(api?.computeType).toBe('Fargate');
    expect(api?.containers.find((c) => c.name === 'waiter')).toMatchObject({
      state: 'waiting',
      stateReason: 'CrashLoopBackOff',
    });

    // an ephemeral container (added by an admin) shows up labelled
    const admin = new KubeClient({ server: fc.server, caData: fc.caData, token: fc.adminToken });
    await admin.patchEphemeralContainers('default', 'web', [
      { name: 'debugger', image: 'busybox:1.36', targetContainerName: 'app', command: ['sh'] },
    ]);
    const again = await catalog.pods(cluster('alpha'), { connect: via, namespace: 'default' });
    const dbg = again.find((p) => p.name === 'web')?.containers.find((c) => c.name === 'debugger');
    expect(dbg).toMatchObject({ kind: 'ephemeral', targetContainerName: 'app' });
  });

  it('pods({ includeHidden }): system namespaces and distroless images flagged with reasons; node labels on request', async () => {
    const catalog = catalogAs(BASE_CREDS);
    const pods = await catalog.pods(cluster('alpha'), {
      connect: via,
      includeHidden: true,
      resolveNodes: true,
    });
    const coredns = pods.find((p) => p.name === 'coredns-7d8b9');
    expect(coredns?.hidden).toBe(true);
    expect(coredns?.hiddenReason).toMatch(/kube-system/);
    const site = pods.find((p) => p.name === 'static-site');
    expect(site?.hidden).toBe(true);
    expect(site?.containers[0]?.hidden).toBe(true);
    expect(site?.containers[0]?.hiddenReason).toMatch(/distroless/);
    expect(pods.find((p) => p.name === 'api')?.computeType).toBe('Fargate');
  });

  it('a private-only cluster works through an endpoint override with tlsServerName (SSM-style tunnel)', async () => {
    const beta = cluster('beta');
    expect(beta.reachability.kind).toBe('private-only');
    const catalog = catalogAs(BASE_CREDS);
    const pods = await catalog.pods(beta, {
      connect: {
        endpoint: fc.server,
        caData: fc.caData,
        tlsServerName: new URL(beta.endpoint ?? '').hostname,
      },
      namespace: 'payments',
    });
    expect(pods.map((p) => p.name)).toEqual(['api']);
  });

  it('checkAccess(): identity with the IAM ARN from extra, every permission, ok', async () => {
    const catalog = catalogAs(BASE_CREDS);
    const report = await catalog.checkAccess(cluster('alpha'), { connect: via });
    expect(report.identity.username).toBe('responder');
    expect(report.identity.groups).toContain('cado');
    expect(report.identity.iamArn).toBe(`arn:aws:iam::${BASE_ACCOUNT}:user/responder`);
    expect(report.callerArn).toMatch(new RegExp(`^arn:aws:(iam|sts)::${BASE_ACCOUNT}:user/`));
    expect(report.ok).toBe(true);
    expect(report.missing).toEqual([]);
    const exec = report.permissions.filter((p) => p.subresource === 'exec');
    expect(exec.map((p) => [p.verb, p.allowed])).toEqual([
      ['get', true],
      ['create', true],
    ]);
    const eph = report.permissions.find((p) => p.subresource === 'ephemeralcontainers');
    expect(eph).toMatchObject({ required: false, allowed: false });
    expect(report.remediation).toMatch(/pods\/ephemeralcontainers/);
  });

  it('a mapped principal without pods/exec: checkAccess lists what is missing, exec gets a 403 naming it', async () => {
    const catalog = catalogAs(LIMITED);
    const report = await catalog.checkAccess(cluster('alpha'), { connect: via, namespace: 'default' });
    expect(report.ok).toBe(false);
    expect(report.identity.username).toBe('viewer');
    expect(
      report.missing.map((p) => `${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ''}`),
    ).toEqual(['get pods/exec', 'create pods/exec', 'get pods/log', 'list events']);
    expect(report.remediation).toMatch(/kind: ClusterRole\b/);
    expect(report.remediation).toMatch(/kind: ClusterRoleBinding/);
    expect(report.remediation).toMatch(/name: cado/);

    const kube = await catalog.connect(cluster('alpha'), via);
    const err = await kube
      .exec({ namespace: 'default', pod: 'web', container: 'app', command: ['id'] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    const e = err as ForbiddenError;
    expect(e.denied).toMatchObject({
      user: 'viewer',
      resource: 'pods',
      subresource: 'exec',
      namespace: 'default',
    });
    expect(e.message).toMatch(/denied user "viewer"/);
    expect(e.message).toMatch(/on "pods\/exec" in namespace "default"/);
    expect(e.message).toMatch(/kind: ClusterRoleBinding/);
    expect(e.message).not.toMatch(/k8s-aws-v1\.[A-Za-z0-9_-]{20}/);
  });

  it('an unmapped principal gets the 401 text naming the IAM principal and both fixes', async () => {
    const catalog = catalogAs(UNMAPPED);
    const caller = await catalog.callerArn(cluster('alpha'));
    expect(caller).toBeDefined();
    const err = await catalog.pods(cluster('alpha'), { connect: via }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotMappedError);
    const e = err as NotMappedError;
    expect(e.code).toBe('EKSF_NOT_MAPPED');
    expect(e.principalArn).toBe(caller);
    expect(e.message).toContain(
      `The IAM principal ${caller} is not configured to authorize with this EKS cluster`,
    );
    expect(e.message).toMatch(
      /aws eks create-access-entry --region us-east-1 --cluster-name alpha --principal-arn arn:aws:/,
    );
    expect(e.message).toMatch(/aws eks associate-access-policy .*AmazonEKSEditPolicy/);
    expect(e.message).toMatch(
      /eksctl create iamidentitymapping --region us-east-1 --cluster alpha --arn arn:aws:.* --group cado/,
    );
    expect(e.message).not.toMatch(/k8s-aws-v1\.[A-Za-z0-9_-]{20}/);
    // checkAccess fails the same way
    await expect(catalog.checkAccess(cluster('alpha'), { connect: via })).rejects.toBeInstanceOf(
      NotMappedError,
    );
  });
}

const missing = motoMissing();
describe.skipIf(skipWithoutPeer('moto_server', missing))('end to end: moto_server + FakeCluster', () => {
  e2eSuite(startMoto);
});

describe('end to end: FakeAws + FakeCluster', () => {
  e2eSuite(() => startFake());
});
