import { inspect } from 'node:util';
import { z } from 'zod';
import {
  assumeRoleCredentials,
  type CredentialProvider,
  defaultCredentials,
  EKS_COMMERCIAL_REGIONS,
  EksAuth,
  type EksTokenTarget,
  memoizeCredentials,
  partitionOf,
  toAwsRequestError,
} from '../aws/index.js';
import { AwsRequestError, ClusterUnreachableError, ConfigError, NotFoundError } from '../errors.js';
import { KubeClient, type TokenProvider, type UserInfo } from '../kube/index.js';
import { type Logger, silentLogger, throwIfAborted } from '../util/index.js';
import { type ExplainContext, explainAccessError, permissionsRemediation } from './access.js';
import { REQUIRED_PERMISSIONS } from './permissions.js';
import { resolveVisibility, toPodInfo } from './pods.js';
import type {
  AccessIdentity,
  AccessReport,
  CatalogAccount,
  CatalogProblem,
  CheckAccessOptions,
  ClusterCatalogOptions,
  ClusterInfo,
  ConnectOptions,
  PermissionCheck,
  PodInfo,
  PodsOptions,
  Reachability,
  VisibilityPolicy,
} from './types.js';

const str = z.string().max(10_000);
const describedClusterSchema = z.looseObject({
  name: str.optional(),
  arn: str.optional(),
  createdAt: z.date().optional(),
  version: str.optional(),
  endpoint: str.optional(),
  status: str.optional(),
  platformVersion: str.optional(),
  id: str.optional(),
  certificateAuthority: z.looseObject({ data: z.string().max(1_000_000).optional() }).optional(),
  resourcesVpcConfig: z
    .looseObject({
      vpcId: str.optional(),
      endpointPublicAccess: z.boolean().optional(),
      endpointPrivateAccess: z.boolean().optional(),
      publicAccessCidrs: z.array(str).max(1000).optional(),
    })
    .optional(),
  accessConfig: z.looseObject({ authenticationMode: str.optional() }).optional(),
  logging: z
    .looseObject({
      clusterLogging: z
        .array(z.looseObject({ types: z.array(str).max(50).optional(), enabled: z.boolean().optional() }))
        .max(50)
        .optional(),
    })
    .optional(),
  tags: z.record(z.string(), z.string()).optional(),
});

type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

function createLimiter(max: number): Limiter {
  let active = 0;
  const waiters: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiters.push(resolve));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiters.shift();
      if (next) next();
      else active--;
    }
  };
}

function endpointFor(
  spec: string | ((region: string) => string | undefined) | undefined,
  region: string,
): string | undefined {
  return typeof spec === 'function' ? spec(region) : spec;
}

function accountOfArn(arn: string | undefined): string | undefined {
  return arn ? /^arn:[^:]+:[^:]*:[^:]*:(\d{12}):/.exec(arn)?.[1] : undefined;
}

const WAYS_IN =
  'run this inside the VPC (or a network connected to it) and pass { insideVpc: true }; pass an HTTPS proxy ' +
  '`agent` that reaches the VPC; or start an SSM port forward (AWS-StartPortForwardingSessionToRemoteHost to ' +
  'the endpoint host, port 443) and pass { endpoint: "https://127.0.0.1:<port>", tlsServerName: "<endpoint host>" }';

/** Reachability verdict from the endpoint access settings. */
export function reachabilityOf(
  access: ClusterInfo['endpointAccess'],
  vpcId?: string | undefined,
): Reachability {
  if (!access.public) {
    return {
      kind: 'private-only',
      reason: `the public endpoint is disabled: the API server is reachable only from inside VPC ${vpcId ?? '(unknown)'} or a connected network. Ways in: ${WAYS_IN}.`,
    };
  }
  const open =
    access.publicCidrs.length === 0 || access.publicCidrs.some((c) => c === '0.0.0.0/0' || c === '::/0');
  const priv = access.private ? '; the private endpoint is also enabled for in-VPC callers' : '';
  return open
    ? { kind: 'public', reason: `the public endpoint is open to the internet${priv}` }
    : {
        kind: 'public',
        reason: `the public endpoint only accepts ${access.publicCidrs.join(', ')}; callers elsewhere time out${priv}`,
      };
}

/** Converts a DescribeCluster `cluster` object into a {@link ClusterInfo}. */
export function toClusterInfo(raw: unknown, region: string, roleArn?: string | undefined): ClusterInfo {
  const parsed = describedClusterSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`DescribeCluster answer did not match the expected shape`);
  const c = parsed.data;
  const name = c.name ?? '';
  const partition = partitionOf(region).id;
  const arn = c.arn ?? `arn:${partition}:eks:${region}::cluster/${name}`;
  const vpc = c.resourcesVpcConfig;
  const endpointAccess = {
    public: vpc?.endpointPublicAccess ?? true,
    private: vpc?.endpointPrivateAccess ?? false,
    publicCidrs: vpc?.publicAccessCidrs ?? (vpc?.endpointPublicAccess === false ? [] : ['0.0.0.0/0']),
  };
  const loggingEnabled = [
    ...new Set((c.logging?.clusterLogging ?? []).filter((l) => l.enabled).flatMap((l) => l.types ?? [])),
  ];
  return {
    name,
    arn,
    accountId: accountOfArn(arn) ?? '',
    region,
    partition,
    endpoint: c.endpoint,
    certificateAuthority: c.certificateAuthority?.data,
    kubernetesVersion: c.version,
    platformVersion: c.platformVersion,
    status: c.status,
    createdAt: c.createdAt,
    endpointAccess,
    authenticationMode: c.accessConfig?.authenticationMode,
    loggingEnabled,
    tags: { ...(c.tags ?? {}) },
    reachability: reachabilityOf(endpointAccess, vpc?.vpcId),
    id: c.id,
    roleArn,
  };
}

interface Source {
  roleArn?: string | undefined;
  account?: CatalogAccount | undefined;
}

/**
 * Finds EKS clusters across regions and accounts, connects to them with EKS tokens, lists their
 * pods and containers, and checks that the responder has the access acquisition needs.
 * Per-region and per-account failures never abort a sweep: they are collected in `problems`.
 *
 * @example
 * const catalog = new ClusterCatalog({ regions: ['eu-west-1', 'us-east-1'],
 *   accounts: [{ roleArn: 'arn:aws:iam::222222222222:role/Forensics', externalId: 'ir-2026' }] });
 * for await (const cluster of catalog.clusters()) console.log(cluster.arn, cluster.reachability.kind);
 * console.log(catalog.problems);
 */
export class ClusterCatalog {
  /** Regions swept by {@link eks-forensics!ClusterCatalog.clusters}. */
  readonly regions: readonly string[];
  /** Visibility rules applied by {@link eks-forensics!ClusterCatalog.pods}. */
  readonly visibility: VisibilityPolicy;
  readonly #options: ClusterCatalogOptions;
  readonly #base: CredentialProvider;
  readonly #accounts: readonly CatalogAccount[];
  readonly #concurrency: number;
  readonly #logger: Logger;
  readonly #roleCreds = new Map<string, CredentialProvider>();
  readonly #auths = new Map<string, EksAuth>();
  readonly #callers = new Map<string, Promise<string | undefined>>();
  #problems: CatalogProblem[] = [];

  /** @throws {ConfigError} for an unknown region name, a bad role ARN or concurrency. */
  constructor(options: ClusterCatalogOptions = {}) {
    this.#options = options;
    this.regions = Object.freeze([...new Set(options.regions ?? EKS_COMMERCIAL_REGIONS)]);
    if (this.regions.length === 0) throw new ConfigError('regions must not be empty');
    for (const r of this.regions) partitionOf(r);
    const concurrency = options.concurrency ?? 8;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new ConfigError('concurrency must be an integer >= 1');
    this.#concurrency = concurrency;
    this.#accounts = [...(options.accounts ?? [])];
    this.#base = options.credentials
      ? memoizeCredentials(options.credentials, { clock: options.clock })
      : defaultCredentials();
    for (const a of this.#accounts) this.#roleCredentials(a);
    this.visibility = resolveVisibility(options.visibility);
    this.#logger = options.logger ?? silentLogger;
  }

  /** Problems of the latest (or running) sweep: failed regions, accounts, clusters. */
  get problems(): readonly CatalogProblem[] {
    return this.#problems;
  }

  /**
   * Sweeps every account × region: paginated ListClusters, then DescribeCluster concurrently
   * (at most `concurrency` AWS calls in flight). Yields clusters as they are described; failures
   * go to {@link eks-forensics!ClusterCatalog.problems}. Breaking out of the loop cancels the rest.
   */
  async *clusters(options: { signal?: AbortSignal | undefined } = {}): AsyncGenerator<ClusterInfo> {
    throwIfAborted(options.signal, 'cluster discovery');
    this.#problems = [];
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const queue: ClusterInfo[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: unknown;
    const push = (c: ClusterInfo) => {
      queue.push(c);
      wake?.();
    };
    const limit = createLimiter(this.#concurrency);
    const sources: Source[] = [
      ...(this.#options.includeDefaultAccount === false ? [] : [{}]),
      ...this.#accounts.map((a) => ({ roleArn: a.roleArn, account: a })),
    ];
    const sweep = Promise.all(sources.map((s) => this.#sweepSource(s, limit, push, controller.signal)))
      .catch((err: unknown) => {
        failure = err;
      })
      .finally(() => {
        done = true;
        wake?.();
      });
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (done) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      throwIfAborted(options.signal, 'cluster discovery');
      if (failure) throw failure;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      controller.abort();
      await sweep;
    }
  }

  /** Runs a whole sweep and returns the clusters with the problems. */
  async discover(
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<{ clusters: ClusterInfo[]; problems: CatalogProblem[] }> {
    const clusters: ClusterInfo[] = [];
    for await (const c of this.clusters(options)) clusters.push(c);
    return { clusters, problems: [...this.#problems] };
  }

  /**
   * A {@link eks-forensics!KubeClient} for the cluster whose token provider is an {@link eks-forensics!EksAuth} for the
   * cluster's region and the credentials (role) it was found with. Its 401/403 errors are
   * rewritten with remediation (IAM principal, access entry / aws-auth commands, RBAC YAML).
   *
   * @throws {ClusterUnreachableError} for a private-only cluster without `endpoint`, `agent` or
   * `insideVpc`, or a cluster without an endpoint.
   */
  async connect(cluster: ClusterInfo, options: ConnectOptions = {}): Promise<KubeClient> {
    if (!options.endpoint) {
      if (!cluster.endpoint) {
        throw new ClusterUnreachableError(
          `EKS cluster ${cluster.name} (${cluster.arn}) has no API endpoint (status ${cluster.status ?? 'unknown'}); wait until it is ACTIVE or pass an endpoint.`,
        );
      }
      if (cluster.reachability.kind === 'private-only' && !options.agent && !options.insideVpc) {
        throw new ClusterUnreachableError(
          `EKS cluster ${cluster.name} (${cluster.arn}) has a private-only endpoint: ${cluster.reachability.reason}`,
        );
      }
    }
    const server = options.endpoint ?? cluster.endpoint ?? '';
    const auth = this.authFor(cluster);
    const target: EksTokenTarget = cluster.id ? { clusterId: cluster.id } : { clusterName: cluster.name };
    const token: TokenProvider = async (o) => {
      if (o?.forceRefresh) auth.invalidate(target);
      return (await auth.getToken(target)).token;
    };
    const kube = new KubeClient({
      server,
      caData: options.caData ?? cluster.certificateAuthority,
      token,
      tlsServerName: options.tlsServerName,
      agent: options.agent,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      logger: this.#logger,
    });
    return this.#explaining(kube, cluster);
  }

  /**
   * Pods of the cluster with their containers (regular, init, sidecar, ephemeral), image digests,
   * container ids, states, restart counts, node and compute type. Hidden pods/containers (system
   * namespaces, distroless images) are left out unless `includeHidden`, then flagged with a reason.
   *
   * @throws {NotMappedError} (401) or ForbiddenError (403) with remediation, and KubeClient's errors.
   */
  async pods(cluster: ClusterInfo, options: PodsOptions = {}): Promise<PodInfo[]> {
    const kube = await this.connect(cluster, options.connect);
    const nodeLabels = new Map<string, Record<string, string> | null>();
    const out: PodInfo[] = [];
    for await (const pod of kube.listPods({
      namespace: options.namespace,
      labelSelector: options.labelSelector,
      signal: options.signal,
    })) {
      const nodeName = pod.spec?.nodeName;
      let labels: Record<string, string> | null | undefined;
      if (options.resolveNodes && nodeName) {
        if (!nodeLabels.has(nodeName)) {
          const node = await kube.getNode(nodeName, { signal: options.signal }).catch(() => undefined);
          nodeLabels.set(nodeName, node?.metadata.labels ?? null);
        }
        labels = nodeLabels.get(nodeName);
      }
      const info = toPodInfo(pod, this.visibility, labels);
      if (!options.includeHidden) {
        if (info.hidden) continue;
        info.containers = info.containers.filter((c) => !c.hidden);
        if (info.containers.length === 0) continue;
      }
      out.push(info);
    }
    return out;
  }

  /**
   * Access preflight: who the cluster thinks we are (SelfSubjectReview, incl. the IAM ARN from
   * `extra`), each permission acquisition needs (SelfSubjectAccessReview), and remediation text.
   *
   * @throws {NotMappedError} when the cluster answers 401 (message names the IAM principal and the fixes).
   */
  async checkAccess(cluster: ClusterInfo, options: CheckAccessOptions = {}): Promise<AccessReport> {
    const kube = await this.connect(cluster, options.connect);
    let user: UserInfo = {};
    try {
      user = await kube.selfSubjectReview({ signal: options.signal });
    } catch (err) {
      // clusters before 1.28 have no SelfSubjectReview API: carry on with the access reviews
      if (!(err instanceof NotFoundError)) throw err;
    }
    const extra = user.extra ?? {};
    const identity: AccessIdentity = {
      username: user.username,
      uid: user.uid,
      groups: user.groups ?? [],
      iamArn: extra.arn?.[0] ?? extra.canonicalArn?.[0],
      extra,
    };
    const permissions: PermissionCheck[] = await Promise.all(
      REQUIRED_PERMISSIONS.map(async (p) => {
        const r = await kube.canI({
          verb: p.verb,
          resource: p.resource,
          subresource: p.subresource,
          namespace: options.namespace,
          signal: options.signal,
        });
        return {
          verb: p.verb,
          resource: p.resource,
          subresource: p.subresource,
          namespace: options.namespace,
          required: p.required,
          purpose: p.purpose,
          allowed: r.allowed,
          reason: r.reason,
        };
      }),
    );
    const callerArn = await this.callerArn(cluster);
    const missing = permissions.filter((p) => p.required && !p.allowed);
    const ctx = this.#explainContext(cluster, callerArn ?? identity.iamArn);
    return {
      cluster: { name: cluster.name, arn: cluster.arn, region: cluster.region },
      identity,
      callerArn,
      permissions,
      missing,
      ok: missing.length === 0,
      remediation: permissionsRemediation(
        permissions.filter((p) => !p.allowed),
        ctx,
      ),
    };
  }

  /**
   * The IAM principal (from `sts:GetCallerIdentity`) of the credentials used for the cluster,
   * or undefined when STS cannot be reached. Cached.
   */
  async callerArn(cluster: Pick<ClusterInfo, 'region' | 'roleArn'>): Promise<string | undefined> {
    const key = cluster.roleArn ?? '';
    let p = this.#callers.get(key);
    if (!p) {
      p = this.#getCallerIdentity(this.credentialsFor(cluster), cluster.region).then(
        (r) => r.arn,
        (err: unknown) => {
          this.#logger.warn(
            { err: err instanceof Error ? err.message : String(err) },
            'GetCallerIdentity failed',
          );
          this.#callers.delete(key);
          return undefined;
        },
      );
      this.#callers.set(key, p);
    }
    return p;
  }

  /** Credentials used for a cluster: those of the role it was found with, else the base credentials. */
  credentialsFor(cluster: Pick<ClusterInfo, 'roleArn'>): CredentialProvider {
    if (!cluster.roleArn) return this.#base;
    const known = this.#accounts.find((a) => a.roleArn === cluster.roleArn);
    return this.#roleCredentials(known ?? { roleArn: cluster.roleArn });
  }

  /** The (cached) {@link eks-forensics!EksAuth} that signs tokens for the cluster. */
  authFor(cluster: Pick<ClusterInfo, 'region' | 'roleArn'>): EksAuth {
    const key = `${cluster.roleArn ?? ''}\u0000${cluster.region}`;
    let auth = this.#auths.get(key);
    if (!auth) {
      auth = new EksAuth({
        region: cluster.region,
        credentials: this.credentialsFor(cluster),
        clock: this.#options.clock,
        stsEndpoint: this.#options.tokenStsEndpoint,
        logger: this.#logger,
      });
      this.#auths.set(key, auth);
    }
    return auth;
  }

  /**
   * Rewrites a 401/403 from the cluster with remediation: the IAM principal (fetched with
   * `sts:GetCallerIdentity`), access entry and eksctl commands, ClusterRole YAML. Other errors
   * are returned unchanged.
   */
  async explainError(err: unknown, cluster: ClusterInfo): Promise<unknown> {
    if (!(err instanceof Error) || !('code' in err)) return err;
    const code = (err as { code: unknown }).code;
    if (code !== 'EKSF_UNAUTHORIZED' && code !== 'EKSF_FORBIDDEN') return err;
    const principal = await this.callerArn(cluster);
    return explainAccessError(err, this.#explainContext(cluster, principal));
  }

  /** Redacted description. */
  toString(): string {
    return `ClusterCatalog(${this.regions.length} regions, ${this.#accounts.length} accounts)`;
  }

  /** @internal */
  [inspect.custom](): string {
    return `ClusterCatalog { regions: ${this.regions.length}, accounts: [${this.#accounts
      .map((a) => `'${a.roleArn}'`)
      .join(', ')}], problems: ${this.#problems.length} }`;
  }

  #explainContext(cluster: ClusterInfo, principalArn: string | undefined): ExplainContext {
    return {
      clusterName: cluster.name,
      clusterArn: cluster.arn,
      region: cluster.region,
      authenticationMode: cluster.authenticationMode,
      principalArn,
      group: this.#options.rbacGroup,
    };
  }

  #explaining(kube: KubeClient, cluster: ClusterInfo): KubeClient {
    const explain = (err: unknown) => this.explainError(err, cluster);
    return new Proxy(kube, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        if (prop === 'listPods') {
          return (...args: unknown[]) =>
            explainIterable(fn.apply(target, args) as AsyncIterable<unknown>, explain);
        }
        return (...args: unknown[]) => {
          const result = fn.apply(target, args);
          if (result instanceof Promise) {
            return result.catch(async (err: unknown) => {
              throw await explain(err);
            });
          }
          return result;
        };
      },
    });
  }

  #roleCredentials(account: CatalogAccount): CredentialProvider {
    let p = this.#roleCreds.get(account.roleArn);
    if (!p) {
      const region = this.#options.stsRegion ?? this.regions[0] ?? 'us-east-1';
      p = assumeRoleCredentials({
        roleArn: account.roleArn,
        externalId: account.externalId,
        sessionName: account.sessionName,
        durationSeconds: account.durationSeconds,
        sourceCredentials: this.#base,
        region,
        stsEndpoint: endpointFor(this.#options.endpoints?.sts, region),
        clock: this.#options.clock,
      });
      this.#roleCreds.set(account.roleArn, p);
    }
    return p;
  }

  async #getCallerIdentity(
    credentials: CredentialProvider,
    region: string,
  ): Promise<{ arn?: string; account?: string }> {
    const stsRegion = this.#options.stsRegion ?? region;
    const endpoint = endpointFor(this.#options.endpoints?.sts, stsRegion);
    const { GetCallerIdentityCommand, STSClient } = await import('@aws-sdk/client-sts');
    const client = new STSClient({
      region: stsRegion,
      credentials,
      maxAttempts: this.#options.maxAttempts ?? 3,
      ...(endpoint ? { endpoint } : {}),
    });
    try {
      const out = await client.send(new GetCallerIdentityCommand({}));
      return { arn: out.Arn, account: out.Account };
    } catch (err) {
      throw toAwsRequestError(err, {
        operation: 'sts:GetCallerIdentity',
        region: stsRegion,
        what: 'Reading the caller identity',
      });
    } finally {
      client.destroy();
    }
  }

  #problem(p: Omit<CatalogProblem, 'kind' | 'message' | 'operation'> & { error: AwsRequestError }): void {
    const problem: CatalogProblem = {
      ...p,
      operation: p.error.operation ?? 'unknown',
      kind: p.error.failure,
      message: p.error.message,
    };
    this.#problems.push(problem);
    this.#logger.warn(
      { account: p.account, roleArn: p.roleArn, region: p.region, cluster: p.cluster, kind: problem.kind },
      problem.message,
    );
  }

  async #sweepSource(
    source: Source,
    limit: Limiter,
    push: (c: ClusterInfo) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const credentials = source.account ? this.#roleCredentials(source.account) : this.#base;
    const account = accountOfArn(source.roleArn);
    try {
      await limit(() => credentials());
    } catch (err) {
      const error =
        err instanceof AwsRequestError
          ? err
          : toAwsRequestError(err, {
              operation: source.roleArn ? 'sts:AssumeRole' : 'credentials',
              what: source.roleArn ? `Assuming role ${source.roleArn}` : 'Loading AWS credentials',
              hint: source.roleArn
                ? undefined
                : 'Configure credentials (environment, profile, SSO, instance role) or pass `credentials`.',
            });
      this.#problem({ account, roleArn: source.roleArn, error });
      return;
    }
    await Promise.all(
      this.regions.map((region) =>
        this.#sweepRegion(source, credentials, account, region, limit, push, signal),
      ),
    );
  }

  async #sweepRegion(
    source: Source,
    credentials: CredentialProvider,
    account: string | undefined,
    region: string,
    limit: Limiter,
    push: (c: ClusterInfo) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const endpoint = endpointFor(this.#options.endpoints?.eks, region);
    const { DescribeClusterCommand, EKSClient, ListClustersCommand } = await import('@aws-sdk/client-eks');
    const client = new EKSClient({
      region,
      credentials,
      maxAttempts: this.#options.maxAttempts ?? 3,
      ...(endpoint ? { endpoint } : {}),
    });
    const who = source.roleArn ? ` via ${source.roleArn}` : '';
    try {
      let nextToken: string | undefined;
      do {
        if (signal.aborted) return;
        let names: string[];
        try {
          const page = await limit(() =>
            client.send(new ListClustersCommand({ nextToken, maxResults: this.#options.pageSize ?? 100 }), {
              abortSignal: signal,
            }),
          );
          names = page.clusters ?? [];
          nextToken = page.nextToken || undefined;
        } catch (err) {
          if (signal.aborted) return;
          this.#problem({
            account,
            roleArn: source.roleArn,
            region,
            error: toAwsRequestError(err, {
              operation: 'eks:ListClusters',
              region,
              what: `Listing EKS clusters${who}`,
            }),
          });
          return;
        }
        await Promise.all(
          names.map(async (name) => {
            try {
              const out = await limit(() =>
                client.send(new DescribeClusterCommand({ name }), { abortSignal: signal }),
              );
              if (!out.cluster) throw new ConfigError('the answer had no "cluster" object');
              push(toClusterInfo(out.cluster, region, source.roleArn));
            } catch (err) {
              if (signal.aborted) return;
              this.#problem({
                account,
                roleArn: source.roleArn,
                region,
                cluster: name,
                error:
                  err instanceof ConfigError
                    ? new AwsRequestError(`DescribeCluster ${name} (${region}): ${err.message}`, {
                        cause: err,
                        failure: 'invalid',
                        operation: 'eks:DescribeCluster',
                        region,
                      })
                    : toAwsRequestError(err, {
                        operation: 'eks:DescribeCluster',
                        region,
                        what: `Describing EKS cluster ${name}${who}`,
                      }),
              });
            }
          }),
        );
      } while (nextToken);
    } finally {
      client.destroy();
    }
  }
}

async function* explainIterable(
  source: AsyncIterable<unknown>,
  explain: (err: unknown) => Promise<unknown>,
): AsyncGenerator<unknown> {
  try {
    yield* source;
  } catch (err) {
    throw await explain(err);
  }
}
