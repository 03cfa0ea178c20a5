import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterCatalog, type ClusterInfo, ClusterUnreachableError } from '../../src/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  BASE_ACCOUNT,
  BASE_CREDS,
  type Backend,
  closedPort,
  EXTERNAL_ID,
  motoMissing,
  OTHER_ACCOUNT,
  ROLE_ARN,
  seed,
  startFake,
  startMoto,
} from './backends.js';

const REGIONS = ['us-east-1', 'eu-west-1', 'ap-southeast-2'];
const fakePem = '-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n';

function byKey(clusters: ClusterInfo[]): Map<string, ClusterInfo> {
  return new Map(clusters.map((c) => [`${c.accountId}/${c.region}/${c.name}`, c]));
}

/** The same assertions against moto_server and FakeAws. */
function catalogSuite(start: () => Promise<Backend>) {
  let backend: Backend;
  beforeAll(async () => {
    backend = await start();
    await seed(backend);
  });
  afterAll(async () => {
    await backend?.close();
  });

  const catalogFor = (extra: Partial<ConstructorParameters<typeof ClusterCatalog>[0]> = {}) =>
    new ClusterCatalog({
      regions: REGIONS,
      credentials: BASE_CREDS,
      accounts: [{ roleArn: ROLE_ARN, externalId: EXTERNAL_ID, sessionName: 'ir-case-42' }],
      endpoints: { eks: backend.endpoint, sts: backend.endpoint },
      maxAttempts: 1,
      ...extra,
    });

  it('finds the clusters of both regions and of the assumed-role account, with their fields', async () => {
    const catalog = catalogFor({ pageSize: 1 });
    const { clusters, problems } = await catalog.discover();
    expect(problems).toEqual([]);
    const found = byKey(clusters);
    expect([...found.keys()].sort()).toEqual(
      [
        `${BASE_ACCOUNT}/us-east-1/alpha`,
        `${BASE_ACCOUNT}/eu-west-1/beta`,
        `${BASE_ACCOUNT}/eu-west-1/gamma`,
        `${OTHER_ACCOUNT}/us-east-1/delta`,
      ].sort(),
    );

    const alpha = found.get(`${BASE_ACCOUNT}/us-east-1/alpha`);
    expect(alpha).toMatchObject({
      name: 'alpha',
      arn: `arn:aws:eks:us-east-1:${BASE_ACCOUNT}:cluster/alpha`,
      accountId: BASE_ACCOUNT,
      region: 'us-east-1',
      partition: 'aws',
      status: 'ACTIVE',
      endpointAccess: { public: true, private: false },
      tags: { team: 'ir', env: 'prod' },
      reachability: { kind: 'public' },
      roleArn: undefined,
    });
    expect(alpha?.endpoint).toMatch(/^https:\/\/[^/]+\.us-east-1\.eks\.amazonaws\.com\/?$/);
    expect(alpha?.certificateAuthority?.length).toBeGreaterThan(10);
    expect(alpha?.kubernetesVersion).toMatch(/^1\.\d+$/);
    expect(alpha?.platformVersion).toMatch(/^eks\.\d+$/);
    expect(alpha?.loggingEnabled.sort()).toEqual(['api', 'audit']);
    expect(alpha?.createdAt).toBeInstanceOf(Date);

    const beta = found.get(`${BASE_ACCOUNT}/eu-west-1/beta`);
    expect(beta?.endpointAccess).toMatchObject({ public: false, private: true });
    expect(beta?.reachability.kind).toBe('private-only');
    expect(beta?.reachability.reason).toMatch(/SSM port forward/);
    expect(beta?.loggingEnabled).toEqual([]);

    const gamma = found.get(`${BASE_ACCOUNT}/eu-west-1/gamma`);
    expect(gamma?.endpointAccess).toEqual({ public: true, private: true, publicCidrs: ['203.0.113.0/24'] });
    expect(gamma?.reachability).toMatchObject({ kind: 'public' });
    expect(gamma?.reachability.reason).toMatch(/203\.0\.113\.0\/24/);

    const delta = found.get(`${OTHER_ACCOUNT}/us-east-1/delta`);
    expect(delta).toMatchObject({
      arn: `arn:aws:eks:us-east-1:${OTHER_ACCOUNT}:cluster/delta`,
      roleArn: ROLE_ARN,
      tags: { owner: 'other-account' },
    });
    // the caller identity for the role account is the assumed role with our session name
    expect(await catalog.callerArn(delta as ClusterInfo)).toBe(
      `arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/ForensicsDiscovery/ir-case-42`,
    );
  });

  it('a region pointed at a closed port lands in problems while the others succeed', async () => {
    const port = await closedPort();
    const catalog = catalogFor({
      regions: ['us-east-1', 'eu-central-1', 'eu-west-1'],
      endpoints: {
        eks: (r) => (r === 'eu-central-1' ? `http://127.0.0.1:${port}` : backend.endpoint),
        sts: backend.endpoint,
      },
    });
    const { clusters, problems } = await catalog.discover();
    expect(clusters.map((c) => c.name).sort()).toEqual(['alpha', 'beta', 'delta', 'gamma']);
    expect(problems).toHaveLength(2);
    for (const p of problems) {
      expect(p).toMatchObject({ region: 'eu-central-1', operation: 'eks:ListClusters', kind: 'unreachable' });
      expect(p.message).toMatch(/eu-central-1/);
      expect(p.message).toMatch(/could not be reached/);
    }
    expect(problems.map((p) => p.roleArn ?? 'base').sort()).toEqual([ROLE_ARN, 'base'].sort());
    expect(problems.find((p) => p.roleArn)?.account).toBe(OTHER_ACCOUNT);
    expect(catalog.problems).toHaveLength(2);
  });

  it('only the listed roles when includeDefaultAccount is false; breaking out early stops cleanly', async () => {
    const catalog = catalogFor({ includeDefaultAccount: false });
    const names: string[] = [];
    for await (const c of catalog.clusters()) names.push(c.name);
    expect(names).toEqual(['delta']);
    const all = catalogFor();
    for await (const c of all.clusters()) {
      expect(c.name).toMatch(/alpha|beta|gamma|delta/);
      break;
    }
  });

  it('connect() refuses a private-only cluster without a way in, naming the ways in', async () => {
    const catalog = catalogFor({ regions: ['eu-west-1'] });
    const { clusters } = await catalog.discover();
    const beta = clusters.find((c) => c.name === 'beta') as ClusterInfo;
    const err = await catalog.connect(beta).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterUnreachableError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/private-only/);
    expect(msg).toMatch(/inside the VPC/);
    expect(msg).toMatch(/proxy/);
    expect(msg).toMatch(/SSM port forward/);
    expect(msg).toMatch(/tlsServerName/);
    // with an endpoint override it connects (the client is created; reaching it is tested end to end)
    const kube = await catalog.connect(beta, {
      endpoint: 'https://127.0.0.1:1',
      tlsServerName: 'x.eks.amazonaws.com',
      // moto's CA data is random text, so a CA is passed along
      caData: fakePem,
    });
    expect(kube.server).toMatch(/^https:\/\/127\.0\.0\.1:1/);
    // from inside the VPC the real endpoint is used
    const inside = await catalog.connect(beta, { insideVpc: true, caData: fakePem });
    expect(inside.server).toBe(new URL(beta.endpoint ?? '').toString());
    // a cluster without an endpoint yet
    await expect(catalog.connect({ ...beta, endpoint: undefined, status: 'CREATING' })).rejects.toThrow(
      /CREATING/,
    );
    expect(inspect(catalog)).not.toMatch(/secret/i);
  });
}

const missing = motoMissing();
describe.skipIf(skipWithoutPeer('moto_server', missing))('ClusterCatalog against moto_server', () => {
  catalogSuite(startMoto);
});

describe('ClusterCatalog against FakeAws', () => {
  catalogSuite(() => startFake());

  it('reports a denied AssumeRole (wrong external id) as an account problem, not an exception', async () => {
    const backend = await startFake();
    try {
      await seed(backend);
      const catalog = new ClusterCatalog({
        regions: ['us-east-1'],
        credentials: BASE_CREDS,
        accounts: [{ roleArn: ROLE_ARN, externalId: 'wrong-id' }],
        endpoints: { eks: backend.endpoint, sts: backend.endpoint },
        maxAttempts: 1,
      });
      const { clusters, problems } = await catalog.discover();
      expect(clusters.map((c) => c.name)).toEqual(['alpha']);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatchObject({
        roleArn: ROLE_ARN,
        account: OTHER_ACCOUNT,
        operation: 'sts:AssumeRole',
        kind: 'access-denied',
      });
      expect(problems[0]?.message).toMatch(/external id/);
    } finally {
      await backend.close();
    }
  });

  it('classifies disabled opt-in regions, throttling and a failing DescribeCluster; respects the concurrency cap', async () => {
    const backend = await startFake({ latencyMs: 20 });
    const fake = backend.fake;
    if (!fake) throw new Error('fake backend expected');
    try {
      for (let i = 0; i < 12; i++)
        fake.addCluster({ name: `c${i}`, region: 'us-west-2', account: BASE_ACCOUNT });
      fake.addCluster({
        name: 'api-mode',
        region: 'us-west-2',
        account: BASE_ACCOUNT,
        authenticationMode: 'API',
      });
      fake.failures.push(
        { region: 'ap-east-1', service: 'eks', code: 'UnrecognizedClientException' },
        { region: 'us-east-2', service: 'eks', code: 'ThrottlingException' },
        {
          region: 'us-west-2',
          operation: 'DescribeCluster',
          clusterName: 'c3',
          code: 'AccessDeniedException',
        },
      );
      const catalog = new ClusterCatalog({
        regions: ['ap-east-1', 'us-east-2', 'us-west-2'],
        credentials: BASE_CREDS,
        endpoints: { eks: backend.endpoint, sts: backend.endpoint },
        concurrency: 3,
        maxAttempts: 1,
      });
      const { clusters, problems } = await catalog.discover();
      expect(clusters).toHaveLength(12);
      expect(clusters.find((c) => c.name === 'api-mode')?.authenticationMode).toBe('API');
      const kinds = Object.fromEntries(problems.map((p) => [p.cluster ?? p.region, p.kind]));
      expect(kinds).toEqual({
        'ap-east-1': 'region-disabled',
        'us-east-2': 'throttled',
        c3: 'access-denied',
      });
      expect(problems.find((p) => p.cluster === 'c3')?.operation).toBe('eks:DescribeCluster');
      expect(fake.maxInFlight).toBeLessThanOrEqual(3);
      expect(fake.maxInFlight).toBeGreaterThanOrEqual(2);
    } finally {
      await backend.close();
    }
  });

  it('memoizes the assumed-role credentials: one AssumeRole for a whole sweep and later calls', async () => {
    const backend = await startFake();
    const fake = backend.fake;
    if (!fake) throw new Error('fake backend expected');
    try {
      await seed(backend);
      const before = fake.requests.filter((r) => r.operation === 'AssumeRole').length;
      const catalog = new ClusterCatalog({
        regions: REGIONS,
        credentials: BASE_CREDS,
        accounts: [{ roleArn: ROLE_ARN, externalId: EXTERNAL_ID }],
        endpoints: { eks: backend.endpoint, sts: backend.endpoint },
        maxAttempts: 1,
      });
      await catalog.discover();
      const { clusters } = await catalog.discover();
      const delta = clusters.find((c) => c.name === 'delta') as ClusterInfo;
      await catalog.authFor(delta).getToken({ clusterName: 'delta' });
      expect(fake.requests.filter((r) => r.operation === 'AssumeRole').length - before).toBe(1);
    } finally {
      await backend.close();
    }
  });
});
