/**
 * Structural verification of EKS bearer tokens (`k8s-aws-v1.` + base64url presigned STS URL),
 * following aws-iam-authenticator's `tokenVerifier.Verify` check by check — without calling STS,
 * so the signature itself is not verified.
 *
 * @module
 */

/** Options of {@link verifyEksToken}. */
export interface EksTokenVerifyOptions {
  /** Partition of the verifier: `aws` (default), `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`. */
  partition?: string | undefined;
  /** The verifier's own region (its STS host is always accepted). Default `us-east-1`. */
  region?: string | undefined;
  /** Clock in epoch milliseconds. Default `Date.now`. */
  clock?: (() => number) | undefined;
}

/** What a structurally valid token carries. */
export interface EksTokenClaims {
  /** Access key id from `X-Amz-Credential`. */
  accessKeyId: string;
  /** Region of the credential scope. */
  scopeRegion: string;
  /** STS host the URL points at. */
  stsHost: string;
  /** `X-Amz-Date`. */
  signedAt: Date;
  /** `X-Amz-Date` + 15 minutes. */
  expiresAt: Date;
  /** Whether temporary credentials signed it (`X-Amz-Security-Token` present). */
  hasSessionToken: boolean;
  /** The decoded presigned URL. */
  url: string;
}

/** Result of {@link verifyEksToken}: claims, or the authenticator's error text. */
export type EksTokenVerifyResult = { ok: true; claims: EksTokenClaims } | { ok: false; reason: string };

/** Prefix of EKS tokens. */
export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
const MAX_TOKEN_BYTES = 4096;
const EXPIRY_MS = 15 * 60_000;
const ALLOWED_PARAMS = new Set([
  'action',
  'version',
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-security-token',
  'x-amz-signature',
  'x-amz-signedheaders',
]);

interface PartitionInfo {
  domain: string;
  dualStackDomain: string;
  regionPattern: RegExp;
  global: boolean;
}

const PARTITIONS: Record<string, PartitionInfo> = {
  aws: {
    domain: 'amazonaws.com',
    dualStackDomain: 'api.aws',
    regionPattern: /^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+$/,
    global: true,
  },
  'aws-cn': {
    domain: 'amazonaws.com.cn',
    dualStackDomain: 'api.amazonwebservices.com.cn',
    regionPattern: /^cn-[a-z]+-\d+$/,
    global: false,
  },
  'aws-us-gov': {
    domain: 'amazonaws.com',
    dualStackDomain: 'api.aws',
    regionPattern: /^us-gov-[a-z]+-\d+$/,
    global: false,
  },
  'aws-iso': {
    domain: 'c2s.ic.gov',
    dualStackDomain: 'c2s.ic.gov',
    regionPattern: /^us-iso-[a-z]+-\d+$/,
    global: false,
  },
  'aws-iso-b': {
    domain: 'sc2s.sgov.gov',
    dualStackDomain: 'sc2s.sgov.gov',
    regionPattern: /^us-isob-[a-z]+-\d+$/,
    global: false,
  },
};

const formatError = (msg: string): { ok: false; reason: string } => ({
  ok: false,
  reason: `input token was not properly formatted: ${msg}`,
});

function checkHost(host: string, partition: string, ownRegion: string): string | undefined {
  const info = PARTITIONS[partition];
  if (!info) return `partition {${partition}} does not support hostname ${host}`;
  if (host === 'sts.amazonaws.com') {
    return info.global ? undefined : `global endpoint unsupported in partition ${partition}`;
  }
  const labels = host.split('.');
  const region = labels[1] ?? '';
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i.test(region)) {
    return `invalid region identifier format provided: ${region}`;
  }
  const candidates = new Set<string>();
  for (const r of new Set([region, ownRegion])) {
    if (r !== ownRegion && !info.regionPattern.test(r)) continue;
    candidates.add(`sts.${r}.${info.domain}`);
    candidates.add(`sts-fips.${r}.${info.domain}`);
    candidates.add(`sts.${r}.${info.dualStackDomain}`);
    candidates.add(`sts-fips.${r}.${info.dualStackDomain}`);
  }
  if (candidates.has(host.toLowerCase())) return undefined;
  if (!host.endsWith(`.${info.domain}`) && !host.endsWith(`.${info.dualStackDomain}`)) {
    return `partition {${partition}} does not support hostname ${host}`;
  }
  return `unexpected hostname "${host}" in pre-signed URL`;
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Checks an EKS token the way aws-iam-authenticator does before it calls STS: size ≤ 4096,
 * prefix, base64url without padding, `https`, STS host of the partition (regional, FIPS,
 * dual-stack, or global in `aws`), path `/`, query allow-list without duplicates,
 * `Action=GetCallerIdentity`, `x-k8s-aws-id` signed, `X-Amz-Expires` in 0..900 and `X-Amz-Date`
 * no older than 15 minutes. Never throws; failures carry the authenticator's message.
 *
 * @example
 * const r = verifyEksToken(token, { clock: () => Date.now() });
 * if (r.ok) console.log(r.claims.accessKeyId);
 */
export function verifyEksToken(token: string, options: EksTokenVerifyOptions = {}): EksTokenVerifyResult {
  const partition = options.partition ?? 'aws';
  const ownRegion = options.region ?? 'us-east-1';
  const now = (options.clock ?? Date.now)();
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return formatError('token is too large');
  if (!token.startsWith(EKS_TOKEN_PREFIX)) {
    return formatError(`token is missing expected "${EKS_TOKEN_PREFIX}" prefix`);
  }
  const body = token.slice(EKS_TOKEN_PREFIX.length);
  const bad = body.search(/[^A-Za-z0-9_-]/);
  if (bad >= 0) return formatError(`illegal base64 data at input byte ${bad}`);
  if (body.length % 4 === 1) return formatError(`illegal base64 data at input byte ${body.length - 1}`);
  const decoded = Buffer.from(body, 'base64url').toString('utf8');
  let url: URL;
  try {
    url = new URL(decoded);
  } catch {
    return formatError('malformed pre-signed URL');
  }
  if (url.protocol !== 'https:') {
    return formatError(`unexpected scheme "${url.protocol.replace(/:$/, '')}" in pre-signed URL`);
  }
  const hostError = checkHost(url.hostname, partition, ownRegion);
  if (hostError) return formatError(hostError);
  if (url.pathname !== '/') return formatError('unexpected path in pre-signed URL');

  const params = new Map<string, string>();
  const seenExact = new Map<string, number>();
  const rawQuery = url.search.replace(/^\?/, '');
  for (const part of rawQuery.length > 0 ? rawQuery.split('&') : []) {
    if (part.includes(';')) return formatError('malformed query parameter');
    const eq = part.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '));
      value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      return formatError('malformed query parameter');
    }
    seenExact.set(key, (seenExact.get(key) ?? 0) + 1);
    const lower = key.toLowerCase();
    if ((seenExact.get(key) ?? 0) > 1)
      return formatError('query parameter with multiple values not supported');
    if (params.has(lower)) return formatError(`duplicate query parameter found: "${key}"`);
    if (!ALLOWED_PARAMS.has(lower)) return formatError(`non-whitelisted query parameter "${key}"`);
    params.set(lower, value);
  }
  if (params.get('action') !== 'GetCallerIdentity') {
    return formatError('unexpected action parameter in pre-signed URL');
  }
  const signed = (params.get('x-amz-signedheaders') ?? '').split(';').map((h) => h.trim().toLowerCase());
  if (!signed.includes('x-k8s-aws-id')) {
    return formatError('client did not sign the x-k8s-aws-id header in the pre-signed URL');
  }
  const expiresRaw = params.get('x-amz-expires') ?? '';
  const expires = /^-?\d+$/.test(expiresRaw) ? Number(expiresRaw) : Number.NaN;
  if (!Number.isInteger(expires) || expires < 0 || expires > 900) {
    return formatError(`invalid X-Amz-Expires parameter in pre-signed URL: ${expiresRaw}`);
  }
  const dateRaw = params.get('x-amz-date');
  if (dateRaw === undefined || dateRaw === '') {
    return formatError('X-Amz-Date parameter must be present in pre-signed URL');
  }
  const signedAt = parseAmzDate(dateRaw);
  if (!signedAt) return formatError(`error parsing X-Amz-Date parameter ${dateRaw}`);
  const expiresAt = new Date(signedAt.getTime() + EXPIRY_MS);
  if (now > expiresAt.getTime()) {
    return formatError(`X-Amz-Date parameter is expired (15 minute expiration) ${dateRaw}`);
  }
  const credential = (params.get('x-amz-credential') ?? '').split('/');
  const accessKeyId = credential[0] ?? '';
  if (
    credential.length !== 5 ||
    accessKeyId === '' ||
    credential[3] !== 'sts' ||
    credential[4] !== 'aws4_request'
  ) {
    return formatError('malformed X-Amz-Credential parameter in pre-signed URL');
  }
  return {
    ok: true,
    claims: {
      accessKeyId,
      scopeRegion: credential[2] ?? '',
      stsHost: url.hostname,
      signedAt,
      expiresAt,
      hasSessionToken: params.has('x-amz-security-token'),
      url: decoded,
    },
  };
}
