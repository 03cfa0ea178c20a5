/**
 * AWS layer (1): EKS bearer tokens (`EksAuth`), credentials for role assumption, region list.
 *
 * @module
 */
export {
  type AwsErrorClass,
  type AwsErrorContext,
  classifyAwsError,
  toAwsRequestError,
} from './aws-errors.js';
export {
  type AssumeRoleOptions,
  type AwsCredentials,
  assumeRoleCredentials,
  type CredentialProvider,
  type CredentialsInput,
  defaultCredentials,
  type MemoizeCredentialsOptions,
  memoizeCredentials,
} from './credentials.js';
export {
  type DecodedEksToken,
  decodeEksToken,
  EKS_TOKEN_MAX_BYTES,
  EKS_TOKEN_PREFIX,
  EKS_TOKEN_REPORTED_LIFETIME_MS,
  EKS_TOKEN_VALIDITY_MS,
  EksAuth,
  type EksAuthOptions,
  EksToken,
  type EksTokenTarget,
} from './eks-auth.js';
export {
  buildExecCredential,
  caDataBase64,
  type ExecCredential,
  type ExecCredentialApiVersion,
  eksKubeconfig,
  execInfoApiVersion,
  type KubeconfigCluster,
  type KubeconfigExec,
  type KubeconfigOptions,
  rfc3339Seconds,
} from './kubeconfig.js';
export {
  type AwsPartition,
  EKS_COMMERCIAL_REGIONS,
  EKS_OPT_IN_REGIONS,
  EKS_OTHER_PARTITION_REGIONS,
  isRegionName,
  partitionOf,
  stsHostname,
} from './regions.js';
