/** docs/fleet.md shows exactly the policies the generators produce, and the example is where the doc says. */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fleetPlannerPolicy, fleetWorkerPolicy } from '../../src/fleet/index.js';

const DOC_POLICY_OPTIONS = {
  bucket: 'EVIDENCE_BUCKET',
  prefix: 'cases/',
  queueArn: 'arn:aws:sqs:REGION:ACCOUNT:fleet-sweep',
  deadLetterQueueArn: 'arn:aws:sqs:REGION:ACCOUNT:fleet-sweep-dlq',
  assumeRoleArns: ['arn:aws:iam::*:role/ForensicsAcquisition'],
};

const doc = readFileSync(new URL('../../docs/fleet.md', import.meta.url), 'utf8');

function block(marker: string): unknown {
  const m = new RegExp(`<!-- ${marker} -->\\n\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!m?.[1]) throw new Error(`no ${marker} block in docs/fleet.md`);
  return JSON.parse(m[1]);
}

describe('docs/fleet.md', () => {
  it('embeds the generated worker and planner policies', () => {
    expect(block('fleet-worker-policy')).toEqual(fleetWorkerPolicy(DOC_POLICY_OPTIONS));
    expect(block('fleet-planner-policy')).toEqual(fleetPlannerPolicy(DOC_POLICY_OPTIONS));
  });

  it('the worker policy grants what the worker calls and no wildcard action', () => {
    const p = fleetWorkerPolicy({
      ...DOC_POLICY_OPTIONS,
      objectLock: true,
      kmsKeyArn: 'arn:aws:kms:eu-west-1:1:key/k',
    });
    const actions = p.Statement.flatMap((s) => s.Action);
    for (const a of [
      'sqs:ReceiveMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:SendMessage',
      's3:PutObject',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObjectRetention',
      'kms:GenerateDataKey',
    ])
      expect(actions).toContain(a);
    expect(actions.some((a) => a.includes('*'))).toBe(false);
  });

  it('names example files that exist', () => {
    for (const f of [
      'examples/fleet-sweep/index.ts',
      'examples/fleet-sweep/worker.ts',
      'examples/fleet-sweep/lambda.ts',
    ]) {
      expect(doc).toContain(f);
      expect(existsSync(new URL(`../../${f}`, import.meta.url))).toBe(true);
    }
  });
});
