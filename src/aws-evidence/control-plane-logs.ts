/**
 * Export of EKS control-plane logs (CloudWatch Logs group `/aws/eks/<cluster>/cluster`) into an
 * evidence bundle, streamed page by page.
 */
import type { CloudWatchLogsClient, CloudWatchLogsClientConfig } from '@aws-sdk/client-cloudwatch-logs';
import type { EKSClient } from '@aws-sdk/client-eks';
import { z } from 'zod';
import { AbortedError, AwsRequestError, ConfigError, EksForensicsError } from '../errors.js';
import type { ArtifactRecord, TargetRef } from '../evidence/index.js';
import { type Logger, silentLogger, withTimeout } from '../util/index.js';
import { type AwsRetryOptions, callAws } from './aws-call.js';
import {
  auditActorIdentities,
  auditEventMatches,
  type ControlPlaneLogFilter,
  filterIsActive,
  logfmtHasValue,
  parseAuditEvent,
  textMatches,
} from './filter.js';
import type { AwsEvidenceWriter } from './types.js';

/** A control-plane log stream type this library exports. */
export type ControlPlaneLogType = 'audit' | 'authenticator' | 'api';

interface StreamTypeInfo {
  prefix: string;
  exclude?: string;
  eksLogType: string;
  file: string;
}

const STREAM_TYPES: Record<ControlPlaneLogType, StreamTypeInfo> = {
  audit: { prefix: 'kube-apiserver-audit-', eksLogType: 'audit', file: 'kube-apiserver-audit.jsonl' },
  authenticator: { prefix: 'authenticator-', eksLogType: 'authenticator', file: 'authenticator.jsonl' },
  api: {
    prefix: 'kube-apiserver-',
    exclude: 'kube-apiserver-audit-',
    eksLogType: 'api',
    file: 'kube-apiserver.jsonl',
  },
};
const EXPORT_ORDER: readonly ControlPlaneLogType[] = ['audit', 'authenticator', 'api'];

/** `logging.clusterLogging` as EKS DescribeCluster returns it. */
export type ClusterLoggingConfig = ReadonlyArray<{
  /** EKS log types: `api`, `audit`, `authenticator`, `controllerManager`, `scheduler`. */
  types?: readonly string[] | undefined;
  /** Whether these types are sent to CloudWatch Logs. */
  enabled?: boolean | undefined;
}>;

/** Bounds of one export. Every bound reached is recorded as a truncation, never silent. */
export interface ControlPlaneLogLimits {
  /** Most events written per stream type (default 1 000 000). */
  maxEventsPerStream?: number | undefined;
  /** Most bytes written per stream type (default 1 GiB). */
  maxBytesPerStream?: number | undefined;
  /** Longest message kept whole; longer ones are cut and flagged `messageTruncated` (default 1 MiB). */
  maxMessageBytes?: number | undefined;
  /** Time for the whole export (default 15 minutes). */
  timeoutMs?: number | undefined;
  /** Most log streams listed per stream type (default 1 000). */
  maxLogStreams?: number | undefined;
  /** Events asked per FilterLogEvents page (1–10 000, default 10 000). */
  pageSize?: number | undefined;
}

/** Options of {@link eks-forensics!exportControlPlaneLogs}. */
export interface ExportControlPlaneLogsOptions {
  /** Bundle to write into. */
  bundle: AwsEvidenceWriter;
  /** EKS cluster name (the log group is `/aws/eks/<clusterName>/cluster`). */
  clusterName: string;
  /** Start of the time window (inclusive). */
  startTime: Date | number;
  /** End of the time window (inclusive). */
  endTime: Date | number;
  /** Stream types to export, in any order (default `['audit', 'authenticator']`). */
  types?: readonly ControlPlaneLogType[] | undefined;
  /** Keep only what concerns this pod / namespace / user (default: everything in the window). */
  filter?: ControlPlaneLogFilter | undefined;
  /** CloudWatch Logs client to use; otherwise one is made from `region` and `credentials`. */
  logs?: CloudWatchLogsClient | undefined;
  /** Region, when no client is given. */
  region?: string | undefined;
  /** Credentials (identity or provider), when no client is given. Default: the SDK's chain. */
  credentials?: CloudWatchLogsClientConfig['credentials'];
  /** EKS client used to read the cluster's logging setting (DescribeCluster). Optional. */
  eks?: EKSClient | undefined;
  /** The cluster's `logging.clusterLogging`, when the caller already has it (skips DescribeCluster). */
  clusterLogging?: ClusterLoggingConfig | undefined;
  /** Folder inside the bundle (default `aws/control-plane-logs`). */
  pathPrefix?: string | undefined;
  /** Target recorded on the artifacts (default: the filter's namespace / pod / pod UID). */
  target?: TargetRef | undefined;
  /** Bounds (events, bytes, time). */
  limits?: ControlPlaneLogLimits | undefined;
  /** Backoff of throttled calls. */
  retry?: AwsRetryOptions | undefined;
  /** Cancels the export (the call then rejects with `AbortedError`). */
  signal?: AbortSignal | undefined;
  /** Diagnostics logger (silent by default). */
  logger?: Logger | undefined;
}

/** What happened to one stream type. */
export interface ControlPlaneStreamResult {
  /** The stream type. */
  type: ControlPlaneLogType;
  /** Stream-name prefix searched, e.g. `kube-apiserver-audit-`. */
  logStreamPrefix: string;
  /** Names of the log streams read (up to `maxLogStreams`). */
  logStreams: string[];
  /** `complete`: every matching event in the window was written (possibly none). */
  status: 'complete' | 'truncated' | 'skipped' | 'failed';
  /** Why the status is not `complete`. */
  reason?: string | undefined;
  /** Bundle path requested for the artifact. */
  path: string;
  /** The bundle's record of the artifact. */
  record?: ArtifactRecord | undefined;
  /** Events read from CloudWatch in the window. */
  scanned: number;
  /** Events written. */
  exported: number;
  /** Audit lines that were not valid JSON audit events (kept when unfiltered or when their text matched). */
  malformed: number;
  /** Messages cut at `maxMessageBytes`. */
  messagesTruncated: number;
  /** Bytes written. */
  bytes: number;
  /** FilterLogEvents pages read. */
  pages: number;
  /** Timestamp (ms) of the last event written; resume after it when truncated. */
  lastTimestamp?: number | undefined;
  /** The error, when `failed`. */
  error?: EksForensicsError | undefined;
}

/** Result of {@link eks-forensics!exportControlPlaneLogs}. */
export interface ControlPlaneLogExportResult {
  /** The cluster. */
  clusterName: string;
  /** `/aws/eks/<cluster>/cluster`. */
  logGroupName: string;
  /** Region of the CloudWatch Logs client. */
  region?: string | undefined;
  /** The time window, ISO 8601 UTC. */
  window: {
    /** Start (inclusive). */
    startTime: string;
    /** End (inclusive). */
    endTime: string;
  };
  /**
   * `complete`: every requested type exported in full. `partial`: some truncated, skipped or failed.
   * `not-enabled`: no log group or no streams of any requested type. `failed`: every type failed.
   */
  status: 'complete' | 'partial' | 'not-enabled' | 'failed';
  /** One entry per requested stream type, in export order (audit, authenticator, api). */
  streams: ControlPlaneStreamResult[];
  /** Per EKS log type: enabled now (from DescribeCluster / `clusterLogging`), or undefined when unknown. */
  loggingEnabled: Partial<Record<ControlPlaneLogType, boolean>>;
  /** Human-readable notes for the report: missing logging, filters, truncation. */
  notes: string[];
  /** The AWS CLI command that enables the missing log types, when some are missing. */
  enableCommand?: string | undefined;
  /** Identities (from matched audit events) used to select authenticator lines. */
  actorIdentities?: string[] | undefined;
}

/** The `aws eks update-cluster-config` command that enables `types` for `clusterName`. */
export function controlPlaneLoggingEnableCommand(
  clusterName: string,
  types: readonly string[] = ['audit', 'authenticator'],
  region?: string,
): string {
  const logging = JSON.stringify({ clusterLogging: [{ types: [...types], enabled: true }] });
  const r = region ? ` --region ${region}` : '';
  return `aws eks update-cluster-config${r} --name ${clusterName} --logging '${logging}'`;
}

const filteredEventSchema = z.object({
  logStreamName: z.string(),
  timestamp: z.number(),
  ingestionTime: z.number().optional(),
  message: z.string(),
  eventId: z.string().optional(),
});

const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const MAX_IDENTITIES = 256;

function toMs(t: Date | number, what: string): number {
  const ms = typeof t === 'number' ? t : t.getTime();
  if (!Number.isFinite(ms) || ms < 0) throw new ConfigError(`${what} is not a valid time`);
  return Math.floor(ms);
}

function positive(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`limits.${what} must be a positive number`);
  return Math.floor(v);
}

function enabledTypesFrom(config: ClusterLoggingConfig): Set<string> {
  const on = new Set<string>();
  for (const entry of config) if (entry.enabled) for (const t of entry.types ?? []) on.add(t);
  return on;
}

function asEksfError(err: unknown, what: string): EksForensicsError {
  if (err instanceof EksForensicsError) return err;
  return new EksForensicsError(`${what}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

interface ExportState {
  scanned: number;
  exported: number;
  malformed: number;
  messagesTruncated: number;
  bytes: number;
  pages: number;
  lastTimestamp: number | undefined;
  truncatedReason: string | undefined;
  error: EksForensicsError | undefined;
}

/**
 * Exports EKS control-plane logs for a time window into the bundle, one JSON-lines artifact per
 * stream type (`aws/control-plane-logs/kube-apiserver-audit.jsonl`, `authenticator.jsonl`,
 * `kube-apiserver.jsonl`). Each line is `{timestamp, time, ingestionTime, logStream, eventId,
 * message}` with CloudWatch's message unchanged. Reads page by page (memory stays at one page),
 * retries throttling with bounded backoff, stops at the configured bounds and records the truncation.
 *
 * With a `filter`, audit events are parsed (zod) and kept when they concern the pod (by name, UID
 * or the pod's own service-account token), the namespace and/or the user; authenticator lines are
 * kept when they name the user or an identity seen in the kept audit events; API-server lines by text.
 *
 * Never throws for AWS failures: they are in the result (`status`, per-stream `error` — an
 * {@link AwsRequestError} whose `operation` is the IAM action that was denied) and in the bundle.
 *
 * @throws A {@link eks-forensics/errors!ConfigError} for invalid options; {@link AbortedError} when `signal` fires.
 * @example
 * const r = await exportControlPlaneLogs({ bundle, clusterName: 'prod', region: 'eu-west-1',
 *   startTime: Date.now() - 6 * 3600_000, endTime: Date.now(), filter: { namespace: 'web', pod: 'api-1' } });
 * if (r.enableCommand) console.log(r.notes.join('\n'));
 */
export async function exportControlPlaneLogs(
  options: ExportControlPlaneLogsOptions,
): Promise<ControlPlaneLogExportResult> {
  const { bundle, clusterName } = options;
  if (!CLUSTER_NAME.test(clusterName)) {
    throw new ConfigError(`clusterName "${clusterName}" is not a valid EKS cluster name`);
  }
  const startMs = toMs(options.startTime, 'startTime');
  const endMs = toMs(options.endTime, 'endTime');
  if (endMs < startMs) throw new ConfigError('endTime is before startTime');
  const filter = options.filter;
  for (const [k, v] of Object.entries(filter ?? {})) {
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) {
      throw new ConfigError(`filter.${k} must be a non-empty string`);
    }
  }
  if (filter?.pod !== undefined && filter.namespace === undefined) {
    throw new ConfigError('filter.pod needs filter.namespace');
  }
  const requested = new Set(options.types ?? ['audit', 'authenticator']);
  for (const t of requested) {
    if (!(t in STREAM_TYPES)) throw new ConfigError(`unknown control-plane log type "${t}"`);
  }
  if (requested.size === 0) throw new ConfigError('types is empty');
  const limits = options.limits ?? {};
  const maxEvents = positive(limits.maxEventsPerStream, 1_000_000, 'maxEventsPerStream');
  const maxBytes = positive(limits.maxBytesPerStream, 1024 ** 3, 'maxBytesPerStream');
  const maxMessageBytes = positive(limits.maxMessageBytes, 1024 ** 2, 'maxMessageBytes');
  const timeoutMs = positive(limits.timeoutMs, 15 * 60_000, 'timeoutMs');
  const maxLogStreams = positive(limits.maxLogStreams, 1_000, 'maxLogStreams');
  const pageSize = Math.min(10_000, positive(limits.pageSize, 10_000, 'pageSize'));
  const prefix = (options.pathPrefix ?? 'aws/control-plane-logs').replace(/\/+$/, '');
  const logger = options.logger ?? silentLogger;
  const logGroupName = `/aws/eks/${clusterName}/cluster`;
  const target: TargetRef | undefined =
    options.target ??
    (filter?.namespace !== undefined || filter?.podUid !== undefined
      ? {
          ...(filter.namespace !== undefined ? { namespace: filter.namespace } : {}),
          ...(filter.pod !== undefined ? { pod: filter.pod } : {}),
          ...(filter.podUid !== undefined ? { podUid: filter.podUid } : {}),
        }
      : undefined);

  if (!options.logs && !options.region) {
    throw new ConfigError('give either a CloudWatchLogsClient (`logs`) or a `region`');
  }
  const { CloudWatchLogsClient } = await import('@aws-sdk/client-cloudwatch-logs');
  const ownClient = !options.logs;
  const logs =
    options.logs ?? new CloudWatchLogsClient({ region: options.region, credentials: options.credentials });
  let region = options.region;
  try {
    region ??= await logs.config.region();
  } catch {
    region = undefined;
  }

  const notes: string[] = [];
  const loggingEnabled: Partial<Record<ControlPlaneLogType, boolean>> = {};
  const result: ControlPlaneLogExportResult = {
    clusterName,
    logGroupName,
    region,
    window: { startTime: new Date(startMs).toISOString(), endTime: new Date(endMs).toISOString() },
    status: 'complete',
    streams: [],
    loggingEnabled,
    notes,
  };
  const step = 'aws.control-plane-logs';
  bundle.log({ step, event: 'start', clusterName, logGroupName, region, window: result.window, filter });

  const { signal, dispose } = withTimeout(options.signal, timeoutMs, 'control-plane log export');
  const timeUp = () => signal.aborted && !options.signal?.aborted;
  const retry = options.retry;
  const onRetry = (info: { action: string; attempt: number; delayMs: number; awsCode: string }) => {
    logger.warn({ ...info }, 'AWS throttled, backing off');
    bundle.log({ step, event: 'throttled', ...info });
  };

  try {
    // 1. Which log types does the cluster send now?
    let enabled: Set<string> | undefined;
    if (options.clusterLogging) {
      enabled = enabledTypesFrom(options.clusterLogging);
    } else if (options.eks) {
      const eks = options.eks;
      const { DescribeClusterCommand } = await import('@aws-sdk/client-eks');
      try {
        const d = await callAws(
          {
            action: 'eks:DescribeCluster',
            resource: `cluster ${clusterName}`,
            region,
            retry,
            signal,
            onRetry,
          },
          (s) => eks.send(new DescribeClusterCommand({ name: clusterName }), { abortSignal: s }),
        );
        enabled = enabledTypesFrom(d.cluster?.logging?.clusterLogging ?? []);
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        notes.push(
          `Could not read the cluster's logging setting: ${asEksfError(err, 'DescribeCluster').message}`,
        );
      }
    }
    const missingTypes: string[] = [];
    for (const t of EXPORT_ORDER) {
      if (!requested.has(t) || !enabled) continue;
      const on = enabled.has(STREAM_TYPES[t].eksLogType);
      loggingEnabled[t] = on;
      if (!on) missingTypes.push(STREAM_TYPES[t].eksLogType);
    }
    if (missingTypes.length > 0) {
      result.enableCommand = controlPlaneLoggingEnableCommand(clusterName, missingTypes, region);
      notes.push(
        `Control-plane log type(s) ${missingTypes.join(', ')} are not enabled on cluster ${clusterName}: ` +
          'EKS is not recording them now (older logs may still exist and are exported if found). ' +
          `Enable them for the future with: ${result.enableCommand}`,
      );
    }

    // 2. Export each type.
    let identities: Set<string> | undefined;
    let groupMissing = false;
    for (const type of EXPORT_ORDER) {
      if (!requested.has(type)) continue;
      const info = STREAM_TYPES[type];
      const path = `${prefix}/${info.file}`;
      const sr: ControlPlaneStreamResult = {
        type,
        logStreamPrefix: info.prefix,
        logStreams: [],
        status: 'complete',
        path,
        scanned: 0,
        exported: 0,
        malformed: 0,
        messagesTruncated: 0,
        bytes: 0,
        pages: 0,
      };
      result.streams.push(sr);
      const source = { kind: 'aws-cloudwatch-logs', profile: 'eks-control-plane-logs', item: type };

      if (groupMissing || timeUp()) {
        sr.status = 'skipped';
        sr.reason = groupMissing
          ? `log group ${logGroupName} does not exist`
          : `timeoutMs (${timeoutMs}) reached before this stream type was exported`;
        sr.record = await bundle.recordArtifact(path, { source, status: 'skipped', reason: sr.reason });
        continue;
      }
      // 2a. List the log streams of this type.
      try {
        sr.logStreams = await listStreams(logs, logGroupName, info, maxLogStreams, {
          region,
          retry,
          signal,
          onRetry,
        });
      } catch (err) {
        if (err instanceof AbortedError && !timeUp()) throw err;
        const e = asEksfError(err, 'DescribeLogStreams');
        if (e instanceof AwsRequestError && e.failure === 'not-found') {
          groupMissing = true;
          sr.status = 'skipped';
          sr.reason = `log group ${logGroupName} does not exist`;
        } else {
          sr.status = 'failed';
          sr.reason = e.message;
          sr.error = e;
        }
        sr.record = await bundle.recordArtifact(path, {
          source,
          status: sr.status,
          reason: sr.reason,
          details: { logGroupName },
        });
        continue;
      }
      if (sr.logStreams.length === 0) {
        sr.status = 'skipped';
        sr.reason =
          `no log streams named ${info.prefix}* in ${logGroupName}: ` +
          (loggingEnabled[type] === false
            ? `the "${info.eksLogType}" log type is not enabled`
            : `the "${info.eksLogType}" log type may not be enabled, or nothing was delivered yet`);
        notes.push(sr.reason);
        sr.record = await bundle.recordArtifact(path, {
          source,
          status: 'skipped',
          reason: sr.reason,
          details: { logGroupName },
        });
        continue;
      }

      // 2b. Decide how lines are selected.
      let select: (message: string) => { keep: boolean; malformed?: boolean };
      const active = filterIsActive(filter);
      const collect =
        type === 'audit' && active && requested.has('authenticator') && filter.user === undefined;
      if (collect) identities = new Set();
      if (type === 'audit') {
        select = (message) => {
          const ev = parseAuditEvent(message);
          if (!ev) return { keep: !active || textMatches(message, filter), malformed: true };
          if (!active) return { keep: true };
          const keep = auditEventMatches(ev, filter);
          if (keep && identities && identities.size < MAX_IDENTITIES) {
            for (const id of auditActorIdentities(ev))
              if (identities.size < MAX_IDENTITIES) identities.add(id);
          }
          return { keep };
        };
      } else if (type === 'authenticator' && active) {
        let wanted: Set<string> | undefined;
        if (filter.user !== undefined) wanted = new Set([filter.user]);
        else if (identities) wanted = identities;
        if (wanted) {
          const w = wanted;
          result.actorIdentities = [...w];
          if (w.size === 0) {
            notes.push(
              'No audit event matched the filter, so no authenticator line could be attributed to it.',
            );
          }
          select = (message) => ({ keep: logfmtHasValue(message, w) });
        } else {
          notes.push(
            'Authenticator lines carry no pod or namespace: exported unfiltered (add "audit" to types to ' +
              'select them by the identities seen in the matching audit events).',
          );
          select = () => ({ keep: true });
        }
      } else if (active) {
        select = (message) => ({ keep: textMatches(message, filter) });
      } else {
        select = () => ({ keep: true });
      }

      // 2c. Stream the events into the bundle.
      const state: ExportState = {
        scanned: 0,
        exported: 0,
        malformed: 0,
        messagesTruncated: 0,
        bytes: 0,
        pages: 0,
        lastTimestamp: undefined,
        truncatedReason: undefined,
        error: undefined,
      };
      const body = streamEvents({
        logs,
        logGroupName,
        streams: sr.logStreams,
        startMs,
        endMs,
        pageSize,
        maxEvents,
        maxBytes,
        maxMessageBytes,
        select,
        state,
        ctx: { region, retry, signal, onRetry },
        timeUp,
      });
      const startedAt = new Date();
      sr.record = await bundle.writeArtifact(path, body, {
        source,
        startedAt,
        contentType: 'application/x-ndjson',
        ...(target ? { target } : {}),
        details: { logGroupName, logStreamPrefix: info.prefix, window: result.window, filter },
        finish: () => {
          const details = {
            scanned: state.scanned,
            exported: state.exported,
            malformed: state.malformed,
            messagesTruncated: state.messagesTruncated,
            pages: state.pages,
            lastTimestamp: state.lastTimestamp,
          };
          if (state.truncatedReason) return { status: 'truncated', reason: state.truncatedReason, details };
          return { details };
        },
      });
      Object.assign(sr, {
        scanned: state.scanned,
        exported: state.exported,
        malformed: state.malformed,
        messagesTruncated: state.messagesTruncated,
        bytes: state.bytes,
        pages: state.pages,
        lastTimestamp: state.lastTimestamp,
      });
      if (state.error) {
        if (state.error instanceof AbortedError && !timeUp()) throw state.error;
        sr.status = 'failed';
        sr.reason = state.error.message;
        sr.error = state.error;
      } else if (sr.record.status === 'failed') {
        sr.status = 'failed';
        sr.reason = sr.record.reason ?? 'the bundle could not store the artifact';
      } else if (state.truncatedReason) {
        sr.status = 'truncated';
        sr.reason = state.truncatedReason;
        notes.push(`${type}: ${state.truncatedReason}`);
      }
      bundle.log({
        step,
        event: 'stream-exported',
        type,
        status: sr.status,
        reason: sr.reason,
        logStreams: sr.logStreams.length,
        scanned: sr.scanned,
        exported: sr.exported,
        malformed: sr.malformed,
        bytes: sr.bytes,
        pages: sr.pages,
      });
      if (sr.malformed > 0) {
        notes.push(
          `${type}: ${sr.malformed} line(s) were not valid audit events (kept when they matched by text).`,
        );
      }
    }

    if (groupMissing) {
      result.enableCommand ??= controlPlaneLoggingEnableCommand(
        clusterName,
        EXPORT_ORDER.filter((t) => requested.has(t)).map((t) => STREAM_TYPES[t].eksLogType),
        region,
      );
      notes.unshift(
        `Log group ${logGroupName} does not exist${region ? ` in ${region}` : ''}: control-plane logging ` +
          `was never enabled for cluster ${clusterName} (or the group was deleted). Enable it with: ${result.enableCommand}`,
      );
    }
    const statuses = result.streams.map((s) => s.status);
    if (groupMissing || statuses.every((s) => s === 'skipped')) result.status = 'not-enabled';
    else if (statuses.every((s) => s === 'failed')) result.status = 'failed';
    else if (statuses.every((s) => s === 'complete')) result.status = 'complete';
    else result.status = 'partial';
    bundle.log({ step, event: 'done', status: result.status, notes });
    return result;
  } finally {
    dispose();
    if (ownClient) logs.destroy();
  }
}

interface CallCtx {
  region: string | undefined;
  retry: AwsRetryOptions | undefined;
  signal: AbortSignal;
  onRetry: (info: { action: string; attempt: number; delayMs: number; awsCode: string }) => void;
}

async function listStreams(
  logs: CloudWatchLogsClient,
  logGroupName: string,
  info: StreamTypeInfo,
  max: number,
  ctx: CallCtx,
): Promise<string[]> {
  const { DescribeLogStreamsCommand } = await import('@aws-sdk/client-cloudwatch-logs');
  const names: string[] = [];
  const seen = new Set<string>();
  let nextToken: string | undefined;
  for (;;) {
    const page = await callAws(
      { action: 'logs:DescribeLogStreams', resource: `log group ${logGroupName}`, ...ctx },
      (s) =>
        logs.send(
          new DescribeLogStreamsCommand({ logGroupName, logStreamNamePrefix: info.prefix, nextToken }),
          { abortSignal: s },
        ),
    );
    for (const st of page.logStreams ?? []) {
      const n = st.logStreamName;
      if (typeof n !== 'string' || !n.startsWith(info.prefix)) continue;
      if (info.exclude && n.startsWith(info.exclude)) continue;
      if (names.length >= max) return names;
      names.push(n);
    }
    const t = page.nextToken;
    if (!t || seen.has(t)) return names;
    seen.add(t);
    nextToken = t;
  }
}

interface StreamEventsInput {
  logs: CloudWatchLogsClient;
  logGroupName: string;
  streams: string[];
  startMs: number;
  endMs: number;
  pageSize: number;
  maxEvents: number;
  maxBytes: number;
  maxMessageBytes: number;
  select: (message: string) => { keep: boolean; malformed?: boolean };
  state: ExportState;
  ctx: CallCtx;
  timeUp: () => boolean;
}

function cutUtf8(s: string, maxBytes: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= maxBytes) return s;
  // Drop a trailing partial character.
  return b
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}

async function* streamEvents(input: StreamEventsInput): AsyncGenerator<Uint8Array> {
  const { logs, logGroupName, state } = input;
  const { FilterLogEventsCommand } = await import('@aws-sdk/client-cloudwatch-logs');
  try {
    for (let i = 0; i < input.streams.length; i += 100) {
      const chunk = input.streams.slice(i, i + 100);
      const inChunk = new Set(chunk);
      const seen = new Set<string>();
      let nextToken: string | undefined;
      for (;;) {
        const page = await callAws(
          { action: 'logs:FilterLogEvents', resource: `log group ${logGroupName}`, ...input.ctx },
          (s) =>
            logs.send(
              new FilterLogEventsCommand({
                logGroupName,
                logStreamNames: chunk,
                startTime: input.startMs,
                endTime: input.endMs,
                limit: input.pageSize,
                nextToken,
              }),
              { abortSignal: s },
            ),
        );
        state.pages++;
        const lines: string[] = [];
        let stop = false;
        for (const raw of page.events ?? []) {
          const parsed = filteredEventSchema.safeParse(raw);
          if (!parsed.success) continue;
          const ev = parsed.data;
          if (!inChunk.has(ev.logStreamName) || ev.timestamp < input.startMs || ev.timestamp > input.endMs)
            continue;
          state.scanned++;
          const sel = input.select(ev.message);
          if (sel.malformed) state.malformed++;
          if (!sel.keep) continue;
          if (state.exported >= input.maxEvents) {
            state.truncatedReason =
              `maxEventsPerStream (${input.maxEvents}) reached; events after ` +
              `${new Date(state.lastTimestamp ?? input.startMs).toISOString()} were not exported`;
            stop = true;
            break;
          }
          let message = ev.message;
          let cut = false;
          if (
            message.length > input.maxMessageBytes / 4 &&
            Buffer.byteLength(message) > input.maxMessageBytes
          ) {
            message = cutUtf8(message, input.maxMessageBytes);
            cut = true;
            state.messagesTruncated++;
          }
          const line = `${JSON.stringify({
            timestamp: ev.timestamp,
            time: new Date(ev.timestamp).toISOString(),
            ingestionTime: ev.ingestionTime,
            logStream: ev.logStreamName,
            eventId: ev.eventId,
            ...(sel.malformed ? { malformed: true } : {}),
            ...(cut ? { messageTruncated: true } : {}),
            message,
          })}\n`;
          const n = Buffer.byteLength(line);
          if (state.bytes + n > input.maxBytes) {
            state.truncatedReason =
              `maxBytesPerStream (${input.maxBytes}) reached; events after ` +
              `${new Date(state.lastTimestamp ?? input.startMs).toISOString()} were not exported`;
            stop = true;
            break;
          }
          lines.push(line);
          state.bytes += n;
          state.exported++;
          state.lastTimestamp = ev.timestamp;
        }
        if (lines.length > 0) yield Buffer.from(lines.join(''), 'utf8');
        if (stop) return;
        const t = page.nextToken;
        if (!t) break;
        if (seen.has(t)) {
          // A paging loop on the server side: stop rather than spin, and say events may be missing.
          state.truncatedReason =
            'CloudWatch Logs returned a nextToken it had already returned; paging stopped to avoid a loop, ' +
            `so events after ${new Date(state.lastTimestamp ?? input.startMs).toISOString()} may be missing`;
          break;
        }
        seen.add(t);
        nextToken = t;
      }
    }
  } catch (err) {
    if (err instanceof AbortedError && input.timeUp()) {
      state.truncatedReason =
        `timeoutMs reached; events after ` +
        `${new Date(state.lastTimestamp ?? input.startMs).toISOString()} may not have been exported`;
      return;
    }
    state.error = asEksfError(err, 'FilterLogEvents');
    throw state.error;
  }
}
