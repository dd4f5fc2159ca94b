// Operator configuration from flags and environment, validated once at start. An invalid setting stops the
// process with a message naming the setting and what it accepts.
import { z } from 'zod';
import { parseDuration } from './api/index.ts';

const duration = z.string().refine((s) => {
  try {
    parseDuration(s);
    return true;
  } catch {
    return false;
  }
}, 'a duration such as 30s, 5m or 1h');

export const ConfigSchema = z.object({
  operatorNamespace: z.string().min(1).describe('namespace the operator runs in (HMAC key Secret, leader Lease)'),
  vaultAddress: z.url({ protocol: /^https?$/ }).optional().describe('default Vault address for VaultSecrets without a connectionRef'),
  vaultCaFile: z.string().optional().describe('PEM CA bundle for the default Vault connection'),
  vaultTlsServerName: z.string().optional(),
  vaultNamespace: z.string().optional().describe('default Vault Enterprise namespace'),
  vaultTimeout: duration.default('30s'),
  concurrency: z.coerce.number().int().min(1).max(256).default(32),
  leaseRateLimit: z.coerce.number().min(0.1).max(10_000).default(50).describe('lease operations (issue, renew, revoke) per second, bursts of twice that'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  hmacKeySecret: z.string().min(1).default('vault-sync-operator-hmac'),
  healthAddress: z.string().regex(/^[^:]*:\d+$/, 'host:port').default('0.0.0.0:8081'),
  metricsAddress: z.string().regex(/^[^:]*:\d+$/, 'host:port').default('0.0.0.0:8080'),
  watchNamespaces: z.string().regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(,[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'comma-separated namespace names')
    .optional().describe('serve only these namespaces (restricted mode); default all'),
  leaderElect: z.enum(['true', 'false']).default('true').transform((v) => v === 'true').describe('run leader election (only the leader reconciles)'),
  leaderElectionLease: z.string().min(1).default('vault-sync-operator-leader'),
  leaseDuration: duration.default('15s'),
  renewDeadline: duration.default('10s'),
  retryPeriod: duration.default('2s'),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Flag name (kebab-case) and environment variable for each setting. */
const SOURCES: Record<keyof Config, { flag: string; env: string }> = {
  operatorNamespace: { flag: 'operator-namespace', env: 'VSYNC_OPERATOR_NAMESPACE' },
  vaultAddress: { flag: 'vault-address', env: 'VSYNC_VAULT_ADDRESS' },
  vaultCaFile: { flag: 'vault-ca-file', env: 'VSYNC_VAULT_CA_FILE' },
  vaultTlsServerName: { flag: 'vault-tls-server-name', env: 'VSYNC_VAULT_TLS_SERVER_NAME' },
  vaultNamespace: { flag: 'vault-namespace', env: 'VSYNC_VAULT_NAMESPACE' },
  vaultTimeout: { flag: 'vault-timeout', env: 'VSYNC_VAULT_TIMEOUT' },
  concurrency: { flag: 'concurrency', env: 'VSYNC_CONCURRENCY' },
  leaseRateLimit: { flag: 'lease-rate-limit', env: 'VSYNC_LEASE_RATE_LIMIT' },
  logLevel: { flag: 'log-level', env: 'VSYNC_LOG_LEVEL' },
  hmacKeySecret: { flag: 'hmac-key-secret', env: 'VSYNC_HMAC_KEY_SECRET' },
  healthAddress: { flag: 'health-address', env: 'VSYNC_HEALTH_ADDRESS' },
  metricsAddress: { flag: 'metrics-address', env: 'VSYNC_METRICS_ADDRESS' },
  watchNamespaces: { flag: 'watch-namespaces', env: 'VSYNC_WATCH_NAMESPACES' },
  leaderElect: { flag: 'leader-elect', env: 'VSYNC_LEADER_ELECT' },
  leaderElectionLease: { flag: 'leader-election-lease', env: 'VSYNC_LEADER_ELECTION_LEASE' },
  leaseDuration: { flag: 'lease-duration', env: 'VSYNC_LEASE_DURATION' },
  renewDeadline: { flag: 'renew-deadline', env: 'VSYNC_RENEW_DEADLINE' },
  retryPeriod: { flag: 'retry-period', env: 'VSYNC_RETRY_PERIOD' },
};

export class ConfigError extends Error {}

/** Flags win over environment variables; `inClusterNamespace` is read by the caller from the SA mount. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv, inClusterNamespace?: string): Config {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!m) throw new ConfigError(`unrecognised argument "${arg}": flags take the form --name=value (${Object.values(SOURCES).map((s) => `--${s.flag}`).join(', ')})`);
    if (!Object.values(SOURCES).some((s) => s.flag === m[1])) {
      throw new ConfigError(`unknown flag --${m[1]}; accepted: ${Object.values(SOURCES).map((s) => `--${s.flag}`).join(', ')}`);
    }
    flags.set(m[1]!, m[2]!);
  }
  const raw: Record<string, unknown> = {};
  for (const [key, source] of Object.entries(SOURCES)) {
    const value = flags.get(source.flag) ?? env[source.env];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  raw.operatorNamespace ??= inClusterNamespace ?? 'vault-sync-system';
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0]) as keyof Config;
      const source = SOURCES[key];
      return `--${source?.flag ?? key} / ${source?.env ?? key}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}
