/**
 * The listening side: an HTTPS server on 127.0.0.1 with Go's TLS preferences, the WebSocket
 * server exec upgrades are handed to, and an exit hook that closes clusters left running.
 *
 * @module
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { DEFAULT_CIPHERS } from 'node:tls';
import { WebSocketServer } from 'ws';
import { MAX_FRAME_BYTES } from './exec.js';
import type { UpgradeRequest } from './exec-upgrade.js';
import type { FakePki } from './pki.js';

/** TLS 1.3 suites in Go's server preference (AES hardware), then Node's TLS 1.2 list. */
const GO_TLS13_ORDER = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  ...DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_')),
].join(':');

/** A listening HTTPS server, its port, and the WebSocket server for upgrades. */
export interface Listening {
  httpServer: Server;
  wss: WebSocketServer;
  port: number;
}

/** Starts the HTTPS server on a random 127.0.0.1 port. */
export async function listen(pki: FakePki): Promise<Listening> {
  const httpServer = createServer({
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
    // Go's crypto/tls, as in kube-apiserver, picks the TLS 1.3 suite itself and prefers
    // AES-128-GCM on CPUs with AES instructions, whatever the client lists first. OpenSSL would
    // follow the client's order (Node clients list AES-256 first), so FakeCluster states Go's order.
    ciphers: GO_TLS13_ORDER,
    honorCipherOrder: true,
  });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false,
    handleProtocols: (_protocols, req) => {
      const chosen = (req as UpgradeRequest).fakeProtocol;
      return chosen ? chosen : false;
    },
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', () => resolve());
  });
  return { httpServer, wss, port: (httpServer.address() as AddressInfo).port };
}

const live = new Set<{ close(): Promise<void> }>();
let exitHookInstalled = false;

/** Closes `cluster` when the process exits, unless it was closed before ({@link forgetOnExit}). */
export function closeOnExit(cluster: { close(): Promise<void> }): void {
  live.add(cluster);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) void c.close();
  });
}

/** Drops a closed cluster from the exit hook. */
export function forgetOnExit(cluster: { close(): Promise<void> }): void {
  live.delete(cluster);
}
