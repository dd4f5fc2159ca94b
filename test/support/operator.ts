// Runs the operator as users run it: the same entry point the container image runs (src/main.ts), as a
// separate process against the real API server and Vault. Its output is kept for assertions (no secret
// may ever appear in it).
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { eventually, kubeClients, stackEnv } from './stack.ts';

export interface RunningOperator {
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  readonly process: ChildProcess;
}

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export async function startOperator(opts: { env?: Record<string, string>; args?: string[]; namespace?: string } = {}): Promise<RunningOperator> {
  const env = stackEnv();
  const operatorNamespace = opts.namespace ?? 'vault-sync-system';
  await kubeClients().core.createNamespace({ body: { metadata: { name: operatorNamespace } } }).catch((e: { code?: number }) => {
    if (e.code !== 409) throw e;
  });
  let output = '';
  const child = spawn(process.execPath, [MAIN, ...(opts.args ?? [])], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: env.KUBECONFIG,
      VSYNC_VAULT_ADDRESS: env.VAULT_ADDR,
      VSYNC_OPERATOR_NAMESPACE: operatorNamespace,
      VSYNC_LOG_LEVEL: 'debug',
      VSYNC_HEALTH_ADDRESS: '127.0.0.1:0',
      VSYNC_METRICS_ADDRESS: '127.0.0.1:0',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // VSYNC_OPERATOR_LOG=FILE keeps the operator's output for debugging a failed test.
  const logFile = process.env.VSYNC_OPERATOR_LOG;
  const keep = (d: Buffer) => {
    output += d.toString();
    if (logFile) appendFileSync(logFile, d);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  // Ready once the informers have synced (the operator logs it).
  const deadline = Date.now() + 30_000;
  while (!/"msg":"operator started"/.test(output)) {
    if (child.exitCode !== null) throw new Error(`operator exited with ${child.exitCode} before starting:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`operator did not start within 30 s:\n${output}`);
    }
    await sleep(100);
  }
  return {
    process: child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The operator's metrics in Prometheus text format, read from its /metrics endpoint as Prometheus would. */
export async function scrape(op: RunningOperator): Promise<string> {
  const m = /"metrics":"([^"]+)"/.exec(op.output());
  if (!m) throw new Error('the operator did not log its metrics address');
  const res = await fetch(`http://${m[1]}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
}

/** One series' value: `labels` is the exact label set as exposed (e.g. `{result="revoked"}`), or '' for none. */
export function sample(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const [series, value] = line.split(' ');
    if (series === `${name}${labels}` || (labels === '' && series === name)) return Number(value);
  }
  return undefined;
}

/** The sum over a metric's labelled series whose line matches `labelFilter`. */
export function sumOf(text: string, name: string, labelFilter: RegExp = /.*/): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && labelFilter.test(line)) total += Number(line.split(' ').at(-1));
  }
  return total;
}

/** Resolves once the operator reports that it holds the leader Lease. */
export async function waitForLeader(op: RunningOperator, timeoutMs = 15_000): Promise<void> {
  await eventually('the operator to lead', async () => (sample(await scrape(op), 'vaultsync_leader') === 1 ? true : undefined), timeoutMs, 200);
}
