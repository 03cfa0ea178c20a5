/**
 * Public types of the catalog layer.
 *
 * @module
 */
import type { Agent } from 'node:https';
import type { CredentialsInput } from '../aws/index.js';
import type { AwsFailureKind, AwsRequestError } from '../errors.js';
import type { Pod } from '../kube/index.js';
import type { Logger } from '../util/index.js';

/** An account reached by assuming a role (cross-account discovery). */
export interface CatalogAccount {
  /** Role to assume in that account. */
  roleArn: string;
  /** External id the role's trust policy requires. */
  externalId?: string | undefined;
  /** Session name (appears in CloudTrail and EKS audit logs). Default `eks-forensics`. */
  sessionName?: string | undefined;
  /** Session length in seconds. Default 3600. */
  durationSeconds?: number | undefined;
}

/** Which pods and containers are hidden by default (Cado's visibility rules, configurable). */
export interface VisibilityPolicy {
  /** Namespaces whose pods are hidden. */
  hiddenNamespaces: readonly string[];
  /** Images whose containers are hidden: a string matches as a substring, a RegExp by test. */
  hiddenImages: readonly (string | RegExp)[];
}

/** Endpoint overrides (VPC endpoints, moto_server, `FakeAws` from `eks-forensics/testing`). */
export interface CatalogEndpoints {
  /** EKS API endpoint: one URL for every region, or a function of the region (undefined = AWS default). */
  eks?: string | ((region: string) => string | undefined) | undefined;
  /** STS API endpoint (AssumeRole, GetCallerIdentity), same forms. */
  sts?: string | ((region: string) => string | undefined) | undefined;
}

/** Options of {@link eks-forensics!ClusterCatalog}. */
export interface ClusterCatalogOptions {
  /** Regions to sweep. Default {@link eks-forensics/auth!EKS_COMMERCIAL_REGIONS} (all 34 commercial regions with EKS). */
  regions?: readonly string[] | undefined;
  /** Accounts reached by assuming a role. */
  accounts?: readonly CatalogAccount[] | undefined;
  /** Also sweep the account of `credentials` itself. Default true. */
  includeDefaultAccount?: boolean | undefined;
  /** Base credentials (static or an AWS SDK provider). Default: the SDK's Node provider chain. */
  credentials?: CredentialsInput | undefined;
  /** Visibility rules; fields given replace the defaults. */
  visibility?: Partial<VisibilityPolicy> | undefined;
  /** Most AWS calls in flight at once. Default 8. */
  concurrency?: number | undefined;
  /** Endpoint overrides. */
  endpoints?: CatalogEndpoints | undefined;
  /** Region for STS calls (AssumeRole, GetCallerIdentity). Default: the first swept region. */
  stsRegion?: string | undefined;
  /** STS host written into EKS tokens (see {@link EksAuthOptions.stsEndpoint}). */
  tokenStsEndpoint?: string | undefined;
  /** ListClusters page size (1-100). Default 100. */
  pageSize?: number | undefined;
  /** AWS SDK attempts per call (retries throttling and 5xx). Default 3. */
  maxAttempts?: number | undefined;
  /** Group used in remediation text and generated RBAC. Default `cado`. */
  rbacGroup?: string | undefined;
  /** Clock for token signing and credential refresh. Default `() => new Date()`. */
  clock?: (() => Date) | undefined;
  /** Diagnostics; never receives secrets. Default silent. */
  logger?: Logger | undefined;
}

/** How the cluster's API endpoint can be reached. */
export interface Reachability {
  /** `public`: the public endpoint is on; `private-only`: only from inside the VPC. */
  kind: 'public' | 'private-only';
  /** Human explanation (CIDR restrictions, ways in). */
  reason: string;
}

/** One EKS cluster as discovered (DescribeCluster, normalised; moto-style missing fields tolerated). */
export interface ClusterInfo {
  /** Cluster name. */
  name: string;
  /** Cluster ARN. */
  arn: string;
  /** Owning account id (from the ARN). */
  accountId: string;
  /** Region. */
  region: string;
  /** AWS partition (`aws`, `aws-cn`, `aws-us-gov`). */
  partition: string;
  /** API server URL (absent while creating). */
  endpoint?: string | undefined;
  /** `certificateAuthority.data`: base64 of the PEM CA bundle. */
  certificateAuthority?: string | undefined;
  /** Kubernetes minor version, e.g. `1.33`. */
  kubernetesVersion?: string | undefined;
  /** EKS platform version, e.g. `eks.9`. */
  platformVersion?: string | undefined;
  /** `ACTIVE`, `CREATING`, `UPDATING`, … */
  status?: string | undefined;
  /** Creation time. */
  createdAt?: Date | undefined;
  /** Endpoint access settings. */
  endpointAccess: { public: boolean; private: boolean; publicCidrs: string[] };
  /** `API`, `API_AND_CONFIG_MAP` or `CONFIG_MAP`; undefined when DescribeCluster did not say (then CONFIG_MAP is likely). */
  authenticationMode?: string | undefined;
  /** Control-plane log types enabled (`api`, `audit`, `authenticator`, …). */
  loggingEnabled: string[];
  /** Tags. */
  tags: Record<string, string>;
  /** Whether and how the endpoint is reachable. */
  reachability: Reachability;
  /** Cluster id (EKS local clusters on Outposts; signed instead of the name). */
  id?: string | undefined;
  /** The role (from `accounts`) used to find it; undefined = the base credentials. */
  roleArn?: string | undefined;
}

/** A failure during discovery, reported instead of thrown. */
export interface CatalogProblem {
  /** Account id, when known. */
  account?: string | undefined;
  /** Role assumed for that account (undefined = base credentials). */
  roleArn?: string | undefined;
  /** Region, when the failure is per region. */
  region?: string | undefined;
  /** Cluster, when one DescribeCluster failed. */
  cluster?: string | undefined;
  /** Failing operation, e.g. `eks:ListClusters`. */
  operation: string;
  /** Classification. */
  kind: AwsFailureKind;
  /** Actionable message. */
  message: string;
  /** The error, with the AWS error as `cause`. */
  error: AwsRequestError;
}

/** Options of {@link eks-forensics!ClusterCatalog.connect}. */
export interface ConnectOptions {
  /** API server URL to use instead of the cluster endpoint (SSM port forward, proxy, test server). */
  endpoint?: string | undefined;
  /** TLS name to verify (and SNI) when `endpoint` is a tunnel: the cluster endpoint's hostname. */
  tlsServerName?: string | undefined;
  /** HTTPS agent, e.g. a proxy agent that reaches the VPC. */
  agent?: Agent | undefined;
  /** This process runs inside the cluster's VPC (or a connected network): allow a private-only endpoint. */
  insideVpc?: boolean | undefined;
  /** CA to trust instead of the cluster's (PEM or base64 PEM). */
  caData?: string | undefined;
  /** Per-request timeout. Default KubeClient's. */
  timeoutMs?: number | undefined;
  /** Cancels every call of the client. */
  signal?: AbortSignal | undefined;
}

/** Where a container comes from in the pod spec. */
export type ContainerKind = 'container' | 'init' | 'sidecar' | 'ephemeral';

/** One container of a pod, spec joined to status by name. */
export interface ContainerInfo {
  /** Container name. */
  name: string;
  /** Regular, init, sidecar (init with `restartPolicy: Always`) or ephemeral. */
  kind: ContainerKind;
  /** Image reference from the spec. */
  image?: string | undefined;
  /** Image digest `sha256:…` from the status `imageID` (or a digest-pinned image). */
  imageDigest?: string | undefined;
  /** Raw `imageID` from the status. */
  imageID?: string | undefined;
  /** Container ID with runtime prefix, e.g. `containerd://…`. */
  containerId?: string | undefined;
  /** `running`, `waiting`, `terminated`, or `unknown` (no status yet). */
  state: 'running' | 'waiting' | 'terminated' | 'unknown';
  /** Reason of a waiting/terminated state (e.g. `CrashLoopBackOff`, `Completed`). */
  stateReason?: string | undefined;
  /** Exit code of a terminated container. */
  exitCode?: number | undefined;
  /** When the current state started. */
  startedAt?: string | undefined;
  /** Restarts so far. */
  restartCount: number;
  /** Readiness. */
  ready?: boolean | undefined;
  /** For ephemeral containers: the container whose namespaces it joined. */
  targetContainerName?: string | undefined;
  /** Hidden by the visibility policy. */
  hidden: boolean;
  /** Why it is hidden. */
  hiddenReason?: string | undefined;
}

/** Where a pod runs. */
export type ComputeType = 'EC2' | 'Fargate' | 'unknown';

/** A pod with its containers, as {@link eks-forensics!ClusterCatalog.pods} returns it. */
export interface PodInfo {
  /** Namespace. */
  namespace: string;
  /** Pod name. */
  name: string;
  /** Pod UID. */
  uid?: string | undefined;
  /** Node name. */
  node?: string | undefined;
  /** EC2 or Fargate (from the node name `fargate-…`, Fargate labels, or node labels). */
  computeType: ComputeType;
  /** Pod phase. */
  phase?: string | undefined;
  /** Pod IP. */
  podIP?: string | undefined;
  /** Service account. */
  serviceAccount?: string | undefined;
  /** Labels. */
  labels: Record<string, string>;
  /** Containers (regular, init, sidecar, ephemeral), each labelled by kind. */
  containers: ContainerInfo[];
  /** Hidden by the visibility policy (system namespace, or every container hidden). */
  hidden: boolean;
  /** Why it is hidden. */
  hiddenReason?: string | undefined;
  /** The pod object as the API returned it (for evidence). */
  raw: Pod;
}

/** Options of {@link eks-forensics!ClusterCatalog.pods}. */
export interface PodsOptions {
  /** Only this namespace. Default all. */
  namespace?: string | undefined;
  /** Label selector. */
  labelSelector?: string | undefined;
  /** Include hidden pods and containers (flagged `hidden` with a reason). Default false. */
  includeHidden?: boolean | undefined;
  /** Read node labels to detect Fargate (needs `get nodes`; failures are ignored). Default false. */
  resolveNodes?: boolean | undefined;
  /** Connection options (endpoint override etc.). */
  connect?: ConnectOptions | undefined;
  /** Cancels the call. */
  signal?: AbortSignal | undefined;
}

/** One permission checked by {@link eks-forensics!ClusterCatalog.checkAccess}. */
export interface PermissionCheck {
  /** Verb. */
  verb: string;
  /** Resource. */
  resource: string;
  /** Subresource. */
  subresource?: string | undefined;
  /** Namespace checked (undefined = cluster-wide). */
  namespace?: string | undefined;
  /** Whether acquisition needs it (false = optional feature). */
  required: boolean;
  /** What it is for. */
  purpose: string;
  /** The answer of SelfSubjectAccessReview. */
  allowed: boolean;
  /** The authorizer's reason. */
  reason?: string | undefined;
}

/** Who the cluster thinks we are. */
export interface AccessIdentity {
  /** Kubernetes username. */
  username?: string | undefined;
  /** UID. */
  uid?: string | undefined;
  /** Groups. */
  groups: string[];
  /** IAM ARN from the authenticator's `extra` (`arn`, else `canonicalArn`). */
  iamArn?: string | undefined;
  /** All `extra` fields. */
  extra: Record<string, string[]>;
}

/** Result of {@link eks-forensics!ClusterCatalog.checkAccess}. */
export interface AccessReport {
  /** Cluster checked. */
  cluster: { name: string; arn: string; region: string };
  /** SelfSubjectReview answer. */
  identity: AccessIdentity;
  /** IAM principal from `sts:GetCallerIdentity` (the signer of the token), when it could be read. */
  callerArn?: string | undefined;
  /** Every permission checked. */
  permissions: PermissionCheck[];
  /** Required permissions that are missing. */
  missing: PermissionCheck[];
  /** True when every required permission is allowed. */
  ok: boolean;
  /** What to do (empty when ok and nothing optional is missing). */
  remediation: string;
}

/** Options of {@link eks-forensics!ClusterCatalog.checkAccess}. */
export interface CheckAccessOptions {
  /** Check in this namespace instead of cluster-wide. */
  namespace?: string | undefined;
  /** Connection options. */
  connect?: ConnectOptions | undefined;
  /** Cancels the call. */
  signal?: AbortSignal | undefined;
}
