import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster } from '../../src/testing/index.js';
import {
  createSandboxRuntime,
  HOSTILE_PATHS,
  hostileFiles,
  sandboxEphemeralContainerRuntime,
} from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { ourTempDirs, sandboxMissing } from './support.js';

function kubectl133(): string | undefined {
  try {
    const p = execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim();
    const bin = p ? join(dirname(realpathSync(p)), 'kubectl.1.33') : '';
    return bin && existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

const kubectl = kubectl133();
const skip =
  skipWithoutPeer('bwrap', sandboxMissing()) ||
  skipWithoutPeer('kubectl', kubectl ? undefined : 'kubectl.1.33 not found beside kubectl');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe.skipIf(skip)('sandbox pods through FakeCluster and kubectl 1.33', () => {
  let cluster: FakeCluster;
  let work: string;
  let k: (args: string[], input?: string) => Promise<Run>;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'eksf-sbx-kubectl-'));
    cluster = await FakeCluster.start({
      runtimes: { sandbox: await createSandboxRuntime() },
      ephemeralContainerRuntime: sandboxEphemeralContainerRuntime(),
    });
    await cluster.addPod({
      name: 'box',
      containers: [
        {
          name: 'app',
          image: 'busybox:1.36',
          runtime: 'sandbox',
          env: { APP_MODE: 'prod' },
          options: {
            files: {
              '/etc/app/config.yaml': { content: 'listen: 8080\n' },
              '/etc/app/sub/data.bin': { content: Buffer.from([0, 1, 2, 255]) },
            },
          },
        },
        {
          name: 'distroless',
          image: 'gcr.io/distroless/static',
          runtime: 'sandbox',
          options: { preset: 'none' },
        },
      ],
    });
    await cluster.addPod({
      name: 'evil',
      containers: [{ name: 'app', image: 'busybox', runtime: 'sandbox', options: { files: hostileFiles() } }],
    });
    const kc = join(work, 'kubeconfig');
    writeFileSync(kc, cluster.kubeconfig());
    const env = { PATH: process.env.PATH ?? '', HOME: work, KUBECONFIG: kc };
    k = (args, input) =>
      new Promise((resolve, reject) => {
        const child = spawn(kubectl ?? 'kubectl', ['--request-timeout=20s', ...args], {
          env,
          cwd: work,
          stdio: ['pipe', 'pipe', 'pipe'],
        });
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
  });

  afterAll(async () => {
    await cluster?.close();
    if (work) rmSync(work, { recursive: true, force: true });
    expect(ourTempDirs()).toEqual([]);
  });

  it('kubectl exec runs in the container: its files, its processes, its environment', async () => {
    const r = await k([
      'exec',
      'box',
      '-c',
      'app',
      '--',
      'sh',
      '-c',
      'cat /etc/app/config.yaml; ps -o pid,args; echo $APP_MODE',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^listen: 8080\nPID\s+COMMAND\n\s+1 sleep infinity\n\s+\d+ sh -c cat[^\n]*\n(\s+\d+ \{ps\}[^\n]*\n)?prod\n$/,
    );
    const stdin = await k(
      ['exec', '-i', 'box', '-c', 'app', '--', 'sh', '-c', 'tr a-z A-Z; exit 4'],
      'piped\n',
    );
    expect(stdin.code).toBe(4);
    expect(stdin.stdout).toBe('PIPED\n');
    expect(stdin.stderr).toContain('command terminated with exit code 4');
  });

  it('exec of a missing binary fails like containerd (InternalError), also on a distroless container', async () => {
    const r = await k(['exec', 'box', '-c', 'distroless', '--', 'sh']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('exec: "sh": executable file not found in $PATH');
  });

  it('kubectl cp copies out of and into a sandbox container', async () => {
    const out = await k(['cp', '-c', 'app', 'box:/etc/app', join(work, 'out')]);
    expect(out.code).toBe(0);
    expect(readFileSync(join(work, 'out', 'config.yaml'), 'utf8')).toBe('listen: 8080\n');
    expect([...readFileSync(join(work, 'out', 'sub', 'data.bin'))]).toEqual([0, 1, 2, 255]);

    const src = join(work, 'upload');
    mkdirSync(join(src, 'nested'), { recursive: true });
    writeFileSync(join(src, 'nested', 'u.txt'), 'uploaded\n');
    const up = await k(['exec', 'box', '-c', 'app', '--', 'mkdir', '-p', '/tmp/in']);
    expect(up.code).toBe(0);
    const cpIn = await k(['cp', '-c', 'app', src, 'box:/tmp/in/upload']);
    expect(cpIn.code).toBe(0);
    const check = await k(['exec', 'box', '-c', 'app', '--', 'cat', '/tmp/in/upload/nested/u.txt']);
    expect(check.stdout).toBe('uploaded\n');

    const none = await k(['cp', '-c', 'distroless', 'box:/etc/passwd', join(work, 'passwd')]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('executable file not found in $PATH');
  });

  it("kubectl cp from the hostile pod's lying tar writes nothing outside the destination", async () => {
    const dest = join(work, 'evil-out');
    const r = await k(['cp', 'evil:/app', dest]);
    expect(r.code).not.toBe(0);
    expect(`${r.stderr}`).toMatch(/unexpected EOF|skipping symlink|outside/i);
    expect(existsSync('/tmp/eksf-escape-dotdot.txt')).toBe(false);
    expect(existsSync('/tmp/eksf-escape-absolute.txt')).toBe(false);
    expect(existsSync('/tmp/eksf-escape-through-symlink.txt')).toBe(false);
    if (existsSync(dest)) expect(readdirSync(dest).sort()).toEqual(expect.arrayContaining(['ok.txt']));
    // kubectl execs `tar` directly, so the PATH lookup finds the planted script first
    const tar = await k(['exec', 'evil', '--', 'tar', 'cf', '-', '/anything']);
    expect(tar.stdout).toContain('eksf-escape-dotdot.txt');
    process.stderr.write(`kubectl cp from hostile pod: exit ${r.code}: ${r.stderr}`);
    expect(HOSTILE_PATHS.tar).toBe('/usr/local/bin/tar');
  });

  it('kubectl debug --target adds an ephemeral container in the target PID namespace', async () => {
    const d = await k([
      'debug',
      'box',
      '--image=busybox:1.36',
      '--target=distroless',
      '-c',
      'debugger',
      '--attach=false',
      '--',
      'sleep',
      'infinity',
    ]);
    expect(d.code).toBe(0);
    let r: Run = { code: null, stdout: '', stderr: '' };
    // the ephemeral container starts asynchronously (a bwrap sandbox): wait for it up to 30 s
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      r = await k([
        'exec',
        'box',
        '-c',
        'debugger',
        '--',
        'sh',
        '-c',
        'cat /proc/1/cmdline | tr "\\0" " "; ls /proc/1/root/app',
      ]);
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('/app/server server\n');
  });
});
