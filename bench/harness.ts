// One measured run: a fresh local stack with audit logs, one subject, N objects created at once, and what
// a user would time: until every Secret exists (and every VaultSecret is Ready), per-object latency, a
// new object during a refresh wave, requests per object, memory and CPU of the operator process.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, Watch } from '@kubernetes/client-node';
import { startStack } from '../devstack/stack.ts';
import { VaultAdmin } from '../devstack/vaultAdmin.ts';
import { DATABASE_MOUNT, KUBERNETES_AUTH_MOUNT, KV2_MOUNT, putDatabaseRole } from '../devstack/configure.ts';
import { countKube, countVault, readKubeAudit, readVaultAudit, renewalRate, type RequestCounts } from './audit.ts';
import { ProcSampler } from './procstat.ts';
import { percentile } from './stats.ts';
import type { SecretKind, Subject, SubjectContext } from './subjects.ts';

export interface Scenario {
  id: string;
  kind: SecretKind;
  n: number;
}

export interface RunOptions {
  scenario: Scenario;
  subject: Subject;
  concurrency: number;
  /** Refresh interval of static secrets; the refresh wave comes this long after the initial creates. */
  refreshSeconds: number;
  /** TTL of the dynamic database role; renewals are observed for 1.2 TTL after the initial sync. */
  dynamicTtlSeconds: number;
  probes: number;
  timeoutSeconds: number;
  workDir: string;
  log: (line: string) => void;
}

export interface RunResult {
  subject: string;
  scenario: string;
  n: number;
  completed: number;
  /** From the first create request to the last Secret seen (floor: the last create answered). */
  allSecretsSeconds: number;
  /** Our operator only: until every VaultSecret reported Ready=True for its generation. */
  allReadySeconds?: number;
  latenciesMs: number[];
  p50Ms: number;
  p99Ms: number;
  probe?: { startOffsetSeconds: number; latenciesMs: number[]; timedOut: number; p50Ms: number; p99Ms: number; maxMs: number };
  requests: {
    initial: { kube: RequestCounts; vault: RequestCounts };
    /** Static: one refresh interval with nothing changed. Dynamic: the renewal period. */
    steady?: { windowSeconds: number; objects: number; kube: RequestCounts; vault: RequestCounts };
  };
  renewals?: { renewals: number; peakPerSecond: number; meanPerSecond: number; spanSeconds: number };
  process?: { peakRssMiB: number; steadyRssMiB: number; syncCpuSeconds: number; totalCpuSeconds: number; rssAfterSyncMiB: number };
}

const SUBJECT_SA = 'bench-subject';
const PROBE_TIMEOUT_MS = 120_000;
const NAMESPACE_SIZE = 1000;

export async function measureRun(opts: RunOptions): Promise<RunResult> {
  const { scenario, subject, log } = opts;
  const stack = await startStack({ audit: true, log: () => undefined });
  const env = stack.env;
  let sampler: ProcSampler | undefined;
  let tracker: Tracker | undefined;
  let child: Awaited<ReturnType<Subject['start']>>;
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(env.KUBECONFIG);
    const core = kc.makeApiClient(CoreV1Api);
    const vault = new VaultAdmin(env.VAULT_ADDR, env.VAULT_TOKEN);
    const namespaces = Array.from({ length: Math.ceil(scenario.n / NAMESPACE_SIZE) }, (_, k) => `bench-${k}`);
    const vaultRole = (ns: string) => `bench-${ns}`;

    // --- setup, not timed ---------------------------------------------------------------------------
    const subjectKubeconfig = await subjectIdentity(kc, opts.workDir);
    for (const ns of namespaces) {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await vault.putPolicy(vaultRole(ns), [
        `path "${KV2_MOUNT}/data/${ns}/*" { capabilities = ["read"] }`,
        `path "${DATABASE_MOUNT}/creds/bench" { capabilities = ["read"] }`,
        'path "sys/leases/renew" { capabilities = ["update"] }',
        'path "sys/leases/revoke" { capabilities = ["update"] }',
      ].join('\n'));
      await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/${vaultRole(ns)}`, {
        bound_service_account_names: ['default'], bound_service_account_namespaces: [ns],
        audience: 'vault', token_policies: [vaultRole(ns)], token_ttl: '1h', token_max_ttl: '24h',
      });
    }
    const items = Array.from({ length: scenario.n }, (_, i) => {
      const ns = namespaces[Math.floor(i / NAMESPACE_SIZE)]!;
      return { ns, name: `s-${i}`, vaultPath: `${ns}/s-${i}` };
    });
    if (scenario.kind === 'static') {
      await pool(items, 32, (it) => vault.write(`${KV2_MOUNT}/data/${it.vaultPath}`, { data: { username: it.name, password: `pw-${it.name}` } }).then(() => undefined));
    } else {
      await putDatabaseRole(vault, 'bench', { defaultTtl: `${opts.dynamicTtlSeconds}s`, maxTtl: '24h' });
    }
    for (const ns of namespaces) {
      await waitFor(`ServiceAccount ${ns}/default`, 30_000, async () => !!(await core.readNamespacedServiceAccount({ name: 'default', namespace: ns }).catch(() => undefined)));
    }

    const ctx: SubjectContext = {
      kc, adminKubeconfig: env.KUBECONFIG, subjectKubeconfig, vaultAddr: env.VAULT_ADDR, namespaces, vaultRole,
      refreshSeconds: opts.refreshSeconds, logFile: join(opts.workDir, `${subject.name}.log`),
    };
    tracker = new Tracker(kc, subject.reportsReady);
    await tracker.start();
    child = await subject.start(ctx);
    if (child?.pid) sampler = new ProcSampler(child.pid);
    const subjectUser = `system:serviceaccount:kube-system:${SUBJECT_SA}`;
    // The floor's requests are the harness's own.
    const kubeUser = subject.name === 'floor' ? 'devstack-admin' : subjectUser;

    // --- initial sync -------------------------------------------------------------------------------
    log(`${subject.name}: creating ${scenario.n} ${scenario.kind} objects, ${opts.concurrency} at a time`);
    const t0 = Date.now();
    const started = new Map<string, number>();
    const answered = new Map<string, number>();
    await pool(items, opts.concurrency, async (it) => {
      const key = `${it.ns}/${it.name}`;
      started.set(key, Date.now());
      await withRetries(() => subject.create(ctx, scenario.kind, it.ns, it.name, it.vaultPath));
      answered.set(key, Date.now());
    });
    const keys = items.map((it) => `${it.ns}/${it.name}`);
    const done = (key: string) => subject.name === 'floor' ? answered.get(key) : subject.reportsReady ? tracker!.readyAt(key) : tracker!.secretAt(key);
    const complete = await waitFor(`all ${scenario.n} ready`, opts.timeoutSeconds * 1000, async () => keys.every((k) => done(k) !== undefined), 200).then(() => true, () => false);
    const tDone = Date.now();
    const completedKeys = keys.filter((k) => done(k) !== undefined);
    const latenciesMs = completedKeys.map((k) => done(k)! - started.get(k)!);
    const lastSecret = Math.max(...completedKeys.map((k) => (subject.name === 'floor' ? answered.get(k) : tracker!.secretAt(k)) ?? t0));
    const lastReady = subject.reportsReady ? Math.max(...completedKeys.map((k) => tracker!.readyAt(k) ?? t0)) : undefined;
    log(`${subject.name}: ${completedKeys.length}/${scenario.n} done in ${((tDone - t0) / 1000).toFixed(1)} s${complete ? '' : ' (TIMED OUT)'}`);
    const afterSync = sampler?.sample();

    const result: RunResult = {
      subject: subject.name, scenario: scenario.id, n: scenario.n, completed: completedKeys.length,
      allSecretsSeconds: (lastSecret - t0) / 1000,
      allReadySeconds: lastReady !== undefined ? (lastReady - t0) / 1000 : undefined,
      latenciesMs, p50Ms: percentile(latenciesMs, 50), p99Ms: percentile(latenciesMs, 99),
      requests: { initial: { kube: { total: 0, byKey: {} }, vault: { total: 0, byKey: {} } } },
    };
    const initialWindow = { fromMs: t0, toMs: tDone + 1000 };

    // --- steady state ---------------------------------------------------------------------------------
    let steadyWindow: { fromMs: number; toMs: number } | undefined;
    let steadyObjects = scenario.n;
    if (subject.name !== 'floor' && complete && scenario.kind === 'static') {
      // Probes: new objects created while the refresh wave of all N is due, spread over as long as the
      // initial sync took (the wave takes about as long).
      const waveStart = t0 + opts.refreshSeconds * 1000;
      const spread = Math.max(5_000, tDone - t0);
      await sleep(Math.max(0, waveStart - Date.now()));
      const probeStart = Date.now();
      const probeLatencies: number[] = [];
      let probesTimedOut = 0;
      const ns0 = namespaces[0]!;
      await Promise.all(Array.from({ length: opts.probes }, async (_, k) => {
        await sleep((k * spread) / opts.probes);
        const name = `probe-${k}`;
        const key = `${ns0}/${name}`;
        const s = Date.now();
        await withRetries(() => subject.create(ctx, scenario.kind, ns0, name, `${ns0}/s-0`));
        await waitFor(`probe ${name}`, PROBE_TIMEOUT_MS, async () => done(key) !== undefined, 20).catch(() => undefined);
        const at = done(key);
        // A probe still not ready counts as the timeout (a lower bound), so slow subjects are not flattered.
        if (at !== undefined) probeLatencies.push(at - s);
        else { probeLatencies.push(PROBE_TIMEOUT_MS); probesTimedOut++; }
      }));
      result.probe = {
        startOffsetSeconds: (probeStart - t0) / 1000, latenciesMs: probeLatencies, timedOut: probesTimedOut,
        p50Ms: percentile(probeLatencies, 50), p99Ms: percentile(probeLatencies, 99), maxMs: Math.max(...probeLatencies),
      };
      log(`${subject.name}: probes during the refresh wave: p50 ${result.probe.p50Ms} ms, p99 ${result.probe.p99Ms} ms`);
      // One full refresh interval with nothing changed: every object is refreshed about once.
      await sleep(2_000);
      const from = Date.now();
      await sleep(opts.refreshSeconds * 1000);
      steadyWindow = { fromMs: from, toMs: Date.now() };
      steadyObjects = scenario.n + opts.probes;
    } else if (subject.name !== 'floor' && complete && scenario.kind === 'dynamic') {
      const from = tDone;
      await sleep(Math.max(0, from + opts.dynamicTtlSeconds * 1200 - Date.now()));
      steadyWindow = { fromMs: from, toMs: Date.now() };
    }
    const end = sampler?.sample();

    // --- counting -------------------------------------------------------------------------------------
    if (process.env.BENCH_PAUSE && child) {
      log(`pausing ${process.env.BENCH_PAUSE} s before stopping pid ${child.pid} (BENCH_PAUSE)`);
      await sleep(Number(process.env.BENCH_PAUSE) * 1000);
    }
    if (process.env.BENCH_HEAP_SNAPSHOT && child) {
      // With BENCH_NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2: a snapshot of the steady state, written to the working directory.
      child.kill('SIGUSR2');
      await sleep(Number(process.env.BENCH_HEAP_SNAPSHOT) * 1000);
    }
    child?.kill('SIGTERM');
    await sleep(500);
    const kubeAudit = readKubeAudit(join(env.VSYNC_STACK_DIR, 'logs', 'kube-audit.log'));
    const vaultAudit = readVaultAudit(join(env.VSYNC_STACK_DIR, 'logs', 'vault-audit.log'));
    result.requests.initial = { kube: countKube(kubeAudit, kubeUser, initialWindow), vault: countVault(vaultAudit, initialWindow) };
    if (steadyWindow) {
      result.requests.steady = {
        windowSeconds: (steadyWindow.toMs - steadyWindow.fromMs) / 1000, objects: steadyObjects,
        kube: countKube(kubeAudit, kubeUser, steadyWindow), vault: countVault(vaultAudit, steadyWindow),
      };
      if (scenario.kind === 'dynamic') result.renewals = renewalRate(vaultAudit, { fromMs: t0, toMs: steadyWindow.toMs });
    }
    if (sampler && afterSync && end) {
      const first = sampler.samples[0]!;
      result.process = {
        peakRssMiB: end.peakRssMiB, steadyRssMiB: end.rssMiB, rssAfterSyncMiB: afterSync.rssMiB,
        syncCpuSeconds: afterSync.cpuSeconds - (sampler.at(t0) ?? first).cpuSeconds, totalCpuSeconds: end.cpuSeconds,
      };
    }
    writeFileSync(join(opts.workDir, `${subject.name}-${scenario.id}.json`), JSON.stringify(result, null, 1));
    return result;
  } finally {
    sampler?.stop();
    tracker?.stop();
    child?.kill('SIGKILL');
    await stack.stop();
  }
}

/** A ServiceAccount with cluster-admin for the operator under test, so its requests are its own in the audit log. */
async function subjectIdentity(kc: KubeConfig, dir: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: 'kube-system', body: { metadata: { name: SUBJECT_SA } } });
  await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: SUBJECT_SA },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: SUBJECT_SA, namespace: 'kube-system' }],
    },
  });
  const token = await core.createNamespacedServiceAccountToken({
    name: SUBJECT_SA, namespace: 'kube-system', body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
  });
  const cluster = kc.getCurrentCluster()!;
  const file = join(dir, 'subject.kubeconfig');
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'bench',
    clusters: [{ name: 'bench', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } }],
    users: [{ name: SUBJECT_SA, user: { token: token.status!.token } }],
    contexts: [{ name: 'bench', context: { cluster: 'bench', user: SUBJECT_SA } }],
  }), { mode: 0o600 });
  return file;
}

/** When each Secret first appeared with data, and (for our operator) when each VaultSecret became Ready. */
class Tracker {
  private readonly secrets = new Map<string, number>();
  private readonly ready = new Map<string, number>();
  private readonly watches: AbortController[] = [];
  private stopped = false;
  private readonly kc: KubeConfig;
  private readonly withReady: boolean;
  constructor(kc: KubeConfig, withReady: boolean) {
    this.kc = kc;
    this.withReady = withReady;
  }

  async start(): Promise<void> {
    await this.watch('/api/v1/secrets', (obj) => {
      const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
      if (!this.secrets.has(key) && Object.keys(obj.data ?? {}).length > 0) this.secrets.set(key, Date.now());
    });
    if (this.withReady) {
      await this.watch('/apis/vaultsync.dev/v1alpha1/vaultsecrets', (obj) => {
        const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
        const ready = obj.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
        if (!this.ready.has(key) && ready && obj.status?.observedGeneration === obj.metadata.generation) this.ready.set(key, Date.now());
      });
    }
  }

  private async watch(path: string, onObject: (obj: any) => void, resourceVersion?: string): Promise<void> {
    let lastRv = resourceVersion;
    const controller = await new Watch(this.kc).watch(path, { allowWatchBookmarks: true, resourceVersion: lastRv }, (type, obj) => {
      lastRv = obj?.metadata?.resourceVersion ?? lastRv;
      if (type === 'ADDED' || type === 'MODIFIED') onObject(obj);
    }, () => {
      if (!this.stopped) void this.watch(path, onObject, lastRv).catch(() => this.watch(path, onObject));
    });
    this.watches.push(controller);
  }

  secretAt(key: string): number | undefined {
    return this.secrets.get(key);
  }

  readyAt(key: string): number | undefined {
    const r = this.ready.get(key);
    const s = this.secrets.get(key);
    return r !== undefined && s !== undefined ? Math.max(r, s) : undefined;
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watches) w.abort();
  }
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function withRetries(fn: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err: any) {
      const retriable = err?.code === 429 || err?.code >= 500 || /ECONNRESET|ETIMEDOUT|socket/i.test(String(err?.message));
      if (!retriable || attempt >= 5) throw err;
      await sleep(200 * attempt);
    }
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}
