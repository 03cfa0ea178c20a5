import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster, verifyEksToken } from '../../src/testing/index.js';
import { api } from './helpers.js';

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

async function presign(opts: {
  host?: string;
  region?: string;
  accessKeyId?: string;
  clusterName?: string;
  signHeader?: boolean;
  date?: number;
  sessionToken?: string;
  extraQuery?: Record<string, string>;
}): Promise<string> {
  const region = opts.region ?? 'us-east-1';
  const host = opts.host ?? `sts.${region}.amazonaws.com`;
  const signer = new SignatureV4({
    service: 'sts',
    region,
    sha256: Hash.bind(null, 'sha256'),
    credentials: {
      accessKeyId: opts.accessKeyId ?? 'AKIAFAKEFAKEFAKE0001',
      secretAccessKey: 'secret',
      ...(opts.sessionToken ? { sessionToken: opts.sessionToken } : {}),
    },
  });
  const req = new HttpRequest({
    method: 'GET',
    protocol: 'https:',
    hostname: host,
    path: '/',
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15', ...(opts.extraQuery ?? {}) },
    headers: { host, ...(opts.signHeader === false ? {} : { 'x-k8s-aws-id': opts.clusterName ?? 'demo' }) },
  });
  const signed = await signer.presign(req, { expiresIn: 60, signingDate: new Date(opts.date ?? NOW) });
  const qs = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  const url = `https://${host}/?${qs}`;
  return `k8s-aws-v1.${Buffer.from(url).toString('base64url')}`;
}

const tokenOf = (url: string): string => `k8s-aws-v1.${Buffer.from(url).toString('base64url')}`;
const clock = (): number => NOW + 60_000;
const reason = (token: string, partition?: string): string => {
  const r = verifyEksToken(token, { clock, partition });
  return r.ok ? 'ok' : r.reason;
};

describe('verifyEksToken (aws-iam-authenticator structural checks)', () => {
  it('accepts a presigned GetCallerIdentity token and extracts the access key', async () => {
    const token = await presign({ sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDJ+/=' });
    const r = verifyEksToken(token, { clock });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.claims.accessKeyId).toBe('AKIAFAKEFAKEFAKE0001');
    expect(r.claims.stsHost).toBe('sts.us-east-1.amazonaws.com');
    expect(r.claims.hasSessionToken).toBe(true);
    expect(r.claims.expiresAt.getTime()).toBe(NOW + 15 * 60_000);
  });

  it('accepts regional, FIPS, dual-stack and global hosts of the partition', async () => {
    for (const host of [
      'sts.eu-west-1.amazonaws.com',
      'sts-fips.us-east-1.amazonaws.com',
      'sts.us-west-2.api.aws',
      'sts.amazonaws.com',
    ]) {
      expect(reason(await presign({ host, region: 'us-east-1' })), host).toBe('ok');
    }
    expect(
      reason(await presign({ host: 'sts.cn-north-1.amazonaws.com.cn', region: 'cn-north-1' }), 'aws-cn'),
    ).toBe('ok');
    expect(reason(await presign({ host: 'sts.amazonaws.com' }), 'aws-cn')).toBe(
      'input token was not properly formatted: global endpoint unsupported in partition aws-cn',
    );
  });

  it('rejects each malformed token with the authenticator message', async () => {
    const good = await presign({});
    const url = Buffer.from(good.slice('k8s-aws-v1.'.length), 'base64url').toString();
    const f = 'input token was not properly formatted: ';
    expect(reason(`k8s-aws-v1.${'A'.repeat(5000)}`)).toBe(`${f}token is too large`);
    expect(reason(good.slice(3))).toBe(`${f}token is missing expected "k8s-aws-v1." prefix`);
    expect(reason(`k8s-aws-v1.${Buffer.from(url).toString('base64')}`)).toMatch(
      /^input token was not properly formatted: illegal base64 data at input byte \d+$/,
    );
    expect(reason(`${good}==`)).toMatch(/illegal base64 data/);
    expect(reason(tokenOf(url.replace('https://', 'http://')))).toBe(
      `${f}unexpected scheme "http" in pre-signed URL`,
    );
    expect(reason(tokenOf(url.replace('sts.us-east-1.amazonaws.com', 'sts.us-east-1.evil.com')))).toBe(
      `${f}partition {aws} does not support hostname sts.us-east-1.evil.com`,
    );
    expect(reason(tokenOf(url.replace('sts.us-east-1.amazonaws.com', 'sts.mars-east-1.amazonaws.com')))).toBe(
      `${f}unexpected hostname "sts.mars-east-1.amazonaws.com" in pre-signed URL`,
    );
    expect(reason(tokenOf(url.replace('amazonaws.com/?', 'amazonaws.com/x?')))).toBe(
      `${f}unexpected path in pre-signed URL`,
    );
    expect(reason(tokenOf(`${url}&Foo=bar`))).toBe(`${f}non-whitelisted query parameter "Foo"`);
    expect(reason(tokenOf(`${url}&action=GetCallerIdentity`))).toMatch(
      /duplicate query parameter found: "(action|Action)"/,
    );
    expect(reason(tokenOf(url.replace('Action=GetCallerIdentity', 'Action=AssumeRole')))).toBe(
      `${f}unexpected action parameter in pre-signed URL`,
    );
    expect(reason(await presign({ signHeader: false }))).toBe(
      `${f}client did not sign the x-k8s-aws-id header in the pre-signed URL`,
    );
    expect(reason(tokenOf(url.replace('X-Amz-Expires=60', 'X-Amz-Expires=901')))).toBe(
      `${f}invalid X-Amz-Expires parameter in pre-signed URL: 901`,
    );
    expect(reason(tokenOf(url.replace(/&X-Amz-Date=[^&]+/, '')))).toBe(
      `${f}X-Amz-Date parameter must be present in pre-signed URL`,
    );
    const old = await presign({ date: NOW - 16 * 60_000 });
    expect(reason(old)).toMatch(
      /^input token was not properly formatted: X-Amz-Date parameter is expired \(15 minute expiration\) \d{8}T\d{6}Z$/,
    );
  });
});

describe('FakeCluster with EKS tokens', () => {
  let cluster: FakeCluster;
  let now = NOW;
  beforeAll(async () => {
    cluster = await FakeCluster.start({
      clock: () => now,
      users: [{ name: 'responder', rules: [{ verbs: ['get', 'list'], resources: ['pods'] }] }],
      eks: {
        clusterName: 'demo',
        principals: [
          {
            accessKeyId: 'AKIAFAKEFAKEFAKE0001',
            arn: 'arn:aws:iam::111122223333:role/ir',
            username: 'responder',
            groups: ['ir-team'],
          },
        ],
      },
    });
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('maps the signing access key to the principal, with RBAC of that user', async () => {
    const token = await presign({});
    const list = await api(cluster, 'GET', '/api/v1/namespaces/default/pods', { token });
    expect(list.status).toBe(200);
    const who = await api(cluster, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      token,
      body: '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
    });
    expect(who.status).toBe(201);
    const info = JSON.parse(who.body).status.userInfo;
    expect(info.username).toBe('responder');
    expect(info.groups).toEqual(['ir-team', 'system:authenticated']);
    expect(info.extra.arn).toEqual(['arn:aws:iam::111122223333:role/ir']);
    const nodes = await api(cluster, 'GET', '/api/v1/nodes', { token });
    expect(nodes.status).toBe(403);
  });

  it('unmapped keys, bad tokens and expired tokens get the 401 Status', async () => {
    const expected =
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}';
    const unmapped = await api(cluster, 'GET', '/api/v1/pods', {
      token: await presign({ accessKeyId: 'AKIAOTHEROTHEROTHER1' }),
    });
    expect(unmapped.status).toBe(401);
    expect(unmapped.body).toBe(expected);
    const token = await presign({});
    now = NOW + 16 * 60_000;
    const expired = await api(cluster, 'GET', '/api/v1/pods', { token });
    expect(expired.status).toBe(401);
    expect(expired.body).toBe(expected);
    now = NOW;
    expect((await api(cluster, 'GET', '/api/v1/pods', { token })).status).toBe(200);
  });
});
