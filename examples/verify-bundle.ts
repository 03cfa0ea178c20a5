/**
 * Verify an evidence bundle: re-hash every file against manifest.json, cross-check the journal,
 * the custody record and the seal, and check the anchors you supply from outside the bundle:
 * the manifest hash from the acquisition report, the examiner's public key, a sidecar kept
 * elsewhere, the TSA certificate for an RFC 3161 timestamp (S3 Object Lock is read from S3).
 *
 *   npx tsx examples/verify-bundle.ts ./evidence/<acquisition-id> --expected-sha256 <manifest sha256>
 *   npx tsx examples/verify-bundle.ts ./case-42.tar.gz --public-key ./examiner.pub.pem
 *   npx tsx examples/verify-bundle.ts ./evidence/<id> --sidecar /vault/<id>.sha256 --tsa-cert ./tsa.pem
 *   npx tsx examples/verify-bundle.ts s3://ir-evidence/cases/IR-42/<id>/ --s3-region eu-west-1
 *   npx tsx examples/verify-bundle.ts --local     # acquire a pod into a temp folder, verify, tamper, verify again
 *
 * Exit code: 0 valid (intact and anchored), 4 unanchored (intact, but nothing outside the bundle
 * vouches for it: pass an anchor), 3 incomplete (interrupted acquisition, nothing wrong with what
 * is there), 1 invalid or unusable. `--json` prints the whole report.
 * In your own project import from 'eks-forensics'.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import {
  ArtifactCollector,
  DirectorySink,
  type VerifyOptions,
  type VerifyReport,
  verifyEvidence,
} from '../src/index.js';
import { CLUSTER_FLAGS, openCluster, run, UsageError } from './cli.js';
import { LAB_COMPROMISED_POD, LAB_NAMESPACE } from './lab.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    local: CLUSTER_FLAGS.local,
    'expected-sha256': { type: 'string' },
    'public-key': { type: 'string' },
    sidecar: { type: 'string' },
    'tsa-cert': { type: 'string' },
    's3-region': { type: 'string' },
    's3-endpoint': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

function print(title: string, r: VerifyReport): void {
  if (values.json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  console.log(`${title}: ${r.status.toUpperCase()}  (${r.kind} ${r.location})`);
  console.log(`  acquisition ${r.acquisitionId ?? '?'}, ${r.checked} file(s) re-hashed`);
  console.log(`  manifest sha256 ${r.manifestSha256 ?? '-'}`);
  console.log(
    `  anchors: ${r.anchors.join(', ') || 'NONE: only internal consistency was checked; whoever could write the bundle could have rewritten it'}; signature ${r.signature}`,
  );
  console.log(`  consistency: ${r.consistency.join(', ') || '-'}`);
  if (r.timestamp) console.log(`  timestamp: ${r.timestamp.genTime} by ${r.timestamp.tsaSubject}`);
  if (r.aborted) console.log(`  aborted: ${r.aborted}`);
  for (const p of r.problems) console.log(`  ${p.code.padEnd(10)} ${p.path ?? ''} ${p.message}`);
}

const exitCode = (r: VerifyReport) =>
  r.ok ? 0 : r.status === 'unanchored' ? 4 : r.status === 'incomplete' ? 3 : 1;

async function verifyOne(location: string): Promise<number> {
  const options: VerifyOptions = { expectedManifestSha256: values['expected-sha256'] };
  if (values['public-key']) {
    options.publicKey = await readFile(values['public-key'], 'utf8');
    options.requireSignature = true;
  }
  if (values.sidecar) options.sidecar = await readFile(values.sidecar, 'utf8');
  if (values['tsa-cert']) options.tsaCertificate = await readFile(values['tsa-cert'], 'utf8');
  let s3: S3Client | undefined;
  if (location.startsWith('s3://')) {
    s3 = new S3Client({
      region: values['s3-region'] ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(values['s3-endpoint'] ? { endpoint: values['s3-endpoint'], forcePathStyle: true } : {}),
    });
    options.s3Client = s3;
  }
  try {
    const r = await verifyEvidence(location, options);
    print('bundle', r);
    return exitCode(r);
  } finally {
    s3?.destroy();
  }
}

/** --local: make a bundle, verify it, then show what tampering looks like. */
async function localDemo(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'eksf-verify-'));
  const opened = await openCluster({ local: true }, { aws: 'fake' });
  try {
    const collector = new ArtifactCollector({
      sink: new DirectorySink({ root: dir }),
      profiles: ['pod-state'],
    });
    const report = await collector.acquire({
      kube: opened.kube,
      namespace: LAB_NAMESPACE,
      pod: LAB_COMPROMISED_POD,
      container: 'app',
    });
    const t = report.targets[0];
    if (!t?.location || !t.manifestSha256)
      throw new UsageError(`acquisition failed: ${t?.reasons.join('; ')}`);
    const good = await verifyEvidence(t.location, { expectedManifestSha256: t.manifestSha256 });
    print('as acquired', good);

    // a copy with one byte of pod.json changed and the events removed
    const copy = `${t.location}-tampered`;
    await cp(t.location, copy, { recursive: true });
    const podJson = join(copy, 'pod', 'pod.json');
    const text = await readFile(podJson, 'utf8');
    await writeFile(podJson, text.replace('"payments-api"', '"payments-apj"'));
    await rm(join(copy, 'pod', 'events.json'));
    const bad = await verifyEvidence(copy, { expectedManifestSha256: t.manifestSha256 });
    print('after tampering', bad);

    const caught =
      !bad.ok && bad.modified.includes('pod/pod.json') && bad.missing.includes('pod/events.json');
    console.log(
      caught && good.ok ? 'tampering detected: OK' : 'UNEXPECTED: tampering was not detected as expected',
    );
    return caught && good.ok ? 0 : 1;
  } finally {
    await opened.close();
    await rm(dir, { recursive: true, force: true });
  }
}

run(async () => {
  if (values.local) return localDemo();
  const location = positionals[0];
  if (!location || positionals.length > 1) {
    throw new UsageError(
      'usage: verify-bundle.ts <bundle folder | .tar | .tar.gz | s3://bucket/prefix/id/> [--expected-sha256 <hash>]',
    );
  }
  return verifyOne(location);
});
