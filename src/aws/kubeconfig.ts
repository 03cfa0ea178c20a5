import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { loadYaml } from '../util/index.js';

/** The `client.authentication.k8s.io` versions an exec plugin may answer with. */
export type ExecCredentialApiVersion =
  | 'client.authentication.k8s.io/v1'
  | 'client.authentication.k8s.io/v1beta1'
  | 'client.authentication.k8s.io/v1alpha1';

/** The JSON a kubeconfig `exec` credential plugin prints on stdout (what `aws eks get-token` prints). */
export interface ExecCredential {
  /** Always `ExecCredential`. */
  kind: 'ExecCredential';
  /** Echoes the version kubectl asked for in `KUBERNETES_EXEC_INFO`, default v1beta1. */
  apiVersion: ExecCredentialApiVersion;
  /** Always empty. */
  spec: Record<string, never>;
  /** The token and when kubectl should ask for a new one (RFC 3339, UTC, whole seconds). */
  status: { expirationTimestamp: string; token: string };
}

const DEFAULT_API_VERSION: ExecCredentialApiVersion = 'client.authentication.k8s.io/v1beta1';
const KNOWN_VERSIONS: readonly string[] = [
  'client.authentication.k8s.io/v1',
  'client.authentication.k8s.io/v1beta1',
  'client.authentication.k8s.io/v1alpha1',
];
const execInfoSchema = z.looseObject({ apiVersion: z.string().max(200).optional() });

/**
 * The ExecCredential version to answer with: the one kubectl put in `KUBERNETES_EXEC_INFO`
 * (v1, v1beta1, or the deprecated v1alpha1), else v1beta1 — as `aws eks get-token` does.
 */
export function execInfoApiVersion(env: NodeJS.ProcessEnv = process.env): ExecCredentialApiVersion {
  const raw = env.KUBERNETES_EXEC_INFO;
  if (!raw) return DEFAULT_API_VERSION;
  try {
    const parsed = execInfoSchema.safeParse(JSON.parse(raw));
    const v = parsed.success ? parsed.data.apiVersion : undefined;
    if (v !== undefined && KNOWN_VERSIONS.includes(v)) return v as ExecCredentialApiVersion;
  } catch {
    // malformed KUBERNETES_EXEC_INFO: answer with the default like the AWS CLI
  }
  return DEFAULT_API_VERSION;
}

/** RFC 3339 UTC timestamp without fractional seconds, e.g. `2026-11-22T10:04:05Z`. */
export function rfc3339Seconds(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** Builds an ExecCredential object from a token. */
export function buildExecCredential(
  token: string,
  expiresAt: Date,
  apiVersion: ExecCredentialApiVersion = execInfoApiVersion(),
): ExecCredential {
  return {
    kind: 'ExecCredential',
    apiVersion,
    spec: {},
    status: { expirationTimestamp: rfc3339Seconds(expiresAt), token },
  };
}

/** The cluster fields a kubeconfig needs. A `ClusterInfo` from the catalog fits. */
export interface KubeconfigCluster {
  /** Cluster name (signed as `x-k8s-aws-id`). */
  name: string;
  /** Region of the cluster. */
  region: string;
  /** API server URL from DescribeCluster. */
  endpoint?: string | undefined;
  /** Cluster CA: `certificateAuthority.data` from DescribeCluster (base64 of PEM) or PEM text. */
  certificateAuthority?: string | undefined;
  /** Cluster ARN; used as the kubeconfig entry name when present. */
  arn?: string | undefined;
  /** Cluster id, for EKS local clusters on Outposts (then signed instead of the name). */
  id?: string | undefined;
}

/** How the kubeconfig's user obtains a token. */
export interface KubeconfigExec {
  /** Program to run, e.g. `aws` or `node`. */
  command: string;
  /** Its arguments. */
  args?: readonly string[] | undefined;
  /** Extra environment variables (names and values are written into the file: no secrets). */
  env?: Readonly<Record<string, string>> | undefined;
}

/** Options of {@link eksKubeconfig}. */
export interface KubeconfigOptions {
  /** Name of the cluster/user/context entries. Default: the cluster ARN, else its name. */
  contextName?: string | undefined;
  /** Role the default `aws eks get-token` exec assumes (`--role-arn`). */
  roleArn?: string | undefined;
  /** AWS profile the exec uses (written as `AWS_PROFILE`). */
  profile?: string | undefined;
  /** Use this command instead of `aws eks get-token`, e.g. a script built on {@link eks-forensics!EksAuth.execCredential}. */
  exec?: KubeconfigExec | undefined;
  /** ExecCredential version requested from the plugin. Default v1beta1. */
  apiVersion?: ExecCredentialApiVersion | undefined;
  /** Server URL override (an SSM port forward, a proxy). Default: the cluster endpoint. */
  server?: string | undefined;
  /** TLS server name to verify when `server` is an override (the real endpoint hostname). */
  tlsServerName?: string | undefined;
  /** HTTP(S) proxy kubectl should use (`proxy-url`). */
  proxyUrl?: string | undefined;
  /** Default namespace of the context. */
  namespace?: string | undefined;
}

/** Base64 of the PEM, whether the input is already base64 (EKS's form) or PEM text. */
export function caDataBase64(ca: string): string {
  const trimmed = ca.trim();
  return trimmed.startsWith('-----BEGIN') ? Buffer.from(trimmed, 'utf8').toString('base64') : trimmed;
}

/**
 * Writes a kubeconfig (YAML) for an EKS cluster: server, CA and an `exec` user that fetches a
 * fresh token (`aws eks get-token` by default, like `aws eks update-kubeconfig`). Contains no
 * secret.
 *
 * @throws {ConfigError} when the cluster has no endpoint and no `server` override is given.
 */
export function eksKubeconfig(cluster: KubeconfigCluster, options: KubeconfigOptions = {}): string {
  const server = options.server ?? cluster.endpoint;
  if (!server) {
    throw new ConfigError(
      `cluster ${cluster.name} has no endpoint yet (is it still CREATING?); pass "server"`,
    );
  }
  const name = options.contextName ?? cluster.arn ?? cluster.name;
  const clusterEntry: Record<string, unknown> = { server: server.replace(/\/$/, '') };
  if (cluster.certificateAuthority) {
    clusterEntry['certificate-authority-data'] = caDataBase64(cluster.certificateAuthority);
  }
  if (options.tlsServerName) clusterEntry['tls-server-name'] = options.tlsServerName;
  if (options.proxyUrl) clusterEntry['proxy-url'] = options.proxyUrl;

  const exec: Record<string, unknown> = { apiVersion: options.apiVersion ?? DEFAULT_API_VERSION };
  if (options.exec) {
    exec.command = options.exec.command;
    if (options.exec.args?.length) exec.args = [...options.exec.args];
    const env = Object.entries(options.exec.env ?? {});
    if (options.profile) env.push(['AWS_PROFILE', options.profile]);
    if (env.length) exec.env = env.map(([n, value]) => ({ name: n, value }));
  } else {
    const args = ['--region', cluster.region, 'eks', 'get-token'];
    if (cluster.id) args.push('--cluster-id', cluster.id);
    else args.push('--cluster-name', cluster.name);
    args.push('--output', 'json');
    if (options.roleArn) args.push('--role-arn', options.roleArn);
    exec.command = 'aws';
    exec.args = args;
    if (options.profile) exec.env = [{ name: 'AWS_PROFILE', value: options.profile }];
  }
  exec.interactiveMode = 'Never';
  exec.provideClusterInfo = false;

  const context: Record<string, unknown> = { cluster: name, user: name };
  if (options.namespace) context.namespace = options.namespace;
  return loadYaml().stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [{ name, cluster: clusterEntry }],
    users: [{ name, user: { exec } }],
    contexts: [{ name, context }],
    'current-context': name,
  });
}
