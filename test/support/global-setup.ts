import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Gives test workers a file to record peer skips in, read back by the peer reporter. */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'eksf-peers-'));
  process.env.EKSF_PEER_SKIP_FILE = join(dir, 'skips.jsonl');
  return () => rmSync(dir, { recursive: true, force: true });
}
