/**
 * What the acquisition examples share: the command-line flags that pick a cluster (real EKS or
 * the local lab), a flag parser that answers a wrong flag with usage text, and a tidy way to end
 * with a message instead of a stack trace.
 *
 * In your own project import from 'eks-forensics'.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  ClusterCatalog,
  type ClusterInfo,
  type ConnectOptions,
  isEksForensicsError,
  type KubeClient,
} from '../src/index.js';
import { type Lab, type LabAws, startLab } from './lab.js';

// The AWS SDK warns that Node 20 support ends in 2027; that is noise for examples.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** parseArgs options every acquisition example accepts. */
export const CLUSTER_FLAGS = {
  local: { type: 'boolean', default: false },
  cluster: { type: 'string' },
  region: { type: 'string' },
  role: { type: 'string' },
  'external-id': { type: 'string' },
  endpoint: { type: 'string' },
  'tls-server-name': { type: 'string' },
  'inside-vpc': { type: 'boolean', default: false },
} as const;

/** Parsed values of {@link CLUSTER_FLAGS}. */
export interface ClusterFlagValues {
  local?: boolean | undefined;
  cluster?: string | undefined;
  region?: string | undefined;
  role?: string | undefined;
  'external-id'?: string | undefined;
  endpoint?: string | undefined;
  'tls-server-name'?: string | undefined;
  'inside-vpc'?: boolean | undefined;
}

type FlagOptions = NonNullable<ParseArgsConfig['options']>;
/** Parsed values of a strict, positional-free parse of `O`. */
export type FlagValues<O extends FlagOptions> = ReturnType<
  typeof parseArgs<{ options: O; args: string[]; strict: true; allowPositionals: false }>
>['values'];

/**
 * `parseArgs` (strict, no positionals) that prints `usage` and exits 0 for `--help`/`-h`, and for
 * an unknown flag, a missing value or a stray argument prints what was wrong plus `usage` and
 * exits 2, instead of a raw `ERR_PARSE_ARGS_*` stack trace.
 */
export function parseFlags<const O extends FlagOptions>(
  options: O,
  usage: string,
  args: string[] = process.argv.slice(2),
): FlagValues<O> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ options, args, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw err;
    const message = (err as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
    const what = unknown
      ? `unknown option ${unknown}`
      : (message.split('. ')[0] ?? message).replace(/^./, (c) => c.toLowerCase());
    process.stderr.write(`${what}\n\n${usage.trimEnd()}\n`);
    process.exit(2);
  }
}

/** A cluster to work on, reached through ClusterCatalog. */
export interface OpenedCluster {
  catalog: ClusterCatalog;
  cluster: ClusterInfo;
  connect: ConnectOptions;
  kube: KubeClient;
  /** The local lab in `--local` mode. */
  lab?: Lab | undefined;
  close(): Promise<void>;
}

/** A failure with a message for the user (printed without a stack trace). */
export class UsageError extends Error {}

/**
 * Finds the cluster (`--cluster` in `--region`, optionally through `--role`) or starts the local
 * lab (`--local`), and connects to it.
 */
export async function openCluster(
  v: ClusterFlagValues,
  local: { aws?: LabAws; onStep?: (m: string) => void } = {},
): Promise<OpenedCluster> {
  let lab: Lab | undefined;
  let catalog: ClusterCatalog;
  let name: string;
  let connect: ConnectOptions;
  if (v.local) {
    lab = await startLab({ aws: local.aws ?? 'auto', onStep: local.onStep });
    catalog = new ClusterCatalog(lab.catalogOptions);
    name = lab.clusterName;
    connect = lab.connect;
  } else {
    if (!v.cluster || !v.region) throw new UsageError('give --cluster <name> --region <region> (or --local)');
    catalog = new ClusterCatalog({
      regions: [v.region],
      ...(v.role
        ? { accounts: [{ roleArn: v.role, externalId: v['external-id'] }], includeDefaultAccount: false }
        : {}),
    });
    name = v.cluster;
    connect = {
      endpoint: v.endpoint,
      tlsServerName: v['tls-server-name'],
      insideVpc: v['inside-vpc'],
    };
  }
  try {
    const { clusters, problems } = await catalog.discover();
    const cluster = clusters.find((c) => c.name === name);
    if (!cluster) {
      const why = problems.map((p) => `${p.operation}: ${p.message}`).join('\n  ');
      throw new UsageError(`cluster ${name} not found${why ? `:\n  ${why}` : ''}`);
    }
    const kube = await catalog.connect(cluster, connect);
    return { catalog, cluster, connect, kube, lab, close: async () => lab?.close() };
  } catch (err) {
    await lab?.close();
    throw err;
  }
}

/** Runs `main`, sets the exit code, prints expected failures as one message (stack with DEBUG=1). */
export function run(main: () => Promise<number | undefined>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (err: unknown) => {
      if (err instanceof UsageError) console.error(err.message);
      else if (isEksForensicsError(err)) console.error(`[${err.code}] ${err.message}`);
      else console.error(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
      if (process.env.DEBUG && err instanceof Error) console.error(err.stack);
      process.exitCode = 1;
    },
  );
}
