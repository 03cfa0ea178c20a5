/**
 * Cost of the whole-filesystem timeline and of the opt-in memory profile, on one busybox sandbox
 * container through FakeCluster (in process), each measured against its peer in the same rounds:
 *
 * 1. `full` (bodyfile = whole filesystem) vs the same profile with the bodyfile of `triage`
 *    (17 roots, depth caps): wall time and bodyfile entries.
 * 2. `triage` + `memory` vs `triage` alone on a container with a fileless implant (one deleted
 *    executable in /var/tmp and its forks): wall time and core bytes.
 *
 * Run alone: `npx tsx bench/profiles.ts [runs] [extra files]` (needs root + bwrap).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ArtifactCollector,
  BUILTIN_PROFILES,
  type ProfileSpec,
  type ProfileSpecInput,
} from '../src/collect/index.js';
import { DirectorySink } from '../src/evidence/index.js';
import { KubeClient } from '../src/kube/index.js';
import { FakeCluster } from '../src/testing/index.js';
import {
  createSandboxRuntime,
  hostileProcesses,
  type SandboxContainerOptions,
} from '../src/testing/sandbox/index.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** What {@link benchProfiles} returns (ms are medians over `runs`). */
export interface ProfilesBenchResult {
  runs: number;
  extraFiles: number;
  fullWholeFsMs: number;
  fullNarrowMs: number;
  wholeFsEntries: number;
  narrowEntries: number;
  triageMs: number;
  triageMemoryMs: number;
  coresRead: number;
  coreBytes: number;
}

/** `full` with the narrow bodyfile of `triage` instead of the whole filesystem (the peer). */
function narrowFull(): ProfileSpecInput {
  const full = BUILTIN_PROFILES.full as ProfileSpec;
  const narrow = (BUILTIN_PROFILES.triage as ProfileSpec).items.find((i) => i.id === 'bodyfile');
  return {
    name: 'full-narrow',
    description: 'full with the triage bodyfile',
    items: full.items.map((i) => (i.id === 'bodyfile' && narrow ? narrow : i)) as ProfileSpecInput['items'],
  };
}

/** Measures the timeline and the memory profile on sandbox containers. */
export async function benchProfiles(runs = 3, extraFiles = 3000): Promise<ProfilesBenchResult> {
  const sandbox = await createSandboxRuntime();
  const cluster = await FakeCluster.start({ runtimes: { sandbox } });
  const dir = await mkdtemp(join(tmpdir(), 'eksf-bench-profiles-'));
  try {
    const kube = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.adminToken,
    });
    const sink = new DirectorySink({ root: dir, fsyncArtifacts: false });
    const files: NonNullable<SandboxContainerOptions['files']> = {};
    for (let i = 0; i < extraFiles; i++)
      files[`/usr/share/bench/d${i % 50}/f${i}` as keyof typeof files] = { content: `file ${i}\n` };
    let seq = 0;
    const pod = async (opts: SandboxContainerOptions) => {
      const name = `bench-${seq++}`;
      await cluster.addPod({
        namespace: 'default',
        name,
        containers: [
          {
            name: 'app',
            image: 'busybox:1.36',
            runtime: 'sandbox',
            options: opts,
            command: ['sleep', '86400'],
          },
        ],
      });
      return { namespace: 'default', pod: name, container: 'app' };
    };
    const once = async (t: { namespace: string; pod: string; container: string }, profiles: unknown[]) => {
      const c = new ArtifactCollector({ sink, profiles: profiles as never });
      const t0 = performance.now();
      const r = await c.acquire({ kube, ...t });
      const ms = performance.now() - t0;
      const loc = r.targets[0]?.location as string;
      const manifest = JSON.parse(await readFile(join(loc, 'manifest.json'), 'utf8')) as {
        artifacts: { path: string; bytes: number; details?: { entries?: number } }[];
      };
      await rm(loc, { recursive: true, force: true });
      return { ms, manifest };
    };
    const big = await pod({ preset: 'busybox', files });
    const whole: number[] = [];
    const narrow: number[] = [];
    let wholeEntries = 0;
    let narrowEntries = 0;
    const entriesOf = (m: { artifacts: { path: string; details?: { entries?: number } }[] }) =>
      m.artifacts.find((a) => a.path.endsWith('files/bodyfile.txt'))?.details?.entries ?? 0;
    for (let i = 0; i < runs; i++) {
      const a = await once(big, ['full']);
      whole.push(a.ms);
      wholeEntries = entriesOf(a.manifest);
      const b = await once(big, [narrowFull()]);
      narrow.push(b.ms);
      narrowEntries = entriesOf(b.manifest);
    }
    const implant = await pod({
      preset: 'busybox',
      processes: [
        ...hostileProcesses(),
        {
          argv: ['/var/tmp/.k/sh', '-c', 'K=$(printf "%s" "key-only-in-memory"); while :; do sleep 5; done'],
          binary: 'busybox',
          deleteAfterStart: true,
        },
      ],
    });
    const tri: number[] = [];
    const mem: number[] = [];
    let cores = 0;
    let coreBytes = 0;
    for (let i = 0; i < runs; i++) {
      tri.push((await once(implant, ['triage'])).ms);
      const m = await once(implant, ['triage', 'memory']);
      mem.push(m.ms);
      const c = m.manifest.artifacts.filter((x) => x.path.endsWith('.core'));
      cores = c.length;
      coreBytes = c.reduce((n, x) => n + x.bytes, 0);
    }
    return {
      runs,
      extraFiles,
      fullWholeFsMs: Math.round(median(whole)),
      fullNarrowMs: Math.round(median(narrow)),
      wholeFsEntries: wholeEntries,
      narrowEntries,
      triageMs: Math.round(median(tri)),
      triageMemoryMs: Math.round(median(mem)),
      coresRead: cores,
      coreBytes,
    };
  } finally {
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchProfiles(Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 3000))
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
