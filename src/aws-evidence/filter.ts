/**
 * Parsing of Kubernetes audit events (as EKS writes them to CloudWatch Logs) and the matching
 * rules of the pod / namespace / user filter.
 */
import { z } from 'zod';

const str = z.string();
const userInfo = z.looseObject({
  username: str.optional(),
  uid: str.optional(),
  groups: z.array(str).optional(),
  extra: z.record(str, z.array(str)).optional(),
});

/** The fields of a Kubernetes `audit.k8s.io/v1` Event the filter reads (others are kept as-is). */
export const auditEventSchema = z.looseObject({
  kind: str.optional(),
  auditID: str.optional(),
  stage: str.optional(),
  verb: str.optional(),
  requestURI: str.optional(),
  user: userInfo.optional(),
  impersonatedUser: userInfo.optional(),
  objectRef: z
    .looseObject({
      resource: str.optional(),
      subresource: str.optional(),
      namespace: str.optional(),
      name: str.optional(),
      uid: str.optional(),
      apiGroup: str.optional(),
    })
    .optional(),
  sourceIPs: z.array(str).optional(),
  userAgent: str.optional(),
  responseStatus: z.looseObject({ code: z.number().optional() }).optional(),
});

/** A parsed audit event. */
export type AuditEvent = z.infer<typeof auditEventSchema>;

/** What to keep from the control-plane logs. All given criteria must match (AND). */
export interface ControlPlaneLogFilter {
  /** Namespace of interest (also the pod's namespace when `pod` is set). */
  namespace?: string | undefined;
  /** Pod name; needs `namespace`. */
  pod?: string | undefined;
  /** Pod UID: also matches events that name the pod only by UID, and requests made with the pod's token. */
  podUid?: string | undefined;
  /** Username, IAM ARN, access key id or session name of the actor. */
  user?: string | undefined;
}

const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

/** Parses one audit line; undefined when it is not JSON or not an audit event. */
export function parseAuditEvent(message: string): AuditEvent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(message);
  } catch {
    return undefined;
  }
  const parsed = auditEventSchema.safeParse(json);
  if (!parsed.success) return undefined;
  const e = parsed.data;
  // A JSON value that is not an audit event (no verb, no user, no objectRef) counts as malformed.
  if (e.verb === undefined && e.user === undefined && e.objectRef === undefined) return undefined;
  return e;
}

function extraValue(user: AuditEvent['user'], key: string): string | undefined {
  return user?.extra?.[key]?.[0];
}

function serviceAccountNamespace(username: string | undefined): string | undefined {
  const m = /^system:serviceaccount:([^:]+):/.exec(username ?? '');
  return m?.[1];
}

function podMatches(e: AuditEvent, f: ControlPlaneLogFilter): boolean {
  const o = e.objectRef;
  if (f.podUid !== undefined && (o?.uid === f.podUid || extraValue(e.user, POD_UID_EXTRA) === f.podUid)) {
    return true;
  }
  if (f.pod === undefined) return f.podUid === undefined;
  if (
    o?.resource === 'pods' &&
    o.name === f.pod &&
    (f.namespace === undefined || o.namespace === f.namespace)
  ) {
    return true;
  }
  // Requests made by the pod itself with its bound service-account token.
  return (
    extraValue(e.user, POD_NAME_EXTRA) === f.pod &&
    (f.namespace === undefined || serviceAccountNamespace(e.user?.username) === f.namespace)
  );
}

function namespaceMatches(e: AuditEvent, ns: string): boolean {
  return e.objectRef?.namespace === ns || serviceAccountNamespace(e.user?.username) === ns;
}

function userValues(u: AuditEvent['user']): string[] {
  if (!u) return [];
  const out: string[] = [];
  if (u.username) out.push(u.username);
  if (u.uid) out.push(u.uid);
  for (const key of ['arn', 'canonicalArn', 'accessKeyId', 'sessionName', 'principalId']) {
    for (const v of u.extra?.[key] ?? []) out.push(v);
  }
  return out;
}

function userMatches(e: AuditEvent, user: string): boolean {
  return userValues(e.user).includes(user) || userValues(e.impersonatedUser).includes(user);
}

/** True when the audit event passes every criterion of `f`. */
export function auditEventMatches(e: AuditEvent, f: ControlPlaneLogFilter): boolean {
  if (f.pod !== undefined || f.podUid !== undefined) {
    if (!podMatches(e, f)) return false;
  } else if (f.namespace !== undefined && !namespaceMatches(e, f.namespace)) {
    return false;
  }
  if (f.user !== undefined && !userMatches(e, f.user)) return false;
  return true;
}

/** The identities (username, ARNs, access key id) of the actor of an audit event. */
export function auditActorIdentities(e: AuditEvent): string[] {
  return [...userValues(e.user), ...userValues(e.impersonatedUser)].filter(
    (v) => v.length >= 3 && !v.startsWith('system:'),
  );
}

/** True when a logfmt-style line (authenticator) has `key=value` or `key="value"` with one of `values`. */
export function logfmtHasValue(line: string, values: Iterable<string>): boolean {
  for (const v of values) {
    if (v === '') continue;
    let from = 0;
    for (;;) {
      const i = line.indexOf(v, from);
      if (i < 0) break;
      from = i + 1;
      const before = line.slice(Math.max(0, i - 2), i);
      const after = line.charAt(i + v.length);
      if (before.endsWith('="') && after === '"') return true;
      if (before.endsWith('=') && (after === '' || after === ' ' || after === '\t')) return true;
    }
  }
  return false;
}

/** True when a free-text line (raw API server log, or an unparseable audit line) mentions the filter's target. */
export function textMatches(line: string, f: ControlPlaneLogFilter): boolean {
  if (f.podUid !== undefined && line.includes(f.podUid)) return f.user === undefined || line.includes(f.user);
  if (f.podUid !== undefined && f.pod === undefined) return false;
  if (f.pod !== undefined) {
    const needle = f.namespace !== undefined ? `namespaces/${f.namespace}/pods/${f.pod}` : `pods/${f.pod}`;
    if (!line.includes(needle) && !line.includes(`"${f.pod}"`)) return false;
  } else if (f.namespace !== undefined && !line.includes(f.namespace)) {
    return false;
  }
  return f.user === undefined || line.includes(f.user);
}

/** True when the filter has at least one criterion. */
export function filterIsActive(f: ControlPlaneLogFilter | undefined): f is ControlPlaneLogFilter {
  return (
    !!f &&
    (f.namespace !== undefined || f.pod !== undefined || f.podUid !== undefined || f.user !== undefined)
  );
}
