import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyEvidence } from '../../src/evidence/index.js';
import { runAndKill } from './helpers.js';

const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const roots: string[] = [];
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

describe('a killed acquisition', () => {
  for (const kind of ['directory', 'tar', 'tar.gz']) {
    it(`${kind}: verifies as incomplete and keeps every journaled artifact`, async () => {
      const root = await mkdtemp(join(tmpdir(), 'eksf-crash-'));
      roots.push(root);
      const location = await runAndKill(child, [kind, root]);
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
