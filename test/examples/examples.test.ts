/**
 * Every example runs in `--local` mode (FakeAws or moto_server + FakeCluster on 127.0.0.1) as a
 * real process, and what it prints is checked against the bundles it wrote.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyEvidence } from '../../src/index.js';
import { motoServerMissing } from '../../src/testing/index.js';
import { sandboxMissing } from '../sandbox/support.js';
import { skipWithoutPeer } from '../support/peers.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsx = join(repo, 'node_modules/.bin/tsx');
const scratch = mkdtempSync(join(tmpdir(), 'eksf-examples-'));

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(args: string[]): Promise<Run> {
  const started = Date.now();
  return new Promise((done) => {
    execFile(
      tsx,
      args,
      {
        cwd: repo,
        encoding: 'utf8',
        timeout: 170_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, NODE_NO_WARNINGS: '1', DEBUG: '' },
      },
      (err, stdout, stderr) =>
        done({
          code: err ? Number((err as { code?: number | string }).code ?? 1) || 1 : 0,
          stdout,
          stderr,
          ms: Date.now() - started,
        }),
    );
  });
}

const noSandbox = sandboxMissing();

describe('npm run demo (examples/demo.ts)', () => {
  it('acquires the namespace, verifies every bundle and shows the planted indicators', {
    timeout: 180_000,
  }, async () => {
    const out = join(scratch, 'demo');
    const r = await run(['examples/demo.ts', '--out', out]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack traces
    expect(r.stdout).toMatch(/\[6\/6\] verify +verifyEvidence re-hashed 2\/2 bundle\(s\): valid/);
    expect(r.stdout).toMatch(/targets +2 \(2 complete, 0 partial, 0 failed\)|targets +2 \(/);
    expect(r.stdout).toMatch(noSandbox ? /EMULATED workload/ : /sandbox runtime/);
    // the bundles it names exist and verify independently of the demo
    const locations = [...r.stdout.matchAll(/^ {4}\S+\/\S+: (\/\S+)$/gm)].map((m) => m[1] ?? '');
    expect(locations).toHaveLength(2);
    for (const loc of locations) {
      expect(existsSync(join(loc, 'manifest.json'))).toBe(true);
      expect((await verifyEvidence(loc)).status).toBe('unanchored');
    }
    expect(r.stdout).toMatch(/npx tsx examples\/verify-bundle\.ts \S+ --expected-sha256 [0-9a-f]{64}/);
    // the indicators come from the bundle, not from the lab
    expect(r.stdout).toContain('/etc/ld.so.preload: /usr/local/lib/libsystemd-helper.so');
    expect(r.stdout).toMatch(/\/root\/\.ssh\/authorized_keys: ssh-ed25519 \S+ root@kinsing/);
    expect(r.stdout).toMatch(/cron \/etc\/crontabs\/root: \*\/10 \* \* \* \*/);
    if (!noSandbox) {
      expect(r.stdout).toMatch(/deleted binary \/tmp\/\.x\/xmrig \(deleted\) runs as pid \d+/);
      expect(r.stdout).toMatch(/TCP established 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:4444 \(pid \d+\)/);
      expect(r.stdout).toMatch(/deleted binary \/var\/tmp\/\.rs\/sh \(deleted\)/);
    }
    expect(r.ms).toBeLessThan(120_000);
  });
});

describe('npm run demo -- --runtime emulated (the fallback when the sandbox cannot run)', () => {
  it('shows the emulated scenario, labelled, and nothing of this machine', { timeout: 180_000 }, async () => {
    const out = join(scratch, 'demo-emulated');
    const r = await run(['examples/demo.ts', '--out', out, '--runtime', 'emulated']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/\[1\/6\] lab +ready \(emulated runtime, FakeAws\)/);
    expect(r.stdout).toMatch(/runtime +EMULATED workload: canned files and \/proc/);
    expect(r.stdout).toMatch(/verifyEvidence re-hashed 2\/2 bundle\(s\): valid/);
    // honest about what an emulation cannot give: the bytes of the executables (deleted or hashed)
    expect(r.stdout).toMatch(/targets +2 \(0 complete, 2 partial, 0 failed\)/);
    expect(r.stdout).toMatch(/cart: partial \(containers\/cart\/proc\/exe-hashes\.json: truncated/);
    expect(r.stdout).toMatch(/app: partial \(.*containers\/app\/proc\/14\/exe\.bin: exit code 1\b/);
    // deterministic: the same processes and connections as the sandbox scenario, every run
    expect(r.stdout).toContain(
      'deleted binary /tmp/.x/xmrig (deleted) runs as pid 14: /tmp/.x/xmrig --url stratum+tcp://pool.example.invalid:3333',
    );
    expect(r.stdout).toContain('deleted binary /var/tmp/.rs/sh (deleted) runs as pid 18, 19, 20');
    expect(r.stdout).toContain('TCP established 127.0.0.1:40000 -> 127.0.0.1:4444 (pid 20)');
    expect(r.stdout).toContain('LD_PRELOAD=/usr/local/lib/libsystemd-helper.so in process 21');
    expect(r.stdout).toContain('/etc/ld.so.preload: /usr/local/lib/libsystemd-helper.so');
    expect(r.stdout).toMatch(/cron \/etc\/crontabs\/root: /);
    // the clean pod is clean, and nothing of this host (its processes, its temp folders) shows up
    expect(r.stdout).toMatch(/shop\/cart-\S+\/cart \(emulated\): nothing obvious/);
    expect(r.stdout).not.toMatch(/memfd:|eksf-lab-|runs as pid \d{3,}/);
    // the label travels with the evidence: custody's case id and the pod's own annotations
    const locations = [...r.stdout.matchAll(/^ {4}\S+\/\S+: (\/\S+)$/gm)].map((m) => m[1] ?? '');
    expect(locations).toHaveLength(2);
    for (const loc of locations) {
      const custody = JSON.parse(readFileSync(join(loc, 'custody.json'), 'utf8')) as { caseId?: string };
      expect(custody.caseId).toMatch(/^DEMO-EMULATED-/);
      expect(readFileSync(join(loc, 'pod', 'pod.json'), 'utf8')).toContain(
        '"lab.eks-forensics.dev/workload"',
      );
    }
  });
});

describe('npm run demo with a wrong flag', () => {
  it('prints usage text (not ERR_PARSE_ARGS_UNKNOWN_OPTION) and exits 2 for --local', {
    timeout: 60_000,
  }, async () => {
    const r = await run(['examples/demo.ts', '--local']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^unknown option --local\n\nusage: npm run demo -- /);
    expect(r.stderr).toMatch(/examples\/acquire-container\.ts --local/);
    expect(r.stderr).not.toMatch(/ERR_PARSE_ARGS|\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('--help prints the same usage on stdout and exits 0', { timeout: 60_000 }, async () => {
    const r = await run(['examples/demo.ts', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run demo -- \[--out DIR\] \[--runtime auto\|sandbox\|emulated\]/);
  });

  it('a bad --concurrency value is explained, with usage', { timeout: 60_000 }, async () => {
    const r = await run(['examples/demo.ts', '--concurrency', 'many']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--concurrency must be a whole number/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('examples/verify-bundle.ts --local', () => {
  it('verifies a fresh bundle and catches a modified and a missing file', { timeout: 180_000 }, async () => {
    const r = await run(['examples/verify-bundle.ts', '--local']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/as acquired: VALID/);
    expect(r.stdout).toMatch(/after tampering: INVALID/);
    expect(r.stdout).toMatch(/modified +pod\/pod\.json/);
    expect(r.stdout).toMatch(/missing +pod\/events\.json/);
    expect(r.stdout).toMatch(/tampering detected: OK/);
  });

  it('exits 1 with a one-line message for a location that does not exist', { timeout: 60_000 }, async () => {
    const r = await run(['examples/verify-bundle.ts', join(scratch, 'nope')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not exist/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

const skipMoto = skipWithoutPeer('moto_server', motoServerMissing());
const skipSandbox = skipWithoutPeer('bwrap', noSandbox);

describe.skipIf(skipMoto || skipSandbox)(
  'acquisition examples --local (moto_server + FakeCluster sandbox)',
  () => {
    it('acquire-container: one complete bundle that verifies', { timeout: 180_000 }, async () => {
      const out = join(scratch, 'acquire');
      const r = await run(['examples/acquire-container.ts', '--local', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/local: moto_server \(EKS \+ STS\)/);
      const report = JSON.parse(r.stdout) as {
        status: string;
        location: string;
        manifestSha256: string;
        verify: { status: string };
        artifacts: { complete: number };
      };
      expect(report.status).toBe('complete');
      expect(report.verify.status).toBe('valid');
      expect(report.location.startsWith(out)).toBe(true);
      expect(report.artifacts.complete).toBeGreaterThan(20);
      const v = await verifyEvidence(report.location, { expectedManifestSha256: report.manifestSha256 });
      expect(v.ok).toBe(true);
      const custody = JSON.parse(readFileSync(join(report.location, 'custody.json'), 'utf8')) as {
        cluster?: { name?: string };
      };
      expect(custody.cluster?.name).toBe('prod-payments');
    });

    it('sweep-namespace: both containers of the namespace, the hidden pod untouched', {
      timeout: 180_000,
    }, async () => {
      const out = join(scratch, 'sweep');
      const r = await run(['examples/sweep-namespace.ts', '--local', '--out', out, '--concurrency', '2']);
      expect(r.code, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {
        namespace: string;
        status: string;
        targets: Array<{ pod: string; container: string; status: string; verify: string }>;
      };
      expect(summary.namespace).toBe('shop');
      expect(summary.targets.map((t) => `${t.pod}/${t.container}:${t.status}:${t.verify}`).sort()).toEqual([
        'cart-6d4b7c9f5-k8p2m/cart:complete:valid',
        'payments-api-7f9c6d5b8-x2x4q/app:complete:valid',
      ]);
      expect(r.stdout).not.toMatch(/coredns/);
    });

    it('s3-sink: the bundle lands in moto S3 with Object Lock and verifies from S3', {
      timeout: 180_000,
    }, async () => {
      const r = await run(['examples/s3-sink.ts', '--local']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as {
        status: string;
        location: string;
        objectLock: { mode: string } | null;
        verify: { status: string; anchors: string[] };
      };
      expect(report.status).toBe('complete');
      expect(report.location).toMatch(/^s3:\/\/ir-evidence-local\/evidence\/[0-9a-f-]{36}\/$/);
      expect(report.objectLock?.mode).toBe('GOVERNANCE');
      expect(report.verify.status).toBe('valid');
      expect(report.verify.anchors).toContain('expected-manifest-sha256');
    });

    it('acquire-container: a missing pod ends with one line and exit code 1', {
      timeout: 180_000,
    }, async () => {
      const r = await run([
        'examples/acquire-container.ts',
        '--local',
        '--pod',
        'nope',
        '--out',
        join(scratch, 'x'),
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  },
);

describe.skipIf(skipMoto)('examples/cloud-context.ts --local (FakeCluster + FakeAws + moto_server)', () => {
  it('prints SA, role, RBAC, CloudTrail sources, GuardDuty, IMDS; the bundle verifies with the custody change', {
    timeout: 180_000,
  }, async () => {
    const r = await run([
      'examples/cloud-context.ts',
      '--local',
      '--protect-node',
      '--out',
      join(scratch, 'cloud'),
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/service account shop\/web \(found\); token mounted: yes/);
    expect(r.stdout).toMatch(/IAM role +arn:aws:iam::123456789012:role\/shop-web \(irsa\)/);
    expect(r.stdout).toMatch(/RoleBinding\/shop\/all-sa-read-secrets via Group system:serviceaccounts:shop/);
    expect(r.stdout).toMatch(/HIGH +read Secrets .*\[shop\]/);
    expect(r.stdout).toMatch(/203\.0\.113\.66 +OUTSIDE +3 call\(s\) +curl\/8\.5\.0/);
    expect(r.stdout).toMatch(/GuardDuty +2 finding\(s\), 1 about this pod/);
    expect(r.stdout).toMatch(/node IMDS +reachable from pods: YES/);
    expect(r.stdout).toMatch(/scale-in protection: on \(turned on now, recorded in custody\)/);
    const location = /^bundle +(\S+)$/m.exec(r.stdout)?.[1] ?? '';
    const sha = /manifest sha256 ([0-9a-f]{64}); verify: valid/.exec(r.stdout)?.[1];
    expect(sha).toBeDefined();
    const v = await verifyEvidence(location, { expectedManifestSha256: sha });
    expect(v.ok).toBe(true);
    const manifest = JSON.parse(readFileSync(join(location, 'manifest.json'), 'utf8')) as {
      artifacts: Array<{ requestedPath: string; status: string }>;
    };
    expect(manifest.artifacts.map((a) => `${a.requestedPath}:${a.status}`).sort()).toEqual([
      'cloud-context/cloudtrail.json:complete',
      'cloud-context/guardduty.json:complete',
      'cloud-context/node.json:complete',
      'cloud-context/pod-identity.json:complete',
    ]);
    const custody = JSON.parse(readFileSync(join(location, 'custody.json'), 'utf8')) as {
      changes: Array<{ kind: string }>;
    };
    expect(custody.changes.map((c) => c.kind)).toEqual(['asg-scale-in-protection-enabled']);
  });
});
