import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  EKS_COMMERCIAL_REGIONS,
  EKS_OPT_IN_REGIONS,
  EKS_OTHER_PARTITION_REGIONS,
  partitionOf,
  stsHostname,
} from '../../src/entries/auth.js';
import { ConfigError } from '../../src/entries/errors.js';
import { skipWithoutPeer } from '../support/peers.js';

describe('regions and partitions', () => {
  it('maps regions to partitions and regional STS hosts', () => {
    expect(partitionOf('us-east-1').id).toBe('aws');
    expect(partitionOf('cn-northwest-1')).toEqual({ id: 'aws-cn', dnsSuffix: 'amazonaws.com.cn' });
    expect(partitionOf('us-gov-west-1').id).toBe('aws-us-gov');
    expect(stsHostname('cn-north-1')).toBe('sts.cn-north-1.amazonaws.com.cn');
    expect(stsHostname('us-gov-east-1')).toBe('sts.us-gov-east-1.amazonaws.com');
    expect(stsHostname('ap-southeast-7')).toBe('sts.ap-southeast-7.amazonaws.com');
    expect(() => partitionOf('US-EAST-1')).toThrow(ConfigError);
    expect(() => partitionOf('global')).toThrow(ConfigError);
    expect(EKS_COMMERCIAL_REGIONS).toHaveLength(34);
    for (const r of EKS_OPT_IN_REGIONS) expect(EKS_COMMERCIAL_REGIONS).toContain(r);
  });
});

const probe = spawnSync('python3', ['-c', 'import botocore'], { encoding: 'utf8' });
const missing = probe.error
  ? probe.error.message
  : probe.status !== 0
    ? 'python3 cannot import botocore'
    : undefined;
describe.skipIf(skipWithoutPeer('python3+botocore', missing))(
  'region list vs botocore endpoints.json',
  () => {
    it('equals the EKS regions botocore knows, per partition', () => {
      const out = spawnSync(
        'python3',
        [
          '-c',
          'import json, botocore.session as s; x = s.Session(); print(json.dumps({p: x.get_available_regions("eks", partition_name=p) for p in ["aws", "aws-cn", "aws-us-gov"]}))',
        ],
        { encoding: 'utf8' },
      );
      expect(out.status).toBe(0);
      const ref = JSON.parse(out.stdout) as Record<string, string[]>;
      expect([...EKS_COMMERCIAL_REGIONS].sort()).toEqual([...(ref.aws ?? [])].sort());
      expect(EKS_OTHER_PARTITION_REGIONS['aws-cn']).toEqual(ref['aws-cn']);
      expect(EKS_OTHER_PARTITION_REGIONS['aws-us-gov']).toEqual(ref['aws-us-gov']);
    });
  },
);
