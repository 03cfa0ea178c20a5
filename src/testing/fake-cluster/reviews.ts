/**
 * SelfSubjectReview (who am I) and SelfSubjectAccessReview (may I), answered from the
 * authenticator's users and rules.
 *
 * @module
 */
import { authorizeOrThrow, maxBodyBytes, type RequestContext } from './context.js';
import { invalid, methodNotAllowed, readBody, writeJson } from './http.js';
import type { Authenticator, AuthUser } from './rbac.js';
import type { KubeJsonObject } from './types.js';

function selfSubjectReview(user: AuthUser): KubeJsonObject {
  const userInfo: KubeJsonObject = { username: user.username, uid: user.uid, groups: user.groups };
  if (Object.keys(user.extra).length > 0) userInfo.extra = user.extra;
  return {
    kind: 'SelfSubjectReview',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { creationTimestamp: null },
    status: { userInfo },
  };
}

function accessReview(auth: Authenticator, user: AuthUser, body: unknown): KubeJsonObject {
  const spec = (body && typeof body === 'object' ? (body as KubeJsonObject).spec : undefined) as
    | KubeJsonObject
    | undefined;
  const attrs = spec && typeof spec === 'object' ? spec : {};
  const ra = attrs.resourceAttributes as Record<string, unknown> | undefined;
  const nra = attrs.nonResourceAttributes as Record<string, unknown> | undefined;
  if (!ra && !nra) {
    throw invalid(
      'SelfSubjectAccessReview',
      '',
      'spec.resourceAttributes',
      'FieldValueRequired',
      'Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified',
    );
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
  let result: { allowed: boolean; reason: string };
  if (ra) {
    result = auth.authorize(user, {
      verb: str(ra.verb) ?? '',
      resource: str(ra.resource) ?? '',
      subresource: str(ra.subresource),
      namespace: str(ra.namespace),
      name: str(ra.name),
      apiGroup: typeof ra.group === 'string' ? ra.group : '',
    });
  } else {
    const isMaster = user.groups.includes('system:masters');
    result =
      isMaster || str(nra?.verb) === 'get' ? { allowed: true, reason: '' } : { allowed: false, reason: '' };
  }
  const st: KubeJsonObject = { allowed: result.allowed };
  if (result.reason) st.reason = result.reason;
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: st,
  };
}

/** Route: `POST /apis/authentication.k8s.io/v1/selfsubjectreviews` and `/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`. */
export async function serveReviews(ctx: RequestContext): Promise<boolean> {
  const { seg } = ctx;
  if (!(seg[0] === 'apis' && seg[2] === 'v1' && seg.length === 4)) return false;
  const group = seg[1] ?? '';
  const resource = seg[3] ?? '';
  if (
    !(
      (group === 'authorization.k8s.io' && resource === 'selfsubjectaccessreviews') ||
      (group === 'authentication.k8s.io' && resource === 'selfsubjectreviews')
    )
  ) {
    return false;
  }
  if (ctx.method !== 'POST') throw methodNotAllowed();
  authorizeOrThrow(ctx, ctx.user, { verb: 'create', resource, apiGroup: group });
  const body = await readBody(ctx.req, maxBodyBytes(ctx));
  writeJson(
    ctx.res,
    201,
    resource === 'selfsubjectreviews' ? selfSubjectReview(ctx.user) : accessReview(ctx.auth, ctx.user, body),
  );
  return true;
}
