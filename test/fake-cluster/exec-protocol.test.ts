import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster, type ScriptedHandler } from '../../src/testing/index.js';
import { api, collect, execPath, rawExec, rawHttp, refused } from './helpers.js';

const cat: ScriptedHandler = async (_argv, io) => {
  for await (const chunk of io.stdin) io.stdout.write(chunk as Buffer);
  return 0;
};

describe('FakeCluster exec wire protocol (raw ws client)', () => {
  let cluster: FakeCluster;

  beforeAll(async () => {
    cluster = await FakeCluster.start({
      users: [
        { name: 'reader', token: 'reader-token', rules: [{ verbs: ['get', 'list'], resources: ['pods'] }] },
        {
          name: 'execer',
          token: 'execer-token',
          rules: [{ verbs: ['get'], resources: ['pods/exec'], namespaces: ['default'] }],
        },
      ],
    });
    await cluster.addPod({
      name: 'app',
      containers: [
        {
          name: 'main',
          image: 'busybox:1.36',
          options: {
            commands: {
              say: async (argv, io) => {
                io.stdout.write(`out:${argv.slice(1).join(' ')}\n`);
                io.stderr.write('err-line\n');
                return Number(argv[1] ?? 0);
              },
              cat,
            },
          },
        },
      ],
    });
    await cluster.addPod({
      name: 'multi',
      containers: [
        { name: 'a', image: 'x' },
        { name: 'b', image: 'y' },
      ],
      initContainers: [{ name: 'init', image: 'z' }],
    });
    await cluster.addPod({
      name: 'hostpod',
      containers: [{ name: 'sh', image: 'busybox', runtime: 'host' }],
    });
    await cluster.addPod({ name: 'unscheduled', nodeName: null, containers: [{ name: 'c', image: 'x' }] });
    await cluster.addPod({ name: 'stopped', containers: [{ name: 'c', image: 'x' }] });
    await cluster.stopContainer('default', 'stopped', 'c', { exitCode: 1, reason: 'Error' });
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('v5: opening frame, stdout/stderr, Success status byte-for-byte, close 1000', async () => {
    const s = await rawExec(cluster, execPath('app', ['say', '0'], { stdout: 'true', stderr: 'true' }));
    expect(s.protocol).toBe('v5.channel.k8s.io');
    const closed = await s.closed;
    expect(closed.code).toBe(1000);
    expect(s.frames[0]).toEqual({ channel: 1, data: Buffer.alloc(0), text: false });
    expect(collect(s.frames, 1)).toBe('out:0\n');
    expect(collect(s.frames, 2)).toBe('err-line\n');
    const last = s.frames[s.frames.length - 1];
    expect(last?.channel).toBe(3);
    expect(last?.data.toString()).toBe('{"metadata":{},"status":"Success"}');
  });

  it('v5 chosen whenever offered, non-zero exit status exact', async () => {
    const s = await rawExec(cluster, execPath('app', ['say', '42'], { stdout: '1', stderr: '' }), [
      'v4.channel.k8s.io',
      'v5.channel.k8s.io',
    ]);
    expect(s.protocol).toBe('v5.channel.k8s.io');
    await s.closed;
    expect(collect(s.frames, 3)).toBe(
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 42","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}',
    );
  });

  it('opening frame goes to stderr or the error channel when stdout is not requested', async () => {
    const s = await rawExec(cluster, execPath('app', ['say', '0'], { stderr: 'true' }));
    await s.closed;
    expect(s.frames[0]).toEqual({ channel: 2, data: Buffer.alloc(0), text: false });
    expect(collect(s.frames, 1)).toBe('');
    const s2 = await rawExec(cluster, execPath('app', ['cat'], { stdin: 'true' }));
    expect(s2.frames.length === 0 || s2.frames[0]?.channel === 3).toBe(true);
    s2.ws.send(Buffer.from([255, 0]));
    await s2.closed;
    expect(s2.frames[0]).toEqual({ channel: 3, data: Buffer.alloc(0), text: false });
  });

  it('stdin with v5 CLOSE; resize, unknown channels and empty frames are ignored', async () => {
    const s = await rawExec(
      cluster,
      execPath('app', ['cat'], { stdin: 'true', stdout: 'true', stderr: 'true' }),
    );
    s.ws.send(Buffer.alloc(0));
    s.ws.send(Buffer.from([4, ...Buffer.from('{"Width":80,"Height":24}\n')]));
    s.ws.send(Buffer.from([9, 1, 2, 3]));
    s.ws.send(Buffer.from([0, ...Buffer.from('hello ')]));
    s.ws.send(Buffer.from([0, ...Buffer.from('world')]));
    s.ws.send(Buffer.from([255, 0]));
    s.ws.send(Buffer.from([255, 0]));
    const closed = await s.closed;
    expect(closed.code).toBe(1000);
    expect(collect(s.frames, 1)).toBe('hello world');
    expect(collect(s.frames, 3)).toBe('{"metadata":{},"status":"Success"}');
  });

  it('a CLOSE frame of the wrong length kills the session without a status', async () => {
    const s = await rawExec(cluster, execPath('app', ['cat'], { stdin: 'true', stdout: 'true' }));
    s.ws.send(Buffer.from([255, 0, 0]));
    await s.closed;
    expect(s.frames.filter((f) => f.channel === 3 && f.data.length > 0)).toEqual([]);
    const s2 = await rawExec(cluster, execPath('app', ['cat'], { stdin: 'true', stdout: 'true' }));
    s2.ws.send(Buffer.from([255, 7]));
    await s2.closed;
    expect(s2.frames.filter((f) => f.channel === 3 && f.data.length > 0)).toEqual([]);
  });

  it('frames above 32 MiB end the session; 32 MiB itself is accepted', async () => {
    const ok = await rawExec(cluster, execPath('app', ['cat'], { stdin: 'true', stdout: 'true' }));
    const big = Buffer.alloc((32 << 20) - 1, 0x61);
    big[0] = 0;
    let received = 0;
    ok.ws.on('message', (d: Buffer) => {
      if (d[0] === 1) received += d.length - 1;
    });
    ok.ws.send(big);
    ok.ws.send(Buffer.from([255, 0]));
    await ok.closed;
    expect(received).toBe(big.length - 1);
    expect(collect(ok.frames.slice(-1), 3)).toBe('{"metadata":{},"status":"Success"}');

    const tooBig = await rawExec(cluster, execPath('app', ['cat'], { stdin: 'true', stdout: 'true' }));
    const huge = Buffer.alloc((32 << 20) + 2);
    tooBig.ws.send(huge);
    const closed = await tooBig.closed;
    expect(closed.code).toBe(1009);
    expect(tooBig.frames.filter((f) => f.channel === 3 && f.data.length > 0)).toEqual([]);
  });

  it('legacy v4 path: JSON status with the runtime message, no half-close', async () => {
    const s = await rawExec(cluster, execPath('app', ['say', '3'], { stdout: 'true' }), [
      'v4.channel.k8s.io',
    ]);
    expect(s.protocol).toBe('v4.channel.k8s.io');
    await s.closed;
    expect(collect(s.frames, 1)).toBe('out:3\n');
    expect(JSON.parse(collect(s.frames, 3))).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'command terminated with non-zero exit code: error executing command [say 3], exit code 3',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
    // On v4, 255 is just an unknown channel: stdin stays open until the socket closes.
    const c = await rawExec(cluster, execPath('app', ['cat'], { stdin: 'true', stdout: 'true' }), [
      'v4.channel.k8s.io',
    ]);
    c.ws.send(Buffer.from([0, ...Buffer.from('x')]));
    c.ws.send(Buffer.from([255, 0]));
    await new Promise((r) => setTimeout(r, 200));
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect(collect(c.frames, 1)).toBe('x');
    c.ws.close();
    await c.closed;
  });

  it('legacy base64 and v1 binary: text frames, plain-text errors, nothing on success', async () => {
    const s = await rawExec(cluster, execPath('app', ['say', '5'], { stdout: 'true' }), [
      'base64.channel.k8s.io',
    ]);
    expect(s.protocol).toBe('base64.channel.k8s.io');
    await s.closed;
    expect(s.frames[0]).toEqual({ channel: 1, data: Buffer.alloc(0), text: true });
    expect(collect(s.frames, 1)).toBe('out:5\n');
    expect(collect(s.frames, 3)).toBe(
      'command terminated with non-zero exit code: error executing command [say 5], exit code 5',
    );
    const ok = await rawExec(cluster, execPath('app', ['say', '0'], { stdout: 'true' }), ['channel.k8s.io']);
    await ok.closed;
    expect(ok.frames.filter((f) => f.channel === 3)).toEqual([]);
    expect(collect(ok.frames, 1)).toBe('out:0\n');
  });

  it('only the first Sec-WebSocket-Protocol header line counts; no match gives a raw 403 with empty body', async () => {
    const head = (protoLines: string[]): string =>
      `GET ${execPath('app', ['say', '0'], { stdout: 'true' })} HTTP/1.1\r\nHost: localhost\r\n` +
      `Authorization: Bearer ${cluster.adminToken}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      protoLines.map((p) => `Sec-WebSocket-Protocol: ${p}\r\n`).join('') +
      '\r\n';
    const two = await rawHttp(cluster, head(['v4.channel.k8s.io', 'v5.channel.k8s.io']));
    expect(two).toMatch(/^HTTP\/1\.1 101/);
    expect(two.toLowerCase()).toContain('sec-websocket-protocol: v4.channel.k8s.io');
    const none = await rawHttp(cluster, head(['bogus.k8s.io']));
    expect(none).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(none.endsWith('\r\n\r\n')).toBe(true);
    expect(none).toContain('Content-Length: 0');
  });

  it('pre-upgrade errors are JSON Status bodies exactly like kube-apiserver', async () => {
    const unauth = await refused(rawExec(cluster, execPath('app', ['say']), undefined, 'wrong-token'));
    expect(unauth.status).toBe(401);
    expect(unauth.body).toBe(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}',
    );
    const forbidden = await refused(
      rawExec(cluster, execPath('app', ['say'], { stdout: '1' }), undefined, 'reader-token'),
    );
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers['content-type']).toBe('application/json');
    expect(forbidden.body).toBe(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"app\\" is forbidden: User \\"reader\\" cannot get resource \\"pods/exec\\" in API group \\"\\" in the namespace \\"default\\"","reason":"Forbidden","details":{"name":"app","kind":"pods"},"code":403}',
    );
    const missing = await refused(rawExec(cluster, execPath('nope', ['say'], { stdout: '1' })));
    expect(missing.status).toBe(404);
    expect(missing.body).toBe(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"nope\\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404}',
    );
    const choose = await refused(rawExec(cluster, execPath('multi', ['say'], { stdout: '1' })));
    expect(choose.status).toBe(400);
    expect(JSON.parse(choose.body)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'a container name must be specified for pod multi, choose one of: [a b init]',
      reason: 'BadRequest',
      code: 400,
    });
    const badContainer = await refused(
      rawExec(cluster, execPath('app', ['say'], { stdout: '1', container: 'zz' })),
    );
    expect(JSON.parse(badContainer.body).message).toBe('container zz is not valid for pod app');
    const noHost = await refused(rawExec(cluster, execPath('unscheduled', ['say'], { stdout: '1' })));
    expect(JSON.parse(noHost.body).message).toBe('pod unscheduled does not have a host assigned');
    const noStreams = await refused(rawExec(cluster, execPath('app', ['say'])));
    expect(JSON.parse(noStreams.body).message).toBe('you must specify at least 1 of stdin, stdout, stderr');
  });

  it('a plain GET gets 400 "Upgrade request required"; RBAC still comes first', async () => {
    const plain = await api(cluster, 'GET', execPath('app', ['say'], { stdout: 'true' }));
    expect(plain.status).toBe(400);
    expect(plain.body).toBe(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Upgrade request required","reason":"BadRequest","code":400}',
    );
    const denied = await api(cluster, 'GET', execPath('app', ['say'], { stdout: 'true' }), {
      token: 'reader-token',
    });
    expect(denied.status).toBe(403);
  });

  it('emulates 1.35: WebSocket exec also needs create on pods/exec', async () => {
    const strict = await FakeCluster.start({
      execRequiresCreate: true,
      users: [{ name: 'getonly', token: 'g', rules: [{ verbs: ['get'], resources: ['pods/exec'] }] }],
    });
    try {
      await strict.addPod({
        name: 'p',
        containers: [{ name: 'c', image: 'x', options: { handler: () => 0 } }],
      });
      const r = await refused(rawExec(strict, execPath('p', ['x'], { stdout: '1' }), undefined, 'g'));
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body).message).toBe('pods "p" is forbidden: ');
      const admin = await rawExec(strict, execPath('p', ['x'], { stdout: '1' }));
      await admin.closed;
      expect(collect(admin.frames, 3)).toBe('{"metadata":{},"status":"Success"}');
    } finally {
      await strict.close();
    }
    const s = await rawExec(
      cluster,
      execPath('app', ['say', '0'], { stdout: '1' }),
      undefined,
      'execer-token',
    );
    await s.closed;
    expect(collect(s.frames, 3)).toBe('{"metadata":{},"status":"Success"}');
  });

  it('container not running: InternalError after the upgrade on v5, plain 500 on the legacy path', async () => {
    const s = await rawExec(cluster, execPath('stopped', ['ls'], { stdout: 'true' }));
    const closed = await s.closed;
    expect(closed.code).toBe(1000);
    expect(s.frames[0]).toEqual({ channel: 1, data: Buffer.alloc(0), text: false });
    expect(collect(s.frames, 3)).toBe(
      '{"metadata":{},"status":"Failure","message":"Internal error occurred: unable to upgrade connection: container not found (\\"c\\")","reason":"InternalError","details":{"causes":[{"message":"unable to upgrade connection: container not found (\\"c\\")"}]},"code":500}',
    );
    const legacy = await refused(
      rawExec(cluster, execPath('stopped', ['ls'], { stdout: 'true' }), ['v4.channel.k8s.io']),
    );
    expect(legacy.status).toBe(500);
    expect(legacy.body).toBe('container not found ("c")');
  });

  it('command not found: InternalError status (scripted and host runtimes)', async () => {
    for (const pod of ['app', 'hostpod']) {
      const s = await rawExec(cluster, execPath(pod, ['no-such-binary-xyz'], { stdout: 'true' }));
      await s.closed;
      const st = JSON.parse(collect(s.frames, 3)) as {
        reason: string;
        code: number;
        message: string;
        details: { causes: Array<{ message: string }> };
      };
      expect(st.reason).toBe('InternalError');
      expect(st.code).toBe(500);
      expect(st.message).toMatch(
        /^Internal error occurred: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: unable to start container process: exec: "no-such-binary-xyz": executable file not found in \$PATH: unknown$/,
      );
      expect(st.details.causes[0]?.message).toBe(st.message.slice('Internal error occurred: '.length));
    }
  });

  it('host runtime: real processes, exit codes, stdin EOF, signals', async () => {
    const s = await rawExec(
      cluster,
      execPath('hostpod', ['sh', '-c', 'cat; echo done >&2; exit 9'], {
        stdin: '1',
        stdout: '1',
        stderr: '1',
      }),
    );
    s.ws.send(Buffer.from([0, ...Buffer.from('piped')]));
    s.ws.send(Buffer.from([255, 0]));
    await s.closed;
    expect(collect(s.frames, 1)).toBe('piped');
    expect(collect(s.frames, 2)).toBe('done\n');
    expect(JSON.parse(collect(s.frames, 3)).details.causes[0].message).toBe('9');
    const k = await rawExec(cluster, execPath('hostpod', ['sh', '-c', 'kill -TERM $$'], { stdout: '1' }));
    await k.closed;
    expect(JSON.parse(collect(k.frames, 3)).details.causes[0].message).toBe('143');
  });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe('FakeCluster process lifecycle', () => {
  it('a client that disconnects kills its exec; close() kills the rest', async () => {
    const cluster = await FakeCluster.start();
    await cluster.addPod({ name: 'h', containers: [{ name: 'c', image: 'busybox', runtime: 'host' }] });
    const pidOf = async (s: Awaited<ReturnType<typeof rawExec>>): Promise<number> => {
      await waitFor(() => /^\d+\n/.test(collect(s.frames, 1)));
      return Number(collect(s.frames, 1).trim());
    };
    const cmd = ['sh', '-c', 'echo $$; exec sleep 30'];
    const a = await rawExec(cluster, execPath('h', cmd, { stdout: '1' }));
    const pidA = await pidOf(a);
    expect(alive(pidA)).toBe(true);
    a.ws.terminate();
    expect(await waitFor(() => !alive(pidA))).toBe(true);

    const b = await rawExec(cluster, execPath('h', cmd, { stdout: '1' }));
    const pidB = await pidOf(b);
    expect(alive(pidB)).toBe(true);
    await cluster.close();
    expect(await waitFor(() => !alive(pidB))).toBe(true);
    const closed = await b.closed;
    expect(closed.code).not.toBe(1000);
  });

  it('a handler that ignores stdin still ends with a status and a prompt close', async () => {
    const cluster = await FakeCluster.start();
    try {
      await cluster.addPod({
        name: 'p',
        containers: [{ name: 'c', image: 'x', options: { handler: () => 7 } }],
      });
      const s = await rawExec(cluster, execPath('p', ['anything'], { stdin: '1', stdout: '1' }));
      s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.alloc(1 << 20)]));
      const t = Date.now();
      const closed = await s.closed;
      expect(closed.code).toBe(1000);
      expect(Date.now() - t).toBeLessThan(5000);
      expect(JSON.parse(collect(s.frames, 3)).details.causes[0].message).toBe('7');
    } finally {
      await cluster.close();
    }
  });
});
