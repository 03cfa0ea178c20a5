import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EksAuth, eksKubeconfig } from '../../src/index.js';
import { FakeCluster, verifyEksToken } from '../../src/testing/index.js';
import { skipWithoutPeer } from '../support/peers.js';

const AKID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));

describe("EksAuth tokens pass FakeCluster's aws-iam-authenticator checks", () => {
  const cases = [
    { region: 'us-east-1', partition: 'aws', session: undefined },
    { region: 'eu-west-1', partition: 'aws', session: 'FQoGZXIvYXdzE+abc/def==' },
    { region: 'ap-southeast-7', partition: 'aws', session: undefined },
    { region: 'cn-northwest-1', partition: 'aws-cn', session: undefined },
    { region: 'us-gov-east-1', partition: 'aws-us-gov', session: 'tok' },
  ];
  for (const c of cases) {
    it(`${c.region} (${c.partition})`, async () => {
      const now = new Date();
      const auth = new EksAuth({
        region: c.region,
        credentials: { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: c.session },
        clock: () => now,
      });
      const { token } = await auth.getToken({ clusterName: 'demo' });
      const r = verifyEksToken(token, {
        partition: c.partition,
        region: c.region,
        clock: () => now.getTime(),
      });
      expect(r).toMatchObject({ ok: true });
      if (!r.ok) return;
      expect(r.claims.accessKeyId).toBe(AKID);
      expect(r.claims.scopeRegion).toBe(c.region);
      expect(r.claims.hasSessionToken).toBe(c.session !== undefined);
      // the verifier rejects it once 15 minutes have passed, and in another partition
      const late = verifyEksToken(token, {
        partition: c.partition,
        clock: () => now.getTime() + 15 * 60_000 + 1000,
      });
      expect(late.ok).toBe(false);
      const other = verifyEksToken(token, { partition: c.partition === 'aws' ? 'aws-cn' : 'aws' });
      expect(other.ok).toBe(false);
      // and a padded token is malformed
      expect(verifyEksToken(`${token}==`, { partition: c.partition, clock: () => now.getTime() }).ok).toBe(
        false,
      );
    });
  }
});

describe('eksKubeconfig', () => {
  it('writes server, CA and an aws eks get-token exec user like update-kubeconfig', () => {
    const ca = Buffer.from('-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n').toString(
      'base64',
    );
    const text = eksKubeconfig(
      {
        name: 'prod',
        region: 'eu-west-1',
        endpoint: 'https://ABC.gr7.eu-west-1.eks.amazonaws.com',
        certificateAuthority: ca,
        arn: 'arn:aws:eks:eu-west-1:111111111111:cluster/prod',
      },
      { roleArn: 'arn:aws:iam::111111111111:role/ir', profile: 'ir' },
    );
    const doc = parse(text) as {
      clusters: Array<{ name: string; cluster: Record<string, string> }>;
      users: Array<{ user: { exec: { command: string; args: string[]; env: unknown; apiVersion: string } } }>;
      'current-context': string;
    };
    expect(doc['current-context']).toBe('arn:aws:eks:eu-west-1:111111111111:cluster/prod');
    expect(doc.clusters[0]?.cluster).toEqual({
      server: 'https://ABC.gr7.eu-west-1.eks.amazonaws.com',
      'certificate-authority-data': ca,
    });
    const exec = doc.users[0]?.user.exec;
    expect(exec?.command).toBe('aws');
    expect(exec?.apiVersion).toBe('client.authentication.k8s.io/v1beta1');
    expect(exec?.args).toEqual([
      '--region',
      'eu-west-1',
      'eks',
      'get-token',
      '--cluster-name',
      'prod',
      '--output',
      'json',
      '--role-arn',
      'arn:aws:iam::111111111111:role/ir',
    ]);
    expect(exec?.env).toEqual([{ name: 'AWS_PROFILE', value: 'ir' }]);
  });
});

function kubectlMissing(): string | undefined {
  const r = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (r.error) return `kubectl not runnable: ${r.error.message}`;
  return r.status === 0 ? undefined : `kubectl version exited ${r.status}`;
}

describe.skipIf(skipWithoutPeer('kubectl', kubectlMissing()))(
  'kubectl uses a kubeconfig whose exec plugin is built on EksAuth.execCredential',
  () => {
    let fc: FakeCluster;
    let dir: string;
    beforeAll(async () => {
      fc = await FakeCluster.start({
        eks: {
          clusterName: 'demo',
          principals: [
            { accessKeyId: AKID, arn: 'arn:aws:iam::123456789012:user/ir', username: 'ir', groups: ['ir'] },
          ],
        },
        groupRules: { ir: [{ verbs: ['get', 'list'], resources: ['pods'] }] },
      });
      await fc.addPod({ name: 'web', containers: [{ name: 'app', image: 'nginx:1.27' }] });
      dir = mkdtempSync(join(tmpdir(), 'eksf-kubeconfig-'));
    });
    afterAll(async () => {
      await fc?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('kubectl get pods authenticates with the EKS token', async () => {
      const plugin = join(dir, 'get-token.mts');
      writeFileSync(
        plugin,
        [
          `import { EksAuth } from ${JSON.stringify(join(repo, 'src/index.ts'))};`,
          `const auth = new EksAuth({ region: process.env.REGION ?? 'us-east-1' });`,
          `const cred = await auth.execCredential({ clusterName: process.argv[2] ?? '' });`,
          'process.stdout.write(JSON.stringify(cred));',
        ].join('\n'),
      );
      const kubeconfig = eksKubeconfig(
        {
          name: 'demo',
          region: 'us-east-1',
          certificateAuthority: fc.caData,
          endpoint: 'https://unused.example',
        },
        {
          server: fc.server,
          apiVersion: 'client.authentication.k8s.io/v1',
          exec: {
            command: join(repo, 'node_modules/.bin/tsx'),
            args: [plugin, 'demo'],
            env: { AWS_ACCESS_KEY_ID: AKID, AWS_SECRET_ACCESS_KEY: SECRET, REGION: 'us-east-1' },
          },
        },
      );
      const file = join(dir, 'config');
      writeFileSync(file, kubeconfig);
      const out = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
        execFile(
          'kubectl',
          ['--kubeconfig', file, 'get', 'pods', '-n', 'default', '-o', 'json'],
          { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, HOME: dir } },
          (err, stdout, stderr) => done({ code: err ? 1 : 0, stdout, stderr }),
        );
      });
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      const list = JSON.parse(out.stdout) as { items: Array<{ metadata: { name: string } }> };
      expect(list.items.map((p) => p.metadata.name)).toEqual(['web']);
      // the API server saw an EKS token from the mapped principal
      const auth = fc.requests.find((r) => r.url.startsWith('/api/v1/namespaces/default/pods'));
      expect(auth?.user).toBe('ir');
    });
  },
);
