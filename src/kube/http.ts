/**
 * The HTTP transport under KubeClient: TLS (CA, SNI override), bearer tokens with one refresh on
 * 401, bounded bodies, bounded retries with backoff and jitter, and mapping of error answers to
 * the typed errors of `errors.ts`.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import * as http from 'node:http';
import * as https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { checkServerIdentity } from 'node:tls';
import type { z } from 'zod';
import {
  AbortedError,
  ApiUnavailableError,
  BadRequestError,
  ConfigError,
  ConflictError,
  EksForensicsError,
  ExpiredError,
  type ForbiddenDetail,
  ForbiddenError,
  type KubeStatus,
  LimitExceededError,
  NotFoundError,
  TlsTrustError,
  type TlsTrustProblem,
  UnauthorizedError,
  ValidationError,
} from '../errors.js';
import { abortError, type Logger, silentLogger, withTimeout } from '../util/index.js';
import { errorStatusSchema } from './schemas.js';
import type { KubeClientOptions, TokenProvider } from './types.js';

/** Largest error body we read to find a Status. */
export const MAX_ERROR_BODY_BYTES = 256 * 1024;
/** Default cap of JSON response bodies. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_RETRY_AFTER_MS = 30_000;
const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'EAI_AGAIN']);

/** A Status body plus the list `continue` token some 410 answers carry. */
export type ErrorStatus = KubeStatus & { continueToken?: string | undefined };

/**
 * Turns `base64(PEM)` (EKS) or PEM into PEM text.
 *
 * @throws {@link eks-forensics/errors!ConfigError} when it is neither.
 */
export function normalizeCaData(caData: string): string {
  const trimmed = caData.trim();
  if (trimmed.includes('-----BEGIN')) return trimmed;
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8');
  if (!decoded.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError('caData is neither PEM nor base64-encoded PEM; pass the cluster CA certificate');
  }
  return decoded;
}

/** Parses the 403 message `… User "u" cannot get resource "pods/exec" in API group "" in the namespace "ns"`. */
export function parseForbidden(message: string | undefined): ForbiddenDetail {
  const out: ForbiddenDetail = {};
  if (!message) return out;
  const m =
    /User "([^"]*)" cannot (\S+) resource "([^"/]*)(?:\/([^"]*))?" in API group "([^"]*)"(?: in the namespace "([^"]*)")?/.exec(
      message,
    );
  if (!m) return out;
  out.user = m[1];
  out.verb = m[2];
  out.resource = m[3];
  if (m[4]) out.subresource = m[4];
  out.apiGroup = m[5];
  if (m[6] !== undefined) out.namespace = m[6];
  return out;
}

/** Parses a (bounded) error body as a Status when it is one; `undefined` otherwise. */
export function parseStatusBody(body: Buffer): ErrorStatus | undefined {
  if (body.length === 0) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const r = errorStatusSchema.safeParse(json);
  if (!r.success || (r.data.kind !== undefined && r.data.kind !== 'Status')) return undefined;
  const { metadata, kind: _k, apiVersion: _a, ...rest } = r.data;
  const status: ErrorStatus = rest as KubeStatus;
  if (metadata?.continue) status.continueToken = metadata.continue;
  return status;
}

/**
 * Maps an HTTP error answer to the typed error. `what` names the request (no secrets).
 */
export function httpError(
  httpStatus: number,
  body: Buffer,
  what: string,
  extra: { attempts?: number; cause?: unknown } = {},
): EksForensicsError {
  const status = parseStatusBody(body);
  const text = status?.message ?? body.subarray(0, 500).toString('utf8').trim();
  const detail = text ? `: ${text}` : '';
  const opts = { status, httpStatus, cause: extra.cause };
  switch (httpStatus) {
    case 401:
      return new UnauthorizedError(
        `${what}: the API server did not accept the credentials (401)${detail}. Refresh the token or check the cluster's access entries / aws-auth mapping.`,
        opts,
      );
    case 403: {
      const denied = parseForbidden(status?.message);
      const hint =
        denied.verb && denied.resource
          ? ` Grant "${denied.verb}" on "${denied.resource}${denied.subresource ? `/${denied.subresource}` : ''}"${denied.namespace ? ` in namespace "${denied.namespace}"` : ''} to ${denied.user ? `"${denied.user}"` : 'this identity'}.`
          : ' Check RBAC for this identity (or, for exec, that the server supports v5/v4.channel.k8s.io).';
      return new ForbiddenError(`${what}: forbidden (403)${detail}.${hint}`, { ...opts, denied });
    }
    case 404:
      return new NotFoundError(`${what}: not found (404)${detail}`, opts);
    case 400:
    case 422:
      return new BadRequestError(`${what}: rejected by the server (${httpStatus})${detail}`, opts);
    case 409:
      return new ConflictError(`${what}: conflict (409)${detail}`, opts);
    case 410:
      return new ExpiredError(`${what}: gone/expired (410)${detail}`, opts);
    default:
      if (httpStatus === 429 || httpStatus >= 500) {
        return new ApiUnavailableError(
          `${what}: API server unavailable (${httpStatus}) after ${extra.attempts ?? 1} attempt(s)${detail}`,
          { ...opts, attempts: extra.attempts ?? 1 },
        );
      }
      return new EksForensicsError(`${what}: unexpected HTTP ${httpStatus}${detail}`, opts);
  }
}

const TLS_PROBLEMS: Readonly<Record<string, TlsTrustProblem>> = {
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted-ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'untrusted-ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted-ca',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted-ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted-ca',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'untrusted-ca',
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: 'untrusted-ca',
  CERT_SIGNATURE_FAILURE: 'untrusted-ca',
  CERT_UNTRUSTED: 'untrusted-ca',
  CERT_REJECTED: 'untrusted-ca',
  INVALID_CA: 'untrusted-ca',
  CERT_CHAIN_TOO_LONG: 'untrusted-ca',
  ERR_TLS_CERT_ALTNAME_INVALID: 'hostname',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
};

/** What the connection attempt knew about TLS, to say what to change. */
export interface ConnectTarget {
  url: URL;
  tls: Pick<TlsOptions, 'ca' | 'servername'>;
}

/**
 * Maps a connection error (REST or exec upgrade) to a typed error whose message says what to do:
 * {@link TlsTrustError} for certificate problems, else {@link ApiUnavailableError}. `doing` reads
 * like "cannot reach the API server at".
 */
export function connectionError(
  err: Error & { code?: string | undefined },
  what: string,
  target: ConnectTarget,
  doing: string,
  attempts = 1,
): TlsTrustError | ApiUnavailableError {
  const host = target.url.host;
  const code = err.code;
  const problem = code === undefined ? undefined : TLS_PROBLEMS[code];
  if (problem !== undefined) {
    const opts = { cause: err, problem, tlsCode: code };
    const caSource =
      "ClusterInfo.certificateAuthority from ClusterCatalog, the kubeconfig's certificate-authority-data, or `aws eks describe-cluster --name <cluster> --query cluster.certificateAuthority.data`";
    switch (problem) {
      case 'untrusted-ca':
        return new TlsTrustError(
          target.tls.ca === undefined
            ? `${what}: the API server at ${host} presented a certificate this client does not trust (${code}): no cluster CA was given. Pass the cluster CA as caData (${caSource}); ClusterCatalog.connect does this for you.`
            : `${what}: the API server at ${host} presented a certificate not signed by the caData given (${code}). caData is another cluster's CA, or something on the path intercepts TLS. Pass this cluster's CA as caData (${caSource}).`,
          opts,
        );
      case 'hostname':
        return new TlsTrustError(
          `${what}: the API server's certificate is not valid for ${target.tls.servername ?? target.url.hostname} (${code}). When you reach the cluster through another address (a tunnel, proxy or IP), pass tlsServerName: the hostname of the cluster endpoint.`,
          opts,
        );
      case 'expired':
      case 'not-yet-valid':
        return new TlsTrustError(
          `${what}: the API server's certificate at ${host} is ${problem === 'expired' ? 'expired' : 'not valid yet'} (${code}). Check this host's clock; if it is right, the endpoint is not the cluster you meant.`,
          opts,
        );
    }
  }
  let hint = '';
  if (
    code === 'EPROTO' ||
    /wrong version number|packet length too long|unknown protocol/i.test(err.message)
  ) {
    hint = `. The server at ${host} does not speak TLS there: check the server URL's scheme and port (EKS endpoints are https on 443)`;
  } else if (target.url.protocol === 'http:' && (code === 'ECONNRESET' || err.message === 'socket hang up')) {
    hint = '. The server URL is http://: EKS API servers (and FakeCluster) speak https://';
  }
  return new ApiUnavailableError(`${what}: ${doing} ${host} (${code ?? err.message})${hint}`, {
    cause: err,
    attempts,
  });
}

/** Reads at most `max` bytes of a stream; returns what was read and whether more was left. */
export async function readBounded(
  res: IncomingMessage,
  max: number,
): Promise<{ body: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  try {
    for await (const chunk of res) {
      const b = chunk as Buffer;
      if (size + b.length > max) {
        chunks.push(b.subarray(0, max - size));
        size = max;
        truncated = true;
        break;
      }
      chunks.push(b);
      size += b.length;
    }
  } finally {
    if (truncated) res.destroy();
  }
  return { body: Buffer.concat(chunks, size), truncated };
}

/** One request. */
export interface RequestSpec {
  method: 'GET' | 'POST' | 'PATCH';
  /** Path plus query. */
  path: string;
  /** JSON body. */
  body?: unknown;
  contentType?: string;
  /** May be retried on 429/5xx/connection reset. */
  idempotent: boolean;
  signal?: AbortSignal | undefined;
  /** Short description for error messages. */
  what: string;
}

/** The TLS/agent options shared by REST and WebSocket requests. */
export interface TlsOptions {
  ca?: string | undefined;
  servername?: string | undefined;
  checkServerIdentity?: ((host: string, cert: PeerCertificate) => Error | undefined) | undefined;
  /** The caller's agent, if any (used for WebSocket upgrades too). */
  agent?: http.Agent | undefined;
  /** The agent REST requests use: the caller's, or a keep-alive one of ours. */
  restAgent: http.Agent;
  rejectUnauthorized: boolean;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal, 'retry wait'));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal as AbortSignal, 'retry wait'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Parses `Retry-After` (seconds or HTTP date) into ms, capped. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Math.min(Number(v.trim()) * 1000, MAX_RETRY_AFTER_MS);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.min(Math.max(0, t - now), MAX_RETRY_AFTER_MS);
}

class RetryableError extends Error {
  constructor(
    readonly error: EksForensicsError,
    readonly retryAfter: number | undefined,
  ) {
    super(error.message);
  }
}

/** Transport shared by KubeClient's REST calls and exec. */
export class KubeTransport {
  readonly url: URL;
  readonly tls: TlsOptions;
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly signal: AbortSignal | undefined;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #tokenProvider: TokenProvider;
  readonly #isHttps: boolean;

  constructor(opts: KubeClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.server);
    } catch (cause) {
      throw new ConfigError(`server is not a valid URL: ${JSON.stringify(opts.server)}`, { cause });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new ConfigError(`server must be an https:// URL, got ${url.protocol}`);
    }
    this.url = url;
    this.#isHttps = url.protocol === 'https:';
    const ca = opts.caData === undefined ? undefined : normalizeCaData(opts.caData);
    const name = opts.tlsServerName;
    this.tls = {
      ca,
      servername: name,
      checkServerIdentity: name ? (_host, cert) => checkServerIdentity(name, cert) : undefined,
      agent: opts.agent,
      restAgent:
        opts.agent ??
        (this.#isHttps ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true })),
      rejectUnauthorized: true,
    };
    this.logger = opts.logger ?? silentLogger;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.signal = opts.signal;
    this.#attempts = Math.max(1, Math.floor(opts.retry?.attempts ?? 4));
    this.#baseDelayMs = Math.max(0, opts.retry?.baseDelayMs ?? 250);
    this.#maxDelayMs = Math.max(this.#baseDelayMs, opts.retry?.maxDelayMs ?? 10_000);
    const token = opts.token;
    if (typeof token === 'string') {
      if (!token) throw new ConfigError('token is empty');
      this.#tokenProvider = async () => token;
    } else if (typeof token === 'function') {
      this.#tokenProvider = token;
    } else {
      throw new ConfigError('token must be a string or a function returning a Promise<string>');
    }
  }

  /** TLS options for `https.request`/`ws`, without undefined keys (Node asserts on some of them). */
  tlsRequestOptions(): Pick<
    https.RequestOptions,
    'ca' | 'servername' | 'checkServerIdentity' | 'rejectUnauthorized'
  > {
    const o: Pick<https.RequestOptions, 'ca' | 'servername' | 'checkServerIdentity' | 'rejectUnauthorized'> =
      {
        rejectUnauthorized: true,
      };
    if (this.tls.ca !== undefined) o.ca = this.tls.ca;
    if (this.tls.servername !== undefined) o.servername = this.tls.servername;
    if (this.tls.checkServerIdentity !== undefined) o.checkServerIdentity = this.tls.checkServerIdentity;
    return o;
  }

  /** Gets a token from the provider (never logged). */
  async token(forceRefresh = false): Promise<string> {
    let t: string;
    try {
      t = await this.#tokenProvider(forceRefresh ? { forceRefresh: true } : undefined);
    } catch (cause) {
      if (cause instanceof EksForensicsError) throw cause;
      throw new UnauthorizedError('the token provider failed; check the credentials it uses', { cause });
    }
    if (typeof t !== 'string' || t.length === 0) {
      throw new UnauthorizedError('the token provider returned an empty token');
    }
    return t;
  }

  /** Combines the client signal with a call signal. */
  combineSignal(signal: AbortSignal | undefined): AbortSignal | undefined {
    const list = [this.signal, signal].filter((s): s is AbortSignal => s !== undefined);
    if (list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    return AbortSignal.any(list);
  }

  /** Full URL for a path (with query). */
  urlFor(path: string, ws = false): URL {
    const u = new URL(this.url.toString());
    const base = u.pathname.replace(/\/+$/, '');
    const [p, q] = path.split('?', 2) as [string, string | undefined];
    u.pathname = base + p;
    u.search = q ? `?${q}` : '';
    if (ws) u.protocol = this.#isHttps ? 'wss:' : 'ws:';
    return u;
  }

  /** Backoff delay for retry number `n` (1-based): full jitter over an exponential ceiling. */
  backoff(n: number): number {
    const ceiling = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (n - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /**
   * Sends a request and returns the response once headers with a 2xx status arrived (the caller
   * reads the body). Error answers are read (bounded) and thrown as typed errors.
   */
  async open(spec: RequestSpec, timeoutSignal?: AbortSignal): Promise<IncomingMessage> {
    const signal = this.combineSignal(spec.signal);
    const attempts = spec.idempotent ? this.#attempts : 1;
    let refreshed = false;
    let forceRefresh = false;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(signal, spec.what);
      if (timeoutSignal?.aborted) throw abortError(timeoutSignal, spec.what);
      const token = await this.token(forceRefresh);
      forceRefresh = false;
      try {
        return await this.#once(spec, token, signal, timeoutSignal, attempt);
      } catch (err) {
        if (err instanceof UnauthorizedError && !refreshed) {
          refreshed = true;
          forceRefresh = true;
          attempt--;
          this.logger.debug({ what: spec.what }, 'kube: 401, refreshing token once');
          continue;
        }
        if (err instanceof RetryableError) {
          if (attempt >= attempts) throw err.error;
          const delay = Math.min(err.retryAfter ?? this.backoff(attempt), this.#maxDelayMs);
          this.logger.debug({ what: spec.what, attempt, delay }, 'kube: retrying');
          await sleep(delay, signal ?? timeoutSignal);
          continue;
        }
        throw err;
      }
    }
  }

  #once(
    spec: RequestSpec,
    token: string,
    signal: AbortSignal | undefined,
    timeoutSignal: AbortSignal | undefined,
    attempt: number,
  ): Promise<IncomingMessage> {
    const url = this.urlFor(spec.path);
    const body = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body), 'utf8');
    const headers: OutgoingHttpHeaders = {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      'user-agent': 'eks-forensics',
    };
    if (body) {
      headers['content-type'] = spec.contentType ?? 'application/json';
      headers['content-length'] = body.length;
    }
    const mod = this.#isHttps ? https : http;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        req.destroy();
        reject(e);
      };
      const onAbort = () =>
        fail(abortError((signal?.aborted ? signal : timeoutSignal) as AbortSignal, spec.what));
      const cleanup = () => {
        signal?.removeEventListener('abort', onAbort);
        timeoutSignal?.removeEventListener('abort', onAbort);
      };
      const req = mod.request(url, {
        method: spec.method,
        headers,
        agent: this.tls.restAgent,
        ...this.tlsRequestOptions(),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      timeoutSignal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        const e = connectionError(err, spec.what, this, 'cannot reach the API server at', attempt);
        if (e instanceof TlsTrustError) fail(e);
        else if (err.code !== undefined && RETRYABLE_CODES.has(err.code))
          fail(new RetryableError(e, undefined));
        else if (err.message === 'socket hang up') fail(new RetryableError(e, undefined));
        else fail(e);
      });
      req.on('response', (res) => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) {
          settled = true;
          cleanup();
          resolve(res);
          return;
        }
        readBounded(res, MAX_ERROR_BODY_BYTES).then(
          ({ body: errBody }) => {
            const err = httpError(code, errBody, spec.what, { attempts: attempt });
            if (code === 429 || code >= 500)
              fail(new RetryableError(err, retryAfterMs(res.headers['retry-after'])));
            else fail(err);
          },
          (cause) => fail(new ApiUnavailableError(`${spec.what}: error reading the response`, { cause })),
        );
      });
      req.end(body);
    });
  }

  /** Sends a request and parses the JSON answer with `schema`. Bounded by `timeoutMs` and `maxResponseBytes`. */
  async json<S extends z.ZodType>(spec: RequestSpec, schema: S): Promise<z.infer<S>> {
    const t = withTimeout(undefined, this.timeoutMs, spec.what);
    try {
      const signal = this.combineSignal(spec.signal);
      let read: { body: Buffer; truncated: boolean } | undefined;
      // A connection that breaks mid-body is retried like one that broke before the headers.
      for (let attempt = 1; read === undefined; attempt++) {
        const res = await this.open(spec, t.signal);
        const onAbort = () => res.destroy();
        t.signal.addEventListener('abort', onAbort, { once: true });
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          read = await readBounded(res, this.maxResponseBytes + 1);
        } catch (cause) {
          if (signal?.aborted) throw abortError(signal, spec.what);
          if (t.signal.aborted) throw abortError(t.signal, spec.what);
          const err = new ApiUnavailableError(
            `${spec.what}: the connection broke while reading the response`,
            {
              cause,
              attempts: attempt,
            },
          );
          if (!spec.idempotent || attempt >= this.#attempts) throw err;
          this.logger.debug({ what: spec.what, attempt }, 'kube: body read failed, retrying');
          await sleep(this.backoff(attempt), signal ?? t.signal);
        } finally {
          t.signal.removeEventListener('abort', onAbort);
          signal?.removeEventListener('abort', onAbort);
        }
      }
      if (signal?.aborted) throw abortError(signal, spec.what);
      if (t.signal.aborted) throw abortError(t.signal, spec.what);
      if (read.body.length > this.maxResponseBytes) {
        throw new LimitExceededError(
          `${spec.what}: response body is over ${this.maxResponseBytes} bytes; use a smaller page (limit) or raise maxResponseBytes`,
          { limit: 'maxResponseBytes' },
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(read.body.toString('utf8'));
      } catch (cause) {
        throw new ValidationError(`${spec.what}: the API server answered with a body that is not JSON`, {
          cause,
        });
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        const issues = parsed.error.issues.slice(0, 20).map((i) => ({
          path: i.path.map(String).join('.'),
          message: i.message,
        }));
        throw new ValidationError(
          `${spec.what}: the API server's answer does not match the expected shape (${issues
            .slice(0, 3)
            .map((i) => `${i.path || '<root>'}: ${i.message}`)
            .join('; ')})`,
          { issues, cause: parsed.error },
        );
      }
      return parsed.data;
    } catch (err) {
      if (err instanceof AbortedError || err instanceof EksForensicsError) throw err;
      throw new ApiUnavailableError(`${spec.what}: request failed`, { cause: err });
    } finally {
      t.dispose();
    }
  }
}
