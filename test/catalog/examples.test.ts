import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsx = `${repo}node_modules/.bin/tsx`;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      tsx,
      args,
      { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } },
      (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// Both examples use moto_server when it is installed and fall back to FakeAws otherwise.
describe('examples in --local mode', () => {
  it('list-clusters finds the clusters of two regions and of the assumed-role account', {
    timeout: 150_000,
  }, async () => {
    const r = await run(['examples/list-clusters.ts', '--local', '--json']);
    expect(r.stderr).toMatch(/local AWS: /);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      clusters: Array<{ account: string; region: string; name: string; reachability: string; via: string }>;
      problems: unknown[];
    };
    expect(out.problems).toEqual([]);
    expect(out.clusters.map((c) => `${c.account}/${c.region}/${c.name}/${c.reachability}`).sort()).toEqual([
      '123456789012/eu-west-1/analytics/private-only',
      '123456789012/us-east-1/payments-prod/public',
      '222222222222/us-east-1/partner-shared/public',
    ]);
  });

  it('check-access shows a ready principal, a missing pods/exec, and the 401 remediation', {
    timeout: 150_000,
  }, async () => {
    const r = await run(['examples/check-access.ts', '--local']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kubernetes user : responder/);
    expect(r.stdout).toMatch(/ready for acquisition/);
    expect(r.stdout).toMatch(/MISSING +get pods\/exec/);
    expect(r.stdout).toMatch(/NOT ready for acquisition/);
    expect(r.stdout).toMatch(/is not configured to authorize with this EKS cluster/);
    expect(r.stdout).toMatch(/aws eks create-access-entry/);
    expect(r.stdout).toMatch(/eksctl create iamidentitymapping/);
    expect(r.stdout).not.toMatch(/k8s-aws-v1\.[A-Za-z0-9_-]{20}/);
  });
});
