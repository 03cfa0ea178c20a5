import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster } from '../../src/testing/index.js';
import { skipWithoutPeer } from '../support/peers.js';

const VERSIONS = ['1.31', '1.32', '1.33'] as const;

function kubectlDir(): string | undefined {
  try {
    const p = execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim();
    return p ? dirname(realpathSync(p)) : undefined;
  } catch {
    return undefined;
  }
}

const dir = kubectlDir();
const missing = VERSIONS.map((v) => `kubectl.${v}`).filter((b) => !dir || !existsSync(join(dir, b)));
const skip = skipWithoutPeer(
  'kubectl',
  missing.length > 0
    ? `${missing.join(', ')} not found beside kubectl (${dir ?? 'kubectl not on PATH'})`
    : undefined,
);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.end(input);
  });
}

describe.skipIf(skip)('kubectl conformance against FakeCluster', () => {
  let cluster: FakeCluster;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'eksf-kubectl-'));
    cluster = await FakeCluster.start({
      users: [
        {
          name: 'viewer',
          token: 'viewer-token',
          groups: ['viewers'],
          rules: [{ verbs: ['get', 'list'], resources: ['pods', 'pods/log'] }],
        },
      ],
    });
    await cluster.addPod({
      name: 'web',
      labels: { app: 'web' },
      containers: [
        {
          name: 'app',
          image: 'nginx:1.27',
          logs: { current: 'line one\nline two\nline three\n' },
          options: {
            commands: {
              greet: async (argv, io) => {
                io.stdout.write(`hello ${argv[1] ?? ''}\n`);
                io.stderr.write('to stderr\n');
                return 0;
              },
              fail: async (argv) => Number(argv[1] ?? 1),
              upper: async (_argv, io) => {
                for await (const c of io.stdin) io.stdout.write(String(c).toUpperCase());
                return 0;
              },
            },
          },
        },
      ],
    });
    await cluster.addPod({
      name: 'hostpod',
      containers: [{ name: 'shell', image: 'busybox', runtime: 'host' }],
    });
    const src = join(work, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255]));
  });

  afterAll(async () => {
    await cluster.close();
    rmSync(work, { recursive: true, force: true });
  });

  it.concurrent.each(VERSIONS)('kubectl %s', async (version) => {
    const bin = join(dir ?? '', `kubectl.${version}`);
    const base = join(work, version);
    mkdirSync(base, { recursive: true });
    const kc = join(base, 'kubeconfig');
    writeFileSync(kc, cluster.kubeconfig());
    const viewerKc = join(base, 'viewer-kubeconfig');
    writeFileSync(viewerKc, cluster.kubeconfig({ user: 'viewer' }));
    const env = { PATH: process.env.PATH ?? '', HOME: base, KUBECONFIG: kc };
    const k = (args: string[], input?: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
      run(
        bin,
        ['--request-timeout=20s', `--cache-dir=${join(base, 'cache')}`, ...args],
        { ...env, ...extraEnv },
        input,
      );

    const pods = await k(['get', 'pods']);
    expect(pods.stderr).toBe('');
    expect(pods.code).toBe(0);
    expect(pods.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    expect(pods.stdout).toMatch(/\nweb\s+1\/1\s+Running\s+0\s+\S+\n/);
    expect(pods.stdout).toMatch(/\nhostpod\s+1\/1\s+Running/);

    const json = await k(['get', 'pod', 'web', '-o', 'json']);
    expect(json.code).toBe(0);
    const pod = JSON.parse(json.stdout) as {
      kind: string;
      metadata: { name: string; labels: Record<string, string> };
      status: {
        phase: string;
        containerStatuses: Array<{ name: string; containerID: string; imageID: string }>;
      };
    };
    expect(pod.kind).toBe('Pod');
    expect(pod.metadata.labels).toEqual({ app: 'web' });
    expect(pod.status.phase).toBe('Running');
    expect(pod.status.containerStatuses[0]?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(pod.status.containerStatuses[0]?.imageID).toMatch(
      /^docker\.io\/library\/nginx@sha256:[0-9a-f]{64}$/,
    );

    const chunked = await k(['get', 'pods', '-A', '--chunk-size=1', '-o', 'name']);
    expect(chunked.stdout).toBe('pod/hostpod\npod/web\n');
    const empty = await k(['get', 'pods', '-n', 'nothing-here']);
    expect(empty.stderr).toBe('No resources found in nothing-here namespace.\n');
    const nodes = await k(['get', 'nodes', '-o', 'name']);
    expect(nodes.stdout).toBe('node/fake-node-1\n');

    const sel = await k(['get', 'pods', '-l', 'app=web', '-o', 'name']);
    expect(sel.stdout).toBe('pod/web\n');

    const ex = await k(['exec', 'web', '--', 'greet', 'world']);
    expect(ex.code).toBe(0);
    expect(ex.stdout).toBe('hello world\n');
    expect(ex.stderr).toBe('to stderr\n');

    const piped = await k(['exec', '-i', 'web', '--', 'upper'], 'piped input\nsecond line\n');
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe('PIPED INPUT\nSECOND LINE\n');

    const failed = await k(['exec', 'web', '--', 'fail', '42']);
    expect(failed.code).toBe(42);
    expect(failed.stderr).toContain('command terminated with exit code 42');

    const hostSh = await k(
      ['exec', '-i', 'hostpod', '--', 'sh', '-c', 'tr a-z A-Z; echo e >&2; exit 3'],
      'abc\n',
    );
    expect(hostSh.code).toBe(3);
    expect(hostSh.stdout).toBe('ABC\n');
    expect(hostSh.stderr).toContain('e\n');

    const notFound = await k(['exec', 'web', '--', 'nosuchcmd']);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr).toContain('executable file not found in $PATH');

    const logs = await k(['logs', 'web']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe('line one\nline two\nline three\n');
    const tail = await k(['logs', 'web', '--tail=1', '--timestamps']);
    expect(tail.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line three\n$/);

    const can = await k(['auth', 'can-i', 'create', 'pods/exec']);
    expect(can.stdout.trim()).toBe('yes');
    expect(can.code).toBe(0);
    const cannot = await k([
      '--kubeconfig',
      viewerKc,
      'auth',
      'can-i',
      'create',
      'pods/exec',
      '-n',
      'default',
    ]);
    expect(cannot.stdout.trim()).toBe('no');
    expect(cannot.code).toBe(1);
    const canLog = await k(['--kubeconfig', viewerKc, 'auth', 'can-i', 'get', 'pods', '--subresource=log']);
    expect(canLog.stdout.trim()).toBe('yes');

    const who = await k(['--kubeconfig', viewerKc, 'auth', 'whoami', '-o', 'json']);
    expect(who.code).toBe(0);
    const review = JSON.parse(who.stdout) as {
      kind: string;
      status: { userInfo: { username: string; groups: string[] } };
    };
    expect(review.kind).toBe('SelfSubjectReview');
    expect(review.status.userInfo.username).toBe('viewer');
    expect(review.status.userInfo.groups).toEqual(['viewers', 'system:authenticated']);

    const denied = await k(['--kubeconfig', viewerKc, 'exec', 'web', '--', 'greet']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('pods "web" is forbidden: User "viewer" cannot');
    expect(denied.stderr).toContain('resource "pods/exec" in API group "" in the namespace "default"');

    const dest = join(base, 'copied');
    const cp = await k(['cp', `hostpod:${join(work, 'src')}`, dest]);
    expect(cp.code).toBe(0);
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('alpha\n');
    expect([...readFileSync(join(dest, 'sub', 'b.bin'))]).toEqual([0, 1, 2, 255]);
  });

  it('kubectl exec used the WebSocket path (101), never SPDY', () => {
    expect(cluster.requests.some((r) => r.url.includes('limit=1') && r.url.includes('continue='))).toBe(true);
    const execs = cluster.requests.filter((r) => r.url.includes('/exec?'));
    expect(execs.some((r) => r.status === 101 && r.method === 'GET')).toBe(true);
    // Only the viewer's RBAC-denied attempt falls back to SPDY (POST), as with a real server.
    expect(
      execs.filter((r) => r.method === 'POST').every((r) => r.user === 'viewer' && r.status === 403),
    ).toBe(true);
  });
});
