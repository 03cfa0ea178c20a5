import { inspect } from 'node:util';
import { AwsRequestError, ConfigError } from '../errors.js';
import { toAwsRequestError } from './aws-errors.js';

/**
 * AWS credentials. Structurally the AWS SDK v3 `AwsCredentialIdentity`, so SDK providers and
 * identities can be passed where this is expected.
 */
export interface AwsCredentials {
  /** Access key id (`AKIA…` long-term, `ASIA…` temporary). */
  readonly accessKeyId: string;
  /** Secret access key. Never logged. */
  readonly secretAccessKey: string;
  /** Session token of temporary credentials. Never logged. */
  readonly sessionToken?: string | undefined;
  /** When temporary credentials expire. */
  readonly expiration?: Date | undefined;
}

/** Returns credentials; an AWS SDK v3 credential provider (e.g. `fromIni()`) fits this type. */
export type CredentialProvider = () => Promise<AwsCredentials>;

/** Static credentials or a provider of them. */
export type CredentialsInput = AwsCredentials | CredentialProvider;

/** Options of {@link memoizeCredentials}. */
export interface MemoizeCredentialsOptions {
  /** Fetch new credentials this long before `expiration`. Default 5 minutes. */
  refreshBeforeMs?: number | undefined;
  /** Current time. Default `() => new Date()`. */
  clock?: (() => Date) | undefined;
}

const FIVE_MINUTES = 5 * 60_000;

/**
 * Wraps a credential provider so it is called once and its result reused until shortly before
 * `expiration` (credentials without `expiration` are kept for the life of the wrapper).
 * Concurrent callers share one pending call; a failed call is not cached.
 */
export function memoizeCredentials(
  input: CredentialsInput,
  options: MemoizeCredentialsOptions = {},
): CredentialProvider {
  if (typeof input !== 'function') {
    const fixed = checkCredentials(input);
    return () => Promise.resolve(fixed);
  }
  const refreshBeforeMs = options.refreshBeforeMs ?? FIVE_MINUTES;
  const clock = options.clock ?? (() => new Date());
  let current: AwsCredentials | undefined;
  let pending: Promise<AwsCredentials> | undefined;
  const fresh = (c: AwsCredentials): boolean =>
    c.expiration === undefined || clock().getTime() < c.expiration.getTime() - refreshBeforeMs;
  return () => {
    if (current && fresh(current)) return Promise.resolve(current);
    if (!pending) {
      pending = (async () => {
        try {
          const got = checkCredentials(await input());
          current = got;
          return got;
        } finally {
          pending = undefined;
        }
      })();
    }
    return pending;
  };
}

function checkCredentials(c: AwsCredentials): AwsCredentials {
  if (typeof c?.accessKeyId !== 'string' || c.accessKeyId === '' || typeof c.secretAccessKey !== 'string') {
    throw new ConfigError('AWS credentials must have a non-empty accessKeyId and a secretAccessKey');
  }
  return c;
}

/**
 * The AWS SDK's default Node credential chain (environment, SSO, ini profiles, web identity,
 * ECS/EC2 metadata), memoized until shortly before expiry.
 */
export function defaultCredentials(): CredentialProvider {
  // Loaded on first use: the provider chain pulls in most of the SDK's credential code.
  let chain: Promise<CredentialProvider> | undefined;
  return memoizeCredentials(async () => {
    chain ??= import('@aws-sdk/credential-providers').then((m) => m.fromNodeProviderChain());
    return (await chain)();
  });
}

/** Options of {@link assumeRoleCredentials}. */
export interface AssumeRoleOptions {
  /** Role to assume, e.g. `arn:aws:iam::222222222222:role/ForensicsRead`. */
  roleArn: string;
  /** External id the role's trust policy requires, if any. */
  externalId?: string | undefined;
  /** Session name (shows in CloudTrail and in EKS audit logs). Default `eks-forensics`. */
  sessionName?: string | undefined;
  /** Session length in seconds (900–43200, capped by the role). Default 3600. */
  durationSeconds?: number | undefined;
  /** Credentials used to call AssumeRole. Default: the SDK's Node provider chain. */
  sourceCredentials?: CredentialsInput | undefined;
  /** Region of the STS endpoint used for AssumeRole. Default `us-east-1`. */
  region?: string | undefined;
  /** STS API endpoint override (e.g. a VPC endpoint or a local moto_server URL). */
  stsEndpoint?: string | undefined;
  /** Refresh this long before the session expires. Default 5 minutes. */
  refreshBeforeMs?: number | undefined;
  /** Current time, for the refresh decision. Default `() => new Date()`. */
  clock?: (() => Date) | undefined;
}

const SESSION_NAME_RE = /^[\w+=,.@-]{2,64}$/;
const EXTERNAL_ID_RE = /^[\w+=,.@:/-]{2,1224}$/;
const ROLE_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;

/**
 * A memoized provider of credentials for `roleArn`, obtained with `sts:AssumeRole` and reused
 * until shortly before they expire (unlike the SDK's `fromTemporaryCredentials`, which calls
 * AssumeRole every time it is asked).
 *
 * @throws {ConfigError} at once for a malformed role ARN, session name or external id.
 * The provider rejects with {@link AwsRequestError} when AssumeRole fails.
 */
export function assumeRoleCredentials(options: AssumeRoleOptions): CredentialProvider {
  const sessionName = options.sessionName ?? 'eks-forensics';
  if (!ROLE_ARN_RE.test(options.roleArn)) {
    throw new ConfigError(`"${options.roleArn}" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
  }
  if (!SESSION_NAME_RE.test(sessionName)) {
    throw new ConfigError('sessionName must be 2-64 characters of letters, digits and +=,.@_-');
  }
  if (options.externalId !== undefined && !EXTERNAL_ID_RE.test(options.externalId)) {
    throw new ConfigError('externalId must be 2-1224 characters of letters, digits and +=,.@:/_-');
  }
  const region = options.region ?? 'us-east-1';
  const source = options.sourceCredentials
    ? memoizeCredentials(options.sourceCredentials)
    : defaultCredentials();
  const assume = async (): Promise<AwsCredentials> => {
    const { AssumeRoleCommand, STSClient } = await import('@aws-sdk/client-sts');
    const client = new STSClient({
      region,
      credentials: source,
      ...(options.stsEndpoint ? { endpoint: options.stsEndpoint } : {}),
    });
    try {
      const out = await client.send(
        new AssumeRoleCommand({
          RoleArn: options.roleArn,
          RoleSessionName: sessionName,
          ExternalId: options.externalId,
          DurationSeconds: options.durationSeconds ?? 3600,
        }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) {
        throw new AwsRequestError(`sts:AssumeRole for ${options.roleArn} returned no credentials`, {
          operation: 'sts:AssumeRole',
          region,
        });
      }
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      };
    } catch (err) {
      if (err instanceof AwsRequestError) throw err;
      throw toAwsRequestError(err, {
        operation: 'sts:AssumeRole',
        region,
        what: `assuming role ${options.roleArn}`,
        hint: 'Check that the role trusts the calling principal (and the external id, if the trust policy requires one).',
      });
    } finally {
      client.destroy();
    }
  };
  const memo = memoizeCredentials(assume, {
    refreshBeforeMs: options.refreshBeforeMs ?? FIVE_MINUTES,
    clock: options.clock,
  });
  const provider: CredentialProvider = () => memo();
  Object.defineProperty(provider, inspect.custom, {
    value: () => `[assumeRoleCredentials ${options.roleArn}]`,
  });
  return provider;
}
