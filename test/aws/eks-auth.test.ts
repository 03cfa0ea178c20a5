import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeEksToken, memoizeCredentials } from '../../src/entries/auth.js';
import { ConfigError, TokenTooLargeError } from '../../src/entries/errors.js';
import type { AwsCredentials } from '../../src/entries/types.js';
import { EksAuth } from '../../src/index.js';
import { skipWithoutPeer } from '../support/peers.js';

const AKID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const T0 = new Date('2024-01-01T00:00:00Z');
const fixedClock = () => new Date(T0);

interface RefCase {
  label: string;
  region: string;
  clusterName?: string;
  clusterId?: string;
  sessionToken?: string;
  time?: string;
}

// A session token shaped like a real one: '+', '/' and '=' must be percent-encoded and signed.
const SESSION =
  'FQoGZXIvYXdzEBYaD5yj0FMA8k0tsgV5NE6fuaZLaaun9gAjgWTW8CD+8enx6tC40UsgWg8IyfW6UzjXGGF30r2K5F9T2cQA/DRVXu/Z4d1sjZjpuHGDylXK+dyFIgd5/fbLWlnxOQwuIbufe/xrzIexOywTiITYhDNY+fmAMtJBbgUWvSCo7V32ULKHMa1VRxpQIgmp==';

const CASES: RefCase[] = [
  { label: 'regional us-east-1', region: 'us-east-1', clusterName: 'demo' },
  { label: 'session token', region: 'us-east-1', clusterName: 'demo', sessionToken: SESSION },
  { label: 'another region', region: 'eu-west-1', clusterName: 'prod-cluster' },
  {
    label: 'opt-in region + odd time',
    region: 'ap-southeast-4',
    clusterName: 'x',
    time: '2026-11-22T23:59:59Z',
  },
  { label: 'aws-cn partition', region: 'cn-north-1', clusterName: 'demo' },
  { label: 'aws-us-gov partition', region: 'us-gov-west-1', clusterName: 'demo', sessionToken: SESSION },
  { label: 'cluster id (Outposts)', region: 'us-west-2', clusterId: '3f2504e0-4f89-11d3-9a0c-0305e82c3301' },
];

function botocoreMissing(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import botocore, awscli.customizations.eks.get_token'], {
    encoding: 'utf8',
  });
  if (r.error) return `python3 not runnable: ${r.error.message}`;
  if (r.status !== 0) return `python3 cannot import botocore/awscli: ${r.stderr.trim().split('\n').pop()}`;
  return undefined;
}

function paramsOf(token: string): Map<string, string> {
  const { params } = decodeEksToken(token);
  return new Map(params);
}

describe('EksAuth token format (fixed vectors, research Appendix A)', () => {
  it('vector A: byte-identical token', async () => {
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET },
      clock: fixedClock,
    });
    const t = await auth.getToken({ clusterName: 'demo' });
    expect(t.token).toBe(
      'k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lBSU9TRk9ETk43RVhBTVBMRSUyRjIwMjQwMTAxJTJGdXMtZWFzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNDAxMDFUMDAwMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9MzFjM2M5YWY5ZDc5MTk0ZmE3OGIyYmU3NWNlZTQzMDY5YjIyOGY3NmEzZTJlNTM4ZTg4OGQ5NjAxNjE1YTZiMA',
    );
    expect(t.expiresAt.toISOString()).toBe('2024-01-01T00:14:00.000Z');
  });

  it('vector B: session token signed, same signature as botocore', async () => {
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: {
        accessKeyId: AKID,
        secretAccessKey: SECRET,
        sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE+session/token==',
      },
      clock: fixedClock,
    });
    const p = paramsOf((await auth.getToken({ clusterName: 'demo' })).token);
    expect(p.get('X-Amz-Signature')).toBe('9959206715e968b1c497360d936aa6cec3d19cb19694620dbc46b0d76af6e8af');
    expect(p.get('X-Amz-Security-Token')).toBe('IQoJb3JpZ2luX2VjEXAMPLE+session/token==');
  });

  it('vector C: eu-west-1 host and scope', async () => {
    const auth = new EksAuth({
      region: 'eu-west-1',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET },
      clock: fixedClock,
    });
    const { url, params } = decodeEksToken((await auth.getToken({ clusterName: 'prod-cluster' })).token);
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(new Map(params).get('X-Amz-Signature')).toBe(
      '626f53bdabf83b8b12b069ec1e12a17f407cc4edbb19897cdc83524726720f20',
    );
  });

  it('obeys the verifier rules: https, path /, allow-listed params, host;x-k8s-aws-id signed, expires 60, no padding', async () => {
    const auth = new EksAuth({
      region: 'ap-south-2',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: SESSION },
      clock: fixedClock,
    });
    const { token } = await auth.getToken({ clusterName: 'c' });
    expect(token).toMatch(/^k8s-aws-v1\.[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThanOrEqual(4096);
    const { url, params } = decodeEksToken(token);
    expect(url.protocol).toBe('https:');
    expect(url.pathname).toBe('/');
    const allowed = [
      'action',
      'version',
      'x-amz-algorithm',
      'x-amz-credential',
      'x-amz-date',
      'x-amz-expires',
      'x-amz-security-token',
      'x-amz-signature',
      'x-amz-signedheaders',
    ];
    for (const [k] of params) expect(allowed).toContain(k.toLowerCase());
    expect(new Set(params.map(([k]) => k.toLowerCase())).size).toBe(params.length);
    const p = new Map(params);
    expect(p.get('Action')).toBe('GetCallerIdentity');
    expect(p.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
    expect(p.get('X-Amz-Expires')).toBe('60');
    expect(p.get('X-Amz-Credential')).toBe(`${AKID}/20240101/ap-south-2/sts/aws4_request`);
  });

  it('rejects a missing cluster and bad regions/endpoints', async () => {
    expect(() => new EksAuth({ region: 'nowhere' })).toThrow(ConfigError);
    expect(() => new EksAuth({ region: 'us-east-1', stsEndpoint: 'http://sts.example.com' })).toThrow(
      /https/,
    );
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET },
    });
    await expect(auth.getToken({ clusterName: '' })).rejects.toThrow(ConfigError);
  });

  it('uses an stsEndpoint override as the token host', async () => {
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET },
      stsEndpoint: 'https://sts-fips.us-east-1.amazonaws.com',
      clock: fixedClock,
    });
    expect(decodeEksToken((await auth.getToken({ clusterName: 'demo' })).token).url.host).toBe(
      'sts-fips.us-east-1.amazonaws.com',
    );
  });
});

const missing = botocoreMissing();
describe.skipIf(skipWithoutPeer('python3+botocore', missing))(
  'EksAuth vs botocore (awscli TokenGenerator)',
  () => {
    let reference: string[] = [];
    beforeAll(() => {
      const script = fileURLToPath(new URL('./botocore_ref.py', import.meta.url));
      const input = CASES.map((c) => ({
        time: c.time ?? '2024-01-01T00:00:00Z',
        accessKeyId: AKID,
        secretAccessKey: SECRET,
        sessionToken: c.sessionToken,
        region: c.region,
        clusterName: c.clusterName,
        clusterId: c.clusterId,
      }));
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_STS_REGIONAL_ENDPOINTS: 'regional',
      };
      const out = execFileSync('python3', [script], { input: JSON.stringify(input), env, encoding: 'utf8' });
      reference = JSON.parse(out) as string[];
      expect(reference).toHaveLength(CASES.length);
    });

    for (const [i, c] of CASES.entries()) {
      it(`${c.label}: same URL, query and signature as botocore`, async () => {
        const creds: AwsCredentials = {
          accessKeyId: AKID,
          secretAccessKey: SECRET,
          sessionToken: c.sessionToken,
        };
        const auth = new EksAuth({
          region: c.region,
          credentials: creds,
          clock: () => new Date(c.time ?? '2024-01-01T00:00:00Z'),
        });
        const ours = (
          await auth.getToken(c.clusterId ? { clusterId: c.clusterId } : { clusterName: c.clusterName ?? '' })
        ).token;
        const ref = reference[i] ?? '';
        const a = decodeEksToken(ours);
        const b = decodeEksToken(ref);
        expect(a.url.origin).toBe(b.url.origin);
        expect(a.url.pathname).toBe(b.url.pathname);
        expect(Object.fromEntries(a.params)).toEqual(Object.fromEntries(b.params));
        expect(new Map(a.params).get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
        // we serialise in botocore's parameter order, so even the token string is identical
        expect(ours).toBe(ref);
      });
    }
  },
);

describe('EksAuth caching and refresh', () => {
  function clockAt(start: Date) {
    let now = start.getTime();
    return {
      clock: () => new Date(now),
      advance: (ms: number) => {
        now += ms;
      },
    };
  }
  const creds = { accessKeyId: AKID, secretAccessKey: SECRET };

  it('reuses a token until 13 minutes, then signs a new one', async () => {
    const c = clockAt(T0);
    const auth = new EksAuth({ region: 'us-east-1', credentials: creds, clock: c.clock });
    const a = await auth.getToken({ clusterName: 'demo' });
    c.advance(12 * 60_000);
    const b = await auth.getToken({ clusterName: 'demo' });
    expect(b.token).toBe(a.token);
    c.advance(60_000 + 1);
    const d = await auth.getToken({ clusterName: 'demo' });
    expect(d.token).not.toBe(a.token);
    expect(paramsOf(d.token).get('X-Amz-Date')).toBe('20240101T001300Z');
    expect(d.expiresAt.toISOString()).toBe('2024-01-01T00:27:00.000Z');
  });

  it('keys the cache by cluster, region and principal', async () => {
    const c = clockAt(T0);
    let key = AKID;
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: async () => ({
        accessKeyId: key,
        secretAccessKey: SECRET,
        expiration: new Date(T0.getTime() + 3600_000),
      }),
      clock: c.clock,
    });
    const a = await auth.getToken({ clusterName: 'one' });
    const b = await auth.getToken({ clusterName: 'two' });
    const r = await auth.getToken({ clusterName: 'one', region: 'eu-west-1' });
    expect(new Set([a.token, b.token, r.token]).size).toBe(3);
    expect(decodeEksToken(r.token).url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect((await auth.getToken({ clusterName: 'one' })).token).toBe(a.token);
    // credentials rotate to another principal once the memoized ones near expiry
    key = 'AKIAOTHERPRINCIPAL01';
    c.advance(56 * 60_000);
    const other = await auth.getToken({ clusterName: 'one' });
    expect(paramsOf(other.token).get('X-Amz-Credential')).toMatch(/^AKIAOTHERPRINCIPAL01\//);
  });

  it('concurrent callers share one signing', async () => {
    let ticks = 0;
    // every clock read moves time by one second, so two signings could never yield the same token
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: creds,
      clock: () => new Date(T0.getTime() + 1000 * ticks++),
    });
    const tokens = await Promise.all(Array.from({ length: 8 }, () => auth.getToken({ clusterName: 'demo' })));
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
    expect(tokens.every((t) => t === tokens[0])).toBe(true);
  });

  it('invalidate() forces a new signing', async () => {
    const c = clockAt(T0);
    const auth = new EksAuth({ region: 'us-east-1', credentials: creds, clock: c.clock });
    const a = await auth.getToken({ clusterName: 'demo' });
    c.advance(5000);
    auth.invalidate({ clusterName: 'demo' });
    expect((await auth.getToken({ clusterName: 'demo' })).token).not.toBe(a.token);
  });

  it('memoizeCredentials calls the provider once until 5 minutes before expiry, sharing concurrent calls', async () => {
    const c = clockAt(T0);
    let calls = 0;
    const provider = memoizeCredentials(
      async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 5));
        return {
          accessKeyId: `ASIA${calls}`,
          secretAccessKey: 's',
          sessionToken: 't',
          expiration: new Date(c.clock().getTime() + 3600_000),
        };
      },
      { clock: c.clock },
    );
    const [x, y] = await Promise.all([provider(), provider()]);
    expect(calls).toBe(1);
    expect(x).toBe(y);
    c.advance(54 * 60_000);
    expect((await provider()).accessKeyId).toBe('ASIA1');
    c.advance(2 * 60_000);
    expect((await provider()).accessKeyId).toBe('ASIA2');
    expect(calls).toBe(2);
  });

  it('fails clearly when the token would exceed 4096 bytes, without leaking the session token', async () => {
    const huge = `IQoJ${'x'.repeat(3500)}`;
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: huge },
      clock: fixedClock,
    });
    const err = await auth.getToken({ clusterName: 'demo' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenTooLargeError);
    const e = err as TokenTooLargeError;
    expect(e.code).toBe('EKSF_TOKEN_TOO_LARGE');
    expect(e.bytes).toBeGreaterThan(4096);
    expect(e.message).toMatch(/4096-byte limit/);
    expect(e.message).toMatch(/session tags/);
    expect(`${e.message}${inspect(e)}`).not.toContain('x'.repeat(50));
  });
});

describe('EksAuth secrets hygiene and exec plugin output', () => {
  const session = 'SESSIONTOKENSECRET+abc/def==';
  const creds = { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: session };

  it('never shows tokens or keys in inspect, toString or JSON', async () => {
    const auth = new EksAuth({ region: 'us-east-1', credentials: creds, clock: fixedClock });
    const t = await auth.getToken({ clusterName: 'demo' });
    const body = t.token.slice('k8s-aws-v1.'.length, 60);
    const shown = [
      inspect(auth, { depth: 10, showHidden: true }),
      String(auth),
      JSON.stringify(auth),
      inspect(t, { depth: 10, showHidden: true }),
      String(t),
      JSON.stringify(t),
      JSON.stringify({ t }),
      `${t}`,
    ].join('\n');
    expect(shown).not.toContain(body);
    expect(shown).not.toContain(SECRET);
    expect(shown).not.toContain('SESSIONTOKENSECRET');
    expect(shown).toContain('demo');
    expect(t.token.startsWith('k8s-aws-v1.')).toBe(true);
  });

  it('logs no token, signature or key', async () => {
    const lines: string[] = [];
    const log = (obj: Record<string, unknown>, msg?: string) =>
      lines.push(`${JSON.stringify(obj)} ${msg ?? ''}`);
    const auth = new EksAuth({
      region: 'us-east-1',
      credentials: creds,
      clock: fixedClock,
      logger: { debug: log, info: log, warn: log, error: log },
    });
    const t = await auth.getToken({ clusterName: 'demo' });
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('\n');
    expect(all).toContain('demo');
    expect(all).not.toContain(t.token.slice(11, 60));
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('SESSIONTOKENSECRET');
    expect(all).not.toContain(paramsOf(t.token).get('X-Amz-Signature') ?? 'x');
  });

  it('execCredential matches `aws eks get-token` output and echoes KUBERNETES_EXEC_INFO', async () => {
    const auth = new EksAuth({ region: 'us-east-1', credentials: creds, clock: fixedClock });
    const cred = await auth.execCredential(
      { clusterName: 'demo' },
      { apiVersion: 'client.authentication.k8s.io/v1' },
    );
    expect(cred).toMatchObject({
      kind: 'ExecCredential',
      apiVersion: 'client.authentication.k8s.io/v1',
      spec: {},
      status: { expirationTimestamp: '2024-01-01T00:14:00Z' },
    });
    expect(cred.status.token).toBe((await auth.getToken({ clusterName: 'demo' })).token);
    const prev = process.env.KUBERNETES_EXEC_INFO;
    try {
      process.env.KUBERNETES_EXEC_INFO = JSON.stringify({
        apiVersion: 'client.authentication.k8s.io/v1alpha1',
      });
      expect((await auth.execCredential({ clusterName: 'demo' })).apiVersion).toBe(
        'client.authentication.k8s.io/v1alpha1',
      );
      delete process.env.KUBERNETES_EXEC_INFO;
      expect((await auth.execCredential({ clusterName: 'demo' })).apiVersion).toBe(
        'client.authentication.k8s.io/v1beta1',
      );
    } finally {
      if (prev === undefined) delete process.env.KUBERNETES_EXEC_INFO;
      else process.env.KUBERNETES_EXEC_INFO = prev;
    }
  });
});
