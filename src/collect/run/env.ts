/**
 * What every phase receives: the immutable target view, what earlier phases found, the door for
 * execs and the store for everything else. Phases never see the bundle writer.
 */
import type { ArtifactMeta } from '../../evidence/index.js';
import type { Pod } from '../../kube/index.js';
import type { Budget } from '../budget.js';
import type { ProbeResult, Strategy } from '../probe.js';
import type { CollectLimits, CollectorKube } from '../types.js';
import type { Door } from './door.js';
import type { ReasonList } from './reasons.js';
import type { ArtifactSourceInput, TargetStore } from './store.js';
import type { TargetView } from './view.js';

/** The environment of one phase. */
export interface PhaseEnv {
  readonly view: TargetView;
  readonly pod: Pod | undefined;
  readonly probe: ProbeResult | undefined;
  readonly strategy: Strategy;
  readonly limits: CollectLimits;
  readonly signal: AbortSignal;
  readonly kube: CollectorKube;
  readonly copySensitive: boolean;
  readonly store: TargetStore;
  readonly door: Door;
  readonly reasons: ReasonList;
  readonly budget: Budget;
  /** Adds a line to the acquisition log (and the logger, at debug). */
  log(event: Record<string, unknown>): void;
  /** Bundle path under the container's folder. */
  c(path: string): string;
  /** Manifest metadata for an artifact of this target. */
  meta(source: ArtifactSourceInput, extra?: Partial<ArtifactMeta>): ArtifactMeta;
  /** Next number for content streams. */
  nextSeq(): number;
}

/** The shell the probe found (`sh` when unknown). */
export function shellOf(env: PhaseEnv): string {
  return env.probe?.shell ?? 'sh';
}

/** Error message of anything thrown. */
export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
