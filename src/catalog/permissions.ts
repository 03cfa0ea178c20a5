import { ConfigError } from '../errors.js';
import { loadYaml } from '../util/index.js';

/**
 * Default Kubernetes group the responder's IAM principal is mapped to and the ClusterRole is
 * bound to — the group name the seed (Cado's EKS acquisition docs) uses.
 */
export const DEFAULT_RBAC_GROUP = 'cado';
/** Default name of the generated ClusterRole and ClusterRoleBinding. */
export const DEFAULT_CLUSTER_ROLE_NAME = 'eks-forensics';
/** Default Kubernetes username for aws-auth mappings. */
export const DEFAULT_MAPPED_USERNAME = 'eks-forensics';

/** One Kubernetes permission eks-forensics uses. */
export interface RequiredPermission {
  /** Verb, e.g. `get`. */
  verb: string;
  /** Resource, e.g. `pods`. */
  resource: string;
  /** Subresource, e.g. `exec`. */
  subresource?: string | undefined;
  /** False for permissions only some features need. */
  required: boolean;
  /** What it is for. */
  purpose: string;
}

/**
 * The Kubernetes permissions acquisition needs. `pods/exec` needs both `get` (WebSocket
 * upgrade) and `create` (required by Kubernetes ≥ 1.35 and by SPDY clients).
 */
export const REQUIRED_PERMISSIONS: readonly RequiredPermission[] = Object.freeze([
  { verb: 'get', resource: 'pods', required: true, purpose: 'read pod state (pod.json)' },
  { verb: 'list', resource: 'pods', required: true, purpose: 'find pods and containers' },
  { verb: 'get', resource: 'pods', subresource: 'exec', required: true, purpose: 'exec over WebSocket' },
  {
    verb: 'create',
    resource: 'pods',
    subresource: 'exec',
    required: true,
    purpose: 'exec (Kubernetes >= 1.35, SPDY)',
  },
  { verb: 'get', resource: 'pods', subresource: 'log', required: true, purpose: 'container logs' },
  { verb: 'list', resource: 'events', required: true, purpose: 'pod events' },
  {
    verb: 'patch',
    resource: 'pods',
    subresource: 'ephemeralcontainers',
    required: false,
    purpose: 'ephemeral debug containers for distroless targets (opt-in)',
  },
]);

/** Options of {@link clusterRoleYaml}. */
export interface ClusterRoleOptions {
  /** Name of the ClusterRole and ClusterRoleBinding. Default `eks-forensics`. */
  name?: string | undefined;
  /** Group bound to the role (the group the IAM principal is mapped to). Default `cado`. */
  group?: string | undefined;
  /** Also grant `patch` on `pods/ephemeralcontainers` (distroless targets). Default false. */
  includeEphemeralContainers?: boolean | undefined;
}

const K8S_NAME_RE = /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/;

function checkName(value: string, what: string): string {
  if (value.length > 253 || !K8S_NAME_RE.test(value)) {
    throw new ConfigError(`${what} "${value}" is not a valid Kubernetes name`);
  }
  return value;
}

function checkGroup(value: string): string {
  if (value === '' || value.length > 253 || /[\s"'`$\\]/.test(value)) {
    throw new ConfigError(`group "${value}" is not a valid Kubernetes group name`);
  }
  return value;
}

/**
 * The ClusterRole and ClusterRoleBinding (two YAML documents) that give a group exactly what
 * acquisition needs: `pods` get/list, `pods/exec` get+create, `pods/log` get, `events` list
 * (and optionally `pods/ephemeralcontainers` patch). Apply with `kubectl apply -f -`.
 *
 * @throws {ConfigError} for an invalid name or group.
 */
export function clusterRoleYaml(options: ClusterRoleOptions = {}): string {
  const name = checkName(options.name ?? DEFAULT_CLUSTER_ROLE_NAME, 'name');
  const group = checkGroup(options.group ?? DEFAULT_RBAC_GROUP);
  const rules: Array<Record<string, unknown>> = [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
    { apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] },
    { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
    { apiGroups: [''], resources: ['events'], verbs: ['list'] },
  ];
  if (options.includeEphemeralContainers) {
    rules.push({ apiGroups: [''], resources: ['pods/ephemeralcontainers'], verbs: ['patch'] });
  }
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name },
    rules,
  };
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
  };
  const { stringify } = loadYaml();
  return `${stringify(role)}---\n${stringify(binding)}`;
}

/**
 * JSON with objects expanded and arrays of scalars kept on one line when they fit in 110
 * columns — the layout formatters (Biome, Prettier) give policy documents.
 */
function policyJson(value: unknown, indent = ''): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    const items = value.map((v) => policyJson(v, inner));
    const flat = `[${items.join(', ')}]`;
    if (value.every((v) => v === null || typeof v !== 'object') && indent.length + flat.length + 30 <= 110)
      return flat;
    return `[\n${items.map((i) => `${inner}${i}`).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(
      ([k, v]) => `${inner}${JSON.stringify(k)}: ${policyJson(v, inner)}`,
    );
    return entries.length ? `{\n${entries.join(',\n')}\n${indent}}` : '{}';
  }
  return JSON.stringify(value);
}

/** Options of {@link discoveryPolicyJson}. */
export interface DiscoveryPolicyOptions {
  /** Roles in other accounts the catalog assumes (adds `sts:AssumeRole` on exactly these). */
  roleArns?: readonly string[] | undefined;
  /** Restrict EKS actions to these cluster ARNs instead of `*` (ListClusters always needs `*`). */
  clusterArns?: readonly string[] | undefined;
}

/**
 * The IAM policy (JSON) the discovering principal needs: `eks:ListClusters`,
 * `eks:DescribeCluster`, and `sts:AssumeRole` on the listed roles. Getting a token needs no
 * IAM permission (`sts:GetCallerIdentity` is always allowed).
 */
export function discoveryPolicyJson(options: DiscoveryPolicyOptions = {}): string {
  const statements: Array<Record<string, unknown>> = [
    { Sid: 'ListEksClusters', Effect: 'Allow', Action: ['eks:ListClusters'], Resource: '*' },
    {
      Sid: 'DescribeEksClusters',
      Effect: 'Allow',
      Action: ['eks:DescribeCluster'],
      Resource: options.clusterArns?.length ? [...options.clusterArns] : '*',
    },
  ];
  if (options.roleArns?.length) {
    statements.push({
      Sid: 'AssumeForensicsRoles',
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Resource: [...options.roleArns],
    });
  }
  return `${policyJson({ Version: '2012-10-17', Statement: statements })}\n`;
}

/** Options of {@link crossAccountTrustPolicyJson}. */
export interface TrustPolicyOptions {
  /** The principal that runs discovery (role or user ARN in the security account). */
  trustedPrincipalArn: string;
  /** External id to require (recommended for third-party tooling). */
  externalId?: string | undefined;
}

/**
 * The trust policy (JSON) of the role in each member account: lets the discovery principal
 * assume it, requiring the external id when one is given.
 */
export function crossAccountTrustPolicyJson(options: TrustPolicyOptions): string {
  const statement: Record<string, unknown> = {
    Effect: 'Allow',
    Principal: { AWS: options.trustedPrincipalArn },
    Action: 'sts:AssumeRole',
  };
  if (options.externalId) statement.Condition = { StringEquals: { 'sts:ExternalId': options.externalId } };
  return `${policyJson({ Version: '2012-10-17', Statement: [statement] })}\n`;
}

/**
 * The IAM ARN to map for a caller ARN: an STS assumed-role ARN
 * (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`) becomes the role ARN
 * (`arn:aws:iam::<acct>:role/<role>`), as aws-iam-authenticator canonicalises it. Other ARNs are
 * returned unchanged. Assumed-role ARNs carry no IAM path, so a role created with a path must be
 * mapped without it in aws-auth (access entries accept the full ARN with path).
 */
export function canonicalPrincipalArn(arn: string): string {
  const m = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/.exec(arn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : arn;
}

/** Where a principal must be mapped: the cluster and the principal. */
export interface MappingTarget {
  /** Cluster name. */
  clusterName: string;
  /** Cluster region. */
  region: string;
  /** IAM principal ARN (assumed-role ARNs are canonicalised to the role). */
  principalArn: string;
  /** Kubernetes group. Default `cado`. */
  group?: string | undefined;
  /** Kubernetes username for the aws-auth mapping. Default `eks-forensics`. */
  username?: string | undefined;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function partitionOfArn(arn: string): string {
  return /^arn:(aws[a-z-]*):/.exec(arn)?.[1] ?? 'aws';
}

/**
 * AWS CLI commands that map the principal with an EKS access entry (authentication mode `API`
 * or `API_AND_CONFIG_MAP`): `create-access-entry` into the group bound by
 * {@link clusterRoleYaml}, and — as a broader alternative to that ClusterRole — an
 * `associate-access-policy` with `AmazonEKSEditPolicy` (which includes `pods/exec`).
 */
export function accessEntryCommands(target: MappingTarget): string[] {
  const arn = canonicalPrincipalArn(target.principalArn);
  const group = checkGroup(target.group ?? DEFAULT_RBAC_GROUP);
  const common = `--region ${shellQuote(target.region)} --cluster-name ${shellQuote(target.clusterName)} --principal-arn ${shellQuote(arn)}`;
  return [
    `aws eks create-access-entry ${common} --type STANDARD --kubernetes-groups ${shellQuote(group)}`,
    `aws eks associate-access-policy ${common} --policy-arn arn:${partitionOfArn(arn)}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy --access-scope type=cluster`,
  ];
}

/** The eksctl command that maps the principal in the `aws-auth` ConfigMap (modes `CONFIG_MAP`, `API_AND_CONFIG_MAP`). */
export function eksctlMappingCommand(target: MappingTarget): string {
  const arn = canonicalPrincipalArn(target.principalArn);
  const group = checkGroup(target.group ?? DEFAULT_RBAC_GROUP);
  const username = target.username ?? DEFAULT_MAPPED_USERNAME;
  return (
    `eksctl create iamidentitymapping --region ${shellQuote(target.region)} --cluster ${shellQuote(target.clusterName)} ` +
    `--arn ${shellQuote(arn)} --group ${shellQuote(group)} --username ${shellQuote(username)}`
  );
}

/** The command that lets a `CONFIG_MAP`-only cluster use access entries (one-way change). */
export function enableAccessEntriesCommand(target: { clusterName: string; region: string }): string {
  return (
    `aws eks update-cluster-config --region ${shellQuote(target.region)} --name ${shellQuote(target.clusterName)} ` +
    '--access-config authenticationMode=API_AND_CONFIG_MAP'
  );
}
