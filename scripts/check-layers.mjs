#!/usr/bin/env node
// Checks the layer rule of DESIGN.md mechanically: each src/ file imports only from its own layer
// or a lower one, and other layers only through their index.ts. Exits 1 listing every violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname, 'src');
// layer folder -> folders it may import from (besides itself)
const allowed = {
  core: [],
  aws: ['core'],
  kube: ['core'],
  evidence: ['core'],
  catalog: ['core', 'aws', 'kube'],
  'aws-evidence': ['core', 'aws', 'evidence', 'kube', 'catalog'],
  collect: ['core', 'kube', 'evidence', 'catalog', 'aws'],
  fleet: ['core', 'aws', 'kube', 'evidence', 'catalog', 'aws-evidence', 'collect'],
  testing: ['core', 'aws', 'kube', 'evidence', 'catalog', 'aws-evidence', 'collect'],
  root: ['core', 'aws', 'kube', 'evidence', 'catalog', 'aws-evidence', 'collect'],
  // src/entries/<name>.ts: the package's subpath entry points (`eks-forensics/<name>`); nothing imports them.
  entries: ['core', 'aws', 'kube', 'evidence', 'catalog', 'aws-evidence', 'collect'],
};

function layerOf(file) {
  const rel = relative(root, file).split(sep);
  if (rel.length === 1) return rel[0] === 'index.ts' ? 'root' : 'core';
  if (rel[0] === 'util') return 'core';
  return rel[0];
}

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const problems = [];
for (const file of walk(root)) {
  const from = layerOf(file);
  const src = readFileSync(file, 'utf8');
  for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
    const to = layerOf(target);
    if (to === from) continue;
    if (!(allowed[from] ?? []).includes(to)) {
      problems.push(`${relative(root, file)}: layer "${from}" may not import layer "${to}" (${m[1]})`);
      continue;
    }
    const rel = relative(root, target).split(sep);
    const viaIndex = to === 'core' || rel[rel.length - 1] === 'index.ts';
    if (!viaIndex) problems.push(`${relative(root, file)}: import "${to}" through its index.ts, not ${m[1]}`);
  }
}
if (problems.length) {
  console.error(`layer rule violations:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('layers ok');
