/**
 * Worker configuration from the environment, shared by the ECS/Fargate entry (worker.ts) and
 * the Lambda handler (lambda.ts). In `--local` mode EKSF_FLEET_LOCAL names a JSON file with the
 * moto endpoint and the FakeCluster endpoints (written by index.ts).
 */
import { readFileSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { catalogConnector, type SweepWorkerOptions } from '../../src/fleet/index.js';
import { ClusterCatalog } from '../../src/index.js';

/** What index.ts writes for local worker processes. */
export interface LocalConfig {
  moto: string;
  regions: string[];
  credentials: { accessKeyId: string; secretAccessKey: string };
  clusters: Record<string, { endpoint: string; caData: string }>;
}

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`set ${name} (see docs/fleet.md)`);
  return v;
}

/**
 * Worker options from the environment:
 * SWEEP_QUEUE_URL, SWEEP_DLQ_URL, SWEEP_BUCKET, SWEEP_PREFIX?, SWEEP_REGIONS (comma list),
 * SWEEP_ROLE_ARNS? (comma list of account roles), SWEEP_PROFILES? (default triage),
 * SWEEP_CONCURRENCY?, SWEEP_VISIBILITY_SECONDS?, AWS_REGION.
 */
export function workerOptionsFromEnv(): Omit<SweepWorkerOptions, 'signal' | 'onEvent'> {
  const localFile = process.env.EKSF_FLEET_LOCAL;
  const local = localFile ? (JSON.parse(readFileSync(localFile, 'utf8')) as LocalConfig) : undefined;
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const aws = local ? { endpoint: local.moto, region, credentials: local.credentials } : { region };
  const regions = local?.regions ?? need('SWEEP_REGIONS').split(',');
  const catalog = new ClusterCatalog({
    regions,
    accounts: (process.env.SWEEP_ROLE_ARNS ?? '')
      .split(',')
      .filter(Boolean)
      .map((roleArn) => ({ roleArn })),
    ...(local ? { credentials: local.credentials, endpoints: { eks: local.moto, sts: local.moto } } : {}),
  });
  return {
    queue: { client: new SQSClient(aws), queueUrl: need('SWEEP_QUEUE_URL') },
    deadLetterQueue: { client: new SQSClient(aws), queueUrl: need('SWEEP_DLQ_URL') },
    store: {
      client: new S3Client({ ...aws, ...(local ? { forcePathStyle: true } : {}) }),
      bucket: need('SWEEP_BUCKET'),
      prefix: process.env.SWEEP_PREFIX,
    },
    connect: catalogConnector(catalog, {
      connect: (c) => {
        const fc = local?.clusters[c.name];
        return fc ? { endpoint: fc.endpoint, caData: fc.caData } : undefined;
      },
    }),
    profiles: (process.env.SWEEP_PROFILES ?? 'triage').split(','),
    concurrency: Number(process.env.SWEEP_CONCURRENCY ?? 2),
    visibilityTimeoutSeconds: Number(process.env.SWEEP_VISIBILITY_SECONDS ?? 120),
  };
}
