/**
 * EKS token details and credential helpers: token encoding and decoding, exec credentials,
 * region and partition tables, credential memoizing, CA data normalizing, AWS error classification.
 *
 * @module eks-forensics/auth
 */
export {
  buildExecCredential,
  caDataBase64,
  classifyAwsError,
  decodeEksToken,
  defaultCredentials,
  EKS_COMMERCIAL_REGIONS,
  EKS_OPT_IN_REGIONS,
  EKS_OTHER_PARTITION_REGIONS,
  EKS_TOKEN_MAX_BYTES,
  EKS_TOKEN_PREFIX,
  EKS_TOKEN_REPORTED_LIFETIME_MS,
  EKS_TOKEN_VALIDITY_MS,
  EksToken,
  execInfoApiVersion,
  isRegionName,
  memoizeCredentials,
  partitionOf,
  rfc3339Seconds,
  stsHostname,
  toAwsRequestError,
} from '../aws/index.js';
export { normalizeCaData } from '../kube/index.js';
