/**
 * Authentication (static tokens, EKS tokens) and RBAC-style authorization for FakeCluster.
 *
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ConfigError } from '../../errors.js';
import { EKS_TOKEN_PREFIX, verifyEksToken } from './eks-token.js';
import type { FakeClusterOptions, FakeRbacRule, KubeJsonObject } from './types.js';

/** An authenticated user. */
export interface AuthUser {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
  rules: readonly FakeRbacRule[];
}

/** What a request asks to do. */
export interface RequestAttributes {
  verb: string;
  resource: string;
  subresource?: string | undefined;
  namespace?: string | undefined;
  name?: string | undefined;
  apiGroup: string;
}

const ALL: FakeRbacRule = { verbs: ['*'], resources: ['*'] };
const SELF_REVIEW_RESOURCES = new Set([
  'selfsubjectaccessreviews',
  'selfsubjectrulesreviews',
  'selfsubjectreviews',
]);

function resourceMatches(ruleResource: string, resource: string, subresource: string | undefined): boolean {
  const full = subresource ? `${resource}/${subresource}` : resource;
  // Same as RBAC's ResourceMatches: `*`, an exact `resource[/subresource]`, or `*/subresource`.
  if (ruleResource === '*' || ruleResource === full) return true;
  return subresource !== undefined && ruleResource === `*/${subresource}`;
}

function ruleAllows(rule: FakeRbacRule, a: RequestAttributes): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(a.verb)) return false;
  if (!rule.resources.some((r) => resourceMatches(r, a.resource, a.subresource))) return false;
  if (rule.apiGroups && !rule.apiGroups.includes('*') && !rule.apiGroups.includes(a.apiGroup)) return false;
  if (rule.namespaces && (a.namespace === undefined || !rule.namespaces.includes(a.namespace))) return false;
  if (rule.resourceNames && (a.name === undefined || !rule.resourceNames.includes(a.name))) return false;
  return true;
}

/** Users, tokens and rules of one FakeCluster. */
export class Authenticator {
  private readonly byToken = new Map<string, AuthUser>();
  private readonly tokens = new Map<string, string>();
  private readonly groupRules: Record<string, readonly FakeRbacRule[]>;

  constructor(
    private readonly options: FakeClusterOptions,
    private readonly clock: () => number,
    readonly adminToken: string = randomBytes(24).toString('hex'),
  ) {
    this.groupRules = { 'system:masters': [ALL], ...(options.groupRules ?? {}) };
    this.add('admin', adminToken, ['system:masters'], [], randomUUID());
    for (const u of options.users ?? []) {
      if (u.name === 'admin')
        throw new ConfigError('FakeCluster user name "admin" is reserved; pick another name');
      if (this.tokens.has(u.name)) throw new ConfigError(`FakeCluster user "${u.name}" is declared twice`);
      this.add(
        u.name,
        u.token ?? randomBytes(24).toString('hex'),
        [...(u.groups ?? [])],
        u.rules ?? [],
        u.uid,
      );
    }
  }

  private add(
    name: string,
    token: string,
    groups: string[],
    rules: readonly FakeRbacRule[],
    uid?: string,
  ): void {
    if (token.startsWith(EKS_TOKEN_PREFIX))
      throw new ConfigError(`token of user "${name}" may not look like an EKS token`);
    if (this.byToken.has(token))
      throw new ConfigError(`two FakeCluster users share a token (user "${name}")`);
    const allGroups = groups.includes('system:authenticated') ? groups : [...groups, 'system:authenticated'];
    this.byToken.set(token, {
      username: name,
      uid: uid ?? randomUUID(),
      groups: allGroups,
      extra: {},
      rules,
    });
    this.tokens.set(name, token);
  }

  /** Token of a static user. */
  tokenFor(user: string): string {
    const t = this.tokens.get(user);
    if (t === undefined)
      throw new ConfigError(`FakeCluster has no user "${user}"; declare it in options.users`);
    return t;
  }

  /** Resolves a bearer token to a user, or undefined (→ 401). */
  authenticate(authorization: string | undefined): AuthUser | undefined {
    if (!authorization) return undefined;
    const m = /^bearer\s+(\S+)\s*$/i.exec(authorization);
    const token = m?.[1];
    if (!token) return undefined;
    const user = this.byToken.get(token);
    if (user) return user;
    if (!token.startsWith(EKS_TOKEN_PREFIX) || !this.options.eks) return undefined;
    const eks = this.options.eks;
    const r = verifyEksToken(token, { partition: eks.partition, region: eks.region, clock: this.clock });
    if (!r.ok) return undefined;
    const principal = eks.principals.find((p) => p.accessKeyId === r.claims.accessKeyId);
    if (!principal) return undefined;
    const rules =
      principal.rules ?? (this.options.users ?? []).find((u) => u.name === principal.username)?.rules ?? [];
    const groups = [...(principal.groups ?? [])];
    if (!groups.includes('system:authenticated')) groups.push('system:authenticated');
    return {
      username: principal.username,
      uid: `aws-iam-authenticator:${principal.arn}`,
      groups,
      extra: {
        accessKeyId: [r.claims.accessKeyId],
        arn: [principal.arn],
        canonicalArn: [principal.arn],
        principalId: [r.claims.accessKeyId],
        sessionName: [''],
      },
      rules,
    };
  }

  /** Whether `user` may do `attrs`, and which rule allowed it. */
  authorize(user: AuthUser, attrs: RequestAttributes): { allowed: boolean; reason: string } {
    if (
      attrs.apiGroup.endsWith('.k8s.io') &&
      SELF_REVIEW_RESOURCES.has(attrs.resource) &&
      attrs.verb === 'create'
    ) {
      return {
        allowed: true,
        reason:
          'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated"',
      };
    }
    const idx = user.rules.findIndex((r) => ruleAllows(r, attrs));
    if (idx >= 0) return { allowed: true, reason: `RBAC: allowed by rule ${idx} of User "${user.username}"` };
    for (const g of user.groups) {
      const rules = this.groupRules[g] ?? [];
      const i = rules.findIndex((r) => ruleAllows(r, attrs));
      if (i >= 0) return { allowed: true, reason: `RBAC: allowed by rule ${i} of Group "${g}"` };
    }
    return { allowed: false, reason: '' };
  }
}

/** The kube-apiserver 401 Status body. */
export function unauthorizedStatus(): KubeJsonObject {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Unauthorized',
    reason: 'Unauthorized',
    code: 401,
  };
}

/** The kube-apiserver authorization-filter 403 Status body (`responsewriters.Forbidden`). */
export function forbiddenStatus(user: AuthUser, a: RequestAttributes, reason = ''): KubeJsonObject {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  let msg = `User "${user.username}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" ${scope}`;
  if (reason) msg = `${msg}: ${reason}`;
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const message = a.name
    ? `${qualified} "${a.name}" is forbidden: ${msg}`
    : `${qualified} is forbidden: ${msg}`;
  const details: KubeJsonObject = {};
  if (a.name) details.name = a.name;
  if (a.apiGroup) details.group = a.apiGroup;
  details.kind = a.resource;
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: 'Forbidden',
    details,
    code: 403,
  };
}
