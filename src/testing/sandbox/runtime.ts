/**
 * The `sandbox` container runtime: real namespace containers built from bubblewrap, static
 * busybox and nsenter. Needs root.
 *
 * - Each pod gets a holder process (like Kubernetes' pause container) owning the pod's network,
 *   IPC and UTS namespaces (loopback up, hostname = pod name); every container of the pod is
 *   started inside them (`nsenter --net --ipc --uts bwrap …`).
 * - Each container: its rootfs (a host directory built from the preset and file map) bound on
 *   `/`, its own mount and PID namespaces with `/proc` mounted for that PID namespace, the
 *   entrypoint as PID 1 (`bwrap --as-pid-1`).
 * - Ephemeral containers (`spec.target`) get their own rootfs but join the target's PID
 *   namespace (`bwrap --pidns`), so `/proc/<pid>/root` shows the target's files.
 * - `exec` enters the container like `runc exec`: `nsenter --target <init> --mount --pid --net
 *   --uts --ipc --root --wdns <workingDir>`, with the container's environment; the command is
 *   looked up in the container's PATH first so a missing binary is reported as runc reports it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { ConfigError, SandboxUnavailableError } from '../../errors.js';
import type {
  ContainerRuntime,
  RuntimeContainer,
  RuntimeContainerSpec,
  RuntimeExecExit,
  RuntimeExecProcess,
  RuntimeExecSpec,
} from '../runtime.js';
import { sleeperSupported } from './elf.js';
import { DEFAULT_PATH, lookPath, resolveInRoot } from './lookpath.js';
import { APP_BINARY, applyPreset, baseEntries, type PresetSources, type SandboxPreset } from './presets.js';
import { delay, procAlive, procChildren, procExe, run } from './proc.js';
import { fileMapEntries, type GrowingFile, RootfsBuilder, type SandboxFileMap } from './rootfs.js';
import { parseSandboxOptions } from './schema.js';

/** A long-running process started in the container after its entrypoint. */
export interface SandboxProcessSpec {
  /** argv; `argv[0]` is the path executed (absolute, or looked up in the container's PATH). */
  argv: readonly string[];
  /** Install this binary at `argv[0]` (absolute) before starting: `sleeper` ignores its arguments. */
  binary?: 'busybox' | 'sleeper' | undefined;
  /** Environment (default: the container's). */
  env?: Readonly<Record<string, string>> | undefined;
  /** Working directory in the container (default: the container's). */
  cwd?: string | undefined;
  /** Delete `argv[0]` once the process runs, so `/proc/<pid>/exe` ends in ` (deleted)`. */
  deleteAfterStart?: boolean | undefined;
}

/** Options of a `sandbox` container (`options` in the FakeCluster container spec). */
export interface SandboxContainerOptions {
  /** Image preset (default `busybox`). */
  preset?: SandboxPreset | undefined;
  /** Files on top of the preset (later entries replace earlier ones). */
  files?: SandboxFileMap | undefined;
  /** Extra long-running processes, started in order after the entrypoint. */
  processes?: readonly SandboxProcessSpec[] | undefined;
}

/** A started sandbox container: a {@link RuntimeContainer} plus where it lives on the host. */
export interface SandboxRuntimeContainer extends RuntimeContainer {
  /** Host PID of the main process (PID 1 in its namespace; for an ephemeral container, its PID in the target's namespace). */
  readonly hostPid: number;
  /** Host directory bound as the container's `/`. */
  readonly rootfs: string;
}

/** Options of {@link createSandboxRuntime}. */
export interface SandboxRuntimeOptions {
  /** Runtime name FakeCluster knows it by (default `sandbox`). */
  name?: string | undefined;
  /** `containerID` prefix (default `containerd`). */
  runtimeName?: string | undefined;
  /** Parent of the runtime's temporary directory (default `os.tmpdir()`). */
  tmpDir?: string | undefined;
  /** Paths of the host tools (defaults: found in PATH; busybox at `/usr/bin/busybox` or `/bin/busybox`). */
  bwrap?: string | undefined;
  /** Static busybox. */
  busybox?: string | undefined;
  /** util-linux nsenter. */
  nsenter?: string | undefined;
  /** Bound on starting one container (default 15 s). */
  startTimeoutMs?: number | undefined;
  /** Skip the start-up probe (a tiny sandbox is started and exec'd into). Default false. */
  skipProbe?: boolean | undefined;
}

const APT = 'apt-get install bubblewrap busybox-static util-linux';
const SYS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DIR_PREFIX = 'eksf-sandbox-';

function which(cmd: string, extra: readonly string[] = []): string | null {
  for (const dir of [...SYS_PATH.split(':'), ...(process.env.PATH ?? '').split(':')]) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  for (const p of extra) if (existsSync(p)) return p;
  return null;
}

function unavailable(piece: string, detail: string, cause?: unknown): SandboxUnavailableError {
  return new SandboxUnavailableError(
    `the sandbox runtime cannot run here: ${piece} (${detail}). It needs root, bubblewrap (bwrap), a static busybox and util-linux nsenter: ${APT} (as root), then run the tests as root; or use the 'scripted'/'host' runtimes.`,
    cause === undefined ? {} : { cause },
  );
}

/** Host tools the runtime uses, after checking they exist. */
interface Tools {
  bwrap: string;
  busybox: string;
  nsenter: string;
  bwrapReal: string;
}

function findTools(opts: SandboxRuntimeOptions): Tools {
  if (process.platform !== 'linux') throw unavailable('not Linux', `platform is ${process.platform}`);
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw unavailable(
      'not root',
      `uid ${process.getuid?.() ?? '?'}; namespaces, mounts and nsenter need root`,
    );
  }
  const bwrap = opts.bwrap ?? which('bwrap');
  if (!bwrap || !existsSync(bwrap)) throw unavailable('bwrap not found', 'Debian package bubblewrap');
  const busybox = opts.busybox ?? which('busybox', ['/usr/bin/busybox', '/bin/busybox']);
  if (!busybox || !existsSync(busybox))
    throw unavailable('busybox not found', 'Debian package busybox-static');
  const nsenter = opts.nsenter ?? which('nsenter');
  if (!nsenter || !existsSync(nsenter)) throw unavailable('nsenter not found', 'Debian package util-linux');
  if (!sleeperSupported()) throw unavailable('unsupported CPU architecture', process.arch);
  return { bwrap, busybox, nsenter, bwrapReal: realpathSync(bwrap) };
}

async function presetSources(t: Tools): Promise<PresetSources> {
  const list = await run(t.busybox, ['--list']);
  if (list.code !== 0) throw unavailable('busybox --list failed', list.stderr.trim().slice(0, 200));
  const applets = list.stdout.split('\n').filter((a) => /^[a-zA-Z0-9_.[-]+$/.test(a));
  const file = await run(t.busybox, [
    'sh',
    '-c',
    'LC_ALL=C; exec 2>&1; ldd "$1" || echo not-dynamic',
    'sh',
    t.busybox,
  ]);
  if (!/not a dynamic|not-dynamic|statically/.test(file.stdout)) {
    throw unavailable('busybox is not static', `${t.busybox}: install busybox-static`);
  }
  const dashPath = which('dash', ['/bin/dash', '/usr/bin/dash']);
  let dash: PresetSources['dash'] = null;
  if (dashPath) {
    const ldd = which('ldd');
    const r = ldd ? await run(ldd, [dashPath]) : null;
    if (r && r.code === 0) {
      const libs = [...r.stdout.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]).filter((x): x is string => !!x);
      dash = { binary: dashPath, libs };
    }
  }
  return { busybox: t.busybox, applets, dash };
}

// ---- process-exit cleanup --------------------------------------------------------------------

const live = new Set<SandboxRuntime>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const rt of live) rt.killSync();
  });
}

function removeTreeSync(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Paths longer than PATH_MAX: coreutils rm walks with openat.
    spawnSync('rm', ['-rf', '--one-file-system', '--', dir], { stdio: 'ignore', env: { PATH: SYS_PATH } });
  }
}

async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    await run('rm', ['-rf', '--one-file-system', '--', dir]);
  }
}

/** Removes directories left by runtimes of processes that no longer exist (e.g. killed with SIGKILL). */
function sweepStale(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^eksf-sandbox-(\d+)-/.exec(n);
    if (!m?.[1]) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    removeTreeSync(join(parent, n));
  }
}

// ---- the runtime ----------------------------------------------------------------------------

interface Started {
  child: ChildProcess;
  initPid: number;
  stderr: () => string;
  exited: Promise<void>;
}

/** Spawns bwrap (optionally through nsenter) and waits until its command has been exec'd. */
async function startBwrap(
  t: Tools,
  prefix: readonly string[],
  bwrapArgs: readonly string[],
  extraFds: readonly number[],
  timeoutMs: number,
  openStdin = false,
): Promise<Started> {
  const file = prefix.length > 0 ? t.nsenter : t.bwrap;
  const args = prefix.length > 0 ? [...prefix, '--', t.bwrap, ...bwrapArgs] : [...bwrapArgs];
  const child = spawn(file, args, {
    stdio: [openStdin ? 'pipe' : 'ignore', 'ignore', 'pipe', 'pipe', ...extraFds],
    env: { PATH: SYS_PATH },
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (err.length < 4096) err += d.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  let info = '';
  const infoStream = child.stdio[3] as Readable | null;
  infoStream?.on('data', (d: Buffer) => {
    if (info.length < 65536) info += d.toString('utf8');
  });
  const deadline = Date.now() + timeoutMs;
  let initPid = 0;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline && !gone) {
    const m = /"child-pid":\s*(\d+)/.exec(info);
    if (m?.[1]) {
      initPid = Number(m[1]);
      const exe = await procExe(initPid);
      if (exe !== null && exe !== t.bwrapReal) break;
    }
    await delay(3);
  }
  const exe = initPid > 0 ? await procExe(initPid) : null;
  if (gone || exe === null || exe === t.bwrapReal) {
    child.kill('SIGKILL');
    if (initPid > 0) killQuiet(initPid);
    await exited;
    throw new Error(
      `bwrap did not start (${gone ? `exited ${child.exitCode ?? child.signalCode}` : 'timeout'}): ${err.trim()}`,
    );
  }
  return { child, initPid, stderr: () => err, exited };
}

function killQuiet(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

/** The holder of a pod's network, IPC and UTS namespaces. */
interface PodHolder {
  started: Started;
  refs: number;
}

/** The `sandbox` runtime. Create it with {@link createSandboxRuntime}. */
export class SandboxRuntime implements ContainerRuntime<SandboxContainerOptions> {
  /** Runtime name used in FakeCluster container specs. */
  readonly name: string;
  /** `containerID` prefix. */
  readonly runtimeName: string;
  /** The runtime's temporary directory (every rootfs lives below it; removed by `close()`). */
  readonly dir: string;
  private readonly pods = new Map<string, Promise<PodHolder>>();
  private readonly holderPids = new Set<number>();
  private readonly containers = new Set<SandboxContainer>();
  private closed = false;

  /** @internal */
  constructor(
    /** @internal */ readonly tools: Tools,
    /** @internal */ readonly sources: PresetSources,
    dir: string,
    /** @internal */ readonly options: SandboxRuntimeOptions,
  ) {
    this.name = options.name ?? 'sandbox';
    this.runtimeName = options.runtimeName ?? 'containerd';
    this.dir = dir;
  }

  /** Starts a container. Throws {@link eks-forensics/errors!ConfigError} for a bad spec (e.g. missing entrypoint). */
  async start(spec: RuntimeContainerSpec<SandboxContainerOptions>): Promise<SandboxRuntimeContainer> {
    if (this.closed) throw new ConfigError('the sandbox runtime is closed');
    const c = new SandboxContainer(this, spec);
    this.containers.add(c);
    try {
      await c.start();
    } catch (err) {
      await c.stop();
      this.containers.delete(c);
      throw err;
    }
    return c;
  }

  /** @internal the pod's namespace holder, started on first use. */
  async acquirePod(ref: { uid: string; name: string }): Promise<PodHolder> {
    let p = this.pods.get(ref.uid);
    if (!p) {
      const hostname = ref.name.slice(0, 63) || 'pod';
      p = startBwrap(
        this.tools,
        [],
        [
          '--unshare-net',
          '--unshare-ipc',
          '--unshare-uts',
          '--unshare-pid',
          '--hostname',
          hostname,
          '--as-pid-1',
          '--die-with-parent',
          '--ro-bind',
          this.tools.busybox,
          '/sleep',
          '--info-fd',
          '3',
          '--clearenv',
          '--',
          '/sleep',
          'infinity',
        ],
        [],
        this.options.startTimeoutMs ?? 15_000,
      ).then((started) => {
        this.holderPids.add(started.initPid);
        return { started, refs: 0 };
      });
      this.pods.set(ref.uid, p);
      p.catch(() => this.pods.delete(ref.uid));
    }
    const holder = await p;
    holder.refs++;
    return holder;
  }

  /** @internal */
  async releasePod(uid: string): Promise<void> {
    const p = this.pods.get(uid);
    if (!p) return;
    const holder = await p.catch(() => null);
    if (!holder) return;
    if (--holder.refs > 0 && !this.closed) return;
    this.pods.delete(uid);
    this.holderPids.delete(holder.started.initPid);
    killQuiet(holder.started.initPid);
    holder.started.child.kill('SIGKILL');
    await holder.started.exited;
  }

  /** @internal */
  forget(c: SandboxContainer): void {
    this.containers.delete(c);
  }

  /** Stops every container and pod holder, and removes the temporary directory. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.containers].map((c) => c.stop()));
    this.containers.clear();
    for (const [uid] of this.pods) await this.releasePod(uid);
    await removeTree(this.dir);
    live.delete(this);
  }

  /** @internal synchronous last-resort cleanup from the process `exit` hook. */
  killSync(): void {
    for (const c of this.containers) c.killSync();
    for (const pid of this.holderPids) killQuiet(pid);
    removeTreeSync(this.dir);
  }
}

let execSeq = 0;

/** A running sandbox container. */
class SandboxContainer implements SandboxRuntimeContainer {
  readonly id = randomBytes(32).toString('hex');
  readonly runtimeName: string;
  private readonly cdir: string;
  private readonly root: string;
  private main: Started | null = null;
  private pod: string | null = null;
  private stopped = false;
  private readonly hostPids = new Set<number>();
  private readonly execs = new Set<ChildProcess>();
  private readonly timers: NodeJS.Timeout[] = [];
  private growing: GrowingFile[] = [];
  private env: Record<string, string> = {};
  private cwd = '/';

  constructor(
    private readonly rt: SandboxRuntime,
    private readonly spec: RuntimeContainerSpec<SandboxContainerOptions>,
  ) {
    this.runtimeName = rt.runtimeName;
    this.cdir = join(rt.dir, `${this.id.slice(0, 12)}-${execSeq++}`);
    this.root = join(this.cdir, 'rootfs');
  }

  /** Host PID of the container's main process (PID 1 inside, or its PID in the target's namespace). */
  get hostPid(): number {
    return this.main?.initPid ?? 0;
  }

  /** Host path of the rootfs. */
  get rootfs(): string {
    return this.root;
  }

  async start(): Promise<void> {
    const opts = parseSandboxOptions(this.spec.options, this.spec.name);
    const target = this.spec.target;
    if (target !== undefined && !(target instanceof SandboxContainer)) {
      throw new ConfigError(
        `sandbox ephemeral container ${this.spec.name}: its target must be a sandbox container (got runtime ${target.runtimeName})`,
      );
    }
    const scratch = join(this.cdir, 'scratch');
    await mkdir(this.root, { recursive: true });
    await mkdir(scratch);
    const b = new RootfsBuilder(this.root, scratch, this.rt.tools.busybox);
    for (const [p, e] of baseEntries(this.spec.pod.name)) await b.add(Buffer.from(p), e);
    const defaultCommand = await applyPreset(b, opts.preset ?? 'busybox', this.rt.sources).catch(
      (err: unknown) => {
        throw err instanceof Error && /needs dash/.test(err.message)
          ? unavailable('shell-only preset', err.message)
          : err;
      },
    );
    for (const p of opts.processes ?? []) {
      const exe = p.argv[0];
      if (exe === undefined) throw new ConfigError('sandbox process argv must not be empty');
      if (p.binary) {
        if (!exe.startsWith('/'))
          throw new ConfigError(`sandbox process ${exe}: binary needs an absolute argv[0]`);
        await b.add(Buffer.from(exe), { type: 'binary', binary: p.binary });
      }
    }
    for (const { path, entry } of fileMapEntries(opts.files)) await b.add(path, entry);
    await b.done();
    this.growing = b.growing;

    this.cwd = this.spec.workingDir ?? '/';
    this.env = { PATH: DEFAULT_PATH, HOSTNAME: this.spec.pod.name, HOME: '/root', ...(this.spec.env ?? {}) };
    const command =
      this.spec.command && this.spec.command.length > 0 ? [...this.spec.command] : defaultCommand;
    const cmd0 = command[0] ?? APP_BINARY;
    const found = await lookPath(this.root, cmd0, this.env.PATH ?? DEFAULT_PATH, this.cwd);
    if (!found.ok) {
      throw new ConfigError(
        `sandbox container ${this.spec.name}: cannot start entrypoint: ${found.message} (add it to the file map or pick another preset)`,
      );
    }

    const holder = await this.rt.acquirePod(this.spec.pod);
    this.pod = this.spec.pod.uid;
    const podPid = holder.started.initPid;
    const args = [
      '--bind',
      this.root,
      '/',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--chdir',
      this.cwd,
      '--die-with-parent',
    ];
    args.push('--info-fd', '3', '--clearenv');
    for (const [k, v] of Object.entries(this.env)) args.push('--setenv', k, v);
    const fds: number[] = [];
    if (target) {
      fds.push(openSync(`/proc/${target.hostPid}/ns/pid`, 'r'));
      args.push('--pidns', '4');
    } else {
      args.push('--unshare-pid', '--as-pid-1');
    }
    args.push('--', ...command);
    try {
      this.main = await startBwrap(
        this.rt.tools,
        [`--net=/proc/${podPid}/ns/net`, `--ipc=/proc/${podPid}/ns/ipc`, `--uts=/proc/${podPid}/ns/uts`],
        args,
        fds,
        this.rt.options.startTimeoutMs ?? 15_000,
        // Ephemeral (debug) containers are created with `stdin: true`: a shell entrypoint waits on it.
        target !== undefined,
      );
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    this.hostPids.add(this.main.initPid);
    for (const p of opts.processes ?? []) await this.startProcess(p);
    for (const g of this.growing) this.grow(g);
  }

  private nsenterArgs(cwd: string): string[] {
    return [
      `--target=${this.hostPid}`,
      '--mount',
      '--pid',
      '--net',
      '--uts',
      '--ipc',
      '--root',
      `--wdns=${cwd}`,
      '--',
    ];
  }

  private async startProcess(p: SandboxProcessSpec): Promise<void> {
    const exe = p.argv[0] ?? '';
    const cwd = p.cwd ?? this.cwd;
    const env = { ...(p.env ?? this.env) };
    const found = await lookPath(this.root, exe, env.PATH ?? DEFAULT_PATH, cwd);
    if (!found.ok) throw new ConfigError(`sandbox process ${exe}: ${found.message}`);
    const child = spawn(this.rt.tools.nsenter, [...this.nsenterArgs(cwd), ...p.argv], {
      stdio: 'ignore',
      env,
    });
    this.execs.add(child);
    child.once('close', () => this.execs.delete(child));
    const nsPid = child.pid ?? 0;
    const deadline = Date.now() + (this.rt.options.startTimeoutMs ?? 15_000);
    let pid = 0;
    const nsenterExe = await procExe(nsPid);
    while (Date.now() < deadline) {
      const [c] = await procChildren(nsPid);
      if (c !== undefined) {
        const e = await procExe(c);
        if (e !== null && e !== nsenterExe) {
          pid = c;
          break;
        }
      }
      if (child.exitCode !== null || child.signalCode !== null) break;
      await delay(3);
    }
    if (pid === 0) throw new ConfigError(`sandbox process ${p.argv.join(' ')} did not start`);
    this.hostPids.add(pid);
    if (p.deleteAfterStart) {
      const r = await resolveInRoot(this.root, exe.startsWith('/') ? exe : `${cwd}/${exe}`);
      if (r) await rm(r.hostPath, { force: true });
    }
  }

  private grow(g: GrowingFile): void {
    const chunk = Buffer.from(
      g.entry.chunk ??
        `${new Date(0).toISOString()} INFO request served path=/healthz status=200 ${'x'.repeat(4000)}\n`,
    );
    const max = g.entry.maxBytes ?? 64 * 1024 * 1024;
    let size = Buffer.byteLength(g.entry.content ?? '');
    let busy = false;
    const t = setInterval(() => {
      if (busy) return;
      if (size >= max) {
        clearInterval(t);
        return;
      }
      busy = true;
      g.handle
        .write(chunk)
        .then(() => {
          size += chunk.length;
        })
        .catch(() => clearInterval(t))
        .finally(() => {
          busy = false;
        });
    }, g.entry.intervalMs ?? 20);
    t.unref();
    this.timers.push(t);
  }

  running(): boolean {
    return (
      !this.stopped &&
      this.main !== null &&
      this.main.child.exitCode === null &&
      this.main.child.signalCode === null
    );
  }

  exec(spec: RuntimeExecSpec): RuntimeExecProcess {
    const stdout = new PassThrough({ highWaterMark: 64 * 1024 });
    const stderrOut = new PassThrough({ highWaterMark: 64 * 1024 });
    const stdin: PassThrough | null = spec.stdin ? new PassThrough({ highWaterMark: 64 * 1024 }) : null;
    let child: ChildProcess | null = null;
    let pendingSignal: NodeJS.Signals | null = null;
    const kill = (signal: NodeJS.Signals = 'SIGKILL'): void => {
      if (!child) {
        pendingSignal = signal;
        return;
      }
      const c = child;
      const nsPid = c.pid ?? 0;
      // Signal the process inside, not nsenter (which would orphan it); nsenter forks at once.
      void (async () => {
        for (let i = 0; i < 40 && c.exitCode === null && c.signalCode === null; i++) {
          const kids = await procChildren(nsPid);
          if (kids.length > 0) {
            for (const k of kids) killQuiet(k, signal);
            return;
          }
          await delay(5);
        }
        c.kill(signal);
      })();
    };
    const fail = (message: string): RuntimeExecExit => {
      stdout.end();
      stderrOut.end();
      stdin?.resume();
      return { kind: 'error', message };
    };
    const result = (async (): Promise<RuntimeExecExit> => {
      const argv = spec.command;
      const cmd0 = argv[0] ?? '';
      if (!this.running()) return fail(`container not found ("${this.spec.name}")`);
      const found = await lookPath(this.root, cmd0, this.env.PATH ?? DEFAULT_PATH, this.cwd).catch(
        (err: unknown) => ({ ok: false as const, message: String(err) }),
      );
      if (!found.ok) {
        return fail(
          `failed to exec in container: failed to start exec "${randomBytes(32).toString('hex')}": OCI runtime exec failed: exec failed: unable to start container process: ${found.message}: unknown`,
        );
      }
      if (spec.signal.aborted) return fail('exec aborted before it started');
      const c = spawn(this.rt.tools.nsenter, [...this.nsenterArgs(this.cwd), ...argv], {
        stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: spec.tty ? { TERM: 'xterm', ...this.env } : this.env,
      });
      child = c;
      this.execs.add(c);
      const onAbort = (): void => kill('SIGKILL');
      spec.signal.addEventListener('abort', onAbort, { once: true });
      if (pendingSignal) kill(pendingSignal);
      c.stdin?.on('error', () => undefined);
      if (stdin && c.stdin) stdin.pipe(c.stdin);
      const out = c.stdout as Readable;
      const err = c.stderr as Readable;
      const done = (s: Readable): Promise<void> =>
        new Promise((r) => {
          if (s.readableEnded || s.destroyed) r();
          s.once('end', () => r());
          s.once('close', () => r());
        });
      if (spec.tty) {
        out.pipe(stdout, { end: false });
        err.pipe(stdout, { end: false });
        void Promise.all([done(out), done(err)]).then(() => stdout.end());
        stderrOut.end();
      } else {
        out.pipe(stdout);
        err.pipe(stderrOut);
      }
      const exit = await new Promise<RuntimeExecExit>((resolve) => {
        c.once('error', (e) => resolve({ kind: 'error', message: e.message }));
        c.once('close', (code, signal) => {
          if (signal) resolve({ kind: 'signaled', signal });
          else resolve({ kind: 'exited', exitCode: code ?? 0 });
        });
      });
      spec.signal.removeEventListener('abort', onAbort);
      this.execs.delete(c);
      await Promise.all([done(stdout), done(stderrOut)]);
      return exit;
    })();
    return { stdout, stderr: stderrOut, stdin: stdin as Writable | null, result, kill };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const g of this.growing) await g.handle.close().catch(() => undefined);
    for (const c of this.execs) {
      for (const k of await procChildren(c.pid ?? 0)) killQuiet(k);
    }
    for (const pid of this.hostPids) killQuiet(pid);
    for (const c of this.execs) c.kill('SIGKILL');
    if (this.main) {
      this.main.child.kill('SIGKILL');
      await this.main.exited;
    }
    await Promise.all(
      [...this.execs].map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) r();
            else c.once('close', () => r());
          }),
      ),
    );
    for (const pid of this.hostPids) {
      for (let i = 0; i < 200 && (await procAlive(pid)); i++) await delay(5);
    }
    if (this.pod) await this.rt.releasePod(this.pod);
    await removeTree(this.cdir);
    this.rt.forget(this);
  }

  killSync(): void {
    for (const pid of this.hostPids) killQuiet(pid);
    for (const c of this.execs) c.kill('SIGKILL');
    this.main?.child.kill('SIGKILL');
  }
}

/**
 * Checks that this machine can run sandbox containers and creates the runtime. It starts a tiny
 * sandbox and execs into it (unless `skipProbe`), so a missing piece is reported here, not later.
 *
 * @throws SandboxUnavailableError naming what is missing (not root, no bwrap, no static busybox,
 *   no nsenter, namespaces or mounts refused) and the apt command that fixes it.
 * @example
 * const sandbox = await createSandboxRuntime();
 * const cluster = await FakeCluster.start({ runtimes: { sandbox } });
 */
export async function createSandboxRuntime(opts: SandboxRuntimeOptions = {}): Promise<SandboxRuntime> {
  const tools = findTools(opts);
  const sources = await presetSources(tools);
  const parent = opts.tmpDir ?? tmpdir();
  sweepStale(parent);
  const dir = await mkdtemp(join(parent, `${DIR_PREFIX}${process.pid}-`));
  const rt = new SandboxRuntime(tools, sources, dir, opts);
  live.add(rt);
  installExitHook();
  if (opts.skipProbe) return rt;
  try {
    const c = await rt.start({
      pod: { namespace: 'probe', name: 'probe', uid: `probe-${randomBytes(4).toString('hex')}` },
      name: 'probe',
      image: 'probe',
      options: { preset: { applets: ['sleep', 'true'] } },
    });
    const p = c.exec({ command: ['true'], stdin: false, tty: false, signal: new AbortController().signal });
    p.stdout.resume();
    p.stderr.resume();
    const exit = await p.result;
    await c.stop();
    if (exit.kind !== 'exited' || exit.exitCode !== 0) {
      throw new Error(`exec into the probe sandbox failed: ${JSON.stringify(exit)}`);
    }
  } catch (err) {
    await rt.close().catch(() => undefined);
    if (err instanceof SandboxUnavailableError) throw err;
    throw unavailable(
      'starting a probe sandbox failed (user/PID/mount namespaces or mounts refused?)',
      err instanceof Error ? err.message.slice(0, 500) : String(err),
      err,
    );
  }
  return rt;
}

/**
 * For `FakeCluster.start({ ephemeralContainerRuntime })`: runs every PATCHed ephemeral container
 * (whatever its image) in the sandbox runtime with its own busybox rootfs, joined to the target's
 * PID namespace.
 */
export function sandboxEphemeralContainerRuntime(
  runtime = 'sandbox',
): (image: string) => { runtime: string; options: SandboxContainerOptions } {
  return () => ({ runtime, options: { preset: 'busybox' } });
}
