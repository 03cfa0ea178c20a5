/**
 * Preflight before an acquisition: who does the cluster think we are, and may we list pods, exec,
 * read logs and events? Prints what is missing and how to fix it.
 *
 *   npx tsx examples/check-access.ts --cluster prod --region eu-west-1 [--role <arn> --external-id <id>]
 *       [--namespace default] [--endpoint https://127.0.0.1:8443 --tls-server-name <endpoint host>]
 *   npx tsx examples/check-access.ts --local     # moto_server (or FakeAws) + FakeCluster on 127.0.0.1
 *
 * In your own project import from 'eks-forensics' and 'eks-forensics/testing'.
 */
import { parseArgs } from 'node:util';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import type { AccessReport } from '../src/entries/types.js';
import {
  ClusterCatalog,
  type ClusterCatalogOptions,
  type ClusterInfo,
  type ConnectOptions,
  ForbiddenError,
  NotMappedError,
} from '../src/index.js';
import { FakeAws, FakeCluster, motoServerMissing, startMotoServer } from '../src/testing/index.js';

const { values } = parseArgs({
  options: {
    local: { type: 'boolean', default: false },
    cluster: { type: 'string' },
    region: { type: 'string' },
    role: { type: 'string' },
    'external-id': { type: 'string' },
    namespace: { type: 'string' },
    endpoint: { type: 'string' },
    'tls-server-name': { type: 'string' },
  },
});

function printReport(title: string, r: AccessReport): void {
  console.log(`\n== ${title}: ${r.cluster.name} (${r.cluster.region}) ==`);
  console.log(
    `kubernetes user : ${r.identity.username ?? '?'}  groups: ${r.identity.groups.join(', ') || '-'}`,
  );
  console.log(`IAM (cluster)   : ${r.identity.iamArn ?? '?'}`);
  console.log(`IAM (STS)       : ${r.callerArn ?? '?'}`);
  for (const p of r.permissions) {
    const what = `${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ''}`;
    console.log(
      `  ${p.allowed ? 'ok      ' : p.required ? 'MISSING ' : 'optional'}  ${what.padEnd(32)} ${p.purpose}`,
    );
  }
  console.log(r.ok ? 'ready for acquisition' : 'NOT ready for acquisition');
  if (r.remediation) console.log(`\n${r.remediation}`);
}

async function check(title: string, catalog: ClusterCatalog, cluster: ClusterInfo, connect: ConnectOptions) {
  try {
    printReport(title, await catalog.checkAccess(cluster, { namespace: values.namespace, connect }));
  } catch (err) {
    if (err instanceof NotMappedError || err instanceof ForbiddenError) {
      console.log(`\n== ${title}: ${cluster.name} ==\n${err.message}`);
      return;
    }
    throw err;
  }
}

async function local(): Promise<void> {
  const creds = {
    responder: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'local-secret' },
    viewer: { accessKeyId: 'AKIAVIEWEREXAMPLE001', secretAccessKey: 'local-secret' },
    stranger: { accessKeyId: 'AKIASTRANGEREXAMPLE1', secretAccessKey: 'local-secret' },
  };
  let endpoint: string;
  let closeAws: () => Promise<void>;
  if (motoServerMissing() === undefined) {
    const moto = await startMotoServer();
    ({ endpoint } = moto);
    closeAws = () => moto.close();
  } else {
    const fake = await FakeAws.start();
    ({ endpoint } = fake);
    closeAws = () => fake.close();
  }
  const fc = await FakeCluster.start({
    name: 'prod',
    groupRules: {
      cado: [
        { verbs: ['get', 'list'], resources: ['pods'] },
        { verbs: ['get', 'create'], resources: ['pods/exec'] },
        { verbs: ['get'], resources: ['pods/log'] },
        { verbs: ['list'], resources: ['events'] },
      ],
    },
    users: [{ name: 'viewer', rules: [{ verbs: ['get', 'list'], resources: ['pods'] }] }],
    eks: {
      clusterName: 'prod',
      principals: [
        {
          accessKeyId: creds.responder.accessKeyId,
          arn: 'arn:aws:iam::123456789012:user/responder',
          username: 'responder',
          groups: ['cado'],
        },
        {
          accessKeyId: creds.viewer.accessKeyId,
          arn: 'arn:aws:iam::123456789012:user/viewer',
          username: 'viewer',
        },
      ],
    },
  });
  try {
    console.log(`local AWS at ${endpoint}; FakeCluster at ${fc.server}`);
    const eks = new EKSClient({ region: 'eu-west-1', endpoint, credentials: creds.responder });
    await eks.send(
      new CreateClusterCommand({
        name: 'prod',
        roleArn: 'arn:aws:iam::123456789012:role/eks',
        resourcesVpcConfig: { subnetIds: ['subnet-1'] },
      }),
    );
    eks.destroy();
    const opts = (credentials: { accessKeyId: string; secretAccessKey: string }): ClusterCatalogOptions => ({
      regions: ['eu-west-1'],
      credentials,
      endpoints: { eks: endpoint, sts: endpoint },
    });
    const { clusters } = await new ClusterCatalog(opts(creds.responder)).discover();
    const prod = clusters.find((c) => c.name === 'prod');
    if (!prod) throw new Error('local cluster not found');
    // the cluster's real endpoint does not exist here: point the connection at the FakeCluster
    const connect: ConnectOptions = { endpoint: fc.server, caData: fc.caData };
    await check('mapped, with the ClusterRole', new ClusterCatalog(opts(creds.responder)), prod, connect);
    await check('mapped, without pods/exec', new ClusterCatalog(opts(creds.viewer)), prod, connect);
    await check('not mapped', new ClusterCatalog(opts(creds.stranger)), prod, connect);
  } finally {
    await fc.close();
    await closeAws();
  }
}

async function real(): Promise<void> {
  if (!values.cluster || !values.region) {
    throw new Error('pass --cluster <name> --region <region> (or --local)');
  }
  const catalog = new ClusterCatalog({
    regions: [values.region],
    includeDefaultAccount: !values.role,
    accounts: values.role ? [{ roleArn: values.role, externalId: values['external-id'] }] : [],
  });
  const { clusters, problems } = await catalog.discover();
  for (const p of problems) console.error(`problem [${p.kind}]: ${p.message}`);
  const cluster = clusters.find((c) => c.name === values.cluster);
  if (!cluster) throw new Error(`cluster ${values.cluster} not found in ${values.region}`);
  await check('access', catalog, cluster, {
    endpoint: values.endpoint,
    tlsServerName: values['tls-server-name'],
  });
}

(values.local ? local() : real()).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
