/**
 * RFC 3161 timestamps of the manifest hash: a small TSA client (used at finalize) and a strict
 * checker of the stored token against a TSA certificate the verifier pins.
 *
 * @module
 */
import { createHash, randomBytes, verify as verifySignature, X509Certificate } from 'node:crypto';
import { ConfigError, EvidenceError } from '../errors.js';
import {
  children,
  type Der,
  DerError,
  encodeDer,
  encodeOid,
  expectTag,
  generalizedTime,
  oid,
  parseDer,
} from './der.js';
import type { BundleInit, BundleWriter, EvidenceSink } from './types.js';

/** Wraps a sink so that every bundle it opens is timestamped by `tsa` at finalize. */
export class TimestampingSink implements EvidenceSink {
  /** The wrapped sink's kind. */
  readonly kind: string;
  readonly #inner: EvidenceSink;
  readonly #tsa: TimestampAuthority;
  constructor(inner: EvidenceSink, tsa: TimestampAuthority) {
    this.#inner = inner;
    this.#tsa = tsa;
    this.kind = inner.kind;
  }
  /** Opens a bundle on the wrapped sink with {@link BundleInit.timestamp} set. */
  open(init: BundleInit = {}): Promise<BundleWriter> {
    return this.#inner.open({ timestamp: this.#tsa, ...init });
  }
}

/** Where and how to ask for an RFC 3161 timestamp of the manifest hash at finalize. */
export interface TimestampAuthority {
  /** TSA URL (HTTP POST, `application/timestamp-query`). */
  url: string;
  /**
   * TSA certificate or its issuing CA (PEM). When given, the reply is checked at finalize (a reply
   * that does not verify is treated like a TSA failure).
   */
  certificate?: string;
  /** Give up on the TSA after this many milliseconds. Default 15 000. */
  timeoutMs?: number;
  /**
   * When the TSA fails: `false` (default) finalizes without a token and says so in
   * `FinalizeResult.timestamp`; `true` fails finalize (the bundle stays incomplete).
   */
  required?: boolean;
  /** Extra HTTP headers (e.g. authorization for a commercial TSA). Never logged. */
  headers?: Record<string, string>;
}

/** What a verified timestamp token says. */
export interface TimestampCheck {
  /** Time the TSA vouches the manifest hash existed at (UTC ISO 8601). */
  genTime: string;
  /** TSA policy OID. */
  policy: string;
  /** Token serial number (hex). */
  serialNumber: string;
  /** Subject of the certificate that signed the token. */
  tsaSubject: string;
  /** SHA-256 of that certificate (DER). */
  tsaCertificateSha256: string;
}

/** The file a bundle keeps its RFC 3161 reply in (DER TimeStampResp, `openssl ts -verify -in` reads it). */
export const TIMESTAMP_FILE = 'timestamp.tsr';

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingCertificate: '1.2.840.113549.1.9.16.2.12',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  eku: '2.5.29.37',
  ski: '2.5.29.14',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
} as const;

const HASHES: Record<string, string> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

/** Signature algorithms: OID → the hash it implies (`''` when the signer's digestAlgorithm decides, `null` for Ed25519). */
const SIGNATURES: Record<string, string | null> = {
  '1.2.840.113549.1.1.1': '',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10045.2.1': '',
  '1.3.101.112': null,
};

const hex = (b: Buffer) => b.toString('hex');

/**
 * The content octets of a DER INTEGER for the unsigned number in `bytes`: no leading zero octets
 * (a random nonce starting with 0x00 was non-minimal DER, which openssl and strict TSAs reject as
 * "illegal padding"), one 0x00 added when the high bit is set (it is not negative).
 */
function unsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  if (v.length === 0) return Buffer.from([0]);
  return (v[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
}

/** Builds a DER TimeStampReq for a SHA-256 digest, with a nonce and certReq = true. */
export function timestampRequest(sha256Hex: string, nonce: Buffer): Buffer {
  if (!/^[0-9a-f]{64}$/.test(sha256Hex)) throw new ConfigError('timestamp digest must be 64 hex characters');
  const algId = encodeDer(0x30, encodeOid(OID.sha256), Buffer.from([0x05, 0x00]));
  const imprint = encodeDer(0x30, algId, encodeDer(0x04, Buffer.from(sha256Hex, 'hex')));
  const n = unsignedInteger(nonce);
  return encodeDer(
    0x30,
    Buffer.from([0x02, 0x01, 0x01]),
    imprint,
    encodeDer(0x02, n),
    Buffer.from([0x01, 0x01, 0xff]),
  );
}

interface ParsedToken {
  signedAttrs: Der;
  eContent: Buffer;
  digestHash: string;
  sigOid: string;
  signature: Buffer;
  sid: Der;
  certs: X509Certificate[];
  attrs: Map<string, Der[]>;
  tst: {
    policy: string;
    imprintAlg: string;
    imprint: Buffer;
    serial: Buffer;
    genTime: Date;
    nonce?: Buffer;
  };
}

/** Accepts a TimeStampResp or a bare TimeStampToken (ContentInfo). Returns the token. */
function tokenOf(data: Buffer): Der {
  const top = parseDer(data);
  const parts = children(expectTag(top, 0x30, 'timestamp'));
  if (parts[0]?.tag === 0x06) return top; // ContentInfo
  const statusInfo = children(expectTag(parts[0], 0x30, 'PKIStatusInfo'));
  const status = expectTag(statusInfo[0], 0x02, 'PKIStatus').value;
  const code = status.length === 1 ? (status[0] as number) : -1;
  if (code !== 0 && code !== 1) {
    const text =
      statusInfo[1]?.tag === 0x30
        ? children(statusInfo[1])
            .map((s) => s.value.toString('utf8'))
            .join('; ')
        : '';
    throw new DerError(`the TSA refused the request (status ${code}${text ? `: ${text}` : ''})`);
  }
  if (!parts[1]) throw new DerError('the TSA reply has no token');
  return parts[1];
}

function parseToken(data: Buffer): ParsedToken {
  const ci = children(expectTag(tokenOf(data), 0x30, 'ContentInfo'));
  if (oid(ci[0], 'contentType') !== OID.signedData) throw new DerError('the token is not CMS SignedData');
  const sdWrap = children(expectTag(ci[1], 0xa0, 'content'));
  const sd = children(expectTag(sdWrap[0], 0x30, 'SignedData'));
  let i = 0;
  expectTag(sd[i++], 0x02, 'SignedData.version');
  expectTag(sd[i++], 0x31, 'digestAlgorithms');
  const encap = children(expectTag(sd[i++], 0x30, 'encapContentInfo'));
  if (oid(encap[0], 'eContentType') !== OID.tstInfo) throw new DerError('the token does not hold a TSTInfo');
  const eContent = expectTag(children(expectTag(encap[1], 0xa0, 'eContent'))[0], 0x04, 'eContent').value;
  const certs: X509Certificate[] = [];
  if (sd[i]?.tag === 0xa0) {
    for (const c of children(sd[i] as Der)) {
      if (c.tag === 0x30) certs.push(new X509Certificate(c.raw));
    }
    i++;
  }
  if (sd[i]?.tag === 0xa1) i++;
  const signers = children(expectTag(sd[i], 0x31, 'signerInfos'));
  if (signers.length !== 1)
    throw new DerError(`the token has ${signers.length} signers; exactly one is expected`);
  const si = children(expectTag(signers[0], 0x30, 'SignerInfo'));
  let j = 0;
  expectTag(si[j++], 0x02, 'SignerInfo.version');
  const sid = si[j++];
  if (!sid || (sid.tag !== 0x30 && sid.tag !== 0x80)) throw new DerError('SignerInfo.sid is not recognised');
  const digestOid = oid(children(expectTag(si[j++], 0x30, 'digestAlgorithm'))[0], 'digestAlgorithm');
  const digestHash = HASHES[digestOid];
  if (!digestHash || digestHash === 'sha1')
    throw new DerError(`digest algorithm ${digestOid} is not accepted`);
  const signedAttrs = expectTag(si[j++], 0xa0, 'signedAttrs (required by RFC 3161)');
  const sigOid = oid(children(expectTag(si[j++], 0x30, 'signatureAlgorithm'))[0], 'signatureAlgorithm');
  const signature = expectTag(si[j++], 0x04, 'signature').value;
  const attrs = new Map<string, Der[]>();
  for (const a of children(signedAttrs)) {
    const [t, vals] = children(expectTag(a, 0x30, 'Attribute'));
    const type = oid(t, 'attribute type');
    if (attrs.has(type)) throw new DerError(`signed attribute ${type} appears twice`);
    attrs.set(type, children(expectTag(vals, 0x31, 'attribute values')));
  }

  const tst = children(expectTag(parseDer(eContent), 0x30, 'TSTInfo'));
  let k = 0;
  expectTag(tst[k++], 0x02, 'TSTInfo.version');
  const policy = oid(tst[k++], 'TSTInfo.policy');
  const mi = children(expectTag(tst[k++], 0x30, 'messageImprint'));
  const imprintAlg = oid(children(expectTag(mi[0], 0x30, 'hashAlgorithm'))[0], 'hashAlgorithm');
  const imprint = expectTag(mi[1], 0x04, 'hashedMessage').value;
  const serial = expectTag(tst[k++], 0x02, 'serialNumber').value;
  const genTime = generalizedTime(tst[k++], 'genTime');
  let nonce: Buffer | undefined;
  for (; k < tst.length; k++) if (tst[k]?.tag === 0x02) nonce = tst[k]?.value;
  return {
    signedAttrs,
    eContent,
    digestHash,
    sigOid,
    signature,
    sid,
    certs,
    attrs,
    tst: { policy, imprintAlg, imprint, serial, genTime, ...(nonce ? { nonce } : {}) },
  };
}

interface CertFacts {
  serial: Buffer;
  issuer: Buffer;
  ski?: Buffer;
  eku?: { critical: boolean; purposes: string[] };
}

function certFacts(cert: X509Certificate): CertFacts {
  const top = children(parseDer(cert.raw));
  const tbs = children(expectTag(top[0], 0x30, 'tbsCertificate'));
  let i = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const serial = expectTag(tbs[i++], 0x02, 'serialNumber').value;
  i++; // signature
  const issuer = expectTag(tbs[i++], 0x30, 'issuer').raw;
  const facts: CertFacts = { serial, issuer };
  const ext = tbs.find((e) => e.tag === 0xa3);
  if (ext) {
    for (const e of children(expectTag(children(ext)[0], 0x30, 'extensions'))) {
      const parts = children(e);
      const id = oid(parts[0], 'extnID');
      const critical = parts[1]?.tag === 0x01 && (parts[1].value[0] ?? 0) !== 0;
      const value = expectTag(parts[parts.length - 1], 0x04, 'extnValue').value;
      if (id === OID.eku) {
        facts.eku = { critical, purposes: children(parseDer(value)).map((p) => oid(p, 'KeyPurposeId')) };
      } else if (id === OID.ski) facts.ski = expectTag(parseDer(value), 0x04, 'SKI').value;
    }
  }
  return facts;
}

function parsePem(pems: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const pem of pems) {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new ConfigError('tsaCertificate holds no PEM certificate');
    for (const b of blocks) {
      try {
        out.push(new X509Certificate(b));
      } catch (cause) {
        throw new ConfigError('tsaCertificate is not a readable X.509 certificate (PEM)', { cause });
      }
    }
  }
  return out;
}

const within = (cert: X509Certificate, at: Date) =>
  Date.parse(cert.validFrom) <= at.getTime() && at.getTime() <= Date.parse(cert.validTo);

/** The SHA-256 imprint (hex) of a stored reply or token, without checking its signature; throws when malformed. */
export function timestampImprint(data: Buffer): string {
  const t = parseToken(data);
  if (t.tst.imprintAlg !== OID.sha256)
    throw new DerError(`the imprint uses ${t.tst.imprintAlg}, not SHA-256`);
  return hex(t.tst.imprint);
}

/**
 * Checks a stored RFC 3161 reply or token: the message imprint is the SHA-256 manifest hash; the
 * CMS signature verifies with the signer certificate; that certificate is bound by the
 * signingCertificate(V2) attribute, has the critical timeStamping-only extended key usage, was
 * valid at genTime, and is one of `pinned` or chains to one of them (through certificates in the
 * token, each valid at genTime).
 */
export function verifyTimestampToken(
  data: Buffer,
  manifestSha256: string,
  pinnedPem: readonly string[],
): { ok: true; check: TimestampCheck } | { ok: false; reason: string } {
  const pinned = parsePem(pinnedPem);
  try {
    const t = parseToken(data);
    if (t.tst.imprintAlg !== OID.sha256) {
      return { ok: false, reason: `the timestamp imprint uses ${t.tst.imprintAlg}, not SHA-256` };
    }
    if (hex(t.tst.imprint) !== manifestSha256) {
      return {
        ok: false,
        reason: `the timestamp is over ${hex(t.tst.imprint)}, not this manifest (${manifestSha256})`,
      };
    }
    const ct = t.attrs.get(OID.contentType);
    if (ct?.length !== 1 || oid(ct[0], 'contentType attribute') !== OID.tstInfo) {
      return { ok: false, reason: 'the signed contentType attribute is not TSTInfo' };
    }
    const md = t.attrs.get(OID.messageDigest);
    const want = createHash(t.digestHash).update(t.eContent).digest();
    if (md?.length !== 1 || !expectTag(md[0], 0x04, 'messageDigest').value.equals(want)) {
      return { ok: false, reason: 'the signed messageDigest does not match the TSTInfo (token altered)' };
    }
    // Find the signer among the token's certificates and the pinned ones.
    const candidates = [...t.certs, ...pinned];
    let sidIssuer: Buffer | undefined;
    let sidSerial: Buffer | undefined;
    let sidSki: Buffer | undefined;
    if (t.sid.tag === 0x30) {
      const [iss, ser] = children(t.sid);
      sidIssuer = expectTag(iss, 0x30, 'sid.issuer').raw;
      sidSerial = expectTag(ser, 0x02, 'sid.serialNumber').value;
    } else sidSki = t.sid.value;
    const signer = candidates.find((c) => {
      const f = certFacts(c);
      return sidSki
        ? f.ski?.equals(sidSki) === true
        : f.issuer.equals(sidIssuer as Buffer) && f.serial.equals(sidSerial as Buffer);
    });
    if (!signer)
      return {
        ok: false,
        reason: 'the certificate that signed the timestamp is neither in the token nor pinned',
      };
    // ESS signingCertificate binds the signer certificate into the signature.
    const v2 = t.attrs.get(OID.signingCertificateV2);
    const v1 = t.attrs.get(OID.signingCertificate);
    let bound = false;
    if (v2?.length === 1) {
      const certs = children(children(v2[0] as Der)[0] as Der);
      const id = children(expectTag(certs[0], 0x30, 'ESSCertIDv2'));
      let alg = 'sha256';
      let h = id[0];
      if (id[0]?.tag === 0x30) {
        const a = HASHES[oid(children(id[0])[0], 'ESSCertIDv2.hashAlgorithm')];
        if (!a) return { ok: false, reason: 'signingCertificateV2 uses an unknown hash' };
        alg = a;
        h = id[1];
      }
      bound = expectTag(h, 0x04, 'certHash').value.equals(createHash(alg).update(signer.raw).digest());
    } else if (v1?.length === 1) {
      const certs = children(children(v1[0] as Der)[0] as Der);
      const id = children(expectTag(certs[0], 0x30, 'ESSCertID'));
      bound = expectTag(id[0], 0x04, 'certHash').value.equals(createHash('sha1').update(signer.raw).digest());
    }
    if (!bound)
      return { ok: false, reason: 'the signingCertificate attribute does not name the signer certificate' };
    const implied = SIGNATURES[t.sigOid];
    if (implied === undefined)
      return { ok: false, reason: `signature algorithm ${t.sigOid} is not supported` };
    const signedBytes = Buffer.concat([Buffer.from([0x31]), t.signedAttrs.raw.subarray(1)]);
    const alg = implied === null ? null : implied || t.digestHash;
    let sigOk = false;
    try {
      sigOk = verifySignature(alg, signedBytes, signer.publicKey, t.signature);
    } catch {
      sigOk = false;
    }
    if (!sigOk) return { ok: false, reason: 'the timestamp signature does not verify (token altered)' };
    const facts = certFacts(signer);
    if (
      !facts.eku?.critical ||
      facts.eku.purposes.length !== 1 ||
      facts.eku.purposes[0] !== OID.timeStamping
    ) {
      return {
        ok: false,
        reason:
          'the signer certificate lacks the critical extended key usage timeStamping (and only that) RFC 3161 requires',
      };
    }
    const at = t.tst.genTime;
    if (!within(signer, at))
      return { ok: false, reason: `the TSA certificate was not valid at ${at.toISOString()}` };
    // Chain to a pinned certificate.
    let cur = signer;
    let anchored = false;
    for (let depth = 0; depth < 5; depth++) {
      if (pinned.some((p) => p.raw.equals(cur.raw))) {
        anchored = true;
        break;
      }
      const issuer = [...pinned, ...t.certs].find(
        (c) => !c.raw.equals(cur.raw) && c.ca && cur.checkIssued(c) && cur.verify(c.publicKey),
      );
      if (!issuer || !within(issuer, at)) break;
      if (pinned.some((p) => p.raw.equals(issuer.raw))) {
        anchored = true;
        break;
      }
      cur = issuer;
    }
    if (!anchored)
      return { ok: false, reason: 'the TSA certificate does not chain to the pinned TSA certificate' };
    return {
      ok: true,
      check: {
        genTime: at.toISOString(),
        policy: t.tst.policy,
        serialNumber: hex(t.tst.serial),
        tsaSubject: signer.subject.replace(/\n/g, ', '),
        tsaCertificateSha256: createHash('sha256').update(signer.raw).digest('hex'),
      },
    };
  } catch (e) {
    return { ok: false, reason: `the timestamp token is malformed: ${(e as Error).message}` };
  }
}

/**
 * Asks a TSA to timestamp a SHA-256 digest; returns the DER TimeStampResp after checking its
 * status, nonce and imprint (and, with `tsa.certificate`, its signature).
 *
 * @throws EvidenceError when the TSA cannot be reached, refuses, or answers something else.
 */
export async function requestTimestamp(
  tsa: TimestampAuthority,
  sha256Hex: string,
  signal?: AbortSignal,
): Promise<{ reply: Buffer; genTime: string }> {
  let url: URL;
  try {
    url = new URL(tsa.url);
  } catch (cause) {
    throw new ConfigError(`timestamp.url ${JSON.stringify(tsa.url)} is not a URL`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('timestamp.url must be http:// or https://');
  }
  const nonce = randomBytes(8);
  const body = timestampRequest(sha256Hex, nonce);
  const timeout = AbortSignal.timeout(tsa.timeoutMs ?? 15_000);
  const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let reply: Buffer;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        ...tsa.headers,
        'content-type': 'application/timestamp-query',
        accept: 'application/timestamp-reply',
      },
      body,
      signal: sig,
      redirect: 'error',
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body ?? []) {
      n += (c as Uint8Array).length;
      if (n > 256 * 1024) throw new Error('reply larger than 256 KiB');
      chunks.push(Buffer.from(c as Uint8Array));
    }
    reply = Buffer.concat(chunks);
  } catch (cause) {
    throw new EvidenceError(
      `the timestamp authority ${url.origin} did not answer: ${(cause as Error).message}; check timestamp.url and the network`,
      { cause },
    );
  }
  let genTime: string;
  try {
    const t = parseToken(reply);
    genTime = t.tst.genTime.toISOString();
    const want = unsignedInteger(nonce);
    if (!t.tst.nonce?.equals(want))
      throw new DerError('the reply does not carry our nonce (replayed reply?)');
    if (t.tst.imprintAlg !== OID.sha256 || hex(t.tst.imprint) !== sha256Hex) {
      throw new DerError('the reply timestamps a different hash');
    }
  } catch (cause) {
    throw new EvidenceError(
      `the timestamp authority ${url.origin} sent an unusable reply: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  if (tsa.certificate !== undefined) {
    const r = verifyTimestampToken(reply, sha256Hex, [tsa.certificate]);
    if (!r.ok) {
      throw new EvidenceError(
        `the timestamp from ${url.origin} does not verify with timestamp.certificate: ${r.reason}`,
      );
    }
  }
  return { reply, genTime };
}
