/**
 * Public option and input types of {@link FakeAws}.
 *
 * @module
 */

/** An IAM principal the fake knows by access key id. */
export interface FakeAwsPrincipal {
  /** Access key id the SDK signs with. */
  accessKeyId: string;
  /** ARN `sts:GetCallerIdentity` reports, e.g. `arn:aws:iam::111111111111:user/responder`. The account is taken from it. */
  arn: string;
  /** User id `GetCallerIdentity` reports. Default: the access key id. */
  userId?: string | undefined;
}

/** A role {@link FakeAws} lets principals assume. */
export interface FakeAwsRole {
  /** Role ARN, `arn:aws:iam::<account>:role/<name>`. */
  arn: string;
  /** External id the trust policy requires; AssumeRole without it (or with another) is denied. */
  externalId?: string | undefined;
  /** Access key ids allowed to assume the role. Default: anyone. */
  trustedAccessKeyIds?: readonly string[] | undefined;
}

/** An injected failure: matching requests get this AWS error instead of an answer. */
export interface FakeAwsFailure {
  /** `eks`, `sts`, `cloudtrail` or `guardduty`; omitted = any. */
  service?: 'eks' | 'sts' | 'cloudtrail' | 'guardduty' | undefined;
  /** Operation name, e.g. `ListClusters`, `DescribeCluster`, `AssumeRole`; omitted = any. */
  operation?: string | undefined;
  /** Region from the request's SigV4 scope; omitted = any. */
  region?: string | undefined;
  /** Account of the calling principal; omitted = any. */
  account?: string | undefined;
  /** Cluster name (for DescribeCluster); omitted = any. */
  clusterName?: string | undefined;
  /** AWS error code, e.g. `AccessDeniedException`, `ThrottlingException`, `UnrecognizedClientException`. */
  code: string;
  /** HTTP status. Default: 400 for throttling/validation, 403 for access errors, else 500. */
  status?: number | undefined;
  /** Error message. */
  message?: string | undefined;
  /** Fail only this many matching requests, then remove the failure (throttling that passes). */
  times?: number | undefined;
}

/** A cluster to seed into the fake EKS API (the same fields CreateCluster takes, flattened). */
export interface FakeEksClusterInput {
  /** Cluster name. */
  name: string;
  /** Region. */
  region: string;
  /** Owning account. Default `defaultAccount` of the fake. */
  account?: string | undefined;
  /** API endpoint URL. Default a made-up `https://<hex>.gr7.<region>.eks.amazonaws.com`. */
  endpoint?: string | undefined;
  /** `certificateAuthority.data` (base64 of PEM). Default a placeholder. */
  certificateAuthority?: string | undefined;
  /** Kubernetes version. Default `1.33`. */
  version?: string | undefined;
  /** Platform version. Default `eks.9`. */
  platformVersion?: string | undefined;
  /** Cluster status. Default `ACTIVE`. */
  status?: string | undefined;
  /** Public endpoint enabled. Default true. */
  endpointPublicAccess?: boolean | undefined;
  /** Private endpoint enabled. Default false. */
  endpointPrivateAccess?: boolean | undefined;
  /** Public CIDRs. Default `['0.0.0.0/0']`. */
  publicAccessCidrs?: readonly string[] | undefined;
  /** Authentication mode; omitted = no `accessConfig` in the answer (like moto). */
  authenticationMode?: string | undefined;
  /** Enabled control-plane log types. */
  logging?: readonly string[] | undefined;
  /** Tags. */
  tags?: Readonly<Record<string, string>> | undefined;
  /** Cluster id (EKS local clusters on Outposts). */
  id?: string | undefined;
  /** Creation time. Default now. */
  createdAt?: Date | undefined;
}

/** A record of one request the fake answered (for assertions). */
export interface FakeAwsRequestRecord {
  /** `eks` or `sts`. */
  service: string;
  /** Operation, e.g. `ListClusters`. */
  operation: string;
  /** Region from the SigV4 scope. */
  region: string;
  /** Access key id that signed the request. */
  accessKeyId: string;
  /** HTTP status answered. */
  status: number;
}

/** Options of {@link FakeAws.start}. */
export interface FakeAwsOptions {
  /** Known principals. */
  principals?: readonly FakeAwsPrincipal[] | undefined;
  /**
   * Account that unknown long-term access keys belong to (as `arn:aws:iam::<account>:user/fake`).
   * Default `123456789012`. `null` rejects unknown keys with `InvalidClientTokenId`.
   */
  defaultAccount?: string | null | undefined;
  /** Roles that may be assumed; omitted = any role ARN may be assumed by anyone (like moto). */
  roles?: readonly FakeAwsRole[] | undefined;
  /** Clusters present at start. */
  clusters?: readonly FakeEksClusterInput[] | undefined;
  /** Injected failures. */
  failures?: readonly FakeAwsFailure[] | undefined;
  /** Largest ListClusters page. Default 100. */
  maxPageSize?: number | undefined;
  /** Delay before every answer, to make concurrent requests overlap. Default 0. */
  latencyMs?: number | undefined;
  /** Clock for credential expirations. Default `() => new Date()`. */
  clock?: (() => Date) | undefined;
}
