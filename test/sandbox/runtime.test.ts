import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxUnavailableError } from '../../src/errors.js';
import type { RuntimeContainer, RuntimeContainerSpec } from '../../src/testing/runtime.js';
import {
  createSandboxRuntime,
  type SandboxContainerOptions,
  type SandboxRuntime,
} from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  execIn,
  ourTempDirs,
  processesMentioning,
  sandboxMissing,
  sandboxToolProcesses,
  sh,
} from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

let seq = 0;
function spec(
  options: SandboxContainerOptions,
  extra: Partial<RuntimeContainerSpec<SandboxContainerOptions>> = {},
): RuntimeContainerSpec<SandboxContainerOptions> {
  const n = seq++;
  return {
    pod: { namespace: 'default', name: `pod-${n}`, uid: `uid-${n}` },
    name: 'app',
    image: 'busybox:1.36',
    options,
    ...extra,
  };
}

describe.skipIf(skip)('sandbox runtime: availability', () => {
  it('names the missing piece and the apt command', async () => {
    for (const [opt, piece] of [
      [{ bwrap: '/nonexistent/bwrap' }, 'bwrap not found'],
      [{ busybox: '/nonexistent/busybox' }, 'busybox not found'],
      [{ nsenter: '/nonexistent/nsenter' }, 'nsenter not found'],
      [{ busybox: '/bin/ls' }, 'busybox'],
    ] as const) {
      const err = await createSandboxRuntime(opt).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SandboxUnavailableError);
      expect((err as Error).message).toContain(piece);
      expect((err as Error).message).toContain('apt-get install bubblewrap busybox-static');
    }
    expect(ourTempDirs()).toEqual([]);
  });

  it('says "not root" when run as another user', async () => {
    // The child loads the module as root, then drops to uid/gid 65534 before the check. Nothing
    // is read after the drop, so the test does not depend on where the checkout lives (a 0700
    // home or `mktemp -d` folder is unreadable to uid 65534).
    const dir = await mkdtemp(join(tmpdir(), 'eksf-sbx-nonroot-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      const mod = new URL('../../src/testing/sandbox/index.ts', import.meta.url).pathname;
      const script = join(dir, 'probe.mts');
      await writeFile(
        script,
        `import { createSandboxRuntime } from ${JSON.stringify(mod)};
process.setgroups([]);
process.setgid(65534);
process.setuid(65534);
try { await createSandboxRuntime(); process.stdout.write('no error'); }
catch (e) { process.stdout.write(JSON.stringify({ uid: process.getuid(), code: e.code, message: e.message })); }
`,
        { mode: 0o600 },
      );
      const { out, err } = await new Promise<{ out: string; err: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { PATH: process.env.PATH ?? '', HOME: dir, TMPDIR: dir },
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        child.once('error', reject);
        child.once('close', () => resolve({ out, err }));
      });
      expect(out, `child printed nothing; stderr: ${err}`).not.toBe('');
      const r = JSON.parse(out) as { uid: number; code: string; message: string };
      expect(r.uid).toBe(65534);
      expect(r.code).toBe('EKSF_SANDBOX_UNAVAILABLE');
      expect(r.message).toMatch(/not root \(uid 65534/);
      expect(r.message).toContain('apt-get install bubblewrap busybox-static');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skip)('sandbox runtime: busybox container', () => {
  let rt: SandboxRuntime;
  let c: RuntimeContainer;
  beforeAll(async () => {
    rt = await createSandboxRuntime();
    c = await rt.start(
      spec(
        {
          files: {
            '/etc/app/config.yaml': { content: 'secret: 1\n', mode: 0o600, uid: 1000, gid: 1000 },
            '/app/data': { type: 'dir', mode: 0o750 },
            '/app/link': { type: 'symlink', target: '/etc/app/config.yaml' },
            '/app/fifo': { type: 'fifo' },
            '/app/sparse.img': {
              type: 'sparse',
              size: 5 * 1024 ** 3,
              data: [{ offset: 4096, content: 'MARK' }],
            },
            '/usr/local/bin/hello': { content: '#!/bin/sh\necho "hello $1"\n', executable: true },
          },
          processes: [
            {
              argv: ['/tmp/.x/xmrig', '-o', 'stratum+tcp://pool.invalid:3333'],
              binary: 'sleeper',
              deleteAfterStart: true,
            },
            {
              argv: ['/usr/local/bin/worker', '--queue', 'q1'],
              binary: 'sleeper',
              env: { PATH: '/bin', TOKEN: 'abc' },
            },
          ],
        },
        { command: ['sleep', '86400'], env: { APP_MODE: 'prod' }, workingDir: '/app' },
      ),
    );
  });
  afterAll(async () => {
    await rt?.close();
  });

  it("/etc/passwd is the container's, not the host's", async () => {
    const passwd = await sh(c, 'cat /etc/passwd');
    expect(passwd).toContain('app:x:1000:1000:app:/app:/bin/sh');
    expect(passwd).not.toBe(readFileSync('/etc/passwd', 'utf8'));
    expect(await sh(c, 'cat /etc/os-release')).toContain('eks-forensics sandbox');
  });

  it("ps shows only the container's processes and /proc/1 is the entrypoint", async () => {
    const ps = await sh(c, 'ps -o pid,args');
    const rows = ps.trim().split('\n').slice(1);
    expect(rows.map((r) => r.trim().split(/\s+/, 2).join(' '))).toEqual([
      '1 sleep',
      '2 /tmp/.x/xmrig',
      '3 /usr/local/bin/worker',
      expect.stringMatching(/^\d+ (\{ps\}|ps)$/),
    ]);
    const cmdline = await execIn(c, ['cat', '/proc/1/cmdline']);
    expect(cmdline.stdout.toString('latin1')).toBe('sleep\x0086400\x00');
    expect(await sh(c, 'readlink /proc/1/exe')).toBe('/bin/sleep\n');
  });

  it('the deleted-binary process shows (deleted) in /proc/<pid>/exe', async () => {
    expect(await sh(c, 'readlink /proc/2/exe')).toBe('/tmp/.x/xmrig (deleted)\n');
    expect(await sh(c, 'ls /tmp/.x')).toBe('');
    const env = await execIn(c, ['cat', '/proc/3/environ']);
    expect(env.stdout.toString().split('\0')).toEqual(['PATH=/bin', 'TOKEN=abc', '']);
  });

  it('exec gets the working directory and environment of the container', async () => {
    expect(await sh(c, 'pwd; echo "$APP_MODE $HOSTNAME"')).toMatch(/^\/app\nprod pod-\d+\n$/);
    expect(await sh(c, 'hello world')).toBe('hello world\n');
  });

  it('builds the file map with modes, owners, links, FIFOs and sparse files', async () => {
    expect(await sh(c, 'stat -c "%a %u %g %s" /etc/app/config.yaml /app/data')).toMatch(
      /^600 1000 1000 10\n750 0 0 \d+\n$/,
    );
    expect(await sh(c, 'readlink /app/link; cat /app/link; stat -c %F /app/fifo')).toBe(
      '/etc/app/config.yaml\nsecret: 1\nfifo\n',
    );
    expect(
      await sh(
        c,
        'stat -c "%s %b" /app/sparse.img; dd if=/app/sparse.img bs=1 skip=4096 count=4 2>/dev/null',
      ),
    ).toMatch(/^5368709120 \d{1,3}\nMARK$/);
  });

  it('reports exit codes, stdin, stderr and tty merging', async () => {
    const r = await execIn(c, ['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r.exit).toEqual({ kind: 'exited', exitCode: 7 });
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    const cat = await execIn(c, ['cat'], { input: 'via stdin\n' });
    expect(cat.stdout.toString()).toBe('via stdin\n');
    const tty = await execIn(c, ['sh', '-c', 'echo a; echo b >&2'], { tty: true });
    expect(tty.stdout.toString().split('\n').sort()).toEqual(['', 'a', 'b']);
    expect(tty.stderr).toBe('');
  });

  it('a missing binary is an exec error like runc gives, not an exit code', async () => {
    const r = await execIn(c, ['nosuchtool', '-x']);
    expect(r.exit.kind).toBe('error');
    expect(r.exit.kind === 'error' && r.exit.message).toMatch(
      /OCI runtime exec failed: .*exec: "nosuchtool": executable file not found in \$PATH: unknown$/,
    );
    const abs = await execIn(c, ['/bin/nope']);
    expect(abs.exit.kind === 'error' && abs.exit.message).toContain(
      'exec: "/bin/nope": stat /bin/nope: no such file',
    );
  });

  it('kill() and the abort signal end the process with a signal', async () => {
    const p = c.exec({
      command: ['sleep', '100'],
      stdin: false,
      tty: false,
      signal: new AbortController().signal,
    });
    p.stdout.resume();
    p.stderr.resume();
    setTimeout(() => p.kill('SIGTERM'), 200);
    expect(await p.result).toEqual({ kind: 'signaled', signal: 'SIGTERM' });
    const ac = new AbortController();
    const q = c.exec({ command: ['sleep', '100'], stdin: false, tty: false, signal: ac.signal });
    q.stdout.resume();
    q.stderr.resume();
    setTimeout(() => ac.abort(), 200);
    expect(await q.result).toEqual({ kind: 'signaled', signal: 'SIGKILL' });
    expect(await sh(c, 'ps -o args | grep -c "^sleep 100" || true')).toBe('0\n');
  });

  it('output respects backpressure: an unread endless stream does not grow memory', async () => {
    const p = c.exec({
      command: ['yes', 'x'.repeat(100)],
      stdin: false,
      tty: false,
      signal: AbortSignal.timeout(20_000),
    });
    p.stderr.resume();
    await new Promise((r) => setTimeout(r, 700));
    expect(p.stdout.readableLength).toBeLessThanOrEqual(256 * 1024);
    let n = 0;
    p.stdout.on('data', (d: Buffer) => {
      n += d.length;
    });
    await new Promise((r) => setTimeout(r, 200));
    p.kill();
    await p.result;
    expect(n).toBeGreaterThan(100_000);
  });
});

describe.skipIf(skip)('sandbox runtime: presets', () => {
  let rt: SandboxRuntime;
  beforeAll(async () => {
    rt = await createSandboxRuntime();
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('shell-only: sh works, tar/cat/find/stat/busybox do not exist, even from sh -c', async () => {
    const c = await rt.start(spec({ preset: 'shell-only' }));
    expect(await sh(c, 'echo "$((6*7))"; read x < /etc/hostname; echo "$x"')).toMatch(/^42\npod-\d+\n$/);
    for (const tool of ['tar', 'cat', 'find', 'stat', 'busybox', 'ls']) {
      const r = await execIn(c, [tool]);
      expect(r.exit.kind, tool).toBe('error');
      const s = await execIn(c, ['sh', '-c', `${tool} /etc/passwd`]);
      expect(s.exit, tool).toEqual({ kind: 'exited', exitCode: 127 });
      expect(s.stderr).toContain(`${tool}: not found`);
    }
    await c.stop();
  });

  it('none: no shell at all; the app binary is PID 1', async () => {
    const c = await rt.start(spec({ preset: 'none' }));
    for (const tool of ['sh', '/bin/sh', 'tar', 'ls']) {
      const r = await execIn(c, [tool]);
      expect(r.exit.kind, tool).toBe('error');
    }
    expect(c.running()).toBe(true);
    await c.stop();
    expect(c.running()).toBe(false);
  });

  it('custom applets: only the listed names exist (no busybox name)', async () => {
    const c = await rt.start(spec({ preset: { applets: ['ls', 'cat', 'sleep'] } }));
    expect((await execIn(c, ['ls', '/bin'])).stdout.toString().split('\n').filter(Boolean).sort()).toEqual([
      'cat',
      'ls',
      'sleep',
    ]);
    expect((await execIn(c, ['busybox'])).exit.kind).toBe('error');
    expect((await execIn(c, ['tar'])).exit.kind).toBe('error');
    await c.stop();
  });

  it('rejects bad options and file maps that would write through a symlink', async () => {
    await expect(rt.start(spec({ preset: 'alpine' as never }))).rejects.toThrow(/invalid options: preset/);
    await expect(rt.start(spec({ files: { '/x': { type: 'link', target: '/' } as never } }))).rejects.toThrow(
      /invalid options: files/,
    );
    await expect(
      rt.start(
        spec({
          files: [
            { path: '/etc/out', type: 'symlink', target: '/tmp' },
            { path: '/etc/out/eksf-sandbox-escape', content: 'x' },
          ],
        }),
      ),
    ).rejects.toThrow(/goes through a symlink/);
    expect(existsSync('/tmp/eksf-sandbox-escape')).toBe(false);
    expect(ourTempDirs().length).toBe(1);
    expect(readdirSync(rt.dir)).toEqual([]);
  });

  it('a missing entrypoint fails start with the reason', async () => {
    await expect(
      rt.start(spec({ preset: 'none' }, { command: ['/usr/bin/java', '-jar', 'x'] })),
    ).rejects.toThrow(/cannot start entrypoint: exec: "\/usr\/bin\/java"/);
  });
});

describe.skipIf(skip)('sandbox runtime: pods and ephemeral containers', () => {
  let rt: SandboxRuntime;
  beforeAll(async () => {
    rt = await createSandboxRuntime();
  });
  afterAll(async () => {
    await rt?.close();
  });

  it("a pod's containers share network, IPC and UTS namespaces; other pods do not", async () => {
    const pod = { namespace: 'default', name: 'web', uid: 'web-uid' };
    const a = await rt.start({
      pod,
      name: 'a',
      image: 'busybox',
      options: { files: { '/srv/www/hello.txt': { content: 'hello-from-a\n' } } },
    });
    const b = await rt.start({ pod, name: 'b', image: 'busybox' });
    const other = await rt.start(spec({}));
    const ns = async (c: RuntimeContainer): Promise<string> =>
      sh(c, 'for n in net ipc uts pid; do readlink /proc/self/ns/$n; done');
    const [na, nb, no] = [await ns(a), await ns(b), await ns(other)];
    const lines = (s: string): string[] => s.trim().split('\n');
    expect(lines(na).slice(0, 3)).toEqual(lines(nb).slice(0, 3));
    expect(lines(na)[3]).not.toBe(lines(nb)[3]);
    expect(lines(no)[0]).not.toBe(lines(na)[0]);
    expect(await sh(b, 'hostname')).toBe('web\n');
    // loopback is up and shared: a server in a is reachable from b, not from another pod
    const server = a.exec({
      command: ['httpd', '-f', '-p', '127.0.0.1:18080', '-h', '/srv/www'],
      stdin: false,
      tty: false,
      signal: AbortSignal.timeout(15_000),
    });
    server.stdout.resume();
    server.stderr.resume();
    // (busybox wget segfaults in a rootfs without NSS libraries; nc does not resolve names)
    const get = ['sh', '-c', 'printf "GET /hello.txt HTTP/1.0\\r\\n\\r\\n" | nc -w 2 127.0.0.1 18080'];
    let got = '';
    for (let i = 0; i < 50 && !got.includes('hello'); i++) {
      got = (await execIn(b, get)).stdout.toString();
      if (!got) await new Promise((r) => setTimeout(r, 100));
    }
    expect(got).toMatch(/^HTTP\/1.1 200 OK\r\n[\s\S]*\r\n\r\nhello-from-a\n$/);
    const fromOther = await execIn(other, get);
    expect(fromOther.stdout.toString()).toBe('');
    expect(fromOther.exit).toEqual({ kind: 'exited', exitCode: 1 });
    server.kill();
    await server.result;
  });

  it('an ephemeral container joins the target PID namespace and sees its files via /proc/<pid>/root', async () => {
    const target = await rt.start(
      spec({
        preset: 'none',
        files: { '/app/secrets/indicator.txt': { content: 'planted-indicator\n' } },
        processes: [{ argv: ['/tmp/.x/miner', '--pool', 'p'], binary: 'sleeper', deleteAfterStart: true }],
      }),
    );
    const dbg = await rt.start({
      pod: { namespace: 'default', name: 'target-pod', uid: 'other' },
      name: 'debugger-abcde',
      image: 'busybox',
      target,
      options: { preset: 'busybox' },
    });
    const ps = await sh(dbg, 'ps -o pid,args');
    expect(ps).toMatch(/\n\s+1 \/app\/server\n/);
    expect(ps).toContain('/tmp/.x/miner --pool p');
    expect(await sh(dbg, 'cat /proc/1/root/app/secrets/indicator.txt')).toBe('planted-indicator\n');
    expect(await sh(dbg, 'ls /app 2>&1 || true')).not.toContain('secrets');
    expect(await sh(dbg, 'readlink /proc/2/exe')).toBe('/tmp/.x/miner (deleted)\n');
    await dbg.stop();
    expect(target.running()).toBe(true);
  });
});

describe.skipIf(skip)('sandbox runtime: teardown and scale', () => {
  it('50 containers start, run and close within 60 s, leaving nothing behind', async () => {
    const dirsBefore = ourTempDirs().length;
    const t0 = performance.now();
    const rt = await createSandboxRuntime();
    const dir = rt.dir;
    const containers: RuntimeContainer[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const started = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          rt.start({
            pod: {
              namespace: 'scale',
              name: `pod-${batch}-${Math.floor(i / 2)}`,
              uid: `scale-${batch}-${Math.floor(i / 2)}`,
            },
            name: `c${i % 2}`,
            image: 'busybox',
            options: {
              preset: i % 3 === 0 ? 'none' : 'busybox',
              processes: [{ argv: ['/tmp/w'], binary: 'sleeper' }],
            },
          }),
        ),
      );
      containers.push(...started);
    }
    const tStarted = performance.now();
    expect(processesMentioning(dir).length).toBeGreaterThanOrEqual(50);
    const outs = await Promise.all(
      containers.map(async (c) => {
        // Long enough for 50 execs to start on a loaded 2-CPU machine (an abort before the start is an
        // exec error, not a signal), short enough to prove the kill.
        const r = await execIn(c, ['/tmp/w'], { timeoutMs: 3000 });
        return r.exit.kind === 'signaled'
          ? 'signaled'
          : JSON.stringify({ exit: r.exit, stderr: r.stderr.slice(0, 300) });
      }),
    );
    expect(
      outs.filter((k) => k !== 'signaled'),
      'every exec ends by the timeout signal',
    ).toEqual([]);
    await rt.close();
    const elapsed = performance.now() - t0;
    process.stderr.write(
      `sandbox scale: 50 containers started in ${Math.round(tStarted - t0)} ms, total with exec+close ${Math.round(elapsed)} ms\n`,
    );
    expect(elapsed).toBeLessThan(60_000);
    expect(containers.every((c) => !c.running())).toBe(true);
    expect(existsSync(dir)).toBe(false);
    expect(processesMentioning(dir)).toEqual([]);
    expect(sandboxToolProcesses()).toEqual([]);
    expect(ourTempDirs().length).toBe(dirsBefore);
  });

  it('process exit tears everything down; a SIGKILLed owner is swept by the next runtime', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'eksf-sbx-exit-'));
    try {
      await exitScenario(parent);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

async function exitScenario(parent: string): Promise<void> {
  {
    const script = join(parent, 'child.mts');
    const mod = new URL('../../src/testing/sandbox/index.ts', import.meta.url).pathname;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      script,
      `import { createSandboxRuntime } from ${JSON.stringify(mod)};
const rt = await createSandboxRuntime({ tmpDir: ${JSON.stringify(parent)} });
const c = await rt.start({ pod: { namespace: 'x', name: 'p', uid: 'u' }, name: 'c', image: 'b', options: { processes: [{ argv: ['/tmp/w'], binary: 'sleeper' }] } });
process.stdout.write(JSON.stringify({ dir: rt.dir, pid: c.hostPid }) + '\\n');
if (process.argv[2] === 'exit') process.exit(0);
setInterval(() => {}, 1000);
`,
    );
    const runChild = async (
      mode: string,
    ): Promise<{ dir: string; pid: number; kill: () => Promise<void>; exited: Promise<unknown> }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, mode], {
        stdio: ['ignore', 'pipe', 'inherit'],
        cwd: process.cwd(),
      });
      const exited = new Promise((r) => child.once('exit', r));
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0] ?? '');
        });
        child.once('exit', () => resolve(buf));
        child.once('error', reject);
      });
      const info = JSON.parse(line) as { dir: string; pid: number };
      return {
        ...info,
        exited,
        kill: async () => {
          if (child.exitCode === null) child.kill('SIGKILL');
          await exited;
        },
      };
    };
    const waitGone = async (pid: number): Promise<boolean> => {
      for (let i = 0; i < 200; i++) {
        if (!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'))
          return true;
        await new Promise((r) => setTimeout(r, 25));
      }
      return false;
    };

    const a = await runChild('exit');
    await a.exited;
    expect(await waitGone(a.pid)).toBe(true);
    expect(existsSync(a.dir)).toBe(false);
    expect(processesMentioning(a.dir)).toEqual([]);

    const b = await runChild('hang');
    expect(existsSync(`/proc/${b.pid}`)).toBe(true);
    expect(readlinkSync(`/proc/${b.pid}/exe`)).not.toContain('bwrap');
    await b.kill();
    expect(await waitGone(b.pid)).toBe(true); // --die-with-parent
    expect(existsSync(b.dir)).toBe(true); // SIGKILL leaves the directory…
    const rt = await createSandboxRuntime({ tmpDir: parent, skipProbe: true });
    expect(existsSync(b.dir)).toBe(false); // …which the next runtime sweeps
    await rt.close();
    for (let i = 0; i < 100 && processesMentioning(b.dir).length > 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(processesMentioning(b.dir)).toEqual([]);
    expect((await readdir(parent)).filter((n) => n.startsWith('eksf-sandbox-'))).toEqual([]);
  }
}
