/**
 * A throwaway CA and server certificate for FakeCluster (ECDSA P-256, generated at start).
 *
 * @module
 */
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

/** PEM material of a generated CA and server certificate. */
export interface FakePki {
  /** CA certificate (PEM). */
  caCert: string;
  /** Server certificate (PEM), signed by the CA. */
  serverCert: string;
  /** Server private key (PKCS#8 PEM). */
  serverKey: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Generates a CA and a server certificate for `127.0.0.1`, `localhost` and `extraDnsNames`.
 * Valid from one hour ago for one day.
 */
export async function generatePki(extraDnsNames: readonly string[] = []): Promise<FakePki> {
  // @peculiar/x509 needs a Reflect metadata polyfill (tsyringe); load both only when used.
  await import('reflect-metadata');
  const x509: typeof X509 = await import('@peculiar/x509');
  const crypto = webcrypto;
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 24 * 3600_000);
  const caKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: 'CN=eks-forensics-fake-ca',
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const serverKeys = (await crypto.subtle.generateKey(ALG, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const names: X509.JsonGeneralName[] = [
    { type: 'ip', value: '127.0.0.1' },
    { type: 'dns', value: 'localhost' },
    ...extraDnsNames.map((value): X509.JsonGeneralName => ({ type: 'dns', value })),
  ];
  const server = await x509.X509CertificateGenerator.create(
    {
      serialNumber: '02',
      subject: 'CN=kube-apiserver',
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: serverKeys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const keyDer = await crypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
  return {
    caCert: ca.toString('pem'),
    serverCert: server.toString('pem'),
    serverKey: pem('PRIVATE KEY', keyDer),
  };
}
