import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FARGATE_SKIP_REASON } from '../../src/entries/codecs.js';
import {
  AWS_EVIDENCE_PERMISSIONS,
  awsEvidencePolicy,
  controlPlaneLoggingEnableCommand,
} from '../../src/entries/iam.js';

const root = new URL('../../', import.meta.url).pathname;
const doc = readFileSync(join(root, 'docs/aws-evidence.md'), 'utf8');
const srcDir = join(root, 'src/aws-evidence');

describe('docs/aws-evidence.md stays in sync with the code', () => {
  it('lists every IAM action the code calls, and the code calls nothing unlisted', () => {
    const listed = new Set(AWS_EVIDENCE_PERMISSIONS.map((p) => p.action));
    const used = new Set<string>();
    for (const f of readdirSync(srcDir)) {
      const text = readFileSync(join(srcDir, f), 'utf8');
      for (const m of text.matchAll(
        /'((?:logs|ec2|eks|kms|iam|autoscaling|cloudtrail|guardduty):[A-Za-z]+)'/g,
      )) {
        used.add(m[1] as string);
      }
    }
    expect(used.size).toBeGreaterThan(5);
    for (const a of used) expect(listed, `${a} is called but not in AWS_EVIDENCE_PERMISSIONS`).toContain(a);
    for (const a of listed) expect(doc, `${a} missing from docs/aws-evidence.md`).toContain(`\`${a}\``);
  });

  it('shows the enable command and the Fargate reason exactly as the code produces them', () => {
    const cmd = controlPlaneLoggingEnableCommand('prod', ['audit', 'authenticator']);
    expect(doc).toContain(cmd.split(' --logging ')[1] as string);
    expect(doc).toContain(FARGATE_SKIP_REASON);
  });

  it('builds a policy per step', () => {
    const p = awsEvidencePolicy(['node-snapshot']);
    expect(p.Statement[0]?.Action).toContain('ec2:CreateSnapshots');
    expect(p.Statement[0]?.Action).not.toContain('logs:FilterLogEvents');
    expect(awsEvidencePolicy().Statement[0]?.Action).toHaveLength(
      new Set(AWS_EVIDENCE_PERMISSIONS.map((p) => p.action)).size,
    );
  });
});
