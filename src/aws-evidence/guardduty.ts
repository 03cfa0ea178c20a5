/**
 * GuardDuty findings about a cluster, its node and its pod (EKS Protection audit-log findings
 * and Runtime Monitoring findings), with a clear answer when GuardDuty is off in the region.
 */
import type { GuardDutyClient } from '@aws-sdk/client-guardduty';
import type { CredentialsInput } from '../aws/index.js';
import { AbortedError, type AwsFailureKind, AwsRequestError } from '../errors.js';
import { type AwsRetryOptions, callAws } from './aws-call.js';

/** Options of {@link eks-forensics!guardDutyFindings}. */
export interface GuardDutyFindingsOptions {
  /** Region of the cluster. */
  region: string;
  /** A GuardDuty client; otherwise one is made from `region`, `credentials`, `endpoint`. */
  client?: Pick<GuardDutyClient, 'send'> | undefined;
  /** AWS credentials. */
  credentials?: CredentialsInput | undefined;
  /** Endpoint override. */
  endpoint?: string | undefined;
  /** EKS cluster name (`resource.eksClusterDetails.name`). */
  clusterName?: string | undefined;
  /** EC2 instance id of the node (`resource.instanceDetails.instanceId`). */
  instanceId?: string | undefined;
  /** The pod, to mark the findings whose workload is it or one of its owners. */
  pod?: { namespace: string; name: string; ownerNames?: readonly string[] | undefined } | undefined;
  /** Only findings updated since (default: all the detector keeps, 90 days). */
  since?: Date | undefined;
  /** Most findings read (default 200). */
  maxFindings?: number | undefined;
  /** Backoff on throttling. */
  retry?: AwsRetryOptions | undefined;
  /** Cancels the reads. */
  signal?: AbortSignal | undefined;
}

/** One GuardDuty finding, summarized (the full finding is in `finding`). */
export interface GuardDutyFindingSummary {
  /** Finding id. */
  id: string;
  /** e.g. `Execution:Kubernetes/ExecInKubeSystemPod`. */
  type: string | null;
  /** 1–8.9 (low < 4 ≤ medium < 7 ≤ high). */
  severity: number | null;
  /** Title. */
  title: string | null;
  /** First seen. */
  createdAt: string | null;
  /** Last updated. */
  updatedAt: string | null;
  /** `EKSCluster`, `Instance`, `Container`… */
  resourceType: string | null;
  /** Kubernetes workload the finding names. */
  workload: { namespace: string | null; name: string | null; type: string | null } | null;
  /** EC2 instance the finding names. */
  instanceId: string | null;
  /** Which queries found it (`cluster`, `instance`). */
  matchedBy: string[];
  /** The finding names this pod or one of its owners. */
  concernsPod: boolean;
  /** The finding as GuardDuty returned it. */
  finding: unknown;
}

/** What {@link eks-forensics!guardDutyFindings} found. */
export interface GuardDutyFindingsResult {
  /** `disabled`: no enabled detector in the region; `partial`: some reads failed or were cut. */
  status: 'collected' | 'disabled' | 'partial' | 'failed';
  /** Region read. */
  region: string;
  /** The detector used. */
  detectorId: string | null;
  /** Its status (`ENABLED`/`DISABLED`), when GetDetector was allowed. */
  detectorStatus: string | null;
  /** Enabled detector features (`EKS_AUDIT_LOGS`, `RUNTIME_MONITORING`, …), when known. */
  features: string[] | null;
  /** Findings, highest severity first. */
  findings: GuardDutyFindingSummary[];
  /** What failed, with its classification. */
  failures: Array<{ action: string; kind: AwsFailureKind; message: string }>;
  /** Throttling retries. */
  retries: Array<{ action: string; attempt: number; delayMs: number; awsCode: string }>;
  /** Notes: disabled, features off, bounds reached. */
  notes: string[];
}

/** The IAM actions {@link eks-forensics!guardDutyFindings} calls. */
export const GUARDDUTY_ACTIONS = [
  'guardduty:ListDetectors',
  'guardduty:GetDetector',
  'guardduty:ListFindings',
  'guardduty:GetFindings',
] as const;

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v.slice(0, 2048) : null);

/**
 * Reads the GuardDuty findings about the cluster (`resource.eksClusterDetails.name`) and the
 * node (`resource.instanceDetails.instanceId`), and marks those naming the pod. Never throws for
 * an AWS failure: `status` and `failures` say what happened; no detector is `disabled`.
 *
 * @throws {@link AbortedError} when `signal` fires.
 */
export async function guardDutyFindings(options: GuardDutyFindingsOptions): Promise<GuardDutyFindingsResult> {
  const gd = await import('@aws-sdk/client-guardduty');
  const client =
    options.client ??
    new gd.GuardDutyClient({
      region: options.region,
      // every retry is ours (callAws), so each one is recorded
      maxAttempts: 1,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    });
  const result: GuardDutyFindingsResult = {
    status: 'collected',
    region: options.region,
    detectorId: null,
    detectorStatus: null,
    features: null,
    findings: [],
    failures: [],
    retries: [],
    notes: [],
  };
  const call = <T>(action: string, resource: string, fn: (s: AbortSignal | undefined) => Promise<T>) =>
    callAws(
      {
        action,
        resource,
        region: options.region,
        retry: options.retry,
        signal: options.signal,
        onRetry: (i) => result.retries.push(i),
      },
      fn,
    );
  const failed = (action: string, err: unknown): void => {
    if (err instanceof AbortedError) throw err;
    const kind = err instanceof AwsRequestError ? err.failure : 'error';
    result.failures.push({ action, kind, message: (err as Error).message.slice(0, 500) });
  };

  // 1. The detector.
  try {
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const out = await call('guardduty:ListDetectors', `region ${options.region}`, (s) =>
        client.send(new gd.ListDetectorsCommand({ ...(token ? { NextToken: token } : {}) }), {
          abortSignal: s,
        }),
      );
      ids.push(...(out.DetectorIds ?? []));
      token = out.NextToken || undefined;
    } while (token && ids.length < 100);
    if (ids.length === 0) {
      result.status = 'disabled';
      result.notes.push(
        `GuardDuty is not enabled in ${options.region} (no detector): there are no findings to read. ` +
          'Enable GuardDuty with EKS Protection and Runtime Monitoring to get them in future.',
      );
      return result;
    }
    result.detectorId = ids[0] ?? null;
  } catch (err) {
    failed('guardduty:ListDetectors', err);
    const f = result.failures[0];
    result.status = 'failed';
    if (f?.kind === 'region-disabled')
      result.notes.push(`the region ${options.region} is not enabled for this account`);
    return result;
  }
  const detectorId = result.detectorId as string;
  try {
    const d = await call('guardduty:GetDetector', `detector ${detectorId}`, (s) =>
      client.send(new gd.GetDetectorCommand({ DetectorId: detectorId }), { abortSignal: s }),
    );
    result.detectorStatus = d.Status ?? null;
    result.features = (d.Features ?? []).filter((f) => f.Status === 'ENABLED').map((f) => String(f.Name));
    if (d.Status === 'DISABLED') {
      result.status = 'disabled';
      result.notes.push(`the GuardDuty detector ${detectorId} in ${options.region} is suspended (DISABLED)`);
    }
    const eks = ['EKS_AUDIT_LOGS', 'EKS_RUNTIME_MONITORING', 'RUNTIME_MONITORING'];
    if (!result.features.some((f) => eks.includes(f))) {
      result.notes.push(
        'neither EKS Protection (EKS_AUDIT_LOGS) nor Runtime Monitoring is enabled on the detector',
      );
    }
  } catch (err) {
    failed('guardduty:GetDetector', err);
  }

  // 2. Finding ids per criterion (criteria within one query are AND-ed, so one query each).
  const max = Math.max(1, options.maxFindings ?? 200);
  const matched = new Map<string, string[]>();
  const queries: Array<{ name: string; field: string; value: string }> = [];
  if (options.clusterName)
    queries.push({ name: 'cluster', field: 'resource.eksClusterDetails.name', value: options.clusterName });
  if (options.instanceId)
    queries.push({
      name: 'instance',
      field: 'resource.instanceDetails.instanceId',
      value: options.instanceId,
    });
  if (queries.length === 0) result.notes.push('no clusterName or instanceId given: no findings queried');
  for (const q of queries) {
    try {
      let token: string | undefined;
      let pages = 0;
      do {
        const out = await call('guardduty:ListFindings', `detector ${detectorId} (${q.field})`, (s) =>
          client.send(
            new gd.ListFindingsCommand({
              DetectorId: detectorId,
              FindingCriteria: {
                Criterion: {
                  [q.field]: { Equals: [q.value] },
                  ...(options.since ? { updatedAt: { GreaterThanOrEqual: options.since.getTime() } } : {}),
                },
              },
              MaxResults: 50,
              ...(token ? { NextToken: token } : {}),
            }),
            { abortSignal: s },
          ),
        );
        pages++;
        let stop = false;
        for (const id of out.FindingIds ?? []) {
          const by = matched.get(id);
          if (by) {
            if (!by.includes(q.name)) by.push(q.name);
          } else if (matched.size < max) matched.set(id, [q.name]);
          else {
            result.notes.push(`more than ${max} findings; the rest were not read (maxFindings)`);
            stop = true;
            break;
          }
        }
        token = stop ? undefined : out.NextToken || undefined;
      } while (token && pages < 100);
    } catch (err) {
      failed('guardduty:ListFindings', err);
    }
  }

  // 3. The findings, 50 per call.
  const ids = [...matched.keys()];
  const owners = new Set([options.pod?.name, ...(options.pod?.ownerNames ?? [])].filter(Boolean));
  for (let i = 0; i < ids.length; i += 50) {
    const batch = ids.slice(i, i + 50);
    try {
      const out = await call('guardduty:GetFindings', `detector ${detectorId}`, (s) =>
        client.send(new gd.GetFindingsCommand({ DetectorId: detectorId, FindingIds: batch }), {
          abortSignal: s,
        }),
      );
      for (const f of out.Findings ?? []) {
        const id = str(f.Id);
        if (!id || !matched.has(id)) continue; // an answer for an id never asked is not ours
        const w = f.Resource?.KubernetesDetails?.KubernetesWorkloadDetails;
        const workload = w ? { namespace: str(w.Namespace), name: str(w.Name), type: str(w.Type) } : null;
        result.findings.push({
          id,
          type: str(f.Type),
          severity: typeof f.Severity === 'number' ? f.Severity : null,
          title: str(f.Title),
          createdAt: str(f.CreatedAt),
          updatedAt: str(f.UpdatedAt),
          resourceType: str(f.Resource?.ResourceType),
          workload,
          instanceId: str(f.Resource?.InstanceDetails?.InstanceId),
          matchedBy: matched.get(id) ?? [],
          concernsPod:
            options.pod !== undefined &&
            workload !== null &&
            workload.namespace === options.pod.namespace &&
            workload.name !== null &&
            owners.has(workload.name),
          finding: f,
        });
      }
    } catch (err) {
      failed('guardduty:GetFindings', err);
    }
  }
  result.findings.sort((a, b) => (b.severity ?? 0) - (a.severity ?? 0));
  if (result.failures.length && result.status === 'collected') result.status = 'partial';
  if (result.notes.some((n) => n.includes('maxFindings')) && result.status === 'collected')
    result.status = 'partial';
  return result;
}
