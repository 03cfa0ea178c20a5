/**
 * Bytes of a deleted executable that cannot be read must not be recorded as a complete, empty
 * artifact: the read's exit status decides. A canned /proc (host runtime, the target's `fs` view)
 * holds one process whose `exe` link dangles and one whose target file exists.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactCollector, KubeClient, MemorySink } from '../../src/index.js';
import { FakeCluster } from '../../src/testing/index.js';

let dir = '';
let cluster: FakeCluster;

async function proc(pid: number, exeLink: string): Promise<void> {
  const d = join(dir, 'proc', String(pid));
  await mkdir(join(d, 'fd'), { recursive: true });
  await writeFile(join(d, 'cmdline'), `x${pid}\0`);
  await writeFile(join(d, 'comm'), `x${pid}\n`);
  await writeFile(join(d, 'status'), `Name:\tx${pid}\nPid:\t${pid}\nPPid:\t1\nUid:\t0\t0\t0\t0\n`);
  await symlink(exeLink, join(d, 'exe'));
  await symlink('/', join(d, 'cwd'));
  await symlink('/', join(d, 'root'));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eksf-procbytes-'));
  await mkdir(join(dir, 'bin'), { recursive: true });
  // pid 6: the "(deleted)" name exists as a file, so its bytes can be read
  await writeFile(join(dir, 'bin', 'kept (deleted)'), 'ELF-ish bytes');
  await proc(5, '/nonexistent-eksf/gone (deleted)');
  await proc(6, join(dir, 'bin', 'kept (deleted)'));
  cluster = await FakeCluster.start();
  await cluster.addPod({
    name: 'p',
    containers: [{ name: 'c', image: 'x', runtime: 'host', options: { cwd: dir } }],
  });
});

afterAll(async () => {
  await cluster?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('process bytes of deleted executables', () => {
  it('an unreadable exe is failed with the rc, a readable one complete with its bytes', async () => {
    const kube = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.adminToken,
    });
    const sink = new MemorySink();
    const report = await new ArtifactCollector({ sink, profiles: ['volatile'] }).acquire({
      kube,
      namespace: 'default',
      pod: 'p',
      container: 'c',
      fs: { root: dir, procBase: join(dir, 'proc') },
    });
    const t = report.targets[0];
    const bundle = sink.bundles.get(t?.acquisitionId ?? '');
    const manifest = JSON.parse(bundle?.files.get('manifest.json')?.toString('utf8') ?? '{}') as {
      artifacts: Array<{ path: string; status: string; bytes: number; reason?: string }>;
    };
    const gone = manifest.artifacts.find((a) => a.path === 'containers/c/proc/5/exe.bin');
    const kept = manifest.artifacts.find((a) => a.path === 'containers/c/proc/6/exe.bin');
    expect(gone?.status).toBe('failed');
    expect(gone?.reason).toMatch(/exit code [1-9]/);
    expect(kept?.status).toBe('complete');
    expect(kept?.bytes).toBe('ELF-ish bytes'.length);
    expect(t?.status).not.toBe('complete');
  });
});
