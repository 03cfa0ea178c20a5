/**
 * Installed-file integrity against a real sandbox container: a replaced binary a dpkg database
 * lists is flagged `modified`, a deleted one `missing`, a dropped executable `unpackaged`.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkIntegrity } from '../../src/collect/coverage/index.js';
import { addSandboxPod, type Env, sandboxMissing, startEnv } from '../collect/support.js';
import { skipWithoutPeer } from '../support/peers.js';
import { kubeExec } from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

const ORIGINAL_PS = '\x7fELF original procps ps\n';
const TROJAN_PS = '\x7fELF ps that hides the miner\n';
const TOP = '\x7fELF top\n';
const TOOL = '\x7fELF distroless tool\n';

describe.skipIf(skip)('installed-file integrity (sandbox)', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.close();
  }, 60_000);

  it('flags the replaced ps as modified, a deleted file as missing, a dropper as unpackaged', async () => {
    const t = await addSandboxPod(env, {
      preset: 'busybox',
      files: {
        '/var/lib/dpkg/status': {
          content:
            'Package: procps\nStatus: install ok installed\nVersion: 2:4.0.2-3\n\nPackage: gone\nStatus: deinstall ok config-files\n',
        },
        '/var/lib/dpkg/info/procps.md5sums': {
          content: `${md5(ORIGINAL_PS)}  usr/bin/ps\n${md5(TOP)}  usr/bin/top\n${md5('x')}  usr/bin/pgrep\n${md5('x')}  ../../../etc/shadow\n`,
        },
        '/var/lib/dpkg/status.d/tool': { content: 'Package: tool\nVersion: 1\n' },
        '/var/lib/dpkg/status.d/tool.md5sums': { content: `${md5(TOOL)}  usr/bin/distro-tool\n` },
        '/usr/bin/ps': { content: TROJAN_PS, mode: 0o755 },
        '/usr/bin/top': { content: TOP, mode: 0o755 },
        '/usr/bin/distro-tool': { content: TOOL, mode: 0o755 },
        '/usr/local/bin/.dropper': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
        '/usr/local/bin/notes.txt': { content: 'not executable\n', mode: 0o644 },
      },
    });
    const t0 = Date.now();
    const r = await checkIntegrity({
      exec: kubeExec(env.kube, t),
      shell: 'sh',
      dirs: ['/usr/bin', '/usr/local/bin'],
    });
    const ms = Date.now() - t0;
    const v = Object.fromEntries(r.report.rows.map((x) => [x.path, x.verdict]));
    expect(v['/usr/bin/ps']).toBe('modified');
    expect(v['/usr/bin/pgrep']).toBe('missing');
    expect(v['/usr/local/bin/.dropper']).toBe('unpackaged-executable');
    expect(v['/usr/bin/top']).toBeUndefined(); // ok rows are counted, not listed
    expect(v['/usr/local/bin/notes.txt']).toBeUndefined();
    expect(r.report.counts.ok).toBe(2); // top and the distroless tool
    expect(r.report.packages).toBe(2);
    expect(r.report.rejected.map((x) => x.reason)).toContain('path traversal (..)');
    const ps = r.report.rows.find((x) => x.path === '/usr/bin/ps');
    expect(ps?.sha256).toBe(createHash('sha256').update(TROJAN_PS).digest('hex'));
    expect(r.findings.find((f) => f.path === '/usr/bin/ps')?.severity).toBe('high');
    process.stderr.write(
      `integrity: ${r.report.checked} files, ${r.pulledBytes} bytes, ${r.execs} execs, ${ms} ms\n`,
    );
  }, 60_000);

  it('a lying database (a status that is /dev/zero, md5sums that never end) stays bounded', async () => {
    const t = await addSandboxPod(env, {
      preset: 'busybox',
      files: {
        '/var/lib/dpkg/status': { type: 'symlink', target: '/dev/zero' },
        '/var/lib/dpkg/info/big.md5sums': { type: 'sparse', size: 64 * 1024 * 1024 },
        '/usr/bin/ps': { content: TROJAN_PS, mode: 0o755 },
      },
    });
    const t0 = Date.now();
    const r = await checkIntegrity({
      exec: kubeExec(env.kube, t),
      shell: 'sh',
      dirs: ['/usr/bin'],
      maxDbBytes: 4 * 1024 * 1024,
    });
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.report.status).toBe('partial');
    expect(r.report.reasons.join('\n')).toMatch(/larger than 4194304 bytes|rejected/);
    // with no trustworthy database the binary is still reported, as unpackaged
    expect(r.report.rows.find((x) => x.path === '/usr/bin/ps')?.verdict).toBe('unpackaged-executable');
  }, 60_000);
});
