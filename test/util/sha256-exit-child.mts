// Child of sha256.test.ts: hashes through the worker pool (one hash, or one abandoned half-way)
// and must then exit on its own: the workers never keep a process alive while nothing waits.
import { Sha256 } from '../../src/util/sha256.js';

const chunk = Buffer.alloc(1 << 20, 7);
const h = new Sha256({ offload: true });
for (let i = 0; i < 8; i++) await h.update(chunk);
process.stdout.write(process.argv[2] === 'abandon' ? 'abandoned\n' : `${await h.digest()}\n`);
