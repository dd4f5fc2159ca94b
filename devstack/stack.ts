// The local stack: etcd, kube-apiserver and kube-controller-manager, a Vault or OpenBao dev server and a
// private PostgreSQL cluster, all as child processes on 127.0.0.1 with free ports and a temporary directory
// per run. Anything the caller already has (KUBECONFIG, VAULT_ADDR + VAULT_TOKEN, VSYNC_PG_*) is used instead.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Agent, fetch } from 'undici';
import { ManagedProcess, freePort, run } from './process.ts';
import { makeControlPlanePki } from './pki.ts';
import { configureKubeForVault, configureVault } from './configure.ts';
import { VaultAdmin } from './vaultAdmin.ts';

export type VaultFlavor = 'openbao' | 'vault';

/** What tests and the demo need to reach the stack; also written as an env file. */
export interface StackEnv {
  KUBECONFIG: string;
  VAULT_ADDR: string;
  VAULT_TOKEN: string;
  VSYNC_VAULT_FLAVOR: VaultFlavor;
  VSYNC_PG_HOST: string;
  VSYNC_PG_PORT: string;
  VSYNC_PG_ADMIN_USER: string;
  VSYNC_PG_ADMIN_PASSWORD: string;
  VSYNC_PG_DATABASE: string;
  VSYNC_STACK_DIR: string;
}

export interface Stack {
  env: StackEnv;
  stop(): Promise<void>;
}

function required(name: string, hint: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: ${hint}`);
  if (!existsSync(value)) throw new Error(`${name}=${value} does not exist: ${hint}`);
  return value;
}

const BUILD_HINT = 'run `bash scripts/components.sh ensure` (builds or fetches it and caches it), or set the variable to your own binary';

export function vaultFlavorFromEnv(): VaultFlavor {
  const flavor = process.env.VSYNC_VAULT_FLAVOR ?? 'openbao';
  if (flavor !== 'openbao' && flavor !== 'vault') {
    throw new Error(`VSYNC_VAULT_FLAVOR must be "openbao" or "vault", not "${flavor}"`);
  }
  return flavor;
}

async function httpOk(url: string, dispatcher?: Agent, headers?: Record<string, string>): Promise<boolean> {
  const res = await fetch(url, { dispatcher, headers, signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.ok;
}

export interface StackOptions {
  log?: (line: string) => void;
  /**
   * Audit logs for request counting (benchmarks): the API server writes one JSON line per request to
   * <dir>/logs/kube-audit.log and Vault to <dir>/logs/vault-audit.log. Off for tests: it costs CPU.
   */
  audit?: boolean;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[devstack] ${line}\n`));
  const dir = mkdtempSync(join(tmpdir(), 'vsync-stack-'));
  chmodSync(dir, 0o755);
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const processes: ManagedProcess[] = [];
  const killAll = () => processes.forEach((p) => p.killNow());
  process.on('exit', killAll);

  const stop = async () => {
    process.off('exit', killAll);
    for (const p of [...processes].reverse()) await p.stop();
    if (!process.env.VSYNC_KEEP_STACK) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir} (VSYNC_KEEP_STACK)`);
  };

  try {
    const flavor = vaultFlavorFromEnv();
    const started = Date.now();

    // --- Kubernetes -----------------------------------------------------------------------------------
    let kubeconfig = process.env.KUBECONFIG;
    if (kubeconfig) {
      log(`using the existing cluster from KUBECONFIG=${kubeconfig}`);
    } else {
      kubeconfig = await startControlPlane(dir, logs, processes, log, opts.audit ?? false);
    }

    // --- PostgreSQL -----------------------------------------------------------------------------------
    let pg: Pick<StackEnv, 'VSYNC_PG_HOST' | 'VSYNC_PG_PORT' | 'VSYNC_PG_ADMIN_USER' | 'VSYNC_PG_ADMIN_PASSWORD' | 'VSYNC_PG_DATABASE'>;
    if (process.env.VSYNC_PG_HOST) {
      log(`using the existing PostgreSQL at ${process.env.VSYNC_PG_HOST}:${process.env.VSYNC_PG_PORT ?? 5432}`);
      pg = {
        VSYNC_PG_HOST: process.env.VSYNC_PG_HOST,
        VSYNC_PG_PORT: process.env.VSYNC_PG_PORT ?? '5432',
        VSYNC_PG_ADMIN_USER: process.env.VSYNC_PG_ADMIN_USER ?? 'postgres',
        VSYNC_PG_ADMIN_PASSWORD: process.env.VSYNC_PG_ADMIN_PASSWORD ?? '',
        VSYNC_PG_DATABASE: process.env.VSYNC_PG_DATABASE ?? 'postgres',
      };
    } else {
      pg = await startPostgres(dir, processes, log);
    }

    // --- Vault or OpenBao -------------------------------------------------------------------------------
    let vaultAddr = process.env.VAULT_ADDR;
    let vaultToken = process.env.VAULT_TOKEN;
    if (vaultAddr && vaultToken) {
      log(`using the existing ${flavor} at VAULT_ADDR=${vaultAddr}`);
    } else {
      ({ vaultAddr, vaultToken } = await startVaultDev(flavor, logs, processes, log, opts.audit ?? false));
    }

    const env: StackEnv = {
      KUBECONFIG: kubeconfig,
      VAULT_ADDR: vaultAddr,
      VAULT_TOKEN: vaultToken,
      VSYNC_VAULT_FLAVOR: flavor,
      ...pg,
      VSYNC_STACK_DIR: dir,
    };
    const reviewer = await configureKubeForVault(env);
    await configureVault(env, reviewer);
    writeFileSync(join(dir, 'env'), Object.entries(env).map(([k, v]) => `export ${k}='${v}'`).join('\n') + '\n', { mode: 0o600 });
    log(`stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`);
    return { env, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

async function startControlPlane(dir: string, logs: string, processes: ManagedProcess[], log: (l: string) => void, audit: boolean): Promise<string> {
  const etcdBin = required('ETCD_BIN', BUILD_HINT);
  const apiserverBin = required('KUBE_APISERVER_BIN', BUILD_HINT);
  const kcmBin = required('KUBE_CONTROLLER_MANAGER_BIN', BUILD_HINT);
  const pki = await makeControlPlanePki(dir);

  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  const etcd = new ManagedProcess({
    name: 'etcd', command: etcdBin, logFile: join(logs, 'etcd.log'),
    args: ['--name=devstack', `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=devstack=http://127.0.0.1:${etcdPeer}`, '--unsafe-no-fsync=true', '--log-level=warn'],
  });
  processes.push(etcd);
  await etcd.waitReady(() => httpOk(`${etcdUrl}/health`), 30_000);
  log(`etcd ready on ${etcdUrl}`);

  const adminToken = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},devstack-admin,devstack-admin,"system:masters"\n`, { mode: 0o600 });
  const server = `https://127.0.0.1:${apiPort}`;
  const auditArgs: string[] = [];
  if (audit) {
    // One line per request, written when it is received (watches included), without bodies.
    const policy = join(dir, 'audit-policy.json');
    writeFileSync(policy, JSON.stringify({
      apiVersion: 'audit.k8s.io/v1', kind: 'Policy',
      omitStages: ['ResponseStarted', 'ResponseComplete', 'Panic'],
      rules: [{ level: 'Metadata' }],
    }));
    auditArgs.push(`--audit-policy-file=${policy}`, `--audit-log-path=${join(logs, 'kube-audit.log')}`,
      '--audit-log-format=json', '--audit-log-maxsize=0');
  }
  const apiserver = new ManagedProcess({
    name: 'kube-apiserver', command: apiserverBin, logFile: join(logs, 'kube-apiserver.log'),
    args: [`--etcd-servers=${etcdUrl}`, '--bind-address=127.0.0.1', `--secure-port=${apiPort}`,
      // Loopback cannot be advertised in the kubernetes Service endpoints; nothing here dials it anyway.
      '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none',
      `--cert-dir=${dir}`, `--tls-cert-file=${pki.servingCert}`, `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`, `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC', `--service-account-issuer=${server}`,
      `--service-account-key-file=${pki.saPublicKey}`, `--service-account-signing-key-file=${pki.saPrivateKey}`,
      '--service-cluster-ip-range=10.0.0.0/24', '--allow-privileged=true',
      // No kubelet runs pods here, so the ServiceAccount admission plugin adds nothing but mount errors.
      '--disable-admission-plugins=ServiceAccount', '--v=1', ...auditArgs],
  });
  processes.push(apiserver);
  const ca = readFileSync(pki.caCert, 'utf8');
  const agent = new Agent({ connect: { ca } });
  await apiserver.waitReady(() => httpOk(`${server}/readyz`, agent, { authorization: `Bearer ${adminToken}` }), 120_000);
  log(`kube-apiserver ready on ${server}`);

  const kubeconfig = join(dir, 'admin.kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'devstack',
    clusters: [{ name: 'devstack', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
    users: [{ name: 'devstack-admin', user: { token: adminToken } }],
    contexts: [{ name: 'devstack', context: { cluster: 'devstack', user: 'devstack-admin', namespace: 'default' } }],
  }, null, 2), { mode: 0o600 });

  const kcm = new ManagedProcess({
    name: 'kube-controller-manager', command: kcmBin, logFile: join(logs, 'kube-controller-manager.log'),
    args: [`--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`,
      `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
      '--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller',
      `--service-account-private-key-file=${pki.saPrivateKey}`, `--root-ca-file=${pki.caCert}`,
      '--use-service-account-credentials=false', `--cert-dir=${join(dir, 'kcm-certs')}`, '--v=1'],
  });
  processes.push(kcm);
  await kcm.waitReady(async () => /Started garbage collector|Starting garbage collector controller|garbage-collector-controller/i.test(kcm.logTail(400)), 60_000);
  log('kube-controller-manager running (garbage collector, namespace and serviceaccount controllers)');
  await agent.close();
  return kubeconfig;
}

async function startPostgres(dir: string, processes: ManagedProcess[], log: (l: string) => void) {
  const binDir = process.env.PG_BIN_DIR;
  if (!binDir || !existsSync(join(binDir, 'postgres'))) {
    throw new Error(`PostgreSQL server binaries not found (PG_BIN_DIR=${binDir ?? ''}): ${BUILD_HINT}; on Debian \`apt-get install postgresql\``);
  }
  const data = join(dir, 'pgdata');
  const sockets = join(dir, 'pgsock');
  mkdirSync(sockets);
  const password = randomBytes(18).toString('hex');
  const pwfile = join(dir, 'pgpass');
  writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  // initdb refuses to run as root: as root, run PostgreSQL as the Debian package's postgres user.
  let ids: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    ids = { uid, gid };
    for (const p of [sockets, pwfile]) chownSync(p, uid, gid);
    mkdirSync(data);
    chownSync(data, uid, gid);
  }
  const user = 'vaultadmin';
  await run(join(binDir, 'initdb'), ['-D', data, '-U', user, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256',
    '--auth-local=trust', '--no-sync', '-E', 'UTF8'], { ...ids, cwd: dir });
  const port = await freePort();
  const postgres = new ManagedProcess({
    name: 'postgres', command: join(binDir, 'postgres'), logFile: join(dir, 'logs', 'postgres.log'), ...ids,
    args: ['-D', data, '-c', 'listen_addresses=127.0.0.1', '-p', String(port), '-k', sockets, '-c', 'fsync=off',
      '-c', 'max_connections=300'],
  });
  processes.push(postgres);
  const psql = join(binDir, 'psql');
  await postgres.waitReady(async () => {
    await run(psql, ['-h', sockets, '-p', String(port), '-U', user, '-d', 'postgres', '-Atc', 'select 1']);
    return true;
  }, 60_000);
  log(`postgresql ready on 127.0.0.1:${port}`);
  return {
    VSYNC_PG_HOST: '127.0.0.1',
    VSYNC_PG_PORT: String(port),
    VSYNC_PG_ADMIN_USER: user,
    VSYNC_PG_ADMIN_PASSWORD: password,
    VSYNC_PG_DATABASE: 'postgres',
  };
}

async function startVaultDev(flavor: VaultFlavor, logs: string, processes: ManagedProcess[], log: (l: string) => void, audit: boolean) {
  const bin = flavor === 'vault' ? required('VAULT_BIN', BUILD_HINT) : required('BAO_BIN', BUILD_HINT);
  const port = await freePort();
  const vaultToken = randomBytes(18).toString('hex');
  const vaultAddr = `http://127.0.0.1:${port}`;
  const args = ['server', '-dev', `-dev-root-token-id=${vaultToken}`, `-dev-listen-address=127.0.0.1:${port}`];
  const auditLog = join(logs, 'vault-audit.log');
  if (audit && flavor === 'openbao') {
    // OpenBao refuses audit devices created through the API; it takes them from its configuration.
    const config = join(logs, 'openbao-audit.hcl');
    writeFileSync(config, `audit "file" "bench" {\n  options {\n    file_path = "${auditLog}"\n  }\n}\n`);
    args.push(`-config=${config}`);
  }
  const vault = new ManagedProcess({
    name: flavor, command: bin, logFile: join(logs, `${flavor}.log`),
    args,
    // The dev server would otherwise write the root token to ~/.vault-token.
    env: { ...process.env, HOME: logs, VAULT_ADDR: vaultAddr, BAO_ADDR: vaultAddr },
  });
  processes.push(vault);
  await vault.waitReady(() => httpOk(`${vaultAddr}/v1/sys/health`), 60_000);
  if (audit && flavor === 'vault') {
    await new VaultAdmin(vaultAddr, vaultToken).write('sys/audit/bench', { type: 'file', options: { file_path: auditLog } });
  }
  log(`${flavor} dev server ready on ${vaultAddr}`);
  return { vaultAddr, vaultToken };
}
