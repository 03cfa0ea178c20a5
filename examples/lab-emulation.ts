/**
 * The lab's emulated workload, for machines where the sandbox runtime cannot run (not root, no
 * bwrap): the compromised container as a canned, deterministic tree — the planted files plus a
 * `/proc` with the same processes, links, environment and sockets as the sandbox scenario (a miner
 * from a deleted binary, a reverse shell connected to its C2, LD_PRELOAD). The collector runs its
 * real scripts over it (through the host runtime, with the target's `fs` view pointed at the
 * tree), so nothing of this machine's own processes or connections enters the evidence.
 *
 * An emulation is not a container: the bytes of deleted executables cannot be served (their
 * `exe` links dangle, as the text must read `… (deleted)`; the collector records those reads as
 * failed and the target as partial), and the clock and shell are the host's. The lab labels the
 * runtime `emulated` everywhere it shows it.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** One emulated process. */
interface EmulatedProcess {
  pid: number;
  ppid: number;
  argv: string[];
  /** Text of the `exe` link (ends with ` (deleted)` for a deleted binary). */
  exe: string;
  env?: Record<string, string>;
  /** fd number → link text. */
  fds?: Record<number, string>;
  /** Extra lines of `maps` (the executable's own mapping is added). */
  maps?: string[];
}

const NS: Record<string, string> = {
  cgroup: 'cgroup:[4026532412]',
  ipc: 'ipc:[4026532330]',
  mnt: 'mnt:[4026532410]',
  net: 'net:[4026532333]',
  pid: 'pid:[4026532411]',
  uts: 'uts:[4026532329]',
  user: 'user:[4026531837]',
};

const STD_FDS = { 0: '/dev/null', 1: 'pipe:[39001]', 2: 'pipe:[39001]' };
const PRELOAD_LIB = '/usr/local/lib/libsystemd-helper.so';

/** Socket inodes of the emulated C2 pair (listener, server side, client side). */
const SOCK = { listen: 40001, server: 40003, client: 40002 } as const;
/** The reverse shell's ephemeral port. */
const CLIENT_PORT = 40000;

function compromisedProcesses(): EmulatedProcess[] {
  const c2 = ['/usr/lib/.c2/sh', '-c', 'while :; do sleep 3600; done | nc -l -p 4444'];
  const rs = ['/var/tmp/.rs/sh', '-c', 'while :; do sleep 3600; done | nc 127.0.0.1 4444'];
  return [
    { pid: 1, ppid: 0, argv: ['sleep', '86400'], exe: '/bin/busybox' },
    {
      pid: 14,
      ppid: 1,
      argv: ['/tmp/.x/xmrig', '--url', 'stratum+tcp://pool.example.invalid:3333', '--donate-level', '1'],
      exe: '/tmp/.x/xmrig (deleted)',
    },
    { pid: 15, ppid: 1, argv: c2, exe: '/usr/lib/.c2/sh (deleted)' },
    { pid: 16, ppid: 15, argv: ['sleep', '3600'], exe: '/usr/lib/.c2/sh (deleted)' },
    {
      pid: 17,
      ppid: 15,
      argv: ['nc', '-l', '-p', '4444'],
      exe: '/usr/lib/.c2/sh (deleted)',
      fds: { 3: `socket:[${SOCK.listen}]`, 4: `socket:[${SOCK.server}]` },
    },
    { pid: 18, ppid: 1, argv: rs, exe: '/var/tmp/.rs/sh (deleted)' },
    { pid: 19, ppid: 18, argv: ['sleep', '3600'], exe: '/var/tmp/.rs/sh (deleted)' },
    {
      pid: 20,
      ppid: 18,
      argv: ['nc', '127.0.0.1', '4444'],
      exe: '/var/tmp/.rs/sh (deleted)',
      fds: { 3: `socket:[${SOCK.client}]` },
    },
    {
      pid: 21,
      ppid: 1,
      argv: ['/tmp/.cache/kworker', '-s'],
      exe: '/tmp/.cache/kworker',
      env: {
        PATH: '/usr/bin:/bin',
        LD_PRELOAD: PRELOAD_LIB,
        AWS_SECRET_ACCESS_KEY: 'EXAMPLEKEYwJalrXUtnFEMI/K7MDENG/bPxRfiCY',
      },
      maps: [`7f3a1c000000-7f3a1c002000 r-xp 00000000 00:2a 5120 ${PRELOAD_LIB}`],
    },
  ];
}

function cleanProcesses(): EmulatedProcess[] {
  return [{ pid: 1, ppid: 0, argv: ['sleep', '86400'], exe: '/bin/busybox' }];
}

/** `/proc/net/tcp` row: addresses as the kernel prints them (little-endian IPv4, hex port). */
function tcpRow(sl: number, local: number, remote: number, state: string, inode: number): string {
  const hex = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const rem = remote === 0 ? '00000000:0000' : hex(remote);
  return `${String(sl).padStart(4)}: ${hex(local)} ${rem} ${state} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0`;
}

const TCP_HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

function globalProc(hostname: string, withC2: boolean): Record<string, string> {
  const tcp = [TCP_HEADER];
  if (withC2) {
    tcp.push(tcpRow(0, 4444, 0, '0A', SOCK.listen));
    tcp.push(tcpRow(1, 4444, CLIENT_PORT, '01', SOCK.server));
    tcp.push(tcpRow(2, CLIENT_PORT, 4444, '01', SOCK.client));
  }
  const empty6 =
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
  return {
    uptime: '86400.00 170000.00\n',
    loadavg: '0.42 0.37 0.30 2/180 21\n',
    version:
      'Linux version 6.1.0-emulated (lab@eks-forensics) (emulated workload: not a real kernel) #1 SMP\n',
    cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.1.0 root=/dev/nvme0n1p1 ro console=ttyS0\n',
    'sys/kernel/hostname': `${hostname}\n`,
    'self/status':
      'Name:\tsh\nState:\tR (running)\nPid:\t30\nPPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t00000000a80425fb\nSeccomp:\t2\nNoNewPrivs:\t0\n',
    'self/mountinfo':
      '600 500 0:60 / / ro,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n601 600 0:62 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n',
    'self/cgroup': '0::/\n',
    '1/attr/current': 'cri-containerd.apparmor.d (enforce)\n',
    mounts:
      'overlay / overlay rw,relatime,lowerdir=/l,upperdir=/u,workdir=/w 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n',
    'net/tcp': `${tcp.join('\n')}\n`,
    'net/tcp6': `${empty6}\n`,
    'net/udp': `${TCP_HEADER.replace('tm->when retrnsmt   uid  timeout inode', 'tm->when retrnsmt   uid  timeout inode ref pointer drops')}\n`,
    'net/udp6': `${empty6}\n`,
    'net/raw': `${TCP_HEADER}\n`,
    'net/raw6': `${empty6}\n`,
    'net/unix': 'Num       RefCount Protocol Flags    Type St Inode Path\n',
    'net/packet': 'sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n',
    'net/route':
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
    'net/arp': 'IP address       HW type     Flags       HW address            Mask     Device\n',
    'net/dev':
      'Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:    4096      40    0    0    0     0          0         0     4096      40    0    0    0     0       0          0\n  eth0: 1048576    2048    0    0    0     0          0         0   524288    1024    0    0    0     0       0          0\n',
    'net/if_inet6': '',
    modules: '',
    'sys/kernel/tainted': '0\n',
    'sys/kernel/randomize_va_space': '2\n',
    'sys/kernel/kptr_restrict': '1\n',
    'sys/kernel/dmesg_restrict': '1\n',
  };
}

function comm(p: EmulatedProcess): string {
  const base = (p.argv[0] ?? '').split('/').pop() ?? '';
  return base.slice(0, 15);
}

function statLine(p: EmulatedProcess): string {
  // pid (comm) state ppid pgrp session tty_nr tpgid flags … starttime (field 22) …
  const fields = [p.pid, `(${comm(p)})`, 'S', p.ppid, p.pid, 1, 0, -1, 4194560];
  while (fields.length < 21) fields.push(0);
  fields.push(8_640_000 + p.pid * 100); // starttime, clock ticks after boot
  while (fields.length < 52) fields.push(0);
  return `${fields.join(' ')}\n`;
}

async function writeProcess(proc: string, p: EmulatedProcess): Promise<void> {
  const d = join(proc, String(p.pid));
  await mkdir(join(d, 'fd'), { recursive: true });
  await mkdir(join(d, 'ns'), { recursive: true });
  const env = p.env ?? {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: 'app',
  };
  const files: Record<string, string> = {
    cmdline: `${p.argv.join('\0')}\0`,
    comm: `${comm(p)}\n`,
    status: `Name:\t${comm(p)}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t${p.pid}\nPid:\t${p.pid}\nPPid:\t${p.ppid}\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t00000000a80425fb\nSeccomp:\t2\n`,
    stat: statLine(p),
    cgroup: '0::/\n',
    loginuid: '4294967295',
    maps: `${[`00400000-00452000 r-xp 00000000 00:2a 4096 ${p.exe}`, ...(p.maps ?? [])].join('\n')}\n`,
    environ: Object.entries(env)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(''),
  };
  for (const [name, content] of Object.entries(files)) await writeFile(join(d, name), content);
  await symlink(p.exe, join(d, 'exe'));
  await symlink('/', join(d, 'cwd'));
  await symlink('/', join(d, 'root'));
  for (const [fd, target] of Object.entries({ ...STD_FDS, ...(p.fds ?? {}) })) {
    await symlink(target, join(d, 'fd', fd));
  }
  for (const [ns, target] of Object.entries(NS)) await symlink(target, join(d, 'ns', ns));
}

/**
 * Writes the emulated `/proc` of a lab container under `procDir`: the compromised scenario when
 * `compromised`, else a single `sleep` (the clean pod).
 */
export async function writeEmulatedProc(
  procDir: string,
  hostname: string,
  compromised: boolean,
): Promise<void> {
  for (const [rel, content] of Object.entries(globalProc(hostname, compromised))) {
    const p = join(procDir, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content);
  }
  for (const p of compromised ? compromisedProcesses() : cleanProcesses()) await writeProcess(procDir, p);
}
