import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DEBUG_PROFILES,
  debugSecurityContext,
  ephemeralPatchBody,
  resolveEphemeralOptions,
} from '../../src/entries/ephemeral.js';
import { clusterRoleYaml, EPHEMERAL_PERMISSIONS, ephemeralRoleYaml } from '../../src/entries/iam.js';

function table(rows: string[][]): string {
  const n = rows[0]?.length ?? 0;
  const widths = Array.from({ length: n }, (_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head = [], ...body] = rows;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function generatedBlocks(): Record<string, string> {
  const o = resolveEphemeralOptions({
    allowEphemeralContainer: true,
    image: 'public.ecr.aws/docker/library/busybox:1.36',
  });
  const spec = {
    name: 'eksf-debug-x7k2q',
    image: o.image,
    command: ['sleep', String(o.lifetimeSeconds)],
    targetContainerName: 'app',
    securityContext: debugSecurityContext(o),
    terminationMessagePolicy: 'File',
  };
  return {
    'ephemeral-permissions': table([
      ['verb', 'resource', 'used for'],
      ...EPHEMERAL_PERMISSIONS.map((p) => [`\`${p.verb}\``, `\`${p.resource}\``, p.usedFor]),
    ]),
    'ephemeral-role': `\`\`\`yaml\n${ephemeralRoleYaml({ namespace: 'shop' })}\`\`\``,
    'cluster-role-ephemeral': `\`\`\`yaml\n${clusterRoleYaml({ includeEphemeralContainers: true })}\`\`\``,
    'patch-body': `\`\`\`json\n${JSON.stringify(ephemeralPatchBody(spec), null, 2)}\n\`\`\``,
    profiles: table([
      ['profile', 'securityContext of the debug container'],
      ...DEBUG_PROFILES.filter((p) => p !== 'custom').map((p) => {
        const sc = debugSecurityContext(
          resolveEphemeralOptions({ allowEphemeralContainer: true, image: 'x', profile: p }),
        );
        return [`\`${p}\``, sc ? `\`${JSON.stringify(sc)}\`` : '(none)'];
      }),
      ['`custom`', 'exactly `securityContext` (plus `runAsUser` when given)'],
    ]),
  };
}

describe('docs/distroless.md', () => {
  it('its generated blocks match the generators (EKSF_UPDATE_DOCS=1 rewrites them)', () => {
    const path = fileURLToPath(new URL('../../docs/distroless.md', import.meta.url));
    let text = readFileSync(path, 'utf8');
    const stale: string[] = [];
    for (const [name, body] of Object.entries(generatedBlocks())) {
      const begin = `<!-- BEGIN GENERATED: ${name} -->\n`;
      const end = `\n<!-- END GENERATED: ${name} -->`;
      const a = text.indexOf(begin);
      const b = text.indexOf(end);
      expect(a, `marker for ${name}`).toBeGreaterThanOrEqual(0);
      expect(b, `end marker for ${name}`).toBeGreaterThan(a);
      if (text.slice(a + begin.length, b) !== body) {
        stale.push(name);
        text = text.slice(0, a + begin.length) + body + text.slice(b);
      }
    }
    if (stale.length && process.env.EKSF_UPDATE_DOCS === '1') writeFileSync(path, text);
    else expect(stale, 'stale generated blocks; run with EKSF_UPDATE_DOCS=1').toEqual([]);
  });

  it('names every error failure kind', () => {
    const text = readFileSync(fileURLToPath(new URL('../../docs/distroless.md', import.meta.url)), 'utf8');
    for (const f of [
      'forbidden',
      'pod-security',
      'image-pull',
      'start-failed',
      'timeout',
      'not-supported',
      'rejected',
      'target-process',
    ])
      expect(text).toContain(`\`${f}\``);
  });
});
