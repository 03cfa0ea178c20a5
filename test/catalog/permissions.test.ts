import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EKS_COMMERCIAL_REGIONS } from '../../src/entries/auth.js';
import { ConfigError } from '../../src/entries/errors.js';
import {
  accessEntryCommands,
  awsEvidencePolicy,
  canonicalPrincipalArn,
  clusterRoleYaml,
  crossAccountTrustPolicyJson,
  DEFAULT_RBAC_GROUP,
  discoveryPolicyJson,
  eksctlMappingCommand,
  enableAccessEntriesCommand,
  IDENTITY_READ_PERMISSIONS,
  identityReaderClusterRoleYaml,
  mappingRemediation,
  REQUIRED_PERMISSIONS,
} from '../../src/entries/iam.js';

const EXAMPLE = {
  clusterName: 'prod',
  region: 'eu-west-1',
  principalArn: 'arn:aws:sts::111111111111:assumed-role/IncidentResponder/ir-case-42',
};
const ROLE = 'arn:aws:iam::222222222222:role/ForensicsDiscovery';

/** A markdown table aligned like the markdown formatter (biome) writes it. */
function mdTable(rows: string[][]): string {
  const n = rows[0]?.length ?? 0;
  const widths = Array.from({ length: n }, (_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head = [], ...body] = rows;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** Every generated block of docs/permissions.md, by marker name. */
function generatedBlocks(): Record<string, string> {
  const rows = [
    ['verb', 'resource', 'required', 'used for'],
    ...REQUIRED_PERMISSIONS.map((p) => [
      `\`${p.verb}\``,
      `\`${p.resource}${p.subresource ? `/${p.subresource}` : ''}\``,
      p.required ? 'yes' : 'optional',
      p.purpose,
    ]),
  ];
  // aligned like the markdown formatter (biome) writes tables
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head = [], ...body] = rows;
  const table = [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
  return {
    'permissions-table': table,
    'cluster-role': `\`\`\`yaml\n${clusterRoleYaml()}\`\`\``,
    'cluster-role-ephemeral': `\`\`\`yaml\n${clusterRoleYaml({ includeEphemeralContainers: true })}\`\`\``,
    'access-entry': `\`\`\`sh\n${accessEntryCommands(EXAMPLE).join('\n')}\n\`\`\``,
    'enable-access-entries': `\`\`\`sh\n${enableAccessEntriesCommand(EXAMPLE)}\n\`\`\``,
    eksctl: `\`\`\`sh\n${eksctlMappingCommand(EXAMPLE)}\n\`\`\``,
    'iam-discovery': `\`\`\`json\n${discoveryPolicyJson({ roleArns: [ROLE] })}\`\`\``,
    'trust-policy': `\`\`\`json\n${crossAccountTrustPolicyJson({
      trustedPrincipalArn: 'arn:aws:iam::111111111111:role/IncidentResponder',
      externalId: 'ir-2026-11',
    })}\`\`\``,
    regions: EKS_COMMERCIAL_REGIONS.map((r) => `\`${r}\``).join(', '),
    'identity-reads': mdTable([
      ['verbs', 'resource', 'apiGroup', 'scope', 'used for'],
      ...IDENTITY_READ_PERMISSIONS.map((p) => [
        p.verbs.map((v) => `\`${v}\``).join(', '),
        `\`${p.resource}\``,
        p.apiGroup === '' ? '(core)' : `\`${p.apiGroup}\``,
        p.scope,
        p.purpose,
      ]),
    ]),
    'identity-reader-role': `\`\`\`yaml\n${identityReaderClusterRoleYaml()}\`\`\``,
    'iam-cloud-context': `\`\`\`json\n${JSON.stringify(
      awsEvidencePolicy(['node-context', 'cloudtrail', 'guardduty', 'pod-identity']),
      null,
      2,
    )}\n\`\`\``,
  };
}

describe('permission generators', () => {
  it('ClusterRole + ClusterRoleBinding grant exactly what acquisition needs to the group', () => {
    const docs = parseAllDocuments(clusterRoleYaml({ group: 'ir-team', name: 'forensics' })).map((d) =>
      d.toJS(),
    );
    expect(docs).toHaveLength(2);
    const [role, binding] = docs as [
      { kind: string; rules: Array<{ resources: string[]; verbs: string[] }> },
      { kind: string; roleRef: { name: string }; subjects: Array<{ kind: string; name: string }> },
    ];
    expect(role.kind).toBe('ClusterRole');
    const granted = role.rules.flatMap((r) =>
      r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${res}`)),
    );
    expect(granted.sort()).toEqual(
      ['get pods', 'list pods', 'get pods/exec', 'create pods/exec', 'get pods/log', 'list events'].sort(),
    );
    expect(binding).toMatchObject({ kind: 'ClusterRoleBinding', roleRef: { name: 'forensics' } });
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'ir-team' },
    ]);
    expect(clusterRoleYaml({ includeEphemeralContainers: true })).toContain('pods/ephemeralcontainers');
    expect(clusterRoleYaml()).toContain(`name: ${DEFAULT_RBAC_GROUP}`);
    expect(() => clusterRoleYaml({ group: 'bad group"' })).toThrow(ConfigError);
    expect(() => clusterRoleYaml({ name: 'Bad_Name' })).toThrow(ConfigError);
  });

  it('IAM discovery policy and trust policy', () => {
    const policy = JSON.parse(discoveryPolicyJson({ roleArns: [ROLE] })) as {
      Statement: Array<{ Action: string[]; Resource: unknown }>;
    };
    const actions = policy.Statement.flatMap((s) => s.Action);
    expect(actions).toEqual(['eks:ListClusters', 'eks:DescribeCluster', 'sts:AssumeRole']);
    expect(policy.Statement[2]?.Resource).toEqual([ROLE]);
    expect(JSON.parse(discoveryPolicyJson()).Statement).toHaveLength(2);
    const trust = JSON.parse(
      crossAccountTrustPolicyJson({ trustedPrincipalArn: 'arn:aws:iam::1:role/x', externalId: 'e' }),
    );
    expect(trust.Statement[0].Condition).toEqual({ StringEquals: { 'sts:ExternalId': 'e' } });
  });

  it('commands map the canonical role ARN; remediation follows the authentication mode', () => {
    expect(canonicalPrincipalArn(EXAMPLE.principalArn)).toBe(
      'arn:aws:iam::111111111111:role/IncidentResponder',
    );
    expect(canonicalPrincipalArn('arn:aws-cn:sts::111111111111:assumed-role/R/s')).toBe(
      'arn:aws-cn:iam::111111111111:role/R',
    );
    expect(canonicalPrincipalArn('arn:aws:iam::111111111111:user/bob')).toBe(
      'arn:aws:iam::111111111111:user/bob',
    );
    const [create, associate] = accessEntryCommands(EXAMPLE);
    expect(create).toBe(
      'aws eks create-access-entry --region eu-west-1 --cluster-name prod --principal-arn arn:aws:iam::111111111111:role/IncidentResponder --type STANDARD --kubernetes-groups cado',
    );
    expect(associate).toContain('--policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy');
    expect(eksctlMappingCommand({ ...EXAMPLE, group: 'ir' })).toBe(
      'eksctl create iamidentitymapping --region eu-west-1 --cluster prod --arn arn:aws:iam::111111111111:role/IncidentResponder --group ir --username eks-forensics',
    );
    const configMap = mappingRemediation({ ...EXAMPLE, authenticationMode: 'CONFIG_MAP' });
    expect(configMap.indexOf('eksctl create iamidentitymapping')).toBeLessThan(
      configMap.indexOf('create-access-entry'),
    );
    expect(configMap).toContain('--access-config authenticationMode=API_AND_CONFIG_MAP');
    const api = mappingRemediation({ ...EXAMPLE, authenticationMode: 'API' });
    expect(api.indexOf('create-access-entry')).toBeLessThan(api.indexOf('eksctl'));
    expect(api).toContain('API-only and ignores aws-auth');
    // shell metacharacters in names are quoted
    expect(eksctlMappingCommand({ ...EXAMPLE, clusterName: "x'; rm -rf /" })).toContain(
      `--cluster 'x'\\''; rm -rf /'`,
    );
  });
});

describe('docs/permissions.md', () => {
  it('its generated blocks match the generators (EKSF_UPDATE_DOCS=1 rewrites them)', () => {
    const path = fileURLToPath(new URL('../../docs/permissions.md', import.meta.url));
    let text = readFileSync(path, 'utf8');
    const blocks = generatedBlocks();
    const stale: string[] = [];
    for (const [name, body] of Object.entries(blocks)) {
      const begin = `<!-- BEGIN GENERATED: ${name} -->\n`;
      const end = `\n<!-- END GENERATED: ${name} -->`;
      const a = text.indexOf(begin);
      const b = text.indexOf(end);
      expect(a, `marker for ${name}`).toBeGreaterThanOrEqual(0);
      expect(b, `end marker for ${name}`).toBeGreaterThan(a);
      const current = text.slice(a + begin.length, b);
      if (current !== body) {
        stale.push(name);
        text = text.slice(0, a + begin.length) + body + text.slice(b);
      }
    }
    if (stale.length && process.env.EKSF_UPDATE_DOCS === '1') writeFileSync(path, text);
    else expect(stale, 'stale generated blocks; run with EKSF_UPDATE_DOCS=1').toEqual([]);
  });
});
