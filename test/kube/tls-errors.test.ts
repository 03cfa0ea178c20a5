/**
 * The connection errors a newcomer meets first say what to change: no or wrong `caData`, a
 * certificate for another name, a wrong URL scheme. REST and exec alike, against FakeCluster
 * (a private CA, as EKS has) and small local servers.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUnavailableError, TlsTrustError } from '../../src/errors.js';
import { KubeClient } from '../../src/kube/index.js';
import { generatePki } from '../../src/testing/fake-cluster/pki.js';
import { FakeCluster } from '../../src/testing/index.js';

describe('TLS trust errors', () => {
  let cluster: FakeCluster;
  let otherCa = '';
  beforeAll(async () => {
    cluster = await FakeCluster.start();
    await cluster.addPod({ name: 'web', containers: [{ name: 'app', image: 'busybox', runtime: 'host' }] });
    otherCa = (await generatePki()).caCert;
  });
  afterAll(() => cluster.close());

  const client = (caData?: string, extra: Partial<ConstructorParameters<typeof KubeClient>[0]> = {}) =>
    new KubeClient({
      server: cluster.server,
      token: cluster.adminToken,
      ...(caData === undefined ? {} : { caData }),
      ...extra,
    });

  it('REST without caData: TlsTrustError naming caData and ClusterInfo.certificateAuthority, not retried', async () => {
    const started = Date.now();
    // Retries with a 1 s base delay would take seconds: a trust error must fail at once.
    const kube = client(undefined, { retry: { attempts: 4, baseDelayMs: 1000 } });
    const err = await kube.getPod('default', 'web').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsTrustError);
    const e = err as TlsTrustError;
    expect(e.code).toBe('EKSF_TLS_UNTRUSTED');
    expect(e.problem).toBe('untrusted-ca');
    expect(e.tlsCode).toMatch(/SELF_SIGNED|UNABLE_TO/);
    expect(e.message).toMatch(/no cluster CA was given/);
    expect(e.message).toMatch(/caData/);
    expect(e.message).toMatch(/ClusterInfo\.certificateAuthority/);
    expect(e.message).not.toMatch(/cannot reach/);
    expect(err).not.toBeInstanceOf(ApiUnavailableError);
    expect(Date.now() - started).toBeLessThan(900);
  });

  it('exec without caData: the same TlsTrustError', async () => {
    const err = await client()
      .exec({ namespace: 'default', pod: 'web', container: 'app', command: ['true'] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsTrustError);
    expect((err as TlsTrustError).message).toMatch(
      /^exec in default\/web\/app: .*no cluster CA was given.*caData/,
    );
  });

  it("REST and exec with another cluster's CA: says the caData given does not sign the certificate", async () => {
    const rest = await client(otherCa)
      .getPod('default', 'web')
      .catch((e: unknown) => e);
    expect(rest).toBeInstanceOf(TlsTrustError);
    expect((rest as Error).message).toMatch(/not signed by the caData given/);
    const exec = await client(otherCa)
      .exec({ namespace: 'default', pod: 'web', container: 'app', command: ['true'] })
      .catch((e: unknown) => e);
    expect(exec).toBeInstanceOf(TlsTrustError);
    expect((exec as Error).message).toMatch(/not signed by the caData given/);
  });

  it('the right caData still works (REST and exec)', async () => {
    const kube = client(cluster.caData);
    expect((await kube.getPod('default', 'web')).metadata.name).toBe('web');
    const s = await kube.exec({ namespace: 'default', pod: 'web', container: 'app', command: ['true'] });
    s.stdout.resume();
    s.stderr.resume();
    expect((await s.result).exitCode).toBe(0);
  });

  it('a certificate for another name: problem "hostname", says to pass tlsServerName (exec too)', async () => {
    const wrongName = client(cluster.caData, { tlsServerName: 'not-the-cluster.example' });
    const rest = await wrongName.getPod('default', 'web').catch((e: unknown) => e);
    expect(rest).toBeInstanceOf(TlsTrustError);
    expect((rest as TlsTrustError).problem).toBe('hostname');
    expect((rest as Error).message).toMatch(/not valid for not-the-cluster\.example.*tlsServerName/);
    const exec = await wrongName
      .exec({ namespace: 'default', pod: 'web', container: 'app', command: ['true'] })
      .catch((e: unknown) => e);
    expect((exec as TlsTrustError).problem).toBe('hostname');
  });

  it('an http:// URL to the https server says the server speaks https', async () => {
    const kube = client(undefined, {
      server: cluster.server.replace('https://', 'http://'),
      retry: { attempts: 1 },
    });
    const err = await kube.getPod('default', 'web').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnavailableError);
    expect((err as Error).message).toMatch(/http:\/\/.*speak https:\/\//);
  });
});

describe('wrong scheme to a plain-HTTP port', () => {
  let plain: http.Server;
  let port = 0;
  beforeAll(async () => {
    plain = http.createServer((_req, res) => res.end('{}'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    port = (plain.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => plain.close(() => r())));

  it('https:// to a server that does not speak TLS: says to check scheme and port', async () => {
    const kube = new KubeClient({ server: `https://127.0.0.1:${port}`, token: 't', retry: { attempts: 1 } });
    const err = await kube.getPod('default', 'web').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnavailableError);
    expect((err as Error).message).toMatch(/does not speak TLS.*scheme and port/);
  });
});

describe('the classifier does not call every failure a trust problem', () => {
  it('a refused connection stays ApiUnavailableError', async () => {
    const s = https.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const kube = new KubeClient({ server: `https://127.0.0.1:${port}`, token: 't', retry: { attempts: 1 } });
    const err = await kube.getPod('default', 'web').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnavailableError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });
});
