// Child process for crash.test.ts: writes two artifacts, starts a third, then waits to be killed.
import { Readable } from 'node:stream';
import { DirectorySink, TarSink } from '../../src/evidence/index.js';

const [kind, root] = process.argv.slice(2);
const sink =
  kind === 'directory'
    ? new DirectorySink({ root: root ?? '' })
    : new TarSink({ root: root ?? '', gzip: kind === 'tar.gz' });
const w = await sink.open({ acquisitionId: 'acq-crash' });
await w.writeArtifact('first.txt', 'first artifact\n', { source: { kind: 'test' } });
await w.writeArtifact('second.bin', Buffer.alloc(3 << 20, 0x5a), { source: { kind: 'test' } });
w.log({ event: 'about to hang' });
const hanging = new Readable({ read() {} });
hanging.push(Buffer.alloc(200_000, 1));
void w.writeArtifact('third.bin', hanging, { source: { kind: 'test' } });
await new Promise((r) => setTimeout(r, 300));
process.stdout.write(`READY ${w.location}\n`);
setInterval(() => {}, 1000);
