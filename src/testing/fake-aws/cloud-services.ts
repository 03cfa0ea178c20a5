/**
 * What moto lacks for the cloud-side context, served by {@link FakeAws} in the wire formats the
 * real AWS SDK v3 clients parse: EKS Pod Identity associations (REST-JSON), CloudTrail
 * `LookupEvents` (JSON 1.1, paginated, one lookup attribute per call, 50 per page) and GuardDuty
 * detectors and findings (REST-JSON, criteria on dotted finding paths).
 *
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';

/** A failure the services raise; the server turns it into an AWS error answer. */
export class ServiceFault extends Error {
  constructor(
    readonly status: number,
    readonly awsCode: string,
    message: string,
  ) {
    super(message);
  }
}

/** A Pod Identity association to seed into the fake EKS API. */
export interface FakePodIdentityAssociationInput {
  /** Cluster name. */
  clusterName: string;
  /** Region. */
  region: string;
  /** Owning account. Default the fake's default account. */
  account?: string | undefined;
  /** Kubernetes namespace. */
  namespace: string;
  /** Service account name. */
  serviceAccount: string;
  /** IAM role the pods get. */
  roleArn: string;
  /** Role in another account assumed through `roleArn` (cross-account Pod Identity). */
  targetRoleArn?: string | undefined;
}

/** A CloudTrail management event to seed; the fake builds the `CloudTrailEvent` JSON record. */
export interface FakeCloudTrailEventInput {
  /** Region the event is recorded in. */
  region: string;
  /** Account. Default the fake's default account. */
  account?: string | undefined;
  /** e.g. `AssumeRoleWithWebIdentity`, `GetObject`, `ListBuckets`. */
  eventName: string;
  /** e.g. `sts.amazonaws.com`. */
  eventSource: string;
  /** When it happened. */
  eventTime: Date;
  /** `Username` lookup attribute (for assumed roles: the session name). */
  username?: string | undefined;
  /** Access key id of the caller. */
  accessKeyId?: string | undefined;
  /** Resources named (the `ResourceName` lookup attribute matches these). */
  resources?: ReadonlyArray<{ type: string; name: string }> | undefined;
  /** `sourceIPAddress` (an IP, or an AWS service host name). */
  sourceIPAddress?: string | undefined;
  /** `userAgent`. */
  userAgent?: string | undefined;
  /** `userIdentity` of the record. */
  userIdentity?: Record<string, unknown> | undefined;
  /** `responseElements` (e.g. the issued credentials of an AssumeRole* call). */
  responseElements?: Record<string, unknown> | undefined;
  /** `errorCode` (e.g. `AccessDenied`). */
  errorCode?: string | undefined;
  /** `readOnly`. Default true. */
  readOnly?: boolean | undefined;
}

/** A GuardDuty detector (one per account and region). */
export interface FakeGuardDutyDetectorInput {
  /** Region. */
  region: string;
  /** Account. Default the fake's default account. */
  account?: string | undefined;
  /** `ENABLED` (default) or `DISABLED`. */
  status?: 'ENABLED' | 'DISABLED' | undefined;
  /** Feature names turned on, e.g. `EKS_AUDIT_LOGS`, `RUNTIME_MONITORING`. */
  features?: readonly string[] | undefined;
  /** Findings, as the GetFindings JSON (camelCase); `id`, `arn`, times and `accountId` are filled in. */
  findings?: ReadonlyArray<Record<string, unknown>> | undefined;
}

interface StoredAssociation extends FakePodIdentityAssociationInput {
  account: string;
  associationId: string;
  associationArn: string;
  createdAt: number;
}

interface StoredEvent {
  account: string;
  region: string;
  time: number;
  json: Record<string, unknown>;
  username: string | undefined;
  accessKeyId: string | undefined;
  eventName: string;
  eventSource: string;
  resources: Array<{ type: string; name: string }>;
  readOnly: boolean;
}

interface StoredDetector {
  account: string;
  region: string;
  detectorId: string;
  status: string;
  features: string[];
  findings: Array<Record<string, unknown>>;
}

const lookupSchema = z.object({
  LookupAttributes: z
    .array(z.object({ AttributeKey: z.string(), AttributeValue: z.string() }))
    .max(10)
    .optional(),
  StartTime: z.number().optional(),
  EndTime: z.number().optional(),
  MaxResults: z.number().int().optional(),
  NextToken: z.string().optional(),
  EventCategory: z.string().optional(),
});

const conditionSchema = z.looseObject({
  eq: z.array(z.string()).optional(),
  equals: z.array(z.string()).optional(),
  neq: z.array(z.string()).optional(),
  gte: z.number().optional(),
  greaterThanOrEqual: z.number().optional(),
  lte: z.number().optional(),
  lessThanOrEqual: z.number().optional(),
});
const listFindingsSchema = z.object({
  findingCriteria: z.object({ criterion: z.record(z.string(), conditionSchema).optional() }).optional(),
  maxResults: z.number().int().optional(),
  nextToken: z.string().optional(),
  sortCriteria: z.unknown().optional(),
});
const getFindingsSchema = z.object({
  findingIds: z.array(z.string()).max(1000),
  sortCriteria: z.unknown().optional(),
});

function parseJson<S extends z.ZodType>(body: Buffer, schema: S, what: string): z.infer<S> {
  let raw: unknown;
  try {
    raw = body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch {
    throw new ServiceFault(400, 'SerializationException', `${what}: body is not JSON`);
  }
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new ServiceFault(400, 'ValidationException', `${what}: ${r.error.message.slice(0, 300)}`);
  return r.data;
}

function pathValue(obj: unknown, path: string): unknown[] {
  let cur: unknown[] = [obj];
  for (const key of path.split('.')) {
    const next: unknown[] = [];
    for (const c of cur) {
      const v = c && typeof c === 'object' ? (c as Record<string, unknown>)[key] : undefined;
      if (Array.isArray(v)) next.push(...v);
      else if (v !== undefined) next.push(v);
    }
    cur = next;
  }
  return cur;
}

const page = (offset: number): string => Buffer.from(`p${offset}`).toString('base64url');
function unpage(token: string | undefined | null, code: string): number {
  if (!token) return 0;
  const m = /^p(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!m) throw new ServiceFault(400, code, 'Invalid NextToken');
  return Number(m[1]);
}

/** The cloud-context services of one {@link FakeAws}. */
export class FakeCloudServices {
  readonly #associations: StoredAssociation[] = [];
  readonly #events: StoredEvent[] = [];
  readonly #detectors: StoredDetector[] = [];

  constructor(private readonly defaultAccount: () => string) {}

  addPodIdentityAssociation(input: FakePodIdentityAssociationInput): string {
    const account = input.account ?? this.defaultAccount();
    const associationId = `a-${randomBytes(9).toString('hex').slice(0, 17)}`;
    this.#associations.push({
      ...input,
      account,
      associationId,
      associationArn: `arn:aws:eks:${input.region}:${account}:podidentityassociation/${input.clusterName}/${associationId}`,
      createdAt: Date.now() / 1000,
    });
    return associationId;
  }

  addCloudTrailEvent(input: FakeCloudTrailEventInput): string {
    const account = input.account ?? this.defaultAccount();
    const eventId = randomUUID();
    const json: Record<string, unknown> = {
      eventVersion: '1.09',
      userIdentity: input.userIdentity ?? {
        type: 'AssumedRole',
        ...(input.accessKeyId ? { accessKeyId: input.accessKeyId } : {}),
      },
      eventTime: input.eventTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      eventSource: input.eventSource,
      eventName: input.eventName,
      awsRegion: input.region,
      sourceIPAddress: input.sourceIPAddress ?? 'AWS Internal',
      userAgent: input.userAgent ?? 'aws-sdk-go-v2/1.30.0',
      requestParameters: null,
      responseElements: input.responseElements ?? null,
      requestID: randomUUID(),
      eventID: eventId,
      readOnly: input.readOnly ?? true,
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: account,
      eventCategory: 'Management',
    };
    if (input.errorCode) json.errorCode = input.errorCode;
    this.#events.push({
      account,
      region: input.region,
      time: input.eventTime.getTime(),
      json,
      username: input.username,
      accessKeyId: input.accessKeyId,
      eventName: input.eventName,
      eventSource: input.eventSource,
      resources: [...(input.resources ?? [])],
      readOnly: input.readOnly ?? true,
    });
    return eventId;
  }

  addGuardDutyDetector(input: FakeGuardDutyDetectorInput): string {
    const account = input.account ?? this.defaultAccount();
    const detectorId = randomBytes(16).toString('hex');
    const findings = (input.findings ?? []).map((f) => {
      const id = typeof f.id === 'string' ? f.id : randomBytes(16).toString('hex');
      return {
        schemaVersion: '2.0',
        accountId: account,
        region: input.region,
        partition: 'aws',
        createdAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
        severity: 5,
        ...f,
        id,
        arn: `arn:aws:guardduty:${input.region}:${account}:detector/${detectorId}/finding/${id}`,
      };
    });
    this.#detectors.push({
      account,
      region: input.region,
      detectorId,
      status: input.status ?? 'ENABLED',
      features: [...(input.features ?? [])],
      findings,
    });
    return detectorId;
  }

  /** Routes an EKS request this class serves, else undefined. */
  routeEks(method: string, path: string): { operation: string; name: string; id?: string } | undefined {
    const m = /^\/clusters\/([^/]+)\/pod-identity-associations(?:\/([^/]+))?\/?$/.exec(path);
    if (!m || method !== 'GET') return undefined;
    const name = decodeURIComponent(m[1] ?? '');
    if (m[2]) return { operation: 'DescribePodIdentityAssociation', name, id: decodeURIComponent(m[2]) };
    return { operation: 'ListPodIdentityAssociations', name };
  }

  eks(
    route: { operation: string; name: string; id?: string },
    url: URL,
    account: string,
    region: string,
  ): unknown {
    const mine = this.#associations.filter(
      (a) => a.account === account && a.region === region && a.clusterName === route.name,
    );
    const wire = (a: StoredAssociation) => ({
      clusterName: a.clusterName,
      namespace: a.namespace,
      serviceAccount: a.serviceAccount,
      associationArn: a.associationArn,
      associationId: a.associationId,
      ownerArn: null,
    });
    if (route.operation === 'DescribePodIdentityAssociation') {
      const a = mine.find((x) => x.associationId === route.id);
      if (!a) throw new ServiceFault(404, 'ResourceNotFoundException', `Association ${route.id} not found`);
      return {
        association: {
          ...wire(a),
          roleArn: a.roleArn,
          ...(a.targetRoleArn ? { targetRoleArn: a.targetRoleArn, externalId: randomUUID() } : {}),
          tags: {},
          createdAt: a.createdAt,
          modifiedAt: a.createdAt,
          disableSessionTags: false,
        },
      };
    }
    const ns = url.searchParams.get('namespace');
    const sa = url.searchParams.get('serviceAccount');
    const all = mine.filter((a) => (!ns || a.namespace === ns) && (!sa || a.serviceAccount === sa));
    const max = Math.min(100, Number(url.searchParams.get('maxResults') ?? 100) || 100);
    const start = unpage(url.searchParams.get('nextToken'), 'InvalidParameterException');
    const items = all.slice(start, start + max);
    return {
      associations: items.map(wire),
      ...(start + max < all.length ? { nextToken: page(start + max) } : {}),
    };
  }

  /** CloudTrail JSON 1.1: the operation named by `X-Amz-Target`. */
  cloudtrail(operation: string, body: Buffer, account: string, region: string): unknown {
    if (operation !== 'LookupEvents') {
      throw new ServiceFault(
        400,
        'UnknownOperationException',
        `fake CloudTrail does not implement ${operation}`,
      );
    }
    const req = parseJson(body, lookupSchema, 'LookupEvents');
    const attrs = req.LookupAttributes ?? [];
    if (attrs.length > 1) {
      throw new ServiceFault(
        400,
        'InvalidLookupAttributesException',
        'You cannot specify more than one lookup attribute.',
      );
    }
    const max = req.MaxResults ?? 50;
    if (max < 1 || max > 50)
      throw new ServiceFault(400, 'InvalidMaxResultsException', 'MaxResults must be 1..50');
    const from = req.StartTime !== undefined ? req.StartTime * 1000 : 0;
    const to = req.EndTime !== undefined ? req.EndTime * 1000 : Number.POSITIVE_INFINITY;
    if (from > to) throw new ServiceFault(400, 'InvalidTimeRangeException', 'StartTime is after EndTime');
    const attr = attrs[0];
    const matches = (e: StoredEvent): boolean => {
      if (!attr) return true;
      const v = attr.AttributeValue;
      switch (attr.AttributeKey) {
        case 'Username':
          return e.username === v;
        case 'AccessKeyId':
          return e.accessKeyId === v;
        case 'EventName':
          return e.eventName === v;
        case 'EventSource':
          return e.eventSource === v;
        case 'ResourceName':
          return e.resources.some((r) => r.name === v);
        case 'ResourceType':
          return e.resources.some((r) => r.type === v);
        case 'ReadOnly':
          return String(e.readOnly) === v;
        case 'EventId':
          return e.json.eventID === v;
        default:
          throw new ServiceFault(
            400,
            'InvalidLookupAttributesException',
            `Unknown AttributeKey ${attr.AttributeKey}`,
          );
      }
    };
    // newest first, like CloudTrail
    const all = this.#events
      .filter(
        (e) => e.account === account && e.region === region && e.time >= from && e.time <= to && matches(e),
      )
      .sort((a, b) => b.time - a.time);
    const start = unpage(req.NextToken, 'InvalidNextTokenException');
    const items = all.slice(start, start + max);
    return {
      Events: items.map((e) => ({
        EventId: e.json.eventID,
        EventName: e.eventName,
        ReadOnly: String(e.readOnly),
        ...(e.accessKeyId ? { AccessKeyId: e.accessKeyId } : {}),
        EventTime: e.time / 1000,
        EventSource: e.eventSource,
        ...(e.username ? { Username: e.username } : {}),
        Resources: e.resources.map((r) => ({ ResourceType: r.type, ResourceName: r.name })),
        CloudTrailEvent: JSON.stringify(e.json),
      })),
      ...(start + max < all.length ? { NextToken: page(start + max) } : {}),
    };
  }

  /** Routes a GuardDuty REST-JSON request. */
  routeGuardDuty(method: string, path: string): { operation: string; detectorId?: string } {
    if (path === '/detector' && method === 'GET') return { operation: 'ListDetectors' };
    let m = /^\/detector\/([^/]+)$/.exec(path);
    if (m && method === 'GET')
      return { operation: 'GetDetector', detectorId: decodeURIComponent(m[1] ?? '') };
    m = /^\/detector\/([^/]+)\/findings$/.exec(path);
    if (m && method === 'POST')
      return { operation: 'ListFindings', detectorId: decodeURIComponent(m[1] ?? '') };
    m = /^\/detector\/([^/]+)\/findings\/get$/.exec(path);
    if (m && method === 'POST')
      return { operation: 'GetFindings', detectorId: decodeURIComponent(m[1] ?? '') };
    return { operation: `${method} ${path.slice(0, 100)}` };
  }

  guardduty(
    route: { operation: string; detectorId?: string },
    url: URL,
    body: Buffer,
    account: string,
    region: string,
  ): unknown {
    const mine = this.#detectors.filter((d) => d.account === account && d.region === region);
    if (route.operation === 'ListDetectors') {
      const max = Math.min(50, Number(url.searchParams.get('maxResults') ?? 50) || 50);
      const start = unpage(url.searchParams.get('nextToken'), 'BadRequestException');
      return {
        detectorIds: mine.slice(start, start + max).map((d) => d.detectorId),
        ...(start + max < mine.length ? { nextToken: page(start + max) } : {}),
      };
    }
    const d = mine.find((x) => x.detectorId === route.detectorId);
    if (!d) {
      if (route.operation.includes(' ')) {
        throw new ServiceFault(
          404,
          'UnknownOperationException',
          `fake GuardDuty does not implement ${route.operation}`,
        );
      }
      throw new ServiceFault(
        400,
        'BadRequestException',
        'The request is rejected because the input detectorId is not owned by the current account.',
      );
    }
    switch (route.operation) {
      case 'GetDetector':
        return {
          createdAt: '2026-01-01T00:00:00.000Z',
          findingPublishingFrequency: 'SIX_HOURS',
          serviceRole: `arn:aws:iam::${account}:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty`,
          status: d.status,
          updatedAt: '2026-01-01T00:00:00.000Z',
          features: d.features.map((name) => ({ name, status: 'ENABLED', updatedAt: 1767225600 })),
          tags: {},
        };
      case 'ListFindings': {
        const req = parseJson(body, listFindingsSchema, 'ListFindings');
        const max = req.maxResults ?? 50;
        if (max < 1 || max > 50)
          throw new ServiceFault(400, 'BadRequestException', 'maxResults must be 1..50');
        const crit = Object.entries(req.findingCriteria?.criterion ?? {});
        const all = d.findings.filter((f) =>
          crit.every(([path, c]) => {
            const values = pathValue(f, path).map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
            const eq = c.eq ?? c.equals;
            if (eq && !values.some((v) => eq.includes(v))) return false;
            if (c.neq && values.some((v) => c.neq?.includes(v))) return false;
            const num = (v: string) => (/^\d{4}-/.test(v) ? Date.parse(v) : Number(v));
            const gte = c.gte ?? c.greaterThanOrEqual;
            if (gte !== undefined && !values.some((v) => num(v) >= gte)) return false;
            const lte = c.lte ?? c.lessThanOrEqual;
            if (lte !== undefined && !values.some((v) => num(v) <= lte)) return false;
            return true;
          }),
        );
        const start = unpage(req.nextToken, 'BadRequestException');
        return {
          findingIds: all.slice(start, start + max).map((f) => f.id),
          ...(start + max < all.length ? { nextToken: page(start + max) } : {}),
        };
      }
      case 'GetFindings': {
        const req = parseJson(body, getFindingsSchema, 'GetFindings');
        if (req.findingIds.length > 50) {
          throw new ServiceFault(400, 'BadRequestException', 'findingIds has more than 50 entries');
        }
        return { findings: d.findings.filter((f) => req.findingIds.includes(String(f.id))) };
      }
      default:
        throw new ServiceFault(
          404,
          'UnknownOperationException',
          `fake GuardDuty does not implement ${route.operation}`,
        );
    }
  }
}
