/**
 * Catalog layer (2): clusters across regions and accounts, connect with EKS tokens, pods and
 * containers with a visibility policy, access preflight, and the permission generators.
 *
 * @module
 */
export {
  type ExplainContext,
  explainAccessError,
  explainForbidden,
  explainUnauthorized,
  mappingRemediation,
  permissionsRemediation,
} from './access.js';
export { ClusterCatalog, reachabilityOf, toClusterInfo } from './catalog.js';
export {
  accessEntryCommands,
  type ClusterRoleOptions,
  canonicalPrincipalArn,
  clusterRoleYaml,
  crossAccountTrustPolicyJson,
  DEFAULT_CLUSTER_ROLE_NAME,
  DEFAULT_MAPPED_USERNAME,
  DEFAULT_RBAC_GROUP,
  type DiscoveryPolicyOptions,
  discoveryPolicyJson,
  eksctlMappingCommand,
  enableAccessEntriesCommand,
  type MappingTarget,
  REQUIRED_PERMISSIONS,
  type RequiredPermission,
  type TrustPolicyOptions,
} from './permissions.js';
export {
  IDENTITY_IAM_ACTIONS,
  IDENTITY_READ_PERMISSIONS,
  type IdentityItem,
  type IdentityKube,
  type IdentityReadPermission,
  type IdentitySkip,
  IRSA_ROLE_ANNOTATION,
  identityReaderClusterRoleYaml,
  identitySkipSchema,
  type PodIdentityContext,
  type PodIdentityContextOptions,
  type PodIdentityLookup,
  type PodSelector,
  podIdentityContext,
  podIdentityContextSchema,
} from './pod-identity.js';
export {
  computeTypeOf,
  DEFAULT_HIDDEN_IMAGES,
  DEFAULT_HIDDEN_NAMESPACES,
  DEFAULT_VISIBILITY,
  imageDigestOf,
  resolveVisibility,
  toPodInfo,
} from './pods.js';
export type {
  AccessIdentity,
  AccessReport,
  CatalogAccount,
  CatalogEndpoints,
  CatalogProblem,
  CheckAccessOptions,
  ClusterCatalogOptions,
  ClusterInfo,
  ComputeType,
  ConnectOptions,
  ContainerInfo,
  ContainerKind,
  PermissionCheck,
  PodInfo,
  PodsOptions,
  Reachability,
  VisibilityPolicy,
} from './types.js';
