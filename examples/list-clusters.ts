/**
 * List EKS clusters across regions and accounts, with endpoint access and reachability.
 *
 *   npx tsx examples/list-clusters.ts                       # real AWS, default credentials, all EKS regions
 *   npx tsx examples/list-clusters.ts --regions eu-west-1,us-east-1 \
 *       --role arn:aws:iam::222222222222:role/ForensicsDiscovery --external-id ir-2026
 *   npx tsx examples/list-clusters.ts --local               # moto_server (or FakeAws) on 127.0.0.1, no AWS account
 *
 * In your own project import from 'eks-forensics' and 'eks-forensics/testing'.
 */
import { parseArgs } from 'node:util';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { CatalogAccount } from '../src/entries/types.js';
import { ClusterCatalog, type ClusterCatalogOptions } from '../src/index.js';
import { FakeAws, motoServerMissing, startMotoServer } from '../src/testing/index.js';

const { values } = parseArgs({
  options: {
    local: { type: 'boolean', default: false },
    regions: { type: 'string' },
    role: { type: 'string', multiple: true },
    'external-id': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

interface LocalAws {
  endpoint: string;
  backend: string;
  close(): Promise<void>;
}

const LOCAL_CREDS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'local-secret' };
const LOCAL_ROLE = 'arn:aws:iam::222222222222:role/ForensicsDiscovery';

/** Starts moto_server (or FakeAws when moto is not installed) and creates a few clusters. */
async function startLocalAws(): Promise<LocalAws> {
  let local: LocalAws;
  if (motoServerMissing() === undefined) {
    const moto = await startMotoServer();
    local = { endpoint: moto.endpoint, backend: 'moto_server', close: () => moto.close() };
  } else {
    const fake = await FakeAws.start();
    local = {
      endpoint: fake.endpoint,
      backend: 'FakeAws (moto_server not installed)',
      close: () => fake.close(),
    };
  }
  const create = async (
    region: string,
    name: string,
    creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined },
    publicAccess = true,
  ) => {
    const eks = new EKSClient({ region, endpoint: local.endpoint, credentials: creds });
    await eks.send(
      new CreateClusterCommand({
        name,
        roleArn: 'arn:aws:iam::123456789012:role/eks',
        resourcesVpcConfig: {
          subnetIds: ['subnet-1'],
          endpointPublicAccess: publicAccess,
          endpointPrivateAccess: true,
        },
        tags: { example: 'list-clusters' },
      }),
    );
    eks.destroy();
  };
  await create('us-east-1', 'payments-prod', LOCAL_CREDS);
  await create('eu-west-1', 'analytics', LOCAL_CREDS, false);
  const sts = new STSClient({ region: 'us-east-1', endpoint: local.endpoint, credentials: LOCAL_CREDS });
  const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: LOCAL_ROLE, RoleSessionName: 'seed' }));
  sts.destroy();
  const c = assumed.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error('local AssumeRole returned no credentials');
  await create('us-east-1', 'partner-shared', {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
  });
  return local;
}

async function main(): Promise<void> {
  const accounts: CatalogAccount[] = (values.role ?? []).map((roleArn) => ({
    roleArn,
    externalId: values['external-id'],
  }));
  let options: ClusterCatalogOptions = {
    regions: values.regions?.split(',').map((r) => r.trim()),
    accounts,
  };
  let local: LocalAws | undefined;
  if (values.local) {
    local = await startLocalAws();
    process.stderr.write(`local AWS: ${local.backend} at ${local.endpoint}\n`);
    options = {
      regions: ['us-east-1', 'eu-west-1'],
      accounts: [{ roleArn: LOCAL_ROLE, sessionName: 'list-clusters' }],
      credentials: LOCAL_CREDS,
      endpoints: { eks: local.endpoint, sts: local.endpoint },
    };
  }
  try {
    const catalog = new ClusterCatalog(options);
    const rows: Array<Record<string, string>> = [];
    for await (const c of catalog.clusters()) {
      rows.push({
        account: c.accountId,
        region: c.region,
        name: c.name,
        version: c.kubernetesVersion ?? '?',
        status: c.status ?? '?',
        auth: c.authenticationMode ?? 'CONFIG_MAP?',
        access: `${c.endpointAccess.public ? 'public' : ''}${c.endpointAccess.public && c.endpointAccess.private ? '+' : ''}${c.endpointAccess.private ? 'private' : ''}`,
        reachability: c.reachability.kind,
        logging: c.loggingEnabled.join(',') || '-',
        via: c.roleArn ?? 'default credentials',
      });
    }
    rows.sort((a, b) => `${a.account}${a.region}${a.name}`.localeCompare(`${b.account}${b.region}${b.name}`));
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ clusters: rows, problems: catalog.problems.map(({ error: _e, ...p }) => p) }, null, 2)}\n`,
      );
    } else {
      console.table(rows);
      for (const p of catalog.problems) {
        console.log(`problem [${p.kind}] ${p.account ?? ''} ${p.region ?? ''} ${p.operation}: ${p.message}`);
      }
      console.log(`${rows.length} cluster(s), ${catalog.problems.length} problem(s)`);
    }
  } finally {
    await local?.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
