/**
 * The integrity item end to end over a {@link CoverageExec}: database read, executable listing,
 * pulls in batches, comparison. Every exec is bounded; what a cap leaves out is reported.
 */
import { demuxFrames, newFrameKey } from '../frames.js';
import { type CoverageExec, sendStdin, settle } from './exec.js';
import {
  compareIntegrity,
  decodeExecutableList,
  decodePackageDb,
  decodePulledFiles,
  type IntegrityDbCaps,
  type IntegrityFinding,
  type IntegrityReport,
  integrityDbArgv,
  integrityListArgv,
  integrityPullArgv,
  type PulledFile,
  planIntegrityPull,
} from './integrity.js';

/** Options of {@link checkIntegrity}. */
export interface CheckIntegrityOptions extends IntegrityDbCaps {
  exec: CoverageExec;
  shell: string;
  /** Directories checked (default: the bin and lib directories). */
  dirs?: readonly string[] | undefined;
  /** Files pulled at most (default 5000). */
  maxPullFiles?: number | undefined;
  /** Bytes pulled at most for the target (default 512 MiB); later batches are not pulled. */
  maxPullBytes?: number | undefined;
  /** 64 KiB blocks read at most per pulled file (default 1024 = 64 MiB). */
  blocksPerFile?: number | undefined;
  /** Executable listing entries at most (default 100 000). */
  maxListed?: number | undefined;
}

const BATCH_FILES = 200;

/** Runs the integrity check of one target. */
export async function checkIntegrity(
  opts: CheckIntegrityOptions,
): Promise<{ report: IntegrityReport; findings: IntegrityFinding[]; pulledBytes: number; execs: number }> {
  const problems: string[] = [];
  let execs = 0;
  // 1. package databases
  const key = newFrameKey();
  const dbSession = await opts.exec(integrityDbArgv(opts.shell), { stdin: true });
  execs++;
  const sent = await sendStdin(dbSession, `${key}\n`);
  if (sent) problems.push(`database read stdin: ${sent}`);
  const dbRead = await decodePackageDb(demuxFrames(dbSession.stdout, key), opts);
  if (dbRead.stoppedEarly) dbSession.abort(new Error('database stream abandoned'));
  const dbEnd = await settle(dbSession);
  if (!dbRead.stoppedEarly && (dbEnd.error || dbEnd.exitCode !== 0)) {
    problems.push(`database read: ${dbEnd.error ?? `exit ${dbEnd.exitCode}`}`);
  }
  // 2. executables in the checked directories
  const listSession = await opts.exec(integrityListArgv(opts.shell, opts.dirs), { stdin: false });
  execs++;
  const listed = await decodeExecutableList(listSession.stdout, opts.maxListed);
  if (listed.capped) {
    listSession.abort(new Error('listing abandoned'));
    problems.push(`executable listing capped at ${opts.maxListed ?? 100_000} entries`);
  }
  const listEnd = await settle(listSession);
  if (!listed.capped && (listEnd.error || listEnd.exitCode !== 0)) {
    problems.push(`executable listing: ${listEnd.error ?? `exit ${listEnd.exitCode}`}`);
  }
  // 3. pull and hash
  const plan = planIntegrityPull(dbRead.db, listed.paths, { dirs: opts.dirs, maxFiles: opts.maxPullFiles });
  const blocks = opts.blocksPerFile ?? 1024;
  const capBytes = blocks * 65536;
  const maxBytes = opts.maxPullBytes ?? 512 * 1024 * 1024;
  const pulled: PulledFile[] = [];
  const notChecked = [...plan.notChecked];
  let pulledBytes = 0;
  for (let i = 0; i < plan.pull.length; i += BATCH_FILES) {
    const batch = plan.pull.slice(i, i + BATCH_FILES);
    if (pulledBytes >= maxBytes) {
      notChecked.push(...batch);
      continue;
    }
    for (const argv of integrityPullArgv(opts.shell, batch, blocks)) {
      const paths = argv.slice(5);
      if (pulledBytes >= maxBytes) {
        notChecked.push(...paths);
        continue;
      }
      const k = newFrameKey();
      const s = await opts.exec(argv, { stdin: true });
      execs++;
      const st = await sendStdin(s, `${k}\n`);
      if (st) problems.push(`pull stdin: ${st}`);
      const algos = paths.map((p) => dbRead.db.files.get(p)?.algo);
      const got = await decodePulledFiles(
        demuxFrames(s.stdout, k),
        paths,
        capBytes,
        algos,
        maxBytes - pulledBytes,
      );
      if (got.problem || got.budgetSpent) s.abort(new Error('pull stream abandoned'));
      const end = await settle(s);
      if (got.budgetSpent) problems.push(`pull stopped at the ${maxBytes}-byte cap inside a file`);
      else if (got.problem) problems.push(`pull: ${got.problem}`);
      else if (end.error || end.exitCode !== 0) problems.push(`pull: ${end.error ?? `exit ${end.exitCode}`}`);
      for (const f of got.files) pulledBytes += f.bytes;
      pulled.push(...got.files);
      notChecked.push(...paths.slice(got.files.length));
      if (got.budgetSpent) pulledBytes = maxBytes;
    }
  }
  if (pulledBytes >= maxBytes && notChecked.length > 0)
    problems.push(`pull stopped at the ${maxBytes}-byte cap`);
  const { report, findings } = compareIntegrity(dbRead.db, pulled, { notChecked, problems });
  return { report, findings, pulledBytes, execs };
}
