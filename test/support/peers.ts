/**
 * Real peers (moto_server, kubectl, bwrap…) that some tests need. Where a peer is missing the
 * tests skip LOUDLY; with CI=true or EKSF_REQUIRE_PEERS=1 a missing peer fails the run instead.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';

/** True when missing peers must fail the run. */
export const peersRequired = process.env.CI === 'true' || process.env.EKSF_REQUIRE_PEERS === '1';

/**
 * Returns true when tests needing `peer` should be skipped (`missing` says why), after printing
 * a loud notice. Throws instead when peers are required. Use with `describe.skipIf(...)`.
 */
export function skipWithoutPeer(peer: string, missing: string | undefined | null): boolean {
  if (!missing) return false;
  if (peersRequired) {
    throw new Error(`required test peer "${peer}" is missing: ${missing} (CI=true or EKSF_REQUIRE_PEERS=1)`);
  }
  const line = `peer "${peer}" missing: ${missing}`;
  process.stderr.write(`\n!!!!! SKIPPING TESTS: ${line}\n`);
  const file = process.env.EKSF_PEER_SKIP_FILE;
  if (file) appendFileSync(file, `${JSON.stringify({ peer, missing })}\n`);
  return true;
}

/** Whether a command is on PATH. */
export function hasCommand(name: string): boolean {
  try {
    return execFileSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
}

/** {@link skipWithoutPeer} for a command on PATH, with the Debian package that provides it. */
export function skipWithoutCommand(name: string, debianPackage: string): boolean {
  return skipWithoutPeer(
    name,
    hasCommand(name) ? undefined : `${name} not installed (apt-get install ${debianPackage})`,
  );
}
