import { type ForbiddenDetail, ForbiddenError, NotMappedError, UnauthorizedError } from '../errors.js';
import {
  accessEntryCommands,
  canonicalPrincipalArn,
  clusterRoleYaml,
  DEFAULT_RBAC_GROUP,
  eksctlMappingCommand,
  enableAccessEntriesCommand,
} from './permissions.js';
import type { PermissionCheck } from './types.js';

/** What the explanations need to know about the cluster. */
export interface ExplainContext {
  /** Cluster name. */
  clusterName: string;
  /** Cluster ARN (for the message). */
  clusterArn?: string | undefined;
  /** Region. */
  region: string;
  /** Authentication mode from DescribeCluster, when known. */
  authenticationMode?: string | undefined;
  /** IAM principal that signed the token (sts:GetCallerIdentity), when known. */
  principalArn?: string | undefined;
  /** RBAC group to recommend. Default `cado`. */
  group?: string | undefined;
}

const explained = new WeakSet<object>();

function indent(lines: readonly string[], by = '    '): string {
  return lines.map((l) => `${by}${l}`).join('\n');
}

/** The two ways to map an IAM principal, ordered and annotated for the cluster's authentication mode. */
export function mappingRemediation(ctx: ExplainContext): string {
  const principal = ctx.principalArn
    ? canonicalPrincipalArn(ctx.principalArn)
    : '<your IAM role or user ARN>';
  const group = ctx.group ?? DEFAULT_RBAC_GROUP;
  const target = { clusterName: ctx.clusterName, region: ctx.region, principalArn: principal, group };
  const mode = ctx.authenticationMode;
  const entry = [
    `Access entry (authentication mode API or API_AND_CONFIG_MAP${mode === 'CONFIG_MAP' ? `; this cluster is CONFIG_MAP, switch first with: ${enableAccessEntriesCommand(target)}` : ''}):`,
    indent(accessEntryCommands(target).slice(0, 1)),
    '    and either bind the group with the ClusterRole below (least privilege) or grant an EKS access policy (broader, includes write access):',
    indent(accessEntryCommands(target).slice(1)),
  ].join('\n');
  const awsAuth = [
    `aws-auth ConfigMap mapping (authentication mode CONFIG_MAP or API_AND_CONFIG_MAP${mode === 'API' ? '; this cluster is API-only and ignores aws-auth' : ''}):`,
    indent([eksctlMappingCommand(target)]),
  ].join('\n');
  const ordered = mode === 'CONFIG_MAP' ? [awsAuth, entry] : [entry, awsAuth];
  return [
    `Authentication mode: ${mode ?? 'unknown (DescribeCluster did not say; CONFIG_MAP unless changed)'}.`,
    'Fix it with either of (as a cluster administrator):',
    `  1. ${ordered[0]}`,
    `  2. ${ordered[1]}`,
    `Then give group "${group}" the permissions acquisition needs:`,
    indent(clusterRoleYaml({ group }).trimEnd().split('\n')),
    'A role created with an IAM path must be mapped without the path in aws-auth (access entries take the full ARN).',
  ].join('\n');
}

/**
 * Turns a 401 from the cluster into a {@link NotMappedError} whose message names the IAM
 * principal and shows both fixes (access entry, aws-auth mapping).
 */
export function explainUnauthorized(err: UnauthorizedError, ctx: ExplainContext): NotMappedError {
  const who = ctx.principalArn
    ? `The IAM principal ${ctx.principalArn}${canonicalPrincipalArn(ctx.principalArn) !== ctx.principalArn ? ` (role ${canonicalPrincipalArn(ctx.principalArn)})` : ''}`
    : 'The IAM principal signing the token (sts:GetCallerIdentity could not be read)';
  const message = [
    `${who} is not configured to authorize with this EKS cluster: ${ctx.clusterName}${ctx.clusterArn ? ` (${ctx.clusterArn})` : ''} answered 401 Unauthorized.`,
    'It has no access entry and no aws-auth mapping (other causes: a token for another cluster name, clock skew, expired credentials).',
    mappingRemediation(ctx),
  ].join('\n');
  return new NotMappedError(message, {
    cause: err,
    status: err.status,
    httpStatus: err.httpStatus ?? 401,
    principalArn: ctx.principalArn,
  });
}

function describeDenied(d: ForbiddenDetail): string {
  const res = `${d.resource ?? 'the resource'}${d.subresource ? `/${d.subresource}` : ''}`;
  const where = d.namespace ? `in namespace "${d.namespace}"` : 'cluster-wide';
  return `"${d.verb ?? 'this action'}" on "${res}" ${where}`;
}

/**
 * Turns a 403 into a {@link ForbiddenError} naming the missing verb/resource/namespace and
 * showing the ClusterRole/ClusterRoleBinding YAML that grants it.
 */
export function explainForbidden(err: ForbiddenError, ctx: ExplainContext): ForbiddenError {
  const d = err.denied;
  const group = ctx.group ?? DEFAULT_RBAC_GROUP;
  const user = d.user ? `user "${d.user}"` : 'this identity';
  const message = [
    `EKS cluster ${ctx.clusterName} denied ${user}${ctx.principalArn ? ` (IAM ${ctx.principalArn})` : ''} ${describeDenied(d)} (403 Forbidden).`,
    `Grant it by mapping the principal into group "${group}" and applying (kubectl apply -f -):`,
    indent(
      clusterRoleYaml({ group, includeEphemeralContainers: d.subresource === 'ephemeralcontainers' })
        .trimEnd()
        .split('\n'),
    ),
  ].join('\n');
  const out = new ForbiddenError(message, {
    cause: err,
    status: err.status,
    httpStatus: err.httpStatus ?? 403,
    denied: d,
  });
  explained.add(out);
  return out;
}

/** Rewrites 401/403 errors with remediation; other errors are returned unchanged. */
export function explainAccessError(err: unknown, ctx: ExplainContext): unknown {
  if (err instanceof NotMappedError) return err;
  if (err instanceof UnauthorizedError) return explainUnauthorized(err, ctx);
  if (err instanceof ForbiddenError && !explained.has(err)) return explainForbidden(err, ctx);
  return err;
}

/** Remediation text for a preflight: what is missing and how to grant it. */
export function permissionsRemediation(missing: readonly PermissionCheck[], ctx: ExplainContext): string {
  if (missing.length === 0) return '';
  const group = ctx.group ?? DEFAULT_RBAC_GROUP;
  const list = missing.map(
    (m) =>
      `  - ${m.verb} ${m.resource}${m.subresource ? `/${m.subresource}` : ''}${m.namespace ? ` in namespace ${m.namespace}` : ''}${m.required ? '' : ' (optional)'}: ${m.purpose}`,
  );
  const ephemeral = missing.some((m) => m.subresource === 'ephemeralcontainers');
  return [
    `Missing on EKS cluster ${ctx.clusterName}:`,
    ...list,
    `Apply this ClusterRole and ClusterRoleBinding (kubectl apply -f -) and make sure the IAM principal is in group "${group}":`,
    indent(clusterRoleYaml({ group, includeEphemeralContainers: ephemeral }).trimEnd().split('\n')),
  ].join('\n');
}
