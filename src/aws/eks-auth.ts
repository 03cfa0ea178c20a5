import { inspect } from 'node:util';
import { ConfigError, TokenTooLargeError } from '../errors.js';
import { type Logger, silentLogger } from '../util/index.js';
import {
  type AwsCredentials,
  type CredentialProvider,
  type CredentialsInput,
  defaultCredentials,
  memoizeCredentials,
} from './credentials.js';
import {
  buildExecCredential,
  type ExecCredential,
  type ExecCredentialApiVersion,
  eksKubeconfig,
  type KubeconfigCluster,
  type KubeconfigOptions,
} from './kubeconfig.js';
import { partitionOf, stsHostname } from './regions.js';

let signerModules:
  | Promise<{
      Hash: typeof import('@smithy/hash-node').Hash;
      HttpRequest: typeof import('@smithy/protocol-http').HttpRequest;
      SignatureV4: typeof import('@smithy/signature-v4').SignatureV4;
    }>
  | undefined;

/** The SigV4 signer, loaded on the first token (it is not needed to import the package). */
function loadSigner() {
  signerModules ??= Promise.all([
    import('@smithy/hash-node'),
    import('@smithy/protocol-http'),
    import('@smithy/signature-v4'),
  ]).then(([h, p, s]) => ({ Hash: h.Hash, HttpRequest: p.HttpRequest, SignatureV4: s.SignatureV4 }));
  return signerModules;
}

/** Prefix of every EKS bearer token. */
export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** Largest token aws-iam-authenticator accepts, in bytes (whole string incl. prefix). */
export const EKS_TOKEN_MAX_BYTES = 4096;
/** STS honours the presigned URL this long after its `X-Amz-Date`. */
export const EKS_TOKEN_VALIDITY_MS = 15 * 60_000;
/** `expiresAt` is the signing time plus this (one minute before STS stops honouring it), like `aws eks get-token`. */
export const EKS_TOKEN_REPORTED_LIFETIME_MS = 14 * 60_000;

/** Options of {@link eks-forensics!EksAuth}. */
export interface EksAuthOptions {
  /** Region of the cluster(s); the token is signed for this region's STS endpoint. */
  region: string;
  /**
   * AWS credentials or an AWS SDK v3 credential provider (e.g. `fromIni({ profile })`,
   * {@link assumeRoleCredentials}). Memoized until shortly before expiry.
   * Default: the SDK's Node provider chain.
   */
  credentials?: CredentialsInput | undefined;
  /** Signing time source. Default `() => new Date()`. Inject a fixed clock to reproduce signatures. */
  clock?: (() => Date) | undefined;
  /**
   * STS host written into the token, as a hostname or `https://` URL (e.g. a FIPS endpoint
   * `sts-fips.us-east-1.amazonaws.com`). Default `sts.<region>.<partition domain>`.
   * The cluster's authenticator must accept the host (research §2 step 5).
   */
  stsEndpoint?: string | undefined;
  /** A cached token is replaced this long before its `expiresAt`. Default 60 s. */
  refreshBeforeMs?: number | undefined;
  /** Diagnostics; never receives tokens or keys. Default silent. */
  logger?: Logger | undefined;
}

/** Which cluster a token is for: its name, or its id for EKS local clusters on Outposts. */
export type EksTokenTarget =
  | { clusterName: string; clusterId?: undefined; region?: string | undefined }
  | { clusterId: string; clusterName?: undefined; region?: string | undefined };

const secretToken = new WeakMap<EksToken, string>();

/**
 * An EKS bearer token with its expiry. `token` is readable; `util.inspect`, `toString()` and
 * `JSON.stringify` show it redacted.
 */
export class EksToken {
  /** When to stop using the token: signing time + 14 minutes. */
  readonly expiresAt: Date;
  /** The signing time (`X-Amz-Date`). */
  readonly signedAt: Date;
  /** Region the token was signed for. */
  readonly region: string;
  /** Value signed as `x-k8s-aws-id` (cluster name or id). */
  readonly clusterId: string;

  /** @internal */
  constructor(token: string, signedAt: Date, region: string, clusterId: string) {
    secretToken.set(this, token);
    this.signedAt = signedAt;
    this.expiresAt = new Date(signedAt.getTime() + EKS_TOKEN_REPORTED_LIFETIME_MS);
    this.region = region;
    this.clusterId = clusterId;
  }

  /** The bearer token, `k8s-aws-v1.` + unpadded base64url of the presigned URL. */
  get token(): string {
    return secretToken.get(this) ?? '';
  }

  /** Redacted description. */
  toString(): string {
    return `EksToken(${this.clusterId}, ${this.region}, expires ${this.expiresAt.toISOString()})`;
  }

  /** Redacted JSON form (the token is not included). */
  toJSON(): Record<string, string> {
    return {
      token: `${EKS_TOKEN_PREFIX}<redacted>`,
      clusterId: this.clusterId,
      region: this.region,
      expiresAt: this.expiresAt.toISOString(),
    };
  }

  /** @internal */
  [inspect.custom](): string {
    return this.toString();
  }
}

/** The pieces of a decoded token's presigned URL. */
export interface DecodedEksToken {
  /** The presigned `https://sts…/?Action=GetCallerIdentity…` URL. */
  url: URL;
  /** Query parameters in order. */
  params: Array<[string, string]>;
}

/**
 * Decodes a `k8s-aws-v1.` token back to its presigned URL (for diagnostics and tests). Does not
 * verify anything.
 *
 * @throws {ConfigError} when the prefix is missing or the body is not a URL.
 */
export function decodeEksToken(token: string): DecodedEksToken {
  if (!token.startsWith(EKS_TOKEN_PREFIX))
    throw new ConfigError('not an EKS token (missing k8s-aws-v1. prefix)');
  const body = token.slice(EKS_TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) throw new ConfigError('EKS token body is not unpadded base64url');
  let url: URL;
  try {
    url = new URL(Buffer.from(body, 'base64url').toString('utf8'));
  } catch (err) {
    throw new ConfigError('EKS token body does not decode to a URL', { cause: err });
  }
  return { url, params: [...url.searchParams.entries()] };
}

// botocore's SigV4QueryAuth order: operation params, auth params, security token, signature.
const PARAM_ORDER = [
  'Action',
  'Version',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Security-Token',
  'X-Amz-Signature',
];

function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function parseStsEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint.includes('://') ? endpoint : `https://${endpoint}`);
  } catch (err) {
    throw new ConfigError(`stsEndpoint "${endpoint}" is not a hostname or URL`, { cause: err });
  }
  if (url.protocol !== 'https:') {
    throw new ConfigError('stsEndpoint must be https: aws-iam-authenticator rejects other schemes');
  }
  if (url.pathname !== '/' || url.search !== '') {
    throw new ConfigError('stsEndpoint must have no path or query: the verifier requires path "/"');
  }
  return url.host.toLowerCase();
}

interface CacheEntry {
  token: EksToken;
  refreshAt: number;
}

/**
 * Makes EKS bearer tokens (`k8s-aws-v1.…`): a presigned STS `GetCallerIdentity` URL signed with
 * SigV4 for the cluster's region, exactly as `aws eks get-token` does, without a subprocess.
 * Tokens are cached per (principal, cluster, region) and re-signed before they expire;
 * concurrent callers share one signing.
 *
 * @example
 * const auth = new EksAuth({ region: 'eu-west-1' });
 * const { token, expiresAt } = await auth.getToken({ clusterName: 'prod' });
 */
export class EksAuth {
  /** Region tokens are signed for unless a call names another. */
  readonly region: string;
  readonly #credentials: CredentialProvider;
  readonly #clock: () => Date;
  readonly #stsHost: string | undefined;
  readonly #refreshBeforeMs: number;
  readonly #logger: Logger;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #pending = new Map<string, Promise<EksToken>>();

  /** @throws {ConfigError} for an invalid region or STS endpoint. */
  constructor(options: EksAuthOptions) {
    partitionOf(options.region);
    this.region = options.region;
    this.#clock = options.clock ?? (() => new Date());
    this.#credentials = options.credentials
      ? memoizeCredentials(options.credentials, { clock: this.#clock })
      : defaultCredentials();
    this.#stsHost = options.stsEndpoint ? parseStsEndpoint(options.stsEndpoint) : undefined;
    this.#refreshBeforeMs = options.refreshBeforeMs ?? 60_000;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * A token for the cluster, from the cache while it has more than `refreshBeforeMs` left.
   *
   * @throws {ConfigError} when neither `clusterName` nor `clusterId` is given.
   * @throws {TokenTooLargeError} when the token would exceed 4096 bytes (large session tokens).
   */
  async getToken(target: EksTokenTarget): Promise<EksToken> {
    const clusterId = target.clusterId ?? target.clusterName;
    if (typeof clusterId !== 'string' || clusterId === '') {
      throw new ConfigError(
        'getToken needs a clusterName (or a clusterId for EKS local clusters on Outposts)',
      );
    }
    const region = target.region ?? this.region;
    const host = this.#stsHost ?? stsHostname(region);
    const credentials = await this.#credentials();
    const key = [credentials.accessKeyId, clusterId, region, host].join('\u0000');
    const hit = this.#cache.get(key);
    if (hit && this.#clock().getTime() < hit.refreshAt) return hit.token;
    const pending = this.#pending.get(key);
    if (pending) return pending;
    const signing = this.#sign(credentials, clusterId, region, host).then(
      (token) => {
        this.#pending.delete(key);
        this.#prune();
        this.#cache.set(key, { token, refreshAt: token.expiresAt.getTime() - this.#refreshBeforeMs });
        return token;
      },
      (err: unknown) => {
        this.#pending.delete(key);
        throw err;
      },
    );
    this.#pending.set(key, signing);
    return signing;
  }

  /**
   * A fresh ExecCredential for a kubeconfig `exec` plugin; print it as JSON on stdout.
   * `apiVersion` defaults to the one kubectl asked for in `KUBERNETES_EXEC_INFO`.
   */
  async execCredential(
    target: EksTokenTarget,
    options: { apiVersion?: ExecCredentialApiVersion | undefined } = {},
  ): Promise<ExecCredential> {
    const t = await this.getToken(target);
    return buildExecCredential(t.token, t.expiresAt, options.apiVersion);
  }

  /** A kubeconfig (YAML) for the cluster with an `exec` user; see {@link eksKubeconfig}. */
  kubeconfig(cluster: KubeconfigCluster, options: KubeconfigOptions = {}): string {
    return eksKubeconfig(cluster, options);
  }

  /** Drops cached tokens (all, or those for one cluster), e.g. after the cluster answered 401. */
  invalidate(target?: EksTokenTarget): void {
    if (!target) {
      this.#cache.clear();
      return;
    }
    const id = target.clusterId ?? target.clusterName;
    for (const key of [...this.#cache.keys()]) if (key.split('\u0000')[1] === id) this.#cache.delete(key);
  }

  /** Redacted description. */
  toString(): string {
    return `EksAuth(${this.region})`;
  }

  /** Redacted JSON form. */
  toJSON(): Record<string, string | number> {
    return { region: this.region, cachedTokens: this.#cache.size };
  }

  /** @internal */
  [inspect.custom](): string {
    return `EksAuth { region: '${this.region}', cachedTokens: ${this.#cache.size} }`;
  }

  #prune(): void {
    const now = this.#clock().getTime();
    for (const [k, v] of this.#cache) if (v.token.expiresAt.getTime() <= now) this.#cache.delete(k);
  }

  async #sign(
    credentials: AwsCredentials,
    clusterId: string,
    region: string,
    host: string,
  ): Promise<EksToken> {
    const signedAt = new Date(Math.floor(this.#clock().getTime() / 1000) * 1000);
    const { Hash, HttpRequest, SignatureV4 } = await loadSigner();
    const signer = new SignatureV4({
      service: 'sts',
      region,
      credentials,
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: true,
    });
    const request = new HttpRequest({
      method: 'GET',
      protocol: 'https:',
      hostname: host,
      path: '/',
      // exactly these two headers: anything else signed would fail at STS (eksctl#7486)
      headers: { host, 'x-k8s-aws-id': clusterId },
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    });
    const signed = await signer.presign(request, { expiresIn: 60, signingDate: signedAt });
    const query = signed.query ?? {};
    const keys = [
      ...PARAM_ORDER.filter((k) => k in query),
      ...Object.keys(query).filter((k) => !PARAM_ORDER.includes(k)),
    ];
    const qs = keys
      .map((k) => {
        const v = query[k];
        return `${rfc3986(k)}=${rfc3986(typeof v === 'string' ? v : String(v ?? ''))}`;
      })
      .join('&');
    const url = `https://${host}/?${qs}`;
    const token = EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
    const bytes = Buffer.byteLength(token);
    if (bytes > EKS_TOKEN_MAX_BYTES) {
      const sessionBytes = credentials.sessionToken ? Buffer.byteLength(credentials.sessionToken) : 0;
      throw new TokenTooLargeError(
        `The EKS token for cluster "${clusterId}" would be ${bytes} bytes, over the ${EKS_TOKEN_MAX_BYTES}-byte limit ` +
          `aws-iam-authenticator accepts, so the cluster would reject it. The session token is ${sessionBytes} bytes: ` +
          'assumed-role sessions with session tags or an inline session policy make it large. Assume the role ' +
          'without session tags/policies (or use credentials with a shorter session token).',
        { bytes, limit: EKS_TOKEN_MAX_BYTES },
      );
    }
    this.#logger.debug(
      { cluster: clusterId, region, host, signedAt: signedAt.toISOString() },
      'signed EKS token',
    );
    return new EksToken(token, signedAt, region, clusterId);
  }
}
