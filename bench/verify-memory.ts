/**
 * Peak memory of verifyEvidence on huge manifests, each verification in its own child process
 * (peak RSS from `process.resourceUsage().maxRSS`).
 *
 *   npx tsx bench/verify-memory.ts                 # 1e6-artifact manifest (rejected) + largest accepted
 *   npx tsx bench/verify-memory.ts --artifacts 200000
 *
 * The bundles are generated consistently (manifest, journal, custody, seal agree), with artifacts
 * recorded `skipped` so that the figure is the cost of the manifest and journal, not of hashing.
 * Prints a Markdown section for docs/benchmarks.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    expected: { type: 'string' },
    artifacts: { type: 'string', default: '1000000' },
    accepted: { type: 'string', default: '39000' },
  },
});

const MiB = 1024 * 1024;
const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-01-01T01:00:00.000Z';

if (values.child) {
  const { verifyEvidence } = await import('../src/evidence/index.js');
  const started = performance.now();
  const r = await verifyEvidence(
    values.child,
    values.expected ? { expectedManifestSha256: values.expected } : {},
  );
  process.stdout.write(
    JSON.stringify({
      status: r.status,
      problems: r.problems.slice(0, 3).map((p) => `${p.code}: ${p.message}`),
      ms: Math.round(performance.now() - started),
      maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
  process.exit(0);
}

/** Writes a consistent bundle with `n` skipped artifacts; returns its folder and manifest hash. */
function generate(
  root: string,
  id: string,
  n: number,
): { dir: string; manifestSha256: string; manifestBytes: number } {
  const dir = join(root, id);
  mkdirSync(dir, { recursive: true });
  const record = (i: number) => ({
    path: `containers/app/files/f${String(i).padStart(7, '0')}`,
    requestedPath: `containers/app/files/f${String(i).padStart(7, '0')}`,
    status: 'skipped',
    reason: 'not readable (EACCES)',
    stored: false,
    bytes: 0,
    source: { kind: 'exec', profile: 'files', item: 'etc' },
    startedAt: T0,
    finishedAt: T0,
  });
  const write = (
    name: string,
    produce: (out: (s: string) => void) => void,
  ): { sha256: string; bytes: number } => {
    const fd = openSync(join(dir, name), 'w');
    const h = createHash('sha256');
    let bytes = 0;
    let buf = '';
    const flush = () => {
      const b = Buffer.from(buf);
      writeSync(fd, b);
      h.update(b);
      bytes += b.length;
      buf = '';
    };
    produce((s) => {
      buf += s;
      if (buf.length > 4 * MiB) flush();
    });
    flush();
    closeSync(fd);
    return { sha256: h.digest('hex'), bytes };
  };
  const journal = write('journal.jsonl', (out) => {
    out(
      `${JSON.stringify({ type: 'begin', schemaVersion: 1, acquisitionId: id, at: T0, sink: { kind: 'directory', location: `/evidence/${id}` }, tool: { name: 'eks-forensics', version: '0.1.0' } })}\n`,
    );
    for (let i = 0; i < n; i++) out(`${JSON.stringify({ type: 'artifact', at: T0, record: record(i) })}\n`);
    out(`${JSON.stringify({ type: 'finalize', at: T1 })}\n`);
  });
  const log = write('acquisition.log', (out) => out(`${JSON.stringify({ ts: T0, event: 'bench' })}\n`));
  const manifest = write('manifest.json', (out) => {
    out(
      `{\n  "schemaVersion": 1,\n  "kind": "eks-forensics.manifest",\n  "acquisitionId": ${JSON.stringify(id)},\n  "complete": true,\n  "hashAlgorithm": "sha256",\n  "tool": { "name": "eks-forensics", "version": "0.1.0" },\n  "startedAt": "${T0}",\n  "finishedAt": "${T1}",\n  "artifacts": [\n`,
    );
    for (let i = 0; i < n; i++) {
      const r = JSON.stringify(record(i), null, 2).replace(/\n/g, '\n    ');
      out(`    ${r}${i === n - 1 ? '' : ','}\n`);
    }
    out(
      `  ],\n  "bundleFiles": ${JSON.stringify([
        { path: 'journal.jsonl', ...journal },
        { path: 'acquisition.log', ...log },
      ])},\n  "counts": { "complete": 0, "truncated": 0, "failed": 0, "skipped": ${n} }\n}\n`,
    );
  });
  const custody = write('custody.json', (out) =>
    out(
      `${JSON.stringify(
        {
          schemaVersion: 1,
          kind: 'eks-forensics.custody',
          acquisitionId: id,
          examiner: {},
          tool: { name: 'eks-forensics', version: '0.1.0' },
          host: { hostname: 'bench' },
          startedAt: T0,
          finishedAt: T1,
          targets: [],
          sink: { kind: 'directory', location: `/evidence/${id}` },
          changes: [],
          manifestSha256: manifest.sha256,
        },
        null,
        2,
      )}\n`,
    ),
  );
  write('seal.json', (out) =>
    out(
      `${JSON.stringify({ schemaVersion: 1, kind: 'eks-forensics.seal', acquisitionId: id, manifestSha256: manifest.sha256, custodySha256: custody.sha256 }, null, 2)}\n`,
    ),
  );
  return { dir, manifestSha256: manifest.sha256, manifestBytes: manifest.bytes };
}

function measure(location: string, expected: string): Record<string, unknown> {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', location, '--expected', expected],
    { encoding: 'utf8', maxBuffer: 16 * MiB },
  );
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const root = mkdtempSync(join(tmpdir(), 'eksf-verify-mem-'));
try {
  const rows: string[] = [];
  for (const [label, n] of [
    ['huge', Number(values.artifacts)],
    ['largest accepted', Number(values.accepted)],
  ] as const) {
    const id = `bench-${n}`;
    const g = generate(root, id, n);
    const journalBytes = statSync(join(g.dir, 'journal.jsonl')).size;
    execFileSync('tar', ['-cf', `${id}.tar`, id], { cwd: root });
    for (const [kind, loc] of [
      ['directory', g.dir],
      ['tar', join(root, `${id}.tar`)],
    ] as const) {
      const m = measure(loc, g.manifestSha256);
      process.stderr.write(`${label} ${kind}: ${JSON.stringify(m)}\n`);
      rows.push(
        `| ${n.toLocaleString('en-US')} (${label}) | ${kind} | ${(g.manifestBytes / MiB).toFixed(1)} MiB / ${(journalBytes / MiB).toFixed(1)} MiB | ${m.status} | ${m.maxRssMiB} MiB | ${m.ms} ms |`,
      );
    }
    rmSync(g.dir, { recursive: true, force: true });
    rmSync(join(root, `${id}.tar`), { force: true });
  }
  process.stdout.write(
    [
      '| artifacts | reader | manifest / journal | verdict | peak RSS | time |',
      '| --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
    ].join('\n'),
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
