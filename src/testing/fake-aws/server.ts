import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import {
  FakeCloudServices,
  type FakeCloudTrailEventInput,
  type FakeGuardDutyDetectorInput,
  type FakePodIdentityAssociationInput,
  ServiceFault,
} from './cloud-services.js';
import type {
  FakeAwsFailure,
  FakeAwsOptions,
  FakeAwsPrincipal,
  FakeAwsRequestRecord,
  FakeAwsRole,
  FakeEksClusterInput,
} from './types.js';

const MAX_BODY = 1024 * 1024;
const AUTH_RE = /Credential=([^/\s,]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request/;

interface Caller {
  accessKeyId: string;
  arn: string;
  account: string;
  userId: string;
}

interface IssuedSession extends Caller {
  sessionToken: string;
  expiration: Date;
}

interface StoredCluster {
  account: string;
  region: string;
  json: Record<string, unknown>;
}

class AwsFault extends Error {
  constructor(
    readonly status: number,
    readonly awsCode: string,
    message: string,
  ) {
    super(message);
  }
}

const createClusterSchema = z.looseObject({
  name: z.string().min(1).max(100),
  version: z.string().max(20).optional(),
  roleArn: z.string().max(2048).optional(),
  resourcesVpcConfig: z
    .looseObject({
      endpointPublicAccess: z.boolean().optional(),
      endpointPrivateAccess: z.boolean().optional(),
      publicAccessCidrs: z.array(z.string().max(50)).max(100).optional(),
    })
    .optional(),
  accessConfig: z.looseObject({ authenticationMode: z.string().max(40).optional() }).optional(),
  logging: z
    .looseObject({
      clusterLogging: z
        .array(
          z.looseObject({
            types: z.array(z.string().max(40)).max(10).optional(),
            enabled: z.boolean().optional(),
          }),
        )
        .max(10)
        .optional(),
    })
    .optional(),
  tags: z.record(z.string().max(128), z.string().max(256)).optional(),
});

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function accountOfArn(arn: string): string {
  return /^arn:[^:]+:[^:]+::(\d{12}):/.exec(arn)?.[1] ?? '000000000000';
}

function defaultStatusFor(code: string): number {
  if (/Throttl|TooManyRequests|LimitExceeded/.test(code)) return 400;
  if (/Denied|Unrecognized|InvalidClientTokenId|ExpiredToken|Signature|AuthFailure/.test(code)) return 403;
  if (/NotFound/.test(code)) return 404;
  if (/Invalid|Validation/.test(code)) return 400;
  return 500;
}

/**
 * A fake of the AWS EKS and STS APIs, enough for the AWS SDK v3 clients used by discovery:
 * EKS `ListClusters` (paginated), `DescribeCluster`, `CreateCluster`, `DeleteCluster`; STS
 * `GetCallerIdentity`, `AssumeRole` (with external id checks and per-account assumed-role
 * credentials). One plain-HTTP server on 127.0.0.1 serves every region and account: the region
 * and caller are read from each request's SigV4 scope. Signatures are not verified; session
 * tokens of issued credentials are.
 *
 * @example
 * const aws = await FakeAws.start({ clusters: [{ name: 'prod', region: 'eu-west-1' }] });
 * const catalog = new ClusterCatalog({ regions: ['eu-west-1'], endpoints: { eks: aws.endpoint, sts: aws.endpoint }, credentials: aws.credentials() });
 * await aws.close();
 */
export class FakeAws {
  /** Base URL, e.g. `http://127.0.0.1:40123`; use it as the EKS and STS endpoint of every region. */
  readonly endpoint: string;
  /** Every request answered, in order. */
  readonly requests: FakeAwsRequestRecord[] = [];
  /** Most requests that were being answered at the same time. */
  maxInFlight = 0;
  /** Injected failures; push or splice at any time. */
  readonly failures: FakeAwsFailure[];
  readonly #server: Server;
  readonly #principals = new Map<string, FakeAwsPrincipal>();
  readonly #roles: Map<string, FakeAwsRole> | undefined;
  readonly #sessions = new Map<string, IssuedSession>();
  readonly #clusters = new Map<string, StoredCluster>();
  readonly #defaultAccount: string | null;
  readonly #maxPage: number;
  readonly #clock: () => Date;
  readonly #latencyMs: number;
  #inFlight = 0;
  readonly #cloud = new FakeCloudServices(() => this.#defaultAccount ?? '123456789012');

  private constructor(server: Server, endpoint: string, options: FakeAwsOptions) {
    this.#server = server;
    this.endpoint = endpoint;
    for (const p of options.principals ?? []) this.#principals.set(p.accessKeyId, p);
    this.#roles = options.roles ? new Map(options.roles.map((r) => [r.arn, r])) : undefined;
    this.#defaultAccount = options.defaultAccount === undefined ? '123456789012' : options.defaultAccount;
    this.#maxPage = options.maxPageSize ?? 100;
    this.#clock = options.clock ?? (() => new Date());
    this.#latencyMs = options.latencyMs ?? 0;
    this.failures = [...(options.failures ?? [])];
    for (const c of options.clusters ?? []) this.addCluster(c);
  }

  /** Starts the fake on 127.0.0.1 with a random port. */
  static async start(options: FakeAwsOptions = {}): Promise<FakeAws> {
    let self: FakeAws | undefined;
    const server = createServer((req, res) => {
      if (self) void self.#handle(req, res);
      else res.destroy();
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    server.unref();
    const { port } = server.address() as AddressInfo;
    self = new FakeAws(server, `http://127.0.0.1:${port}`, options);
    return self;
  }

  /** Long-term test credentials for a principal (default: a key of the default account). */
  credentials(accessKeyId = 'AKIAFAKEAWS000000001'): { accessKeyId: string; secretAccessKey: string } {
    return { accessKeyId, secretAccessKey: 'fake-secret-access-key' };
  }

  /** Adds a principal after start. */
  addPrincipal(principal: FakeAwsPrincipal): void {
    this.#principals.set(principal.accessKeyId, principal);
  }

  /** Adds (or replaces) a cluster; returns its DescribeCluster JSON. */
  addCluster(input: FakeEksClusterInput): Record<string, unknown> {
    const account = input.account ?? this.#defaultAccount ?? '123456789012';
    const partition = input.region.startsWith('cn-')
      ? 'aws-cn'
      : input.region.startsWith('us-gov-')
        ? 'aws-us-gov'
        : 'aws';
    const suffix = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
    const logging = input.logging ?? [];
    const all = ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'];
    const json: Record<string, unknown> = {
      name: input.name,
      arn: `arn:${partition}:eks:${input.region}:${account}:cluster/${input.name}`,
      createdAt: (input.createdAt ?? this.#clock()).getTime() / 1000,
      version: input.version ?? '1.33',
      endpoint:
        input.endpoint ??
        `https://${randomBytes(16).toString('hex').toUpperCase()}.gr7.${input.region}.eks.${suffix}`,
      roleArn: `arn:${partition}:iam::${account}:role/eks-cluster-role`,
      resourcesVpcConfig: {
        subnetIds: ['subnet-0fake0000000001'],
        securityGroupIds: [],
        vpcId: 'vpc-0fake0000000001',
        endpointPublicAccess: input.endpointPublicAccess ?? true,
        endpointPrivateAccess: input.endpointPrivateAccess ?? false,
        publicAccessCidrs: [...(input.publicAccessCidrs ?? ['0.0.0.0/0'])],
      },
      logging: {
        clusterLogging: [
          ...(logging.length ? [{ types: [...logging], enabled: true }] : []),
          ...(logging.length < all.length
            ? [{ types: all.filter((t) => !logging.includes(t)), enabled: false }]
            : []),
        ],
      },
      status: input.status ?? 'ACTIVE',
      certificateAuthority: {
        data:
          input.certificateAuthority ??
          Buffer.from('-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n').toString(
            'base64',
          ),
      },
      platformVersion: input.platformVersion ?? 'eks.9',
      tags: { ...(input.tags ?? {}) },
    };
    if (input.authenticationMode) {
      json.accessConfig = {
        authenticationMode: input.authenticationMode,
        bootstrapClusterCreatorAdminPermissions: true,
      };
    }
    if (input.id) json.id = input.id;
    this.#clusters.set(`${account}/${input.region}/${input.name}`, { account, region: input.region, json });
    return json;
  }

  /** Adds an EKS Pod Identity association; returns its id. */
  addPodIdentityAssociation(input: FakePodIdentityAssociationInput): string {
    return this.#cloud.addPodIdentityAssociation(input);
  }

  /** Adds a CloudTrail management event served by `LookupEvents`; returns its event id. */
  addCloudTrailEvent(input: FakeCloudTrailEventInput): string {
    return this.#cloud.addCloudTrailEvent(input);
  }

  /** Adds a GuardDuty detector with its findings; returns the detector id. */
  addGuardDutyDetector(input: FakeGuardDutyDetectorInput): string {
    return this.#cloud.addGuardDutyDetector(input);
  }

  /** Removes a cluster; true when it existed. */
  removeCluster(account: string, region: string, name: string): boolean {
    return this.#clusters.delete(`${account}/${region}/${name}`);
  }

  /** Stops the server (open connections are closed). */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let service = 'unknown';
    let operation = 'unknown';
    let region = '';
    let accessKeyId = '';
    let status = 500;
    this.#inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
    try {
      const body = await readBody(req);
      if (this.#latencyMs > 0) await new Promise((r) => setTimeout(r, this.#latencyMs));
      const auth = AUTH_RE.exec(String(req.headers.authorization ?? ''));
      if (!auth)
        throw new AwsFault(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
      accessKeyId = auth[1] ?? '';
      region = auth[3] ?? '';
      service = auth[4] ?? '';
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (service === 'sts') {
        const form = new URLSearchParams(body.toString('utf8'));
        operation = form.get('Action') ?? url.searchParams.get('Action') ?? 'unknown';
        const caller = this.#caller(req, accessKeyId);
        this.#inject('sts', operation, region, caller.account, undefined);
        const xml = this.#sts(operation, form, caller);
        status = 200;
        res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
        res.end(xml);
      } else if (service === 'eks' && this.#cloud.routeEks(req.method ?? 'GET', url.pathname)) {
        const route = this.#cloud.routeEks(req.method ?? 'GET', url.pathname) as {
          operation: string;
          name: string;
        };
        operation = route.operation;
        const caller = this.#caller(req, accessKeyId);
        this.#inject('eks', operation, region, caller.account, route.name);
        status = 200;
        this.#json(res, this.#cloud.eks(route, url, caller.account, region));
      } else if (service === 'cloudtrail') {
        operation =
          String(req.headers['x-amz-target'] ?? '')
            .split('.')
            .pop() ?? 'unknown';
        const caller = this.#caller(req, accessKeyId);
        this.#inject('cloudtrail', operation, region, caller.account, undefined);
        status = 200;
        this.#json(
          res,
          this.#cloud.cloudtrail(operation, body, caller.account, region),
          'application/x-amz-json-1.1',
        );
      } else if (service === 'guardduty') {
        const route = this.#cloud.routeGuardDuty(req.method ?? 'GET', url.pathname);
        operation = route.operation;
        const caller = this.#caller(req, accessKeyId);
        this.#inject('guardduty', operation, region, caller.account, undefined);
        status = 200;
        this.#json(res, this.#cloud.guardduty(route, url, body, caller.account, region));
      } else if (service === 'eks') {
        const route = routeEks(req.method ?? 'GET', url.pathname);
        operation = route.operation;
        const caller = this.#caller(req, accessKeyId);
        this.#inject('eks', operation, region, caller.account, route.name);
        const out = this.#eks(route, url, body, caller.account, region);
        status = 200;
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() });
        res.end(JSON.stringify(out));
      } else {
        throw new AwsFault(400, 'UnknownServiceException', `fake AWS serves eks and sts, not ${service}`);
      }
    } catch (err) {
      const fault =
        err instanceof AwsFault
          ? err
          : err instanceof ServiceFault
            ? new AwsFault(err.status, err.awsCode, err.message)
            : new AwsFault(500, 'InternalFailure', err instanceof Error ? err.message : 'error');
      status = fault.status;
      if (service === 'sts') {
        res.writeHead(fault.status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
        res.end(
          `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
            `<Code>${xmlEscape(fault.awsCode)}</Code><Message>${xmlEscape(fault.message)}</Message></Error>` +
            `<RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
        );
      } else {
        res.writeHead(fault.status, {
          'content-type': 'application/json',
          'x-amzn-errortype': fault.awsCode,
          'x-amzn-requestid': randomUUID(),
        });
        res.end(JSON.stringify({ __type: fault.awsCode, message: fault.message }));
      }
    } finally {
      this.#inFlight--;
      this.requests.push({ service, operation, region, accessKeyId, status });
    }
  }

  #caller(req: IncomingMessage, accessKeyId: string): Caller {
    const session = this.#sessions.get(accessKeyId);
    if (session) {
      if (req.headers['x-amz-security-token'] !== session.sessionToken) {
        throw new AwsFault(
          403,
          'InvalidClientTokenId',
          'The security token included in the request is invalid.',
        );
      }
      if (session.expiration.getTime() <= this.#clock().getTime()) {
        throw new AwsFault(
          403,
          'ExpiredTokenException',
          'The security token included in the request is expired',
        );
      }
      return session;
    }
    const p = this.#principals.get(accessKeyId);
    if (p) return { accessKeyId, arn: p.arn, account: accountOfArn(p.arn), userId: p.userId ?? accessKeyId };
    if (this.#defaultAccount === null || accessKeyId.startsWith('ASIA')) {
      throw new AwsFault(
        403,
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
      );
    }
    const account = this.#defaultAccount;
    return { accessKeyId, arn: `arn:aws:iam::${account}:user/fake`, account, userId: accessKeyId };
  }

  #json(res: ServerResponse, out: unknown, contentType = 'application/json'): void {
    res.writeHead(200, { 'content-type': contentType, 'x-amzn-requestid': randomUUID() });
    res.end(JSON.stringify(out));
  }

  #inject(service: string, operation: string, region: string, account: string, name?: string): void {
    for (const [i, f] of this.failures.entries()) {
      if (f.service && f.service !== service) continue;
      if (f.operation && f.operation !== operation) continue;
      if (f.region && f.region !== region) continue;
      if (f.account && f.account !== account) continue;
      if (f.clusterName && f.clusterName !== name) continue;
      if (f.times !== undefined) {
        if (f.times <= 1) this.failures.splice(i, 1);
        else this.failures[i] = { ...f, times: f.times - 1 };
      }
      throw new AwsFault(f.status ?? defaultStatusFor(f.code), f.code, f.message ?? `injected ${f.code}`);
    }
  }

  #sts(operation: string, form: URLSearchParams, caller: Caller): string {
    const ns = 'https://sts.amazonaws.com/doc/2011-06-15/';
    const meta = `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>`;
    if (operation === 'GetCallerIdentity') {
      return (
        `<GetCallerIdentityResponse xmlns="${ns}"><GetCallerIdentityResult><Arn>${xmlEscape(caller.arn)}</Arn>` +
        `<UserId>${xmlEscape(caller.userId)}</UserId><Account>${caller.account}</Account></GetCallerIdentityResult>` +
        `${meta}</GetCallerIdentityResponse>`
      );
    }
    if (operation === 'AssumeRole') {
      const roleArn = form.get('RoleArn') ?? '';
      const sessionName = form.get('RoleSessionName') ?? '';
      const m = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/.exec(roleArn);
      if (!m) throw new AwsFault(400, 'ValidationError', `Invalid RoleArn: ${roleArn.slice(0, 200)}`);
      if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
        throw new AwsFault(400, 'ValidationError', 'Invalid RoleSessionName');
      }
      if (this.#roles) {
        const role = this.#roles.get(roleArn);
        const denied = `User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`;
        if (!role) throw new AwsFault(403, 'AccessDenied', denied);
        if (role.trustedAccessKeyIds && !role.trustedAccessKeyIds.includes(caller.accessKeyId)) {
          throw new AwsFault(403, 'AccessDenied', denied);
        }
        if (role.externalId !== undefined && form.get('ExternalId') !== role.externalId) {
          throw new AwsFault(403, 'AccessDenied', denied);
        }
      }
      const duration = Math.min(43200, Math.max(900, Number(form.get('DurationSeconds') ?? 3600) || 3600));
      const [, partition, account = '', roleName = ''] = m;
      const roleId = `AROA${randomBytes(8).toString('hex').toUpperCase()}`;
      const session: IssuedSession = {
        accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
        account,
        arn: `arn:${partition}:sts::${account}:assumed-role/${roleName}/${sessionName}`,
        userId: `${roleId}:${sessionName}`,
        sessionToken: `FQoGZXIvYXdzE${randomBytes(96).toString('base64')}`,
        expiration: new Date(this.#clock().getTime() + duration * 1000),
      };
      this.#sessions.set(session.accessKeyId, session);
      return (
        `<AssumeRoleResponse xmlns="${ns}"><AssumeRoleResult><Credentials>` +
        `<AccessKeyId>${session.accessKeyId}</AccessKeyId>` +
        `<SecretAccessKey>${randomBytes(30).toString('base64')}</SecretAccessKey>` +
        `<SessionToken>${xmlEscape(session.sessionToken)}</SessionToken>` +
        `<Expiration>${session.expiration.toISOString()}</Expiration></Credentials>` +
        `<AssumedRoleUser><AssumedRoleId>${xmlEscape(session.userId)}</AssumedRoleId>` +
        `<Arn>${xmlEscape(session.arn)}</Arn></AssumedRoleUser><PackedPolicySize>0</PackedPolicySize>` +
        `</AssumeRoleResult>${meta}</AssumeRoleResponse>`
      );
    }
    throw new AwsFault(400, 'InvalidAction', `Could not find operation ${operation.slice(0, 100)}`);
  }

  #eks(
    route: { operation: string; name?: string | undefined },
    url: URL,
    body: Buffer,
    account: string,
    region: string,
  ): unknown {
    const key = (name: string) => `${account}/${region}/${name}`;
    switch (route.operation) {
      case 'ListClusters': {
        const names = [...this.#clusters.values()]
          .filter((c) => c.account === account && c.region === region)
          .map((c) => String(c.json.name))
          .sort();
        const max = Math.min(this.#maxPage, Number(url.searchParams.get('maxResults') ?? 100) || 100);
        const token = url.searchParams.get('nextToken');
        const start = token ? Number(Buffer.from(token, 'base64url').toString('utf8')) : 0;
        if (!Number.isInteger(start) || start < 0)
          throw new AwsFault(400, 'InvalidParameterException', 'bad nextToken');
        const page = names.slice(start, start + max);
        const next =
          start + max < names.length ? Buffer.from(String(start + max)).toString('base64url') : undefined;
        return next ? { clusters: page, nextToken: next } : { clusters: page };
      }
      case 'DescribeCluster': {
        const c = this.#clusters.get(key(route.name ?? ''));
        if (!c)
          throw new AwsFault(404, 'ResourceNotFoundException', `No cluster found for name: ${route.name}.`);
        return { cluster: c.json };
      }
      case 'DeleteCluster': {
        const c = this.#clusters.get(key(route.name ?? ''));
        if (!c)
          throw new AwsFault(404, 'ResourceNotFoundException', `No cluster found for name: ${route.name}.`);
        this.#clusters.delete(key(route.name ?? ''));
        return { cluster: { ...c.json, status: 'DELETING' } };
      }
      case 'CreateCluster': {
        let raw: unknown;
        try {
          raw = JSON.parse(body.toString('utf8'));
        } catch {
          throw new AwsFault(400, 'InvalidParameterException', 'body is not JSON');
        }
        const parsed = createClusterSchema.safeParse(raw);
        if (!parsed.success) throw new AwsFault(400, 'InvalidParameterException', parsed.error.message);
        const p = parsed.data;
        if (this.#clusters.has(key(p.name))) {
          throw new AwsFault(409, 'ResourceInUseException', `Cluster already exists with name: ${p.name}`);
        }
        const enabled = (p.logging?.clusterLogging ?? [])
          .filter((l) => l.enabled)
          .flatMap((l) => l.types ?? []);
        const cluster = this.addCluster({
          name: p.name,
          region,
          account,
          version: p.version,
          endpointPublicAccess: p.resourcesVpcConfig?.endpointPublicAccess,
          endpointPrivateAccess: p.resourcesVpcConfig?.endpointPrivateAccess,
          publicAccessCidrs: p.resourcesVpcConfig?.publicAccessCidrs,
          authenticationMode: p.accessConfig?.authenticationMode,
          logging: enabled,
          tags: p.tags,
        });
        return { cluster };
      }
      default:
        throw new AwsFault(
          404,
          'UnknownOperationException',
          `fake EKS does not implement ${route.operation}`,
        );
    }
  }
}

function routeEks(method: string, path: string): { operation: string; name?: string | undefined } {
  if (path === '/clusters' || path === '/clusters/') {
    return { operation: method === 'POST' ? 'CreateCluster' : 'ListClusters' };
  }
  const m = /^\/clusters\/([^/]+)$/.exec(path);
  if (m) {
    const name = decodeURIComponent(m[1] ?? '');
    if (method === 'DELETE') return { operation: 'DeleteCluster', name };
    return { operation: 'DescribeCluster', name };
  }
  return { operation: `${method} ${path.slice(0, 100)}` };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_BODY) throw new AwsFault(413, 'RequestEntityTooLarge', 'request body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
