/**
 * Fleet test harness: moto_server (SQS + S3 + EKS + STS), FakeClusters registered as EKS
 * clusters in moto, and a worker configuration that child processes read from a JSON file.
 */
import { readFileSync } from 'node:fs';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { ArtifactProfile } from '../../src/collect/index.js';
import { ClusterUnreachableError } from '../../src/errors.js';
import { catalogConnector, type SweepConnector } from '../../src/fleet/index.js';
import { ClusterCatalog } from '../../src/index.js';
import { FakeCluster } from '../../src/testing/index.js';

export const CREDS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'fleet-secret' };
export const ACCOUNT = '123456789012';

/** What a worker (in this process or a child) needs. */
export interface FleetConfig {
  moto: string;
  bucket: string;
  queueUrl: string;
  dlqUrl: string;
  regions: string[];
  /** cluster name -> where the FakeCluster listens */
  clusters: Record<string, { endpoint: string; caData: string }>;
  /** regions whose API servers are "down" (read again for every target) */
  downFile?: string;
}

export const s3For = (moto: string, maxAttempts = 3) =>
  new S3Client({
    endpoint: moto,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: CREDS,
    maxAttempts,
  });
export const sqsFor = (moto: string, maxAttempts = 3) =>
  new SQSClient({ endpoint: moto, region: 'us-east-1', credentials: CREDS, maxAttempts });

export function catalogFor(cfg: Pick<FleetConfig, 'moto' | 'regions'>): ClusterCatalog {
  return new ClusterCatalog({
    regions: cfg.regions,
    credentials: CREDS,
    endpoints: { eks: cfg.moto, sts: cfg.moto },
    maxAttempts: 1,
  });
}

/** Reaches clusters through the catalog (EKS tokens) with the FakeCluster endpoints; "down" regions throw. */
export function connectorFor(cfg: FleetConfig): SweepConnector {
  const inner = catalogConnector(catalogFor(cfg), {
    connect: (c) => {
      const fc = cfg.clusters[c.name];
      return fc ? { endpoint: fc.endpoint, caData: fc.caData, timeoutMs: 10_000 } : undefined;
    },
  });
  return async (t, signal) => {
    if (cfg.downFile) {
      let down: string[] = [];
      try {
        down = JSON.parse(readFileSync(cfg.downFile, 'utf8')) as string[];
      } catch {
        down = [];
      }
      if (down.includes(t.cluster.region) || down.includes(t.cluster.name))
        throw new ClusterUnreachableError(
          `region ${t.cluster.region} is down (test): API server unreachable`,
        );
    }
    return inner(t, signal);
  };
}

/** An API-only profile: sleeps `fleet-test/slow-ms` (pod annotation) then writes one artifact. */
export const testProfile: ArtifactProfile = {
  name: 'fleet-test',
  description: 'test profile: optional delay, then one small artifact',
  needs: 'api',
  async collect(ctx) {
    const ms = Number(ctx.pod?.metadata?.annotations?.['fleet-test/slow-ms'] ?? 0);
    if (ms > 0) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          reject(ctx.signal.reason);
        });
      });
    }
    await ctx.writeArtifact(
      'fleet-test.txt',
      `target ${ctx.target.namespace}/${ctx.target.pod}/${ctx.target.container}\n`,
      {
        contentType: 'text/plain',
      },
    );
  },
};

/** Creates FakeClusters that accept EKS tokens of CREDS and registers each as an EKS cluster in moto. */
export async function startClusters(
  moto: string,
  specs: {
    name: string;
    region: string;
    pods: {
      name: string;
      namespace?: string;
      containers?: string[];
      slowMs?: number;
      labels?: Record<string, string>;
    }[];
  }[],
): Promise<{ clusters: FakeCluster[]; map: FleetConfig['clusters'] }> {
  const clusters: FakeCluster[] = [];
  const map: FleetConfig['clusters'] = {};
  for (const s of specs) {
    const eks = new EKSClient({ region: s.region, endpoint: moto, credentials: CREDS, maxAttempts: 1 });
    await eks.send(
      new CreateClusterCommand({
        name: s.name,
        version: '1.31',
        roleArn: `arn:aws:iam::${ACCOUNT}:role/eks-cluster`,
        resourcesVpcConfig: { subnetIds: ['subnet-0a1b2c3d'], endpointPublicAccess: true },
      }),
    );
    eks.destroy();
    const fc = await FakeCluster.start({
      name: s.name,
      eks: {
        clusterName: s.name,
        principals: [
          {
            accessKeyId: CREDS.accessKeyId,
            arn: `arn:aws:iam::${ACCOUNT}:user/responder`,
            username: 'responder',
            groups: ['system:masters'],
          },
        ],
      },
    });
    for (const p of s.pods) {
      await fc.addPod({
        namespace: p.namespace ?? 'default',
        name: p.name,
        ...(p.labels ? { labels: p.labels } : {}),
        ...(p.slowMs ? { annotations: { 'fleet-test/slow-ms': String(p.slowMs) } } : {}),
        containers: (p.containers ?? ['app']).map((c) => ({ name: c, image: 'busybox:1.36' })),
      });
    }
    clusters.push(fc);
    map[s.name] = { endpoint: fc.server, caData: fc.caData };
  }
  return { clusters, map };
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}
