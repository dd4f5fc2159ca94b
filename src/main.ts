// Composition root: the only place that reads the environment, builds the real adapters and starts
// the controller. Everything below it gets its dependencies through constructors.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { PooledKubeConfig } from './kube/kubeConfig.ts';
import { GROUP, VERSION, VAULTSECRET_PLURAL, VAULTCONNECTION_PLURAL } from './api/index.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { VaultSecretController } from './controller/controller.ts';
import { WorkQueue } from './controller/queue.ts';
import { VaultSecretReconciler, type VaultSecretObject } from './controller/reconciler.ts';
import { VaultSecretSource } from './controller/vaultSource.ts';
import { WorkloadRestarter } from './controller/workloads.ts';
import { parseDuration } from './api/index.ts';
import { CustomObjectStore } from './kube/customObjects.ts';
import { isKubeNotFound } from './kube/errors.ts';
import { KubeEventRecorder } from './kube/events.ts';
import { ServiceAccountTokens } from './kube/identity.ts';
import { LeaderElector } from './kube/leaderElection.ts';
import { OperatorMetrics } from './metrics/metrics.ts';
import { ListWatch, NamespacedWatches, type KubeObject, type WatchCache } from './kube/listWatch.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretStore } from './kube/secrets.ts';
import { systemClock } from './util/clock.ts';
import { TokenBucket } from './util/rateLimiter.ts';
import { createLogger, type Logger } from './util/logger.ts';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The key for status.dataHmac lives in a Secret of the operator's namespace, made on first start. */
async function hmacKey(core: CoreV1Api, config: Config, log: Logger): Promise<Buffer> {
  const name = config.hmacKeySecret;
  const namespace = config.operatorNamespace;
  try {
    const existing = await core.readNamespacedSecret({ name, namespace });
    const key = existing.data?.key;
    if (key) return Buffer.from(key, 'base64');
  } catch (err) {
    if (!isKubeNotFound(err)) throw err;
  }
  const key = randomBytes(32);
  try {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } }, data: { key: key.toString('base64') } },
    });
    log.info({ secret: `${namespace}/${name}` }, 'created the HMAC key Secret for drift detection');
    return key;
  } catch (err) {
    if ((err as { code?: number }).code === 409) return hmacKey(core, config, log); // another replica won the race
    if (isKubeNotFound(err)) throw new Error(`the operator namespace ${namespace} does not exist (--operator-namespace / VSYNC_OPERATOR_NAMESPACE)`);
    throw err;
  }
}

function listen(server: Server, address: string): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')) || '0.0.0.0', Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as { address: string; port: number };
      resolve(`${a.address}:${a.port}`);
    });
  });
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(argv, env, inClusterNamespace());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vault-sync-operator: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ level: config.logLevel });
  const clock = systemClock;
  const kc = new PooledKubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);

  const metrics = new OperatorMetrics({ clock, log: log.child({ component: 'metrics' }) });
  const onWrite = (verb: 'create' | 'patch' | 'apply' | 'delete', resource: string) => metrics.recordKubeWrite(verb, resource);

  // Cluster-wide, one watch per resource; restricted to namespaces, one per resource and namespace (the
  // chart's namespaces mode grants only Roles there).
  const namespaces = config.watchNamespaces?.split(',');
  const watch = <T extends KubeObject>(what: string, path: (ns?: string) => string, extra: { labelSelector?: string; metadataOnly?: boolean } = {}): WatchCache<T> =>
    namespaces
      ? new NamespacedWatches<T>(namespaces, (ns) => new ListWatch<T>({ kc, path: path(ns), ...extra, log: log.child({ watch: what, namespace: ns }) }))
      : new ListWatch<T>({ kc, path: path(), ...extra, log: log.child({ watch: what }) });
  const crPath = (plural: string) => (ns?: string) => `/apis/${GROUP}/${VERSION}/${ns ? `namespaces/${ns}/` : ''}${plural}`;
  const vaultSecrets = watch<VaultSecretObject>('vaultsecrets', crPath(VAULTSECRET_PLURAL));
  const vaultConnections = watch<KubeObject>('vaultconnections', crPath(VAULTCONNECTION_PLURAL));
  const secretMeta = watch<KubeObject>('secrets', (ns) => `/api/v1/${ns ? `namespaces/${ns}/` : ''}secrets`, {
    labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`, metadataOnly: true,
  });
  const source = new VaultSecretSource({
    log: log.child({ component: 'vault' }),
    clock,
    config,
    connections: vaultConnections,
    core,
    tokens: new ServiceAccountTokens(core),
    onVaultRequest: (info) => metrics.recordVaultRequest(info),
    onTokenRenewal: (_identity, outcome) => metrics.recordTokenRenewal(outcome),
  });
  const reconciler = new VaultSecretReconciler({
    clock,
    log: log.child({ component: 'reconciler' }),
    vaultSecrets,
    secretMeta,
    secrets: new SecretStore(core, onWrite),
    objects: new CustomObjectStore(custom, onWrite),
    events: new KubeEventRecorder(core, clock, log.child({ component: 'events' }), onWrite),
    source,
    dynamic: source,
    restarter: new WorkloadRestarter(kc.makeApiClient(AppsV1Api), onWrite),
    onRotation: () => metrics.recordRotation(),
    onRevocation: (result) => metrics.recordRevocation(result),
    onRestart: (kind) => metrics.recordRolloutRestart(kind),
    onUntrackedLease: (cause) => metrics.recordUntrackedLeaseSuspicion(cause),
    leaseLimiter: new TokenBucket({ ratePerSecond: config.leaseRateLimit, burst: Math.max(1, Math.ceil(config.leaseRateLimit * 2)), clock }),
    hmacKey: await hmacKey(core, config, log),
    onSync: (o) => {
      metrics.recordSync(o);
      log.debug(o, o.result === 'unchanged' ? 'refresh found nothing new' : `sync ${o.result}`);
    },
  });
  const queue = new WorkQueue({
    clock,
    onDequeue: (_key, waitedMs, priority) => metrics.observeQueueWait(waitedMs, priority),
  });
  const controller = new VaultSecretController({
    log, queue, reconciler, vaultSecrets, vaultConnections, secretMeta, concurrency: config.concurrency,
    onReconciled: (ms, result) => metrics.observeReconcile(ms, result),
  });
  metrics.trackLeaseExpiries(function* () {
    for (const vs of vaultSecrets.list()) for (const lease of vs.status?.leases ?? []) yield Date.parse(lease.expiresAt);
  });
  const gauges = setInterval(() => {
    metrics.setQueueDepth(queue.depth());
    metrics.setInFlight(queue.inFlight());
  }, 1000);
  gauges.unref();

  let shuttingDown = false;
  const health = createServer((req, res) => {
    const ok = req.url === '/healthz' ? !shuttingDown : req.url === '/readyz' ? controller.synced && !shuttingDown : undefined;
    res.statusCode = ok === undefined ? 404 : ok ? 200 : 503;
    res.end(ok === undefined ? 'not found\n' : ok ? 'ok\n' : 'not ready\n');
  });
  const healthAddress = await listen(health, config.healthAddress);
  const metricsServer = await metrics.serve(config.metricsAddress);

  await controller.start();
  const identity = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  let elector: LeaderElector | undefined;
  if (config.leaderElect) {
    elector = new LeaderElector({
      kc,
      namespace: config.operatorNamespace,
      name: config.leaderElectionLease,
      identity,
      leaseDurationMs: parseDuration(config.leaseDuration),
      renewDeadlineMs: parseDuration(config.renewDeadline),
      retryPeriodMs: parseDuration(config.retryPeriod),
      clock,
      log: log.child({ component: 'leader-election' }),
      onStartedLeading: () => {
        log.info({ identity }, 'leading: reconciling');
        metrics.setLeader(true);
        controller.startProcessing();
      },
      // A replica that lost the Lease may have work in flight that another now repeats; exiting is the
      // only way to be sure it stops writing (controller-runtime does the same).
      onStoppedLeading: () => {
        metrics.setLeader(false);
        log.error({ identity }, 'lost leadership; exiting so that only the new leader writes');
        process.exit(1);
      },
      onNewLeader: (leader) => log.info({ leader }, 'leader observed'),
    });
    elector.start();
  } else {
    metrics.setLeader(true);
    controller.startProcessing();
  }
  log.info({ health: healthAddress, metrics: metricsServer.address, identity, namespaces: namespaces ?? 'all', leaderElection: config.leaderElect, concurrency: config.concurrency, operatorNamespace: config.operatorNamespace }, 'operator started');

  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, 'shutting down: finishing in-flight work');
    await controller.stop();
    await elector?.release().catch((err: unknown) => log.warn({ err: String(err) }, 'could not release the leader Lease'));
    await source.close();
    clearInterval(gauges);
    health.close();
    await metricsServer.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2), process.env).catch((err: unknown) => {
    process.stderr.write(`vault-sync-operator failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
