/**
 * Minimal IAM for the sweep roles, as policy documents.
 *
 * @module
 */

/** An IAM policy document. */
export interface FleetPolicyDocument {
  /** Policy language version. */
  Version: '2012-10-17';
  /** Statements. */
  Statement: {
    /** Statement id. */
    Sid: string;
    /** Always Allow. */
    Effect: 'Allow';
    /** Actions. */
    Action: string[];
    /** Resources. */
    Resource: string | string[];
    /** Conditions. */
    Condition?: Record<string, Record<string, string | string[]>>;
  }[];
}

/** Where a sweep runs, for {@link fleetWorkerPolicy} and {@link fleetPlannerPolicy}. */
export interface FleetPolicyOptions {
  /** Evidence bucket. */
  bucket: string;
  /** Key prefix of the store (no leading `/`). Default none. */
  prefix?: string | undefined;
  /** ARN of the work queue. */
  queueArn: string;
  /** ARN of the dead-letter queue. */
  deadLetterQueueArn: string;
  /** Roles assumed in other accounts (the catalog's `accounts`). */
  assumeRoleArns?: readonly string[] | undefined;
  /** KMS key of SSE-KMS bundles. */
  kmsKeyArn?: string | undefined;
  /** The bucket uses Object Lock (the sink sets retention / legal hold per object). */
  objectLock?: boolean | undefined;
  /** AWS partition. Default `aws`. */
  partition?: string | undefined;
}

function common(o: FleetPolicyOptions): FleetPolicyDocument['Statement'] {
  const p = o.partition ?? 'aws';
  const prefix = (o.prefix ?? '').replace(/^\/+/, '');
  const statements: FleetPolicyDocument['Statement'] = [];
  if (o.assumeRoleArns?.length) {
    statements.push({
      Sid: 'AssumeAccountRoles',
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Resource: [...o.assumeRoleArns],
    });
  }
  if (o.kmsKeyArn) {
    statements.push({
      Sid: 'EvidenceKms',
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: o.kmsKeyArn,
    });
  }
  statements.push({
    Sid: 'ListSweepPrefix',
    Effect: 'Allow',
    Action: ['s3:ListBucket'],
    Resource: `arn:${p}:s3:::${o.bucket}`,
    Condition: { StringLike: { 's3:prefix': [`${prefix}sweeps/*`] } },
  });
  return statements;
}

/**
 * The worker role: receive, extend, delete on the work queue; send to the DLQ; write and read
 * bundles and sweep records under `<prefix>sweeps/`; EKS tokens need no IAM action (a presigned
 * GetCallerIdentity), but the role must be mapped in each cluster (access entry + RBAC, see
 * docs/rbac-iam.md).
 */
export function fleetWorkerPolicy(o: FleetPolicyOptions): FleetPolicyDocument {
  const p = o.partition ?? 'aws';
  const prefix = (o.prefix ?? '').replace(/^\/+/, '');
  const objects = `arn:${p}:s3:::${o.bucket}/${prefix}sweeps/*`;
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'WorkQueue',
        Effect: 'Allow',
        Action: [
          'sqs:ReceiveMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
        ],
        Resource: o.queueArn,
      },
      { Sid: 'DeadLetters', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: o.deadLetterQueueArn },
      {
        Sid: 'BundlesAndRecords',
        Effect: 'Allow',
        Action: [
          's3:PutObject',
          's3:GetObject',
          's3:PutObjectTagging',
          's3:GetObjectTagging',
          's3:AbortMultipartUpload',
          ...(o.objectLock ? ['s3:PutObjectRetention', 's3:PutObjectLegalHold'] : []),
        ],
        Resource: objects,
      },
      {
        Sid: 'MultipartCleanup',
        Effect: 'Allow',
        Action: ['s3:ListBucketMultipartUploads'],
        Resource: `arn:${p}:s3:::${o.bucket}`,
      },
      ...common(o),
    ],
  };
}

/**
 * The planner role: discover clusters (see `discoveryPolicyJson` for the EKS side), write the
 * sweep manifest, send targets, and read the records for reports. Listing pods needs each
 * cluster's RBAC as for acquisition.
 */
export function fleetPlannerPolicy(o: FleetPolicyOptions): FleetPolicyDocument {
  const p = o.partition ?? 'aws';
  const prefix = (o.prefix ?? '').replace(/^\/+/, '');
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Discover',
        Effect: 'Allow',
        Action: ['eks:ListClusters', 'eks:DescribeCluster'],
        Resource: '*',
      },
      { Sid: 'Enqueue', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: o.queueArn },
      {
        Sid: 'SweepRecords',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:GetObject', 's3:GetObjectTagging'],
        Resource: `arn:${p}:s3:::${o.bucket}/${prefix}sweeps/*`,
      },
      ...common(o),
    ],
  };
}
