import { ConfigError } from '../errors.js';

/**
 * The 34 commercial (`aws` partition) regions that offer Amazon EKS, from botocore's
 * `endpoints.json` (research eks-auth.md §4). The default sweep of {@link eks-forensics!ClusterCatalog}.
 * Opt-in regions among them answer with an auth error unless enabled in the account.
 */
export const EKS_COMMERCIAL_REGIONS: readonly string[] = Object.freeze([
  'af-south-1',
  'ap-east-1',
  'ap-east-2',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-6',
  'ap-southeast-7',
  'ca-central-1',
  'ca-west-1',
  'eu-central-1',
  'eu-central-2',
  'eu-north-1',
  'eu-south-1',
  'eu-south-2',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'il-central-1',
  'me-central-1',
  'me-south-1',
  'mx-central-1',
  'sa-east-1',
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
]);

/**
 * Commercial regions that must be enabled per account (launched after March 2019). Calls to a
 * disabled one fail with an auth error, which the catalog reports as "region not enabled".
 */
export const EKS_OPT_IN_REGIONS: readonly string[] = Object.freeze([
  'af-south-1',
  'ap-east-1',
  'ap-east-2',
  'ap-south-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-6',
  'ap-southeast-7',
  'ca-west-1',
  'eu-central-2',
  'eu-south-1',
  'eu-south-2',
  'il-central-1',
  'me-central-1',
  'me-south-1',
  'mx-central-1',
]);

/** Regions with EKS outside the commercial partition (China and GovCloud). */
export const EKS_OTHER_PARTITION_REGIONS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'aws-cn': Object.freeze(['cn-north-1', 'cn-northwest-1']),
  'aws-us-gov': Object.freeze(['us-gov-east-1', 'us-gov-west-1']),
});

/** An AWS partition: its id and the DNS suffix of its regional service endpoints. */
export interface AwsPartition {
  /** Partition id as it appears in ARNs: `aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, … */
  readonly id: string;
  /** DNS suffix of regional endpoints, e.g. `amazonaws.com` or `amazonaws.com.cn`. */
  readonly dnsSuffix: string;
}

const REGION_RE = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

const PARTITIONS: ReadonlyArray<readonly [RegExp, AwsPartition]> = [
  [/^cn-/, { id: 'aws-cn', dnsSuffix: 'amazonaws.com.cn' }],
  [/^us-gov-/, { id: 'aws-us-gov', dnsSuffix: 'amazonaws.com' }],
  [/^us-isob-/, { id: 'aws-iso-b', dnsSuffix: 'sc2s.sgov.gov' }],
  [/^us-iso-/, { id: 'aws-iso', dnsSuffix: 'c2s.ic.gov' }],
  [/^eu-isoe-/, { id: 'aws-iso-e', dnsSuffix: 'cloud.adc-e.uk' }],
  [/^us-isof-/, { id: 'aws-iso-f', dnsSuffix: 'csp.hci.ic.gov' }],
  [/^eusc-/, { id: 'aws-eusc', dnsSuffix: 'amazonaws.eu' }],
];

/** True when `region` looks like an AWS region name (`us-east-1`, `cn-north-1`, `us-gov-west-1`). */
export function isRegionName(region: string): boolean {
  return REGION_RE.test(region);
}

/**
 * The partition a region belongs to.
 *
 * @throws {ConfigError} when `region` is not a region name.
 * @example partitionOf('cn-north-1') // { id: 'aws-cn', dnsSuffix: 'amazonaws.com.cn' }
 */
export function partitionOf(region: string): AwsPartition {
  if (!isRegionName(region)) {
    throw new ConfigError(`"${region}" is not an AWS region name (expected something like "us-east-1")`);
  }
  for (const [re, p] of PARTITIONS) if (re.test(region)) return p;
  return { id: 'aws', dnsSuffix: 'amazonaws.com' };
}

/**
 * The regional STS hostname EKS tokens are signed for, in the region's partition, e.g.
 * `sts.eu-west-1.amazonaws.com` or `sts.cn-north-1.amazonaws.com.cn`. The global endpoint is
 * never used: it fails in newer regions and outside the `aws` partition (research §1.4).
 *
 * @throws {ConfigError} when `region` is not a region name.
 */
export function stsHostname(region: string): string {
  return `sts.${region}.${partitionOf(region).dnsSuffix}`;
}
