/**
 * Built-in profiles, as data (the same declarative format users write). Rows refer to the
 * research table "Proposed built-in artifact set" (A: API, B: volatile, C: files).
 */
import { HISTORY_FILES } from './coverage/index.js';
import { type ProfileItem, type ProfileSpec, type ProfileSpecInput, parseProfileSpec } from './schema.js';

type ItemInput = ProfileSpecInput['items'][number];

const podState: ItemInput[] = [
  {
    id: 'pod-api',
    kind: 'api',
    description:
      'A1-A4: pod JSON, events, current and previous logs, owner references (the resolved owner chain is in the identity context), service account, node, identity context',
    resources: ['pod', 'events', 'logs', 'previousLogs', 'owners', 'serviceAccount', 'node', 'identity'],
  },
];

const PROC_FILES = [
  'uptime',
  'loadavg',
  'version',
  'cmdline',
  'sys/kernel/hostname',
  'self/status',
  'self/mountinfo',
  'self/cgroup',
  '1/attr/current',
  'mounts',
  'net/tcp',
  'net/tcp6',
  'net/udp',
  'net/udp6',
  'net/raw',
  'net/raw6',
  'net/unix',
  'net/packet',
  'net/route',
  'net/arp',
  'net/dev',
  'net/if_inet6',
  'modules',
  'sys/kernel/tainted',
  'sys/kernel/randomize_va_space',
  'sys/kernel/kptr_restrict',
  'sys/kernel/dmesg_restrict',
];

function volatile(exe: 'deleted' | 'writable'): ItemInput[] {
  return [
    {
      id: 'clock',
      kind: 'command',
      description: 'B1: container clock (UTC) to measure skew',
      argv: ['date', '-u', '+%Y-%m-%dT%H:%M:%SZ'],
      timeoutMs: 10_000,
      maxBytes: 4096,
    },
    {
      id: 'system-proc',
      kind: 'proc',
      description:
        'B1, B7, B8, B9: uptime, hostname, own privileges, LSM label, mounts, sockets, routes, modules, taint and hardening',
      files: PROC_FILES,
      maxBytesPerFile: '4MB',
    },
    {
      id: 'processes',
      kind: 'proc',
      description:
        'B2-B6, B5+, C13: per-process cmdline, comm, status, stat, cgroup, loginuid, maps, environ (loader/proxy/runtime variables in clear and flagged, other values hashed), exe/cwd/root/fd/ns links, bytes of deleted executables (20 MiB cap), SHA-256 of every running executable and mapped file (256 MiB cap)',
      perProcess: {
        fields: ['cmdline', 'comm', 'status', 'stat', 'cgroup', 'loginuid', 'maps', 'environ'],
        links: true,
        environ: 'hash',
        exe,
        maxExeBytes: '20MB',
        maxProcesses: 2000,
        hashMapped: true,
        maxHashBytes: '256MB',
      },
      maxBytesPerFile: '4MB',
    },
  ];
}

function files(caps: {
  logs: string;
  drops: string;
  depth: number;
  etcAll: boolean;
  wholeFs?: boolean;
}): ItemInput[] {
  const items: ItemInput[] = [
    {
      id: 'accounts',
      kind: 'file',
      description: 'C1: users, groups, sudo rights',
      paths: ['/etc/passwd', '/etc/group', '/etc/sudoers', '/etc/sudoers.d/*'],
      maxFileSize: '1MB',
    },
    {
      id: 'shadow',
      kind: 'file',
      description: 'C1: password hashes: SHA-256 and metadata only unless copySensitive',
      paths: ['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-'],
      content: 'hash',
      sensitive: true,
      maxFileSize: '1MB',
    },
    {
      id: 'persistence',
      kind: 'file',
      description: 'C2: preload, loader config, shell init, cron, init scripts, PAM',
      paths: [
        '/etc/ld.so.preload',
        '/etc/ld.so.conf',
        '/etc/ld.so.conf.d/*',
        '/etc/profile',
        '/etc/profile.d/*',
        '/etc/bash.bashrc',
        '/etc/environment',
        '/etc/crontab',
        '/etc/cron.*/*',
        '/etc/crontabs/*',
        '/var/spool/cron/**',
        '/etc/init.d/*',
        '/etc/rc.local',
        '/etc/pam.d/*',
      ],
      maxDepth: 4,
      maxFileSize: '1MB',
    },
    {
      id: 'shell-history',
      kind: 'file',
      description: 'C3: shell histories and rc files of root, /home users and every home in /etc/passwd',
      paths: [
        '/root/.*history',
        '/home/*/.*history',
        '/root/.*rc',
        '/root/.profile',
        '/home/*/.*rc',
        '/home/*/.profile',
      ],
      homeFiles: [...HISTORY_FILES, '.bashrc', '.profile'],
      maxFileSize: '10MB',
    },
    {
      id: 'ssh',
      kind: 'file',
      description: 'C4: authorized keys and known hosts (public data: copied)',
      paths: [
        '/root/.ssh/authorized_keys*',
        '/home/*/.ssh/authorized_keys*',
        '/root/.ssh/known_hosts*',
        '/home/*/.ssh/known_hosts*',
        '/etc/ssh/sshd_config',
      ],
      maxFileSize: '1MB',
    },
    {
      id: 'credentials',
      kind: 'file',
      description:
        'C4: private keys and cloud/registry credentials: SHA-256 and metadata only unless copySensitive',
      paths: [
        '/root/.ssh/id_*',
        '/home/*/.ssh/id_*',
        '/root/.aws/*',
        '/home/*/.aws/*',
        '/root/.kube/config',
        '/home/*/.kube/config',
        '/root/.docker/config.json',
        '/home/*/.docker/config.json',
        '/root/.netrc',
        '/home/*/.netrc',
        '/root/.git-credentials',
        '/home/*/.git-credentials',
      ],
      content: 'hash',
      sensitive: true,
      maxFileSize: '1MB',
    },
    {
      id: 'tokens',
      kind: 'file',
      description:
        'C5: service-account, IRSA and Pod Identity tokens: SHA-256 and decoded JWT claims, never the token',
      paths: [
        '/var/run/secrets/kubernetes.io/serviceaccount/token',
        '/var/run/secrets/kubernetes.io/serviceaccount/..data/token',
        '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
        '/var/run/secrets/eks.amazonaws.com/serviceaccount/..data/token',
        '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
        '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/..data/eks-pod-identity-token',
      ],
      content: 'jwt',
      sensitive: true,
      maxFileSize: '64KB',
    },
    {
      id: 'sa-metadata',
      kind: 'file',
      description: 'C5: service-account namespace and CA certificate',
      paths: [
        '/var/run/secrets/kubernetes.io/serviceaccount/namespace',
        '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
        '/var/run/secrets/kubernetes.io/serviceaccount/..data/namespace',
        '/var/run/secrets/kubernetes.io/serviceaccount/..data/ca.crt',
      ],
      maxFileSize: '1MB',
    },
    {
      id: 'network-config',
      kind: 'file',
      description: 'C6 and B1: DNS, hosts, name-service switch, hostname, OS release',
      paths: [
        '/etc/resolv.conf',
        '/etc/hosts',
        '/etc/nsswitch.conf',
        '/etc/hostname',
        '/etc/os-release',
        '/usr/lib/os-release',
      ],
      maxFileSize: '1MB',
    },
    {
      id: 'logs',
      kind: 'file',
      description:
        'C7: in-container logs (regular files only; symlinks such as access.log -> /dev/stdout are listed, not read)',
      paths: ['/var/log/**'],
      maxDepth: caps.depth,
      maxFileSize: caps.logs,
    },
    {
      id: 'drop-zones',
      kind: 'file',
      description:
        'C8: temp and shared-memory dirs: full listing, content of files under the cap, hidden files included',
      paths: ['/tmp/**', '/var/tmp/**', '/dev/shm/**'],
      maxDepth: caps.depth,
      maxFileSize: caps.drops,
    },
    {
      id: 'packages',
      kind: 'file',
      description: 'C10: package databases (dpkg, apk, rpm)',
      paths: [
        '/var/lib/dpkg/status',
        '/lib/apk/db/installed',
        '/var/lib/rpm/Packages',
        '/var/lib/rpm/rpmdb.sqlite',
      ],
      maxFileSize: '64MB',
    },
    caps.wholeFs
      ? {
          id: 'bodyfile',
          kind: 'file',
          description:
            'C9: whole-filesystem timeline (bodyfile with birth time where stat gives it): one root per top-level directory and mount point, pseudo filesystems left out; SUID/SGID and world-writable findings across it (no content)',
          paths: ['/'],
          wholeFilesystem: true,
          maxDepth: 64,
          content: 'metadata',
          maxFiles: 1_000_000,
        }
      : {
          id: 'bodyfile',
          kind: 'file',
          description:
            'C9: bodyfile-style metadata of writable, persistence and executable locations (no content)',
          paths: [
            '/etc',
            '/root',
            '/home',
            '/tmp',
            '/var/tmp',
            '/dev/shm',
            '/usr/local/bin',
            '/usr/local/sbin',
            '/opt',
            '/srv',
            '/run',
            '/bin',
            '/sbin',
            '/usr/bin',
            '/usr/sbin',
            '/app',
            '/var/www',
          ],
          maxDepth: caps.depth,
          content: 'metadata',
          maxFiles: 20_000,
        },
  ];
  if (caps.etcAll) {
    items.push({
      id: 'etc-all',
      kind: 'file',
      description: 'All of /etc except shadow files (UAC files/system/etc.yaml)',
      paths: ['/etc/**', '/usr/local/etc/**'],
      exclude: ['shadow', 'shadow-', 'gshadow', 'gshadow-', 'master.passwd', 'spwd.db'],
      maxDepth: 8,
      maxFileSize: '10MB',
    });
  }
  return items;
}

function build(name: string, description: string, items: ItemInput[]): ProfileSpec {
  return parseProfileSpec({ name, description, version: 1, items }, `built-in profile ${name}`);
}

/**
 * Built-in profiles by name: `pod-state`, `volatile`, `files`, `triage`, `full`, and the opt-in
 * `memory` (add it next to another, e.g. `['full', 'memory']`).
 */
export const BUILTIN_PROFILES: Readonly<Record<string, ProfileSpec>> = Object.freeze({
  'pod-state': build(
    'pod-state',
    'A1-A4: pod, events, logs, owners, service account, node via the API (every container)',
    podState,
  ),
  volatile: build(
    'volatile',
    'B1-B9 from /proc: processes, links, maps, environ (hashed), sockets, mounts, kernel',
    volatile('deleted'),
  ),
  files: build(
    'files',
    'C1-C10: regular files only; shadow and credentials hashed, tokens reduced to JWT claims',
    files({ logs: '100MB', drops: '10MB', depth: 6, etcAll: false }),
  ),
  triage: build(
    'triage',
    'pod-state + volatile + files with conservative caps (logs 10 MiB, drop zones 10 MiB)',
    [...podState, ...volatile('deleted'), ...files({ logs: '10MB', drops: '10MB', depth: 5, etcAll: false })],
  ),
  full: build(
    'full',
    'pod-state + volatile (executables in writable dirs too) + all files profiles with large caps and all of /etc + installed-file integrity',
    [
      ...podState,
      ...volatile('writable'),
      ...files({ logs: '1GB', drops: '100MB', depth: 12, etcAll: true, wholeFs: true }),
      {
        id: 'integrity',
        kind: 'integrity',
        description:
          'C12: binaries and libraries of the bin and lib directories against the package databases (dpkg, apk), hashed on our side: modified, missing, unpackaged executables',
        maxPullFiles: 5000,
        maxPullBytes: '512MB',
      },
    ],
  ),
  memory: build(
    'memory',
    'B10 (opt-in): memory of suspect processes (deleted executables, executables in writable dirs or memfds, open memfds) as ELF cores with a region index; 4 processes, 256 MiB each, 1 GiB per target',
    [
      {
        id: 'memory-processes',
        kind: 'proc',
        description: 'the process table the memory selection reads (name, status, command line, links)',
        perProcess: { fields: ['cmdline', 'comm', 'status'], links: true, maxProcesses: 2000 },
        maxBytesPerFile: '1MB',
      },
      {
        id: 'memory',
        kind: 'memory',
        description:
          'B10: /proc/<pid>/mem of the suspects by the ranges in maps, read with dd, hashed on our side, as an ELF core (PT_LOAD per region, NT_PRSTATUS/NT_PRPSINFO/NT_AUXV/NT_FILE) and an index; unreadable regions recorded with the reason',
        select: 'suspects',
        maxProcesses: 4,
        maxBytesPerProcess: '256MB',
        maxBytesPerTarget: '1GB',
      },
    ],
  ),
});

/** Names of the built-in profiles. */
export const BUILTIN_PROFILE_NAMES = Object.freeze(Object.keys(BUILTIN_PROFILES));

/** Returns a built-in profile by name, or undefined. */
export function builtinProfile(name: string): ProfileSpec | undefined {
  return Object.hasOwn(BUILTIN_PROFILES, name) ? BUILTIN_PROFILES[name] : undefined;
}

/** The items of a profile of one kind (helper for docs and tests). */
export function itemsOfKind<K extends ProfileItem['kind']>(
  spec: ProfileSpec,
  kind: K,
): Extract<ProfileItem, { kind: K }>[] {
  return spec.items.filter((i): i is Extract<ProfileItem, { kind: K }> => i.kind === kind);
}
