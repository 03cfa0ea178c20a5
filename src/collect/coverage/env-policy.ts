/**
 * Environment policy: variables that change how a program loads, runs or connects (loader, runtime
 * options, proxies, shell start-up, history) are kept in clear and flagged, because an attacker
 * sets them and a hash cannot show what they say; every other value is hashed (or redacted) exactly
 * as {@link transformEnviron} does. Proxy URLs lose their password. Plus a hostile-safe
 * `/etc/passwd` reader that yields the shell history paths of every home.
 */
import { type EnvironMode, transformEnviron } from '../sensitive.js';

/** Why a variable is kept in clear. */
export type EnvCategory = 'loader' | 'runtime-option' | 'proxy' | 'shell-startup' | 'history' | 'search-path';

/** One environment entry after the policy. */
export interface PolicyEnvEntry {
  name: string;
  /** Clear value (bounded) for policy variables; `sha256:<hex>`, `<redacted>` or raw for the rest. */
  value: string;
  /** Set for policy variables. */
  category?: EnvCategory | undefined;
  /** True when the value itself looks like an attack or a hiding trick (see `note`). */
  suspicious?: boolean | undefined;
  note?: string | undefined;
  /** True when the clear value was cut at {@link MAX_CLEAR_VALUE}. */
  truncated?: boolean | undefined;
}

/** Longest clear value kept (characters). */
export const MAX_CLEAR_VALUE = 4096;

const EXACT: Record<string, EnvCategory> = {
  GCONV_PATH: 'loader',
  GLIBC_TUNABLES: 'loader',
  MALLOC_CHECK_: 'loader',
  NODE_OPTIONS: 'runtime-option',
  NODE_PATH: 'runtime-option',
  JAVA_TOOL_OPTIONS: 'runtime-option',
  _JAVA_OPTIONS: 'runtime-option',
  JDK_JAVA_OPTIONS: 'runtime-option',
  CLASSPATH: 'runtime-option',
  PYTHONPATH: 'runtime-option',
  PYTHONSTARTUP: 'runtime-option',
  PYTHONHOME: 'runtime-option',
  PYTHONINSPECT: 'runtime-option',
  PERL5OPT: 'runtime-option',
  PERL5LIB: 'runtime-option',
  PERLLIB: 'runtime-option',
  RUBYOPT: 'runtime-option',
  RUBYLIB: 'runtime-option',
  DOTNET_STARTUP_HOOKS: 'runtime-option',
  BASH_ENV: 'shell-startup',
  ENV: 'shell-startup',
  PROMPT_COMMAND: 'shell-startup',
  PS4: 'shell-startup',
  SHELLOPTS: 'shell-startup',
  BASHOPTS: 'shell-startup',
  HISTFILE: 'history',
  HISTSIZE: 'history',
  HISTFILESIZE: 'history',
  HISTCONTROL: 'history',
  HISTIGNORE: 'history',
  PATH: 'search-path',
};

/** The policy category of a variable name, or undefined (then the value is hashed). */
export function envCategory(name: string): EnvCategory | undefined {
  const exact = EXACT[name];
  if (exact) return exact;
  if (name.startsWith('LD_')) return 'loader';
  if (/^(CORECLR|COR)_(ENABLE_)?PROFILER/.test(name)) return 'runtime-option';
  if (/^[A-Za-z]+_PROXY$/i.test(name)) return 'proxy';
  return undefined;
}

const WRITABLE_DIR = /(^|:)(\/tmp|\/var\/tmp|\/dev\/shm|\/run\/user)(\/|:|$)|(^|:)(\.|[^/:][^:]*)?(:|$)/;

function judge(name: string, category: EnvCategory, value: string): { suspicious: boolean; note?: string } {
  const v = value.trim();
  switch (category) {
    case 'loader':
      if ((name === 'LD_PRELOAD' || name === 'LD_AUDIT') && v !== '')
        return { suspicious: true, note: 'library injected into every process started with it' };
      if (name === 'LD_LIBRARY_PATH' && WRITABLE_DIR.test(v))
        return { suspicious: true, note: 'library search path includes a writable or relative directory' };
      if (name === 'GLIBC_TUNABLES' || name === 'GCONV_PATH')
        return { suspicious: v !== '', note: 'abused for privilege escalation (e.g. CVE-2023-4911)' };
      return { suspicious: false };
    case 'runtime-option':
      if (/(^|\s)(-r|--require|--import|--loader|--experimental-loader|--inspect\S*)(\s|=|$)/.test(v))
        return { suspicious: true, note: 'loads code or opens a debugger at start' };
      if (/-javaagent:|-agentpath:|-agentlib:|-Xbootclasspath/.test(v))
        return { suspicious: true, note: 'loads a Java agent or boot class path' };
      if (['PYTHONSTARTUP', 'PERL5OPT', 'RUBYOPT', 'DOTNET_STARTUP_HOOKS'].includes(name) && v !== '')
        return { suspicious: true, note: 'runs code at interpreter start' };
      if (/PROFILER/.test(name) && v !== '') return { suspicious: true, note: '.NET profiler injection' };
      return { suspicious: false };
    case 'shell-startup':
      if (['BASH_ENV', 'ENV', 'PROMPT_COMMAND'].includes(name) && v !== '')
        return { suspicious: true, note: 'runs commands in every shell' };
      if (name === 'PS4' && /\$\(|`/.test(v))
        return { suspicious: true, note: 'command substitution in PS4 runs under xtrace' };
      return { suspicious: false };
    case 'history':
      if (name === 'HISTFILE' && (v === '/dev/null' || v === ''))
        return { suspicious: true, note: 'history disabled' };
      if ((name === 'HISTSIZE' || name === 'HISTFILESIZE') && v === '0')
        return { suspicious: true, note: 'history disabled' };
      return { suspicious: false };
    case 'proxy':
      return { suspicious: false, note: v !== '' ? 'traffic is routed through this proxy' : undefined };
    case 'search-path':
      return WRITABLE_DIR.test(v)
        ? { suspicious: true, note: 'PATH includes a writable or relative directory' }
        : { suspicious: false };
  }
}

/**
 * Removes the password of every proxy URL's userinfo (`http://user:pass@host` →
 * `http://user:***@host`), with or without a scheme, in lists (`a,b` or space separated), and when
 * the password itself holds `@` (the userinfo ends at the last `@` before the path).
 */
export function redactProxyCredentials(value: string): string {
  return value
    .split(/([\s,;]+)/)
    .map((token) => {
      const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(token)?.[0] ?? '';
      const rest = token.slice(scheme.length);
      const slash = rest.indexOf('/');
      const authority = slash < 0 ? rest : rest.slice(0, slash);
      const at = authority.lastIndexOf('@');
      const colon = at < 0 ? -1 : authority.slice(0, at).indexOf(':');
      if (colon < 0) return token;
      return `${scheme}${authority.slice(0, colon)}:***@${rest.slice(at + 1)}`;
    })
    .join('');
}

/**
 * Applies the policy to a NUL-separated `environ`. Policy variables keep their value in clear
 * (bounded; proxies without passwords); all others go through {@link transformEnviron} with `mode`.
 */
export function applyEnvPolicy(raw: Buffer, mode: EnvironMode): PolicyEnvEntry[] {
  const out: PolicyEnvEntry[] = [];
  for (const part of raw.toString('utf8').split('\0')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const category = envCategory(name);
    if (!category) {
      const [t] = transformEnviron(Buffer.from(part, 'utf8'), mode);
      if (t) out.push(t);
      continue;
    }
    let value = eq < 0 ? '' : part.slice(eq + 1);
    if (category === 'proxy') value = redactProxyCredentials(value);
    const j = judge(name, category, value);
    const truncated = value.length > MAX_CLEAR_VALUE;
    out.push({
      name,
      value: truncated ? value.slice(0, MAX_CLEAR_VALUE) : value,
      category,
      suspicious: j.suspicious,
      ...(j.note ? { note: j.note } : {}),
      ...(truncated ? { truncated } : {}),
    });
  }
  return out;
}

/** One account from `/etc/passwd`. */
export interface PasswdEntry {
  name: string;
  uid: number;
  home: string;
  shell: string;
}

/** History files looked for in each home. */
export const HISTORY_FILES: readonly string[] = [
  '.bash_history',
  '.ash_history',
  '.sh_history',
  '.zsh_history',
  '.history',
  '.python_history',
  '.node_repl_history',
  '.mysql_history',
  '.psql_history',
  '.rediscli_history',
  '.local/share/fish/fish_history',
];

/**
 * Parses `/etc/passwd` (hostile): at most `maxLines` lines of at most 4 KiB; seven fields; numeric
 * uid; the home must be an absolute canonical path without control characters, `..` or pseudo
 * filesystems. Returns the entries and what was rejected.
 */
export function parsePasswd(
  text: string,
  limits: { maxLines?: number; maxBytes?: number } = {},
): { entries: PasswdEntry[]; rejected: { line: number; reason: string }[]; capped: boolean } {
  const maxLines = limits.maxLines ?? 10_000;
  const maxBytes = limits.maxBytes ?? 1024 * 1024;
  const capped = text.length > maxBytes;
  const lines = text.slice(0, maxBytes).split('\n');
  const entries: PasswdEntry[] = [];
  const rejected: { line: number; reason: string }[] = [];
  const n = Math.min(lines.length, maxLines);
  for (let i = 0; i < n; i++) {
    const line = lines[i] as string;
    if (line === '' || line.startsWith('#')) continue;
    const reject = (reason: string): void => {
      if (rejected.length < 200) rejected.push({ line: i + 1, reason });
    };
    if (line.length > 4096) {
      reject('line longer than 4096');
      continue;
    }
    const f = line.split(':');
    if (f.length !== 7) {
      reject('not seven fields');
      continue;
    }
    const [name, , uid, , , home, shell] = f as [string, string, string, string, string, string, string];
    if (!/^\d{1,10}$/.test(uid)) {
      reject('uid is not a number');
      continue;
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
    if (!home.startsWith('/') || /[\x00-\x1f\x7f]/.test(home) || home.length > 1024) {
      reject('home is not an absolute path');
      continue;
    }
    const parts = home.split('/').filter((p) => p !== '');
    if (parts.some((p) => p === '..' || p === '.')) {
      reject('home has . or .. components');
      continue;
    }
    const canon = `/${parts.join('/')}`;
    if (['/proc', '/sys', '/dev'].some((p) => canon === p || canon.startsWith(`${p}/`))) {
      reject('home in a pseudo filesystem');
      continue;
    }
    entries.push({ name: name.slice(0, 64), uid: Number(uid), home: canon, shell: shell.slice(0, 256) });
  }
  return { entries, rejected, capped: capped || lines.length > maxLines };
}

/**
 * History paths for every home in `/etc/passwd` plus `/root` and `/home/*`-style defaults the
 * caller passes; deduplicated, capped at `maxPaths`.
 */
export function historyPaths(
  entries: readonly PasswdEntry[],
  extraHomes: readonly string[] = ['/root'],
  maxPaths = 20_000,
): { paths: string[]; capped: boolean } {
  const homes = [...new Set([...entries.map((e) => e.home), ...extraHomes])];
  const paths: string[] = [];
  for (const h of homes) {
    for (const f of HISTORY_FILES) {
      if (paths.length >= maxPaths) return { paths, capped: true };
      paths.push(h === '/' ? `/${f}` : `${h}/${f}`);
    }
  }
  return { paths, capped: false };
}
