// Child process for tar-writer.test.ts: one artifact is complete, a large one is streaming straight
// into the archive (past the memory buffer, so its header is still the placeholder) when the
// parent SIGKILLs this process.
import { Readable } from 'node:stream';
import { TarSink } from '../../src/evidence/index.js';

const [kind, root] = process.argv.slice(2);
const sink = new TarSink({ root: root ?? '', gzip: kind === 'tar.gz', memoryBufferBytes: 64 * 1024 });
const w = await sink.open({ acquisitionId: 'acq-kill' });
await w.writeArtifact('done.txt', 'finished before the crash\n', { source: { kind: 'test' } });
const hanging = new Readable({ read() {} });
// Bytes that look like a tar header of their own: a reader must not take them for an entry.
const forged = Buffer.alloc(512);
forged.write('acq-kill/forged.txt', 0);
forged.write('ustar\u000000', 257, 'latin1');
hanging.push(Buffer.concat([forged, Buffer.alloc(3 << 20, 7)]));
void w.writeArtifact('big.bin', hanging, { source: { kind: 'test' } });
await new Promise((r) => setTimeout(r, 500));
process.stdout.write(`READY ${w.location}\n`);
setInterval(() => {}, 1000);
