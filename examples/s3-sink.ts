/**
 * Acquire one container straight into S3 (multipart, SHA-256 checksums, optional SSE-KMS and
 * Object Lock), then verify the bundle by reading it back from S3.
 *
 *   npx tsx examples/s3-sink.ts --cluster prod --region eu-west-1 --namespace shop --pod web-0 \
 *       --container nginx --bucket ir-evidence --prefix cases/IR-2026-042/ \
 *       [--kms-key alias/ir-evidence] [--retain-days 365] [--profile triage]
 *   npx tsx examples/s3-sink.ts --local     # moto_server (EKS, STS and S3) + FakeCluster on 127.0.0.1
 *
 * The bucket's region is `--region` unless `--bucket-region` says otherwise. Object Lock needs a
 * bucket created with Object Lock enabled. Prints the report as JSON; exit code 0 when the bundle
 * is complete and verifies from S3.
 * In your own project import from 'eks-forensics'.
 */
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ArtifactCollector, S3Sink, type S3SinkOptions, verifyEvidence } from '../src/index.js';
import { motoServerMissing } from '../src/testing/index.js';
import { CLUSTER_FLAGS, openCluster, run, UsageError } from './cli.js';
import { LAB_COMPROMISED_POD, LAB_NAMESPACE } from './lab.js';

const { values } = parseArgs({
  options: {
    ...CLUSTER_FLAGS,
    namespace: { type: 'string' },
    pod: { type: 'string' },
    container: { type: 'string' },
    profile: { type: 'string', multiple: true },
    bucket: { type: 'string' },
    'bucket-region': { type: 'string' },
    prefix: { type: 'string', default: 'evidence/' },
    'kms-key': { type: 'string' },
    'retain-days': { type: 'string' },
    case: { type: 'string' },
  },
});

run(async () => {
  if (values.local) {
    const missing = motoServerMissing();
    if (missing) throw new UsageError(`--local needs moto_server for S3: ${missing}`);
  }
  const opened = await openCluster(values, {
    aws: 'moto',
    onStep: (m) => process.stderr.write(`local: ${m}\n`),
  });
  let s3: S3Client | undefined;
  try {
    const { cluster, kube, lab } = opened;
    const namespace = values.namespace ?? (lab ? LAB_NAMESPACE : undefined);
    const pod = values.pod ?? (lab ? LAB_COMPROMISED_POD : undefined);
    const container = values.container ?? (lab ? 'app' : undefined);
    if (!namespace || !pod || !container) throw new UsageError('give --namespace, --pod and --container');

    let bucket = values.bucket;
    if (lab) {
      // moto's S3: path-style addressing on 127.0.0.1, the lab's fake credentials
      s3 = new S3Client({
        region: lab.region,
        endpoint: lab.awsEndpoint,
        forcePathStyle: true,
        credentials: lab.credentials,
      });
      bucket ??= 'ir-evidence-local';
      await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    } else {
      if (!bucket) throw new UsageError('give --bucket');
      s3 = new S3Client({ region: values['bucket-region'] ?? cluster.region });
    }

    const options: S3SinkOptions = { client: s3, bucket, prefix: values.prefix };
    if (values['kms-key'])
      options.encryption = { type: 'aws:kms', kmsKeyId: values['kms-key'], bucketKeyEnabled: true };
    const retainDays = values['retain-days'] ?? (lab ? '1' : undefined);
    if (retainDays) options.objectLock = { mode: 'GOVERNANCE', retainDays: Number(retainDays) };

    const collector = new ArtifactCollector({
      sink: new S3Sink(options),
      profiles: values.profile ?? ['triage'],
      caseId: values.case,
      cluster: { name: cluster.name, arn: cluster.arn, region: cluster.region, accountId: cluster.accountId },
    });
    collector.on('progress', (e) => {
      if (e.type === 'target-finished')
        process.stderr.write(`${e.status} ${e.target.pod}/${e.target.container}\n`);
    });
    const report = await collector.acquire({ kube, namespace, pod, container, fs: lab?.fsFor(container) });
    const t = report.targets[0];
    if (!t?.location) throw new UsageError(`no bundle was written: ${t?.reasons.join('; ') ?? 'unknown'}`);

    // read everything back from S3 and re-hash it against the manifest
    const v = await verifyEvidence(t.location, { s3Client: s3, expectedManifestSha256: t.manifestSha256 });
    console.log(
      JSON.stringify(
        {
          status: t.status,
          reasons: t.reasons,
          artifacts: t.artifacts,
          bytes: t.bytes,
          location: t.location,
          manifestSha256: t.manifestSha256,
          objectLock: options.objectLock ?? null,
          verify: { status: v.status, checked: v.checked, anchors: v.anchors, problems: v.problems },
        },
        null,
        2,
      ),
    );
    return v.ok && t.status === 'complete' ? 0 : t.status === 'partial' && v.ok ? 2 : 1;
  } finally {
    s3?.destroy();
    await opened.close();
  }
});
