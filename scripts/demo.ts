// The demo (`npm run demo`): on the local stack, install the CRDs, give the "demo" namespace its own Vault
// role, run the operator, apply examples/, and show the VaultSecrets syncing, then a change in Vault
// arriving in the Secret. Runs until Ctrl-C (or DEMO_SECONDS).
import { execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { AppsV1Api } from '@kubernetes/client-node';
import { DATABASE_MOUNT, KUBERNETES_AUTH_MOUNT, KV2_MOUNT, putDatabaseRole } from '../devstack/configure.ts';
import { VaultAdmin } from '../devstack/vaultAdmin.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;
const kubectl = env.KUBECTL_BIN ?? 'kubectl';
const say = (line: string) => process.stdout.write(`\n\x1b[1m== ${line}\x1b[0m\n`);

async function k(...args: string[]): Promise<string> {
  const { stdout } = await run(kubectl, args, { env });
  return stdout;
}

async function main(): Promise<void> {
  const vault = new VaultAdmin(env.VAULT_ADDR!, env.VAULT_TOKEN!);
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);

  say('installing the CRDs');
  process.stdout.write(await k('apply', '--server-side', '-f', `${root}crds/`));
  for (const ns of ['demo', 'vault-sync-system']) await core.createNamespace({ body: { metadata: { name: ns } } }).catch(() => undefined);

  say('Vault: the "demo" namespace may read secret/demo/* through role demo-app (Kubernetes auth)');
  await vault.putPolicy('demo-app', [
    `path "${KV2_MOUNT}/data/demo/*" { capabilities = ["read"] }`,
    `path "${DATABASE_MOUNT}/creds/demo-db" { capabilities = ["read"] }`,
    'path "sys/leases/renew" { capabilities = ["update"] }',
    'path "sys/leases/revoke" { capabilities = ["update"] }',
  ].join('\n'));
  await putDatabaseRole(vault, 'demo-db', { defaultTtl: '20s', maxTtl: '40s' });
  await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace: 'demo',
    body: { metadata: { name: 'app' }, spec: { selector: { matchLabels: { app: 'app' } }, template: { metadata: { labels: { app: 'app' } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } } } },
  }).catch(() => undefined);
  await vault.write(`auth/${KUBERNETES_AUTH_MOUNT}/role/demo-app`, {
    bound_service_account_names: ['default'], bound_service_account_namespaces: ['demo'], audience: 'vault', token_policies: ['demo-app'], token_ttl: '20m',
  });
  await vault.write(`${KV2_MOUNT}/data/demo/app-config`, { data: { LOG_LEVEL: 'info', FEATURE_X: 'on' } });
  await vault.write(`${KV2_MOUNT}/data/demo/database`, { data: { username: 'app', password: 'p@ss/word-1', host: 'db.demo.svc' } });

  say('starting the operator (node src/main.ts)');
  const operator = spawn(process.execPath, [`${root}src/main.ts`], {
    env: { ...env, VSYNC_VAULT_ADDRESS: env.VAULT_ADDR, VSYNC_OPERATOR_NAMESPACE: 'vault-sync-system', VSYNC_HEALTH_ADDRESS: '127.0.0.1:0', VSYNC_METRICS_ADDRESS: '127.0.0.1:0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = () => operator.kill('SIGTERM');
  process.on('exit', stop);

  say('applying examples/');
  for (const file of readdirSync(`${root}examples`).filter((f) => f.endsWith('.yaml')).sort()) {
    process.stdout.write(await k('apply', '-f', `${root}examples/${file}`));
  }
  const show = async () => {
    process.stdout.write(await k('get', 'vaultsecrets', '-n', 'demo'));
    for (const name of ['app-config', 'database-url', 'database-credentials']) {
      const json = await k('get', 'secret', name, '-n', 'demo', '-o', 'json').catch(() => '');
      if (!json) continue;
      const data = JSON.parse(json).data ?? {};
      const shown = Object.entries(data).map(([key, v]) => `${key}=${Buffer.from(String(v), 'base64').toString()}`).join('  ');
      process.stdout.write(`  secret/${name}: ${shown}\n`);
    }
  };
  await sleep(4000);
  say('synced (demo values, printed here only because this is a demo)');
  await show();

  // A consumer that logs in to PostgreSQL every 100 ms with whatever the Secret holds, as an app would.
  const consumer = { logins: 0, failures: 0, users: new Set<string>() };
  const consume = async () => {
    while (true) {
      const json = await k('get', 'secret', 'database-credentials', '-n', 'demo', '-o', 'json').catch(() => '');
      const data = json ? JSON.parse(json).data ?? {} : {};
      const user = data.username ? Buffer.from(data.username, 'base64').toString() : '';
      if (user) {
        const client = new pg.Client({ host: env.VSYNC_PG_HOST, port: Number(env.VSYNC_PG_PORT), database: env.VSYNC_PG_DATABASE, user, password: Buffer.from(data.password, 'base64').toString(), connectionTimeoutMillis: 3000 });
        try {
          await client.connect();
          consumer.logins++;
          consumer.users.add(user);
        } catch {
          consumer.failures++;
        } finally {
          await client.end().catch(() => undefined);
        }
      }
      await sleep(100);
    }
  };
  void consume();

  say('changing LOG_LEVEL in Vault; the 15s refresh brings it into the Secret');
  await vault.write(`${KV2_MOUNT}/data/demo/app-config`, { data: { LOG_LEVEL: 'debug', FEATURE_X: 'on' } });
  const until = Date.now() + Number(env.DEMO_SECONDS ?? 3600) * 1000;
  while (Date.now() < until) {
    await sleep(5000);
    say(new Date().toISOString());
    await show();
    const restartedAt = JSON.parse(await k('get', 'deployment', 'app', '-n', 'demo', '-o', 'json')).spec.template.metadata.annotations?.['vaultsync.dev/restartedAt'];
    process.stdout.write(`  consumer: ${consumer.logins} PostgreSQL logins with the Secret's credentials, ${consumer.failures} failed, ${consumer.users.size} distinct users (rotations: ${Math.max(0, consumer.users.size - 1)}); deployment/app last restarted ${restartedAt ?? 'never'}\n`);
  }
  stop();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
