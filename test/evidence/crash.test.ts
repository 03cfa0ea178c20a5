import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyEvidence } from '../../src/evidence/index.js';

const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const roots: string[] = [];
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

/** Runs the child until it says READY, then SIGKILLs it (no cleanup code runs). */
function runAndKill(kind: string, root: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, kind, root], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (.+)\n/.exec(out);
      if (m?.[1]) {
        const loc = m[1];
        p.once('exit', () => resolve(loc));
        p.kill('SIGKILL');
      }
    });
    p.once('exit', (code, sig) => {
      if (sig !== 'SIGKILL') reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

describe('a killed acquisition', () => {
  for (const kind of ['directory', 'tar', 'tar.gz']) {
    it(`${kind}: verifies as incomplete and keeps every journaled artifact`, async () => {
      const root = await mkdtemp(join(tmpdir(), 'eksf-crash-'));
      roots.push(root);
      const location = await runAndKill(kind, root);
      const report = await verifyEvidence(location);
      expect(report.problems).toEqual([]);
      expect(report.status).toBe('incomplete');
      expect(report.complete).toBe(false);
      expect(report.acquisitionId).toBe('acq-crash');
      expect(report.checked).toBe(2); // first.txt and second.bin, re-hashed and intact
      expect(report.interrupted).toEqual(['third.bin']);
    });
  }
});
