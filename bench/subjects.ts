// The three things the benchmark measures with one harness: the floor (the harness creating the Secrets
// itself), vault-sync-operator and HashiCorp's Vault Secrets Operator. Each subject knows how to start,
// what object to create for secret number i, and how to stop; the harness does all the measuring.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { DATABASE_MOUNT, KUBERNETES_AUTH_MOUNT, KV2_MOUNT } from '../devstack/configure.ts';

const run = promisify(execFile);
export type SubjectName = 'floor' | 'vault-sync-operator' | 'vso';
export type SecretKind = 'static' | 'dynamic';

export interface SubjectContext {
  kc: KubeConfig;
  /** The harness's own (admin) kubeconfig file, for kubectl. */
  adminKubeconfig: string;
  /** A kubeconfig for the operator under test: a ServiceAccount of its own, so the audit log tells its requests apart. */
  subjectKubeconfig: string;
  vaultAddr: string;
  namespaces: string[];
  vaultRole: (ns: string) => string;
  refreshSeconds: number;
  logFile: string;
}

export interface Subject {
  name: SubjectName;
  /** Installs CRDs and per-namespace configuration, starts the process; resolves when it serves. */
  start(ctx: SubjectContext): Promise<ChildProcess | undefined>;
  /** Creates the object that makes Secret `name` appear in `ns`. */
  create(ctx: SubjectContext, kind: SecretKind, ns: string, name: string, vaultPath: string): Promise<void>;
  /** Whether the subject reports readiness beyond the Secret's existence (our Ready condition). */
  reportsReady: boolean;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function kubectlApply(ctx: SubjectContext, path: string): Promise<void> {
  const kubectl = process.env.KUBECTL_BIN;
  if (!kubectl) throw new Error('KUBECTL_BIN is not set: run the benchmark with `npm run bench`, which fetches kubectl');
  await run(kubectl, ['apply', '--server-side', '--force-conflicts', '-f', path], { env: { ...process.env, KUBECONFIG: ctx.adminKubeconfig } });
}

function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, ready: RegExp, what: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const log = createWriteStream(logFile, { flags: 'a' });
    const onData = (d: Buffer) => {
      log.write(d);
      if (output.length < 1_000_000) output += d.toString();
      if (ready.test(output)) {
        output = '';
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready; log: ${logFile}`)));
    setTimeout(() => reject(new Error(`${what} was not ready within 60 s; log: ${logFile}`)), 60_000).unref();
  });
}

export const floor: Subject = {
  name: 'floor',
  reportsReady: false,
  async start() {
    return undefined;
  },
  async create(ctx, _kind, ns, name) {
    await ctx.kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name }, type: 'Opaque', stringData: { username: name, password: 'benchmark-floor' } },
    });
  },
};

export const vaultSyncOperator: Subject = {
  name: 'vault-sync-operator',
  reportsReady: true,
  async start(ctx) {
    await kubectlApply(ctx, join(ROOT, 'crds'));
    await waitEstablished(ctx, ['vaultsecrets.vaultsync.dev', 'vaultconnections.vaultsync.dev']);
    await createNamespace(ctx, 'vault-sync-system');
    const imageEnv = imageRuntimeEnv();
    // The build the container image runs (dist/, from `npm run build`), not type stripping of src/.
    return spawnLogged(process.execPath, [process.env.BENCH_OPERATOR_ENTRY ?? join(ROOT, 'dist/main.js')], {
      PATH: process.env.PATH, HOME: process.env.HOME,
      KUBECONFIG: ctx.subjectKubeconfig,
      VSYNC_VAULT_ADDRESS: ctx.vaultAddr,
      VSYNC_OPERATOR_NAMESPACE: 'vault-sync-system',
      VSYNC_LOG_LEVEL: 'info',
      VSYNC_LEADER_ELECT: 'false', // VSO runs with --leader-elect=false too
      VSYNC_HEALTH_ADDRESS: '127.0.0.1:0',
      VSYNC_METRICS_ADDRESS: '127.0.0.1:0',
      ...imageEnv,
      // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile our operator during a benchmark run.
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: `${imageEnv.NODE_OPTIONS ?? ''} ${process.env.BENCH_NODE_OPTIONS}`.trim() } : {}),
      // Tuning experiments; the published figures use the defaults.
      ...(process.env.VSYNC_CONCURRENCY ? { VSYNC_CONCURRENCY: process.env.VSYNC_CONCURRENCY } : {}),
    }, ctx.logFile, /"msg":"operator started"/, 'vault-sync-operator');
  },
  async create(ctx, kind, ns, name, vaultPath) {
    const source = kind === 'static'
      ? { kv: { mount: KV2_MOUNT, path: vaultPath } }
      : { database: { mount: DATABASE_MOUNT, role: 'bench' } };
    await ctx.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'vaultsync.dev', version: 'v1alpha1', namespace: ns, plural: 'vaultsecrets',
      body: {
        apiVersion: 'vaultsync.dev/v1alpha1', kind: 'VaultSecret', metadata: { name },
        spec: {
          vault: { auth: { kubernetes: { role: ctx.vaultRole(ns) } } },
          source,
          ...(kind === 'static' ? { refresh: { interval: `${ctx.refreshSeconds}s` } } : {}),
        },
      },
    });
  },
};

/**
 * The environment the container image gives the operator (ENV lines of the Dockerfile's last stage:
 * V8 and allocator settings among them), so the benchmark measures the process users run.
 */
export function imageRuntimeEnv(dockerfile = join(ROOT, 'Dockerfile')): Record<string, string> {
  const stages = readFileSync(dockerfile, 'utf8').split(/^FROM /m);
  const env: Record<string, string> = {};
  for (const m of stages.at(-1)!.matchAll(/^ENV\s+(\w+)=("[^"]*"|\S+)/gm)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  return env;
}

const VSO_GROUP = 'secrets.hashicorp.com';

export const vso: Subject = {
  name: 'vso',
  reportsReady: false,
  async start(ctx) {
    const bin = process.env.VSO_BIN;
    if (!bin) throw new Error('VSO_BIN is not set: `bash scripts/components.sh ensure vso` builds it');
    const crds = vsoCrdDir();
    await kubectlApply(ctx, crds);
    await waitEstablished(ctx, readdirSync(crds).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/^secrets\.hashicorp\.com_(.*)\.yaml$/, `$1.${VSO_GROUP}`)));
    await createNamespace(ctx, 'vault-secrets-operator-system');
    const custom = ctx.kc.makeApiClient(CustomObjectsApi);
    for (const ns of ctx.namespaces) {
      await custom.createNamespacedCustomObject({
        group: VSO_GROUP, version: 'v1beta1', namespace: ns, plural: 'vaultconnections',
        body: { apiVersion: `${VSO_GROUP}/v1beta1`, kind: 'VaultConnection', metadata: { name: 'bench' }, spec: { address: ctx.vaultAddr } },
      });
      await custom.createNamespacedCustomObject({
        group: VSO_GROUP, version: 'v1beta1', namespace: ns, plural: 'vaultauths',
        body: {
          apiVersion: `${VSO_GROUP}/v1beta1`, kind: 'VaultAuth', metadata: { name: 'bench' },
          spec: {
            vaultConnectionRef: 'bench', method: 'kubernetes', mount: KUBERNETES_AUTH_MOUNT,
            kubernetes: { role: ctx.vaultRole(ns), serviceAccount: 'default', audiences: ['vault'] },
          },
        },
      });
    }
    return spawnLogged(bin, ['--leader-elect=false', '--metrics-bind-address=127.0.0.1:0', '--health-probe-bind-address=127.0.0.1:0'], {
      PATH: process.env.PATH, HOME: process.env.HOME,
      KUBECONFIG: ctx.subjectKubeconfig,
      OPERATOR_NAMESPACE: 'vault-secrets-operator-system',
    }, ctx.logFile, /Starting workers/, 'vault-secrets-operator');
  },
  async create(ctx, kind, ns, name, vaultPath) {
    const custom = ctx.kc.makeApiClient(CustomObjectsApi);
    if (kind === 'static') {
      await custom.createNamespacedCustomObject({
        group: VSO_GROUP, version: 'v1beta1', namespace: ns, plural: 'vaultstaticsecrets',
        body: {
          apiVersion: `${VSO_GROUP}/v1beta1`, kind: 'VaultStaticSecret', metadata: { name },
          spec: {
            vaultAuthRef: 'bench', mount: KV2_MOUNT, type: 'kv-v2', path: vaultPath,
            refreshAfter: `${ctx.refreshSeconds}s`, destination: { name, create: true },
          },
        },
      });
    } else {
      await custom.createNamespacedCustomObject({
        group: VSO_GROUP, version: 'v1beta1', namespace: ns, plural: 'vaultdynamicsecrets',
        body: {
          apiVersion: `${VSO_GROUP}/v1beta1`, kind: 'VaultDynamicSecret', metadata: { name },
          spec: { vaultAuthRef: 'bench', mount: DATABASE_MOUNT, path: 'creds/bench', destination: { name, create: true } },
        },
      });
    }
  },
};

/** VSO's CRDs, from the module cache where building it put the module (VSO_CRD_DIR overrides). */
function vsoCrdDir(): string {
  if (process.env.VSO_CRD_DIR) return process.env.VSO_CRD_DIR;
  throw new Error('VSO_CRD_DIR is not set: `npm run bench` sets it to chart/crds of the VSO module in the Go module cache');
}

async function createNamespace(ctx: SubjectContext, name: string): Promise<void> {
  await ctx.kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } }).catch((e: { code?: number }) => {
    if (e.code !== 409) throw e;
  });
}

async function waitEstablished(ctx: SubjectContext, names: string[]): Promise<void> {
  const api = ctx.kc.makeApiClient(ApiextensionsV1Api);
  for (const name of names) {
    for (let i = 0; ; i++) {
      const crd = await api.readCustomResourceDefinition({ name }).catch(() => undefined);
      if (crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${name} not established`);
      await sleep(100);
    }
  }
}

export const SUBJECTS: Record<SubjectName, Subject> = { floor, 'vault-sync-operator': vaultSyncOperator, vso };
