/**
 * Phase 1, API state (no exec): pod JSON (secrets hashed), events, current and previous logs,
 * owners, service account, node, identity context. Works for every container, shell or not.
 */
import { type IdentityKube, podIdentityContext } from '../../../catalog/index.js';
import { withTimeout } from '../../../util/index.js';
import type { ApiItem } from '../../schema.js';
import { errMessage, type PhaseEnv } from '../env.js';
import { reason } from '../reasons.js';
import { podWithSecretsHashed } from '../secrets.js';
import { derivedVerdict, withProblem } from '../verdict.js';

/** Runs the API items of all profiles. */
export async function apiPhase(
  env: PhaseEnv,
  items: readonly { profile: string; item: ApiItem }[],
): Promise<void> {
  if (items.length === 0) return;
  const { kube, view: t, pod, store, limits } = env;
  const wanted = new Set(items.flatMap((x) => x.item.resources));
  const src = (res: string) => {
    const owner = items.find((x) => x.item.resources.some((r) => r === res));
    return { kind: 'api', profile: owner?.profile, item: owner?.item.id };
  };
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  const maxLog = Math.max(...items.map((x) => x.item.maxLogBytes ?? 64 * 1024 * 1024));
  const call = async <T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const w = withTimeout(env.signal, limits.apiTimeoutMs, what);
    try {
      return await fn(w.signal);
    } finally {
      w.dispose();
    }
  };
  if (wanted.has('pod')) {
    if (pod) {
      const policy = env.copySensitive ? { pod, hashed: 0 } : podWithSecretsHashed(pod);
      await store.api(
        'pod/pod.json',
        json(policy.pod),
        env.meta(src('pod'), {
          contentType: 'application/json',
          details: {
            secrets: env.copySensitive
              ? 'kept as read (copySensitive)'
              : `env values and spec-carrying annotations stored as sha256 (${policy.hashed} values)`,
          },
        }),
      );
    } else await store.record('pod/pod.json', 'failed', 'the pod could not be read', env.meta(src('pod')));
  }
  if (wanted.has('events')) {
    if (kube.podEvents) {
      try {
        const events = await call(
          'pod events',
          (signal) =>
            kube.podEvents?.({ namespace: t.namespace, uid: t.podUid, name: t.pod, signal }) ??
            Promise.resolve([]),
        );
        await store.api(
          'pod/events.json',
          json(events),
          env.meta(src('events'), { contentType: 'application/json' }),
        );
      } catch (err) {
        await store.record('pod/events.json', 'failed', errMessage(err), env.meta(src('events')));
      }
    } else
      await store.record(
        'pod/events.json',
        'skipped',
        'the client has no podEvents()',
        env.meta(src('events')),
      );
  }
  for (const [res, previous] of [
    ['logs', false],
    ['previousLogs', true],
  ] as const) {
    if (!wanted.has(res)) continue;
    const path = `pod/logs/${t.container}${previous ? '.previous' : ''}.log`;
    if (!kube.podLogs) {
      await store.record(path, 'skipped', 'the client has no podLogs()', env.meta(src(res)));
      continue;
    }
    const st = pod?.status?.containerStatuses?.find((c) => c.name === t.container);
    if (previous && st && !st.lastState?.terminated && (st.restartCount ?? 0) === 0) {
      await store.record(path, 'skipped', 'no previous instance (restartCount 0)', env.meta(src(res)));
      continue;
    }
    try {
      const w = withTimeout(env.signal, limits.apiTimeoutMs, 'pod logs');
      const stream = await kube
        .podLogs({
          namespace: t.namespace,
          pod: t.pod,
          container: t.container,
          previous,
          timestamps: true,
          limitBytes: maxLog,
          signal: w.signal,
        })
        .finally(() => w.dispose());
      await store.apiStream(path, stream, env.meta(src(res), { contentType: 'text/plain' }));
    } catch (err) {
      await store.record(path, previous ? 'skipped' : 'failed', errMessage(err), env.meta(src(res)));
    }
  }
  if (wanted.has('owners') && pod) {
    const owners = {
      ownerReferences: pod.metadata?.ownerReferences ?? [],
      note: 'owner references as recorded on the pod; owners beyond the first level are not resolved',
    };
    await store.api(
      'pod/owners.json',
      json(owners),
      env.meta(src('owners'), { contentType: 'application/json' }),
    );
  }
  if (wanted.has('serviceAccount') && pod) {
    const spec = (pod.spec ?? {}) as Record<string, unknown>;
    const volumes = Array.isArray(spec.volumes) ? (spec.volumes as Record<string, unknown>[]) : [];
    const sa = {
      serviceAccountName: spec.serviceAccountName ?? spec.serviceAccount ?? 'default',
      automountServiceAccountToken: spec.automountServiceAccountToken,
      projectedVolumes: volumes.filter((v) => v && typeof v === 'object' && 'projected' in v),
      env: (pod.spec?.containers ?? []).map((c) => ({
        container: c.name,
        envNames:
          ((c as Record<string, unknown>).env as { name?: string }[] | undefined)?.map((e) => e.name) ?? [],
      })),
    };
    await store.api(
      'pod/service-account.json',
      json(sa),
      env.meta(src('serviceAccount'), { contentType: 'application/json' }),
    );
  }
  if (wanted.has('node')) {
    const nodeName = pod?.spec?.nodeName;
    if (!nodeName)
      await store.record('pod/node.json', 'skipped', 'pod is not scheduled', env.meta(src('node')));
    else if (!kube.getNode)
      await store.record('pod/node.json', 'skipped', 'the client has no getNode()', env.meta(src('node')));
    else {
      try {
        const node = await call(
          'get node',
          (signal) => kube.getNode?.(nodeName, { signal }) ?? Promise.reject(new Error('no getNode')),
        );
        await store.api(
          'pod/node.json',
          json(node),
          env.meta(src('node'), { contentType: 'application/json' }),
        );
      } catch (err) {
        await store.record(
          'pod/node.json',
          'failed',
          `${errMessage(err)} (grant get on nodes to capture it)`,
          env.meta(src('node')),
        );
      }
    }
  }
  if (wanted.has('identity')) {
    const path = 'pod/identity-context.json';
    const meta = env.meta(src('identity'), { contentType: 'application/json' });
    const getObject = kube.getObject;
    const listObjects = kube.listObjects;
    if (!pod) await store.record(path, 'skipped', 'the pod could not be read', meta);
    else if (!getObject || !listObjects)
      await store.record(path, 'skipped', 'the client has no getObject()/listObjects()', meta);
    else {
      const ik = {
        getPod: (ns: string, name: string, o?: Parameters<typeof kube.getPod>[2]) => kube.getPod(ns, name, o),
        getObject: getObject.bind(kube),
        listObjects: listObjects.bind(kube),
      } as IdentityKube;
      try {
        const ctx = await call('identity context', (signal) => podIdentityContext(ik, pod, { signal }));
        // every read that was denied or failed makes the document incomplete, with the rule to grant
        let v = derivedVerdict([]);
        for (const s of ctx.skipped.slice(0, 50))
          v = withProblem(
            v,
            'truncated',
            reason('degraded', `identity context: ${s.item}: ${s.reason}`, path),
          );
        if (ctx.skipped.length > 50)
          v = withProblem(
            v,
            'truncated',
            reason('degraded', `identity context: ${ctx.skipped.length - 50} more reads skipped`, path),
          );
        await store.derived(path, json(ctx), meta, [v]);
      } catch (err) {
        await store.record(path, 'failed', `identity context: ${errMessage(err)}`, meta);
      }
    }
  }
}
