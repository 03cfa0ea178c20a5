/**
 * The documented example (examples/custom-profile.ts) runs against a sandbox container and its
 * profiles produce what docs/profiles.md says they do.
 */
import { describe, expect, it } from 'vitest';
import { nginxProfile, runCustomProfile, webSummaryProfile } from '../../examples/custom-profile.js';
import { skipWithoutPeer } from '../support/peers.js';
import { addSandboxPod, bundleJson, collectedFile, filesIndex, sandboxMissing, useEnv } from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

describe('examples/custom-profile.ts (pure)', () => {
  it('validates its declarative profile', () => {
    expect(nginxProfile.name).toBe('nginx');
    expect(nginxProfile.items.map((i) => i.id)).toEqual([
      'nginx-conf',
      'nginx-logs',
      'web-root-listing',
      'tls-keys',
    ]);
    expect(webSummaryProfile.phase).toBe('content');
  });
});

describe.skipIf(skip)('examples/custom-profile.ts on a sandbox container', () => {
  const env = useEnv();

  it('collects nginx files, hashes the key, lists the web root and writes the summary', async () => {
    await env.cluster.addPod({
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
              '/etc/nginx/nginx.conf': { content: 'events {}\n' },
              '/etc/nginx/conf.d/shop.conf': { content: 'server { listen 8080; }\n' },
              '/etc/nginx/shop.key': { content: 'PRIVATE-KEY-MATERIAL\n' },
              '/var/log/nginx/access.log': { type: 'symlink', target: '/dev/stdout' },
              '/usr/share/nginx/html/.cache/x.php': { content: '<?php system($_GET["c"]); ?>\n' },
            },
          },
        },
      ],
    });
    const other = await addSandboxPod(
      env,
      { preset: 'busybox' },
      { command: ['sleep', '86400'], container: 'nginx' },
    );
    const report = await runCustomProfile(env.sink, [
      { kube: env.kube, namespace: 'shop', pod: 'web-0', container: 'nginx' },
      { kube: env.kube, ...other },
    ]);
    const [web, plain] = report.targets;
    expect(web?.status, JSON.stringify(web?.reasons)).toBe('complete');
    const loc = web?.location as string;
    expect((await collectedFile(loc, '/etc/nginx/conf.d/shop.conf', 'nginx'))?.toString()).toBe(
      'server { listen 8080; }\n',
    );
    const rows = filesIndex(loc, 'nginx');
    expect(rows.find((r) => r.path === '/etc/nginx/shop.key')?.status).toBe('hashed');
    expect(rows.find((r) => r.path === '/var/log/nginx/access.log')?.linkTarget).toBe('/dev/stdout');
    expect(rows.find((r) => r.path === '/usr/share/nginx/html/.cache/x.php')).toBeUndefined();
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${loc}/containers/nginx/files/bodyfile.txt`, 'utf8')).toContain(
      '|/usr/share/nginx/html/.cache/x.php|',
    );
    const summary = bundleJson<{ strategy: string; webRoot: string }>(
      loc,
      'containers/nginx/web-summary.json',
    );
    expect(summary.strategy).toBe('tar');
    expect(summary.webRoot).toContain('.cache');
    // not labelled app=web: the programmatic profile is recorded as not applicable
    const manifest = bundleJson<{ artifacts: { path: string; status: string; reason?: string }[] }>(
      plain?.location as string,
      'manifest.json',
    );
    expect(
      manifest.artifacts.find((a) => a.path === 'containers/nginx/profiles/web-summary')?.reason,
    ).toContain('not labelled app=web');
  }, 60_000);
});
