/**
 * CloudTrail activity of a pod's IAM roles (IRSA / Pod Identity) and its node's instance role:
 * the sessions issued for each role, the calls made with those sessions, and where they came
 * from. Read-only; bounded by time, pages and events; throttling retried with backoff and
 * recorded.
 */
import { BlockList, isIP } from 'node:net';
import type { CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import type { CredentialsInput } from '../aws/index.js';
import { AbortedError, type AwsFailureKind, AwsRequestError, ConfigError } from '../errors.js';
import { type AwsRetryOptions, callAws } from './aws-call.js';

/** Who a CloudTrail lookup is about. */
export type CloudTrailPrincipal = 'pod-role' | 'node-role';

/** Where a call came from, relative to what is known of the cluster's network. */
export type SourceClass = 'known' | 'aws-service' | 'outside' | 'unknown';

/** Addresses the cluster's own traffic comes from (VPC CIDRs, NAT gateway IPs, node IPs). */
export interface KnownSources {
  /** CIDRs (IPv4 or IPv6), e.g. the VPC's `10.0.0.0/16`. */
  cidrs?: readonly string[] | undefined;
  /** Single addresses, e.g. NAT gateway public IPs and node public IPs. */
  ips?: readonly string[] | undefined;
}

/** Options of {@link eks-forensics!cloudTrailActivity}. */
export interface CloudTrailActivityOptions {
  /** Region whose event history is read (CloudTrail event history is per region). */
  region: string;
  /** A CloudTrail client; otherwise one is made from `region`, `credentials`, `endpoint`. */
  client?: Pick<CloudTrailClient, 'send'> | undefined;
  /** AWS credentials. */
  credentials?: CredentialsInput | undefined;
  /** Endpoint override (tests, VPC endpoints). */
  endpoint?: string | undefined;
  /** IAM roles of the pod (IRSA annotation, Pod Identity associations). */
  podRoleArns?: readonly string[] | undefined;
  /** The node's instance id: node-role sessions are named after it. */
  nodeInstanceId?: string | undefined;
  /** The node's instance role ARN (its AssumeRole events). */
  nodeRoleArn?: string | undefined;
  /** Window start. */
  startTime: Date;
  /** Window end (default now). */
  endTime?: Date | undefined;
  /** Addresses that count as the cluster's own; without them no call can be flagged. */
  knownSources?: KnownSources | undefined;
  /** Most events kept over all lookups (default 5 000). */
  maxEvents?: number | undefined;
  /** Most pages per lookup (default 40, i.e. 2 000 events). */
  maxPagesPerLookup?: number | undefined;
  /** Most role sessions followed by access key id (default 25). */
  maxSessions?: number | undefined;
  /** Backoff on throttling (CloudTrail allows about 2 LookupEvents per second per account and region). */
  retry?: AwsRetryOptions | undefined;
  /** Cancels the lookups. */
  signal?: AbortSignal | undefined;
}

/** One CloudTrail event, summarized (the full record is in `cloudTrailEvent`). */
export interface CloudTrailCall {
  /** `EventId`. */
  eventId: string;
  /** ISO time. */
  eventTime: string | null;
  /** e.g. `ListBuckets`. */
  eventName: string | null;
  /** e.g. `s3.amazonaws.com`. */
  eventSource: string | null;
  /** Pod role or node role. */
  principal: CloudTrailPrincipal;
  /** The role this event was found for. */
  roleArn: string | null;
  /** Access key id of the caller. */
  accessKeyId: string | null;
  /** `Username` (for assumed roles: the session name). */
  username: string | null;
  /** `sourceIPAddress` of the record. */
  sourceIPAddress: string | null;
  /** `userAgent` of the record. */
  userAgent: string | null;
  /** `errorCode` of the record (denied calls are evidence too). */
  errorCode: string | null;
  /** Classification of `sourceIPAddress`. */
  sourceClass: SourceClass;
  /** The lookup that found it, e.g. `AccessKeyId=ASIA…`. */
  foundBy: string;
  /** The CloudTrail record as AWS returned it (JSON text). */
  cloudTrailEvent: string | null;
}

/** One LookupEvents query and how it went. */
export interface CloudTrailLookup {
  /** `AttributeKey=AttributeValue`. */
  attribute: string;
  /** Pages read. */
  pages: number;
  /** Events returned. */
  events: number;
  /** Stopped at a bound (pages, events) or a repeated NextToken. */
  truncated: boolean;
  /** Why it failed, when it did. */
  failure?: { kind: AwsFailureKind; message: string } | undefined;
}

/** A source address with what came from it. */
export interface CloudTrailSource {
  /** `sourceIPAddress`. */
  sourceIPAddress: string;
  /** Its classification. */
  sourceClass: SourceClass;
  /** Calls from it. */
  count: number;
  /** Distinct user agents (at most 20). */
  userAgents: string[];
  /** Distinct event names (at most 50). */
  eventNames: string[];
  /** Principals seen. */
  principals: CloudTrailPrincipal[];
  /** First and last event time. */
  firstSeen: string | null;
  /** Last event time. */
  lastSeen: string | null;
}

/** What {@link eks-forensics!cloudTrailActivity} found. */
export interface CloudTrailActivity {
  /** `complete`: every lookup ran to its end; `partial`: some were cut or failed; `failed`: none ran. */
  status: 'complete' | 'partial' | 'failed';
  /** Region read. */
  region: string;
  /** Window. */
  window: { from: string; to: string };
  /** Role session access key ids found in AssumeRole* events and followed. */
  sessions: Array<{
    accessKeyId: string;
    roleArn: string;
    sessionName: string | null;
    issuedAt: string | null;
  }>;
  /** Events, newest first within each lookup, deduplicated by event id. */
  events: CloudTrailCall[];
  /** Calls summarized by source address. */
  sources: CloudTrailSource[];
  /** Calls whose source is outside the known sources. */
  flagged: CloudTrailCall[];
  /** Every lookup made. */
  lookups: CloudTrailLookup[];
  /** Throttling retries (the action, attempt, delay). */
  retries: Array<{ action: string; attempt: number; delayMs: number; awsCode: string }>;
  /** Notes: bounds reached, no known sources given, lookups that failed and why. */
  notes: string[];
}

/** The IAM action {@link eks-forensics!cloudTrailActivity} calls. */
export const CLOUDTRAIL_ACTION = 'cloudtrail:LookupEvents';

/** Classifies a `sourceIPAddress` against the known sources. */
export function classifySource(
  source: string | null | undefined,
  known: KnownSources | undefined,
): SourceClass {
  if (!source) return 'unknown';
  const family = isIP(source);
  if (family === 0) return 'aws-service'; // e.g. "eks.amazonaws.com", "AWS Internal"
  if (!known || (!known.cidrs?.length && !known.ips?.length)) return 'unknown';
  const list = new BlockList();
  for (const ip of known.ips ?? []) {
    const f = isIP(ip);
    if (f) list.addAddress(ip, f === 6 ? 'ipv6' : 'ipv4');
  }
  for (const cidr of known.cidrs ?? []) {
    const [net = '', bits] = cidr.split('/');
    const f = isIP(net);
    const prefix = Number(bits);
    if (f && Number.isInteger(prefix) && prefix >= 0 && prefix <= (f === 6 ? 128 : 32)) {
      list.addSubnet(net, prefix, f === 6 ? 'ipv6' : 'ipv4');
    }
  }
  return list.check(source, family === 6 ? 'ipv6' : 'ipv4') ? 'known' : 'outside';
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v.slice(0, 2048) : null);

function parseRecord(text: string | undefined): Record<string, unknown> {
  if (!text || text.length > 256 * 1024) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * Reads the CloudTrail event history for the pod's roles and the node's instance role:
 * 1. `ResourceName=<role ARN>` finds the AssumeRoleWithWebIdentity / AssumeRole events that
 *    issued sessions of each role, with the session's access key id;
 * 2. `AccessKeyId=<session key>` finds the calls made with each session;
 * 3. `Username=<instance id>` finds the calls made with the node's credentials.
 * Source addresses are summarized, and calls from outside `knownSources` are flagged.
 *
 * Never throws for an AWS failure: each failed lookup is in `lookups[].failure` and `notes`, and
 * the status is `partial` (or `failed` when nothing could be read).
 *
 * @throws {@link AbortedError} when `signal` fires; {@link eks-forensics/errors!ConfigError} for a bad window.
 */
export async function cloudTrailActivity(options: CloudTrailActivityOptions): Promise<CloudTrailActivity> {
  const to = options.endTime ?? new Date();
  const from = options.startTime;
  if (!(from.getTime() <= to.getTime())) throw new ConfigError('startTime must not be after endTime');
  const ct = await import('@aws-sdk/client-cloudtrail');
  const client =
    options.client ??
    new ct.CloudTrailClient({
      region: options.region,
      // every retry is ours (callAws), so each one is recorded
      maxAttempts: 1,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    });
  const maxEvents = Math.max(1, options.maxEvents ?? 5_000);
  const maxPages = Math.max(1, options.maxPagesPerLookup ?? 40);
  const result: CloudTrailActivity = {
    status: 'complete',
    region: options.region,
    window: { from: from.toISOString(), to: to.toISOString() },
    sessions: [],
    events: [],
    sources: [],
    flagged: [],
    lookups: [],
    retries: [],
    notes: [],
  };
  const seen = new Set<string>();

  const lookup = async (
    key: 'ResourceName' | 'AccessKeyId' | 'Username',
    value: string,
    principal: CloudTrailPrincipal,
    roleArn: string | null,
  ): Promise<Array<{ call: CloudTrailCall; record: Record<string, unknown> }>> => {
    const l: CloudTrailLookup = { attribute: `${key}=${value}`, pages: 0, events: 0, truncated: false };
    result.lookups.push(l);
    const out: Array<{ call: CloudTrailCall; record: Record<string, unknown> }> = [];
    let token: string | undefined;
    const tokens = new Set<string>();
    try {
      do {
        if (l.pages >= maxPages) {
          l.truncated = true;
          result.notes.push(`${l.attribute}: stopped after ${maxPages} pages (maxPagesPerLookup)`);
          break;
        }
        const page = await callAws(
          {
            action: CLOUDTRAIL_ACTION,
            resource: l.attribute,
            region: options.region,
            retry: options.retry,
            signal: options.signal,
            onRetry: (i) => result.retries.push(i),
          },
          (signal) =>
            client.send(
              new ct.LookupEventsCommand({
                LookupAttributes: [{ AttributeKey: key, AttributeValue: value }],
                StartTime: from,
                EndTime: to,
                MaxResults: 50,
                ...(token ? { NextToken: token } : {}),
              }),
              { abortSignal: signal },
            ),
        );
        l.pages++;
        for (const e of page.Events ?? []) {
          l.events++;
          const id = str(e.EventId);
          if (!id || seen.has(`${id}|${l.attribute}`)) continue;
          seen.add(`${id}|${l.attribute}`);
          if (result.events.length + out.length >= maxEvents) {
            l.truncated = true;
            result.notes.push(`stopped at ${maxEvents} events (maxEvents)`);
            return out;
          }
          const record = parseRecord(e.CloudTrailEvent);
          const source = str(record.sourceIPAddress);
          out.push({
            record,
            call: {
              eventId: id,
              eventTime: e.EventTime ? new Date(e.EventTime).toISOString() : null,
              eventName: str(e.EventName),
              eventSource: str(e.EventSource),
              principal,
              roleArn,
              accessKeyId: str(e.AccessKeyId),
              username: str(e.Username),
              sourceIPAddress: source,
              userAgent: str(record.userAgent),
              errorCode: str(record.errorCode),
              sourceClass: classifySource(source, options.knownSources),
              foundBy: l.attribute,
              cloudTrailEvent:
                typeof e.CloudTrailEvent === 'string' ? e.CloudTrailEvent.slice(0, 256 * 1024) : null,
            },
          });
        }
        const next = page.NextToken || undefined;
        if (next && tokens.has(next)) {
          l.truncated = true;
          result.notes.push(`${l.attribute}: CloudTrail repeated a NextToken; stopped`);
          break;
        }
        if (next) tokens.add(next);
        token = next;
      } while (token);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const e = err instanceof AwsRequestError ? err : undefined;
      l.failure = { kind: e?.failure ?? 'error', message: (err as Error).message.slice(0, 500) };
      result.notes.push(`${l.attribute}: ${l.failure.message}`);
    }
    return out;
  };

  const add = (items: Array<{ call: CloudTrailCall }>) => {
    const ids = new Set(result.events.map((e) => e.eventId));
    for (const { call } of items) if (!ids.has(call.eventId)) result.events.push(call);
  };

  const roles: Array<{ arn: string; principal: CloudTrailPrincipal }> = [
    ...(options.podRoleArns ?? []).map((arn) => ({ arn, principal: 'pod-role' as const })),
    ...(options.nodeRoleArn ? [{ arn: options.nodeRoleArn, principal: 'node-role' as const }] : []),
  ];
  const maxSessions = Math.max(0, options.maxSessions ?? 25);
  for (const role of roles) {
    const issued = await lookup('ResourceName', role.arn, role.principal, role.arn);
    add(issued);
    for (const { record, call } of issued) {
      const creds = (
        record.responseElements as { credentials?: { accessKeyId?: unknown } } | null | undefined
      )?.credentials;
      const key = str(creds?.accessKeyId);
      if (!key || role.principal !== 'pod-role' || result.sessions.some((s) => s.accessKeyId === key))
        continue;
      if (result.sessions.length >= maxSessions) {
        result.notes.push(
          `more than ${maxSessions} sessions of ${role.arn}; later ones not followed (maxSessions)`,
        );
        break;
      }
      const req = record.requestParameters as { roleSessionName?: unknown } | null | undefined;
      result.sessions.push({
        accessKeyId: key,
        roleArn: role.arn,
        sessionName: str(req?.roleSessionName),
        issuedAt: call.eventTime,
      });
    }
  }
  for (const s of result.sessions) add(await lookup('AccessKeyId', s.accessKeyId, 'pod-role', s.roleArn));
  if (options.nodeInstanceId) {
    add(await lookup('Username', options.nodeInstanceId, 'node-role', options.nodeRoleArn ?? null));
  }
  if (roles.length === 0 && !options.nodeInstanceId) {
    result.notes.push('no pod role, node role or instance id given: nothing to look up');
  }

  const bySource = new Map<string, CloudTrailSource>();
  for (const e of result.events) {
    const ip = e.sourceIPAddress ?? '(none)';
    const s = bySource.get(ip) ?? {
      sourceIPAddress: ip,
      sourceClass: e.sourceClass,
      count: 0,
      userAgents: [],
      eventNames: [],
      principals: [],
      firstSeen: null,
      lastSeen: null,
    };
    s.count++;
    if (e.userAgent && !s.userAgents.includes(e.userAgent) && s.userAgents.length < 20)
      s.userAgents.push(e.userAgent);
    if (e.eventName && !s.eventNames.includes(e.eventName) && s.eventNames.length < 50)
      s.eventNames.push(e.eventName);
    if (!s.principals.includes(e.principal)) s.principals.push(e.principal);
    if (e.eventTime && (!s.firstSeen || e.eventTime < s.firstSeen)) s.firstSeen = e.eventTime;
    if (e.eventTime && (!s.lastSeen || e.eventTime > s.lastSeen)) s.lastSeen = e.eventTime;
    bySource.set(ip, s);
  }
  result.sources = [...bySource.values()].sort((a, b) => b.count - a.count);
  result.flagged = result.events.filter((e) => e.sourceClass === 'outside');
  if (!options.knownSources?.cidrs?.length && !options.knownSources?.ips?.length && result.events.length) {
    result.notes.push(
      'no knownSources given: source addresses are listed but none can be flagged as outside',
    );
  }
  const failed = result.lookups.filter((l) => l.failure).length;
  if (result.lookups.length > 0 && failed === result.lookups.length) result.status = 'failed';
  else if (failed > 0 || result.lookups.some((l) => l.truncated)) result.status = 'partial';
  return result;
}
