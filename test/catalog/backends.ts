/**
 * The two AWS backends the catalog suite runs against: a real moto_server and our FakeAws.
 * Clusters are created through the AWS SDK in both, so the seeding path is the same.
 */
import { createServer } from 'node:net';
import { CreateClusterCommand, EKSClient, type LogType } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { FakeAws, motoServerMissing, startMotoServer } from '../../src/testing/index.js';

export const BASE_ACCOUNT = '123456789012';
export const OTHER_ACCOUNT = '222222222222';
export const ROLE_ARN = `arn:aws:iam::${OTHER_ACCOUNT}:role/ForensicsDiscovery`;
export const EXTERNAL_ID = 'ir-2026-11';
export const BASE_CREDS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'base-secret' };

export interface Backend {
  name: string;
  endpoint: string;
  fake?: FakeAws | undefined;
  close(): Promise<void>;
}

export function motoMissing(): string | undefined {
  return motoServerMissing();
}

export async function startMoto(): Promise<Backend> {
  const moto = await startMotoServer();
  return { name: 'moto_server', endpoint: moto.endpoint, close: () => moto.close() };
}

export async function startFake(
  options: { maxPageSize?: number; latencyMs?: number } = {},
): Promise<Backend> {
  const fake = await FakeAws.start({
    principals: [{ accessKeyId: BASE_CREDS.accessKeyId, arn: `arn:aws:iam::${BASE_ACCOUNT}:user/responder` }],
    roles: [{ arn: ROLE_ARN, externalId: EXTERNAL_ID }],
    ...options,
  });
  return { name: 'FakeAws', endpoint: fake.endpoint, fake, close: () => fake.close() };
}

/** A TCP port with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

interface ClusterSeed {
  name: string;
  region: string;
  publicAccess?: boolean;
  privateAccess?: boolean;
  cidrs?: string[];
  logging?: string[];
  tags?: Record<string, string>;
  authenticationMode?: 'API' | 'API_AND_CONFIG_MAP' | 'CONFIG_MAP';
}

async function create(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  account: string,
  c: ClusterSeed,
) {
  const eks = new EKSClient({ region: c.region, endpoint, credentials, maxAttempts: 1 });
  try {
    await eks.send(
      new CreateClusterCommand({
        name: c.name,
        version: '1.31',
        roleArn: `arn:aws:iam::${account}:role/eks-cluster`,
        resourcesVpcConfig: {
          subnetIds: ['subnet-0a1b2c3d'],
          endpointPublicAccess: c.publicAccess ?? true,
          endpointPrivateAccess: c.privateAccess ?? false,
          ...(c.cidrs ? { publicAccessCidrs: c.cidrs } : {}),
        },
        ...(c.logging
          ? { logging: { clusterLogging: [{ types: c.logging as LogType[], enabled: true }] } }
          : {}),
        ...(c.tags ? { tags: c.tags } : {}),
        ...(c.authenticationMode ? { accessConfig: { authenticationMode: c.authenticationMode } } : {}),
      }),
    );
  } finally {
    eks.destroy();
  }
}

/** The clusters every suite run expects, by `<account>/<region>/<name>`. */
export const SEEDED = {
  alpha: { name: 'alpha', region: 'us-east-1', logging: ['api', 'audit'], tags: { team: 'ir', env: 'prod' } },
  beta: { name: 'beta', region: 'eu-west-1', publicAccess: false, privateAccess: true },
  gamma: { name: 'gamma', region: 'eu-west-1', cidrs: ['203.0.113.0/24'], privateAccess: true },
  delta: { name: 'delta', region: 'us-east-1', tags: { owner: 'other-account' } },
} as const satisfies Record<string, ClusterSeed>;

export async function seed(backend: Backend): Promise<void> {
  await create(backend.endpoint, BASE_CREDS, BASE_ACCOUNT, SEEDED.alpha);
  await create(backend.endpoint, BASE_CREDS, BASE_ACCOUNT, { ...SEEDED.beta });
  await create(backend.endpoint, BASE_CREDS, BASE_ACCOUNT, {
    ...SEEDED.gamma,
    cidrs: [...SEEDED.gamma.cidrs],
  });
  const sts = new STSClient({
    region: 'us-east-1',
    endpoint: backend.endpoint,
    credentials: BASE_CREDS,
    maxAttempts: 1,
  });
  try {
    const out = await sts.send(
      new AssumeRoleCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'seed', ExternalId: EXTERNAL_ID }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error('seed: AssumeRole returned no credentials');
    await create(
      backend.endpoint,
      { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken },
      OTHER_ACCOUNT,
      { ...SEEDED.delta },
    );
  } finally {
    sts.destroy();
  }
}
