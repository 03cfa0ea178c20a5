/**
 * Writing your own profiles: a declarative one (YAML, validated like the built-ins) and a
 * programmatic one (code with a collect step), run together with the built-in `pod-state`.
 *
 *   npx tsx examples/custom-profile.ts --local     # FakeCluster + sandbox container on 127.0.0.1 (root, bwrap)
 *
 * Against a real cluster, build `kube` with ClusterCatalog.connect() and pass your own target.
 * In your own project import from 'eks-forensics' and 'eks-forensics/testing'.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type AcquisitionReport,
  type AcquisitionTarget,
  ArtifactCollector,
  type ArtifactProfile,
  DirectorySink,
  type EvidenceSink,
  KubeClient,
  parseProfileText,
} from '../src/index.js';
import { FakeCluster } from '../src/testing/index.js';
import { createSandboxRuntime } from '../src/testing/sandbox/index.js';

/** A declarative profile: nginx configuration and logs, regular files only, with caps. */
export const nginxProfileYaml = `
name: nginx
description: nginx configuration, site files and logs
version: 1
items:
  - id: nginx-conf
    kind: file
    description: main configuration and included files
    paths: [/etc/nginx/nginx.conf, /etc/nginx/conf.d/*, /etc/nginx/sites-enabled/*]
    maxFileSize: 1MB
  - id: nginx-logs
    kind: file
    description: logs (symlinks to /dev/stdout are listed, not read)
    paths: ['/var/log/nginx/**']
    maxDepth: 2
    maxFileSize: 50MB
  - id: web-root-listing
    kind: file
    description: bodyfile of the web root, no content (webshell hunting starts here)
    paths: [/usr/share/nginx/html]
    maxDepth: 6
    content: metadata
  - id: tls-keys
    kind: file
    description: private keys are hashed, never copied (unless copySensitive)
    paths: ['/etc/nginx/*.key', '/etc/ssl/private/*']
    content: hash
    sensitive: true
`;

/** The validated declarative profile (throws ValidationError naming the item and field if you break it). */
export const nginxProfile = parseProfileText(nginxProfileYaml, 'examples/custom-profile.ts#nginx');

/**
 * A programmatic profile: runs after the file contents, only for pods labelled `app=web`,
 * and records which listening sockets /proc shows together with a short summary.
 */
export const webSummaryProfile: ArtifactProfile = {
  name: 'web-summary',
  description: 'listening TCP sockets and a summary of the web root',
  phase: 'content',
  needs: 'exec',
  appliesTo: ({ pod }) =>
    pod?.metadata?.labels?.app === 'web'
      ? { applies: true }
      : { applies: false, reason: 'pod is not labelled app=web' },
  async collect(ctx) {
    // argv only: no shell, no target-derived strings interpolated anywhere
    const tcp = await ctx.exec(['cat', '/proc/net/tcp'], { maxBytes: 1024 * 1024 });
    const listening = tcp.stdout
      .toString('utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[3] === '0A')
      .map((f) => Number.parseInt((f[1] ?? ':0').split(':')[1] ?? '0', 16));
    const html = await ctx.exec(['ls', '-la', '/usr/share/nginx/html'], { maxBytes: 256 * 1024 });
    await ctx.writeArtifact(
      'web-summary.json',
      `${JSON.stringify({ listeningPorts: listening, webRoot: html.stdout.toString('utf8'), strategy: ctx.strategy.content }, null, 2)}\n`,
      { item: 'summary', contentType: 'application/json' },
    );
  },
};

/** Runs `pod-state` + the two custom profiles against targets; returns the report. */
export async function runCustomProfile(
  sink: EvidenceSink,
  targets: AcquisitionTarget[],
): Promise<AcquisitionReport> {
  const collector = new ArtifactCollector({
    sink,
    profiles: ['pod-state', nginxProfile, webSummaryProfile],
    concurrency: 4,
  });
  collector.on('progress', (e) => {
    if (e.type === 'target-finished') console.error(`${e.target.pod}/${e.target.container}: ${e.status}`);
  });
  return collector.acquire(targets);
}

async function local(): Promise<void> {
  const sandbox = await createSandboxRuntime();
  const cluster = await FakeCluster.start({ runtimes: { sandbox } });
  try {
    await cluster.addPod({
      namespace: 'shop',
      name: 'web-0',
      labels: { app: 'web' },
      containers: [
        {
          name: 'nginx',
          image: 'nginx:1.27',
          runtime: 'sandbox',
          command: ['sleep', '86400'],
          options: {
            preset: 'busybox',
            files: {
              '/etc/nginx/nginx.conf': { content: 'events {}\nhttp { include /etc/nginx/conf.d/*.conf; }\n' },
              '/etc/nginx/conf.d/shop.conf': {
                content: 'server { listen 8080; root /usr/share/nginx/html; }\n',
              },
              '/etc/nginx/shop.key': {
                content: '-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n',
              },
              '/var/log/nginx/access.log': { type: 'symlink', target: '/dev/stdout' },
              '/var/log/nginx/error.log': { content: '2026/11/22 10:00:00 [error] upstream timed out\n' },
              '/usr/share/nginx/html/index.html': { content: '<h1>shop</h1>\n' },
              '/usr/share/nginx/html/.cache/x.php': { content: '<?php system($_GET["c"]); ?>\n' },
            },
          },
        },
      ],
    });
    const kube = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.adminToken,
    });
    const root = await mkdtemp(join(tmpdir(), 'eksf-example-'));
    const report = await runCustomProfile(new DirectorySink({ root }), [
      { kube, namespace: 'shop', pod: 'web-0', container: 'nginx' },
    ]);
    for (const t of report.targets) {
      console.log(`${t.target.pod}/${t.target.container}: ${t.status} via ${t.strategy.content}`);
      console.log(`  bundle ${t.location} manifest sha256 ${t.manifestSha256}`);
      for (const r of t.reasons) console.log(`  - ${r}`);
    }
  } finally {
    await cluster.close();
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { values } = parseArgs({ options: { local: { type: 'boolean', default: false } } });
  if (!values.local) {
    console.error(
      'usage: npx tsx examples/custom-profile.ts --local   (or import runCustomProfile from your code)',
    );
    process.exit(2);
  }
  local().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
