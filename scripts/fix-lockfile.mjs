#!/usr/bin/env node
// Works around an npm 11 bug on these machines: `npm install` leaves other platforms' optional
// packages (biome, rollup binaries) out of package-lock.json, and `npm ci` then refuses the lock
// ("Missing: @biomejs/cli-darwin-arm64@ from lock file"). This adds the missing entries with their
// registry metadata (version, integrity, os/cpu/libc), so `npm ci` skips them as incompatible.
// Run after any `npm install`: `node scripts/fix-lockfile.mjs`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const pkgs = lock.packages;
let added = 0;
for (const [key, entry] of Object.entries(pkgs)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const target = `node_modules/${name}`;
    if (pkgs[target] || pkgs[`${key}/node_modules/${name}`]) continue;
    const m = registryMeta(name, spec) ?? platformFromName(name, spec);
    if (!m) {
      console.error(`fix-lockfile: cannot describe ${name}@${spec}; leaving it out`);
      continue;
    }
    pkgs[target] = {
      version: m.version,
      ...(m['dist.integrity'] ? { integrity: m['dist.integrity'] } : {}),
      ...(m.cpu ? { cpu: m.cpu } : {}),
      ...(entry.dev ? { dev: true } : {}),
      ...(m.libc ? { libc: m.libc } : {}),
      ...(m.license ? { license: m.license } : {}),
      optional: true,
      ...(m.os ? { os: m.os } : {}),
      ...(m.engines ? { engines: m.engines } : {}),
    };
    added++;
  }
}
/** Metadata from the registry, or null when this registry does not carry the package. */
function registryMeta(name, spec) {
  try {
    const out = execFileSync(
      'npm',
      [
        'view',
        `${name}@${spec}`,
        '--json',
        'version',
        'dist.integrity',
        'os',
        'cpu',
        'libc',
        'license',
        'engines',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const meta = JSON.parse(out);
    return Array.isArray(meta) ? meta[meta.length - 1] : meta;
  } catch {
    return null;
  }
}

// The package registry reachable here does not carry every platform binary. For those, describe
// the platform from the conventional name so npm ci recognises them as incompatible and skips them.
function platformFromName(name, spec) {
  const base = name.split('/').pop();
  const os = [
    'android',
    'darwin',
    'freebsd',
    'linux',
    'openbsd',
    'openharmony',
    'win32',
    'sunos',
    'aix',
    'netbsd',
  ].find((o) => base.includes(`-${o}-`) || base.startsWith(`${o}-`));
  const cpu = ['arm64', 'x64', 'ia32', 'arm', 'loong64', 'ppc64', 'riscv64', 's390x'].find((c) =>
    new RegExp(`-${c}(-|$)`).test(base),
  );
  if (!os || !cpu || !/^\d+\.\d+\.\d+/.test(spec)) return null;
  const libc = /-musl/.test(base) ? ['musl'] : os === 'linux' && /-gnu/.test(base) ? ['glibc'] : undefined;
  return { version: spec, os: [os], cpu: [cpu], ...(libc ? { libc } : {}) };
}

lock.packages = Object.fromEntries(
  Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fix-lockfile: added ${added} missing optional entries`);
