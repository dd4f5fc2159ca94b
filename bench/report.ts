// The benchmark's Markdown report: one table per scenario with the subjects side by side, the ratios the
// targets are stated in, request breakdowns, and a check of each target.
import type { RunResult } from './harness.ts';

export interface SubjectSummary {
  subject: string;
  runs: number;
  medianRun: RunResult;
  completed: number;
  allSecretsSeconds: number;
  allReadySeconds?: number;
  p50Ms: number;
  p99Ms: number;
  probeP99Ms?: number;
  peakRssMiB?: number;
  steadyRssMiB?: number;
  syncCpuSeconds?: number;
  initialKubePerObject?: number;
  initialVaultPerObject?: number;
  steadyKubePerObject?: number;
  steadyKubeWrites?: number;
  steadyVaultPerObject?: number;
  renewalPeakPerSecond?: number;
  renewalMeanPerSecond?: number;
}

export interface BenchResult {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string };
  /** Per scenario id where it varies. */
  settings: { runs: Record<string, number>; concurrency: number; refreshSeconds: Record<string, number>; dynamicTtlSeconds: Record<string, number>; probes: number };
  scenarios: { id: string; kind: string; n: number; subjects: SubjectSummary[] }[];
}

const OURS = 'vault-sync-operator';

/** Time until the subject's objects were all usable: Ready for ours, the Secret for the others. */
export function completionSeconds(s: SubjectSummary): number {
  return s.allReadySeconds ?? s.allSecretsSeconds;
}

function num(v: number | undefined, digits = 1, unit = ''): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return `${v.toFixed(digits)}${unit}`;
}

function ms(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

export function markdownReport(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(`# Benchmark ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC`, '');
  lines.push(`Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}, Node ${r.machine.node}. ` +
    `Each run on a fresh local stack (etcd, kube-apiserver, kube-controller-manager, OpenBao, PostgreSQL) on the same machine; ` +
    `runs per subject: ${Object.entries(r.settings.runs).map(([id, n]) => `${id} ${n}`).join(', ')}; medians shown; objects created ${r.settings.concurrency} at a time. ` +
    'vso = HashiCorp Vault Secrets Operator v0.10.0 with its default settings.', '');
  for (const s of r.scenarios) {
    const subjects = s.subjects;
    const floor = subjects.find((x) => x.subject === 'floor');
    const ours = subjects.find((x) => x.subject === OURS);
    lines.push(`## ${s.id} (${s.n} ${s.kind} secrets)`, '');
    lines.push(s.kind === 'static'
      ? `KV v2 secrets, refresh interval ${r.settings.refreshSeconds[s.id]} s; probes are created through the first refresh wave, requests are counted over the next full interval.`
      : `PostgreSQL credentials from Vault's database engine, role TTL ${r.settings.dynamicTtlSeconds[s.id]} s; renewals observed for 1.2 TTL after the initial sync.`, '');
    lines.push(`| | ${subjects.map((x) => x.subject).join(' | ')} |`, `|---|${subjects.map(() => '---:').join('|')}|`);
    const row = (label: string, f: (x: SubjectSummary) => string) => lines.push(`| ${label} | ${subjects.map(f).join(' | ')} |`);
    row('objects done (worst run)', (x) => `${x.completed}/${s.n}`);
    row('all Secrets exist', (x) => num(x.allSecretsSeconds, 1, ' s'));
    row('all VaultSecrets Ready', (x) => num(x.allReadySeconds, 1, ' s'));
    row('create → ready p50', (x) => ms(x.p50Ms));
    row('create → ready p99', (x) => ms(x.p99Ms));
    if (s.kind === 'static') row(`new object during the refresh wave, p99 (${r.settings.probes} probes)`, (x) => ms(x.probeP99Ms));
    if (floor) row('time / floor', (x) => num(completionSeconds(x) / floor.allSecretsSeconds, 2, '×'));
    if (ours) row(`time / ${OURS}`, (x) => num(completionSeconds(x) / completionSeconds(ours), 2, '×'));
    row('Kubernetes requests per object, initial sync', (x) => num(x.initialKubePerObject, 2));
    row('Vault requests per object, initial sync', (x) => num(x.initialVaultPerObject, 2));
    const steadyLabel = s.kind === 'static' ? 'refresh with nothing changed' : 'renewal period (1.2 TTL)';
    row(`Kubernetes requests per object, ${steadyLabel}`, (x) => num(x.steadyKubePerObject, 2));
    row(`Kubernetes writes, ${steadyLabel}`, (x) => num(x.steadyKubeWrites, 0));
    row(`Vault requests per object, ${steadyLabel}`, (x) => num(x.steadyVaultPerObject, 2));
    if (s.kind === 'dynamic') {
      row('lease renewals: peak / mean requests per second', (x) => x.renewalPeakPerSecond === undefined ? '–'
        : `${num(x.renewalPeakPerSecond, 0)} / ${num(x.renewalMeanPerSecond, 1)}`);
    }
    row('operator peak RSS', (x) => num(x.peakRssMiB, 0, ' MiB'));
    row('operator steady RSS (end of run)', (x) => num(x.steadyRssMiB, 0, ' MiB'));
    row('operator CPU seconds, initial sync', (x) => num(x.syncCpuSeconds, 1));
    lines.push('');
    lines.push('<details><summary>Requests by kind (median run)</summary>', '');
    for (const x of subjects) {
      const req = x.medianRun.requests;
      const fmt = (byKey: Record<string, number>) => Object.entries(byKey).slice(0, 8).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none';
      lines.push(`- **${x.subject}** initial: Kubernetes ${fmt(req.initial.kube.byKey)}; Vault ${fmt(req.initial.vault.byKey)}`);
      if (req.steady) lines.push(`  - ${steadyLabel} (${req.steady.windowSeconds.toFixed(0)} s, ${req.steady.objects} objects): Kubernetes ${fmt(req.steady.kube.byKey)}; Vault ${fmt(req.steady.vault.byKey)}`);
    }
    lines.push('', '</details>', '');
  }
  lines.push(...targets(r), '');
  return lines.join('\n');
}

/** The targets from the benchmark issue, each marked met or missed with the figure behind it. */
function targets(r: BenchResult): string[] {
  const out = ['## Targets', ''];
  const s10k = r.scenarios.find((s) => s.id === 'static-10000');
  const find = (s: typeof s10k, name: string) => s?.subjects.find((x) => x.subject === name);
  const mark = (ok: boolean | undefined) => ok === undefined ? 'not measured' : ok ? 'met' : 'MISSED';
  const ours10k = find(s10k, OURS);
  const floor10k = find(s10k, 'floor');
  const vso10k = find(s10k, 'vso');
  const vsFloor = ours10k && floor10k ? completionSeconds(ours10k) / floor10k.allSecretsSeconds : undefined;
  const vsVso = ours10k && vso10k ? completionSeconds(vso10k) / completionSeconds(ours10k) : undefined;
  out.push(`- 10,000 static, initial sync ≤ 1.25× the floor: ${mark(vsFloor === undefined ? undefined : vsFloor <= 1.25)} (${num(vsFloor, 2, '×')})`);
  out.push(`- 10,000 static, ≥ 3× faster than VSO: ${mark(vsVso === undefined ? undefined : vsVso >= 3)} (${num(vsVso, 2, '×')}${vso10k && vso10k.completed < 10_000 ? `; VSO finished ${vso10k.completed}` : ''})`);
  out.push(`- operator RSS at 10,000 VaultSecrets ≤ 150 MiB: ${mark(ours10k?.peakRssMiB === undefined ? undefined : ours10k.peakRssMiB <= 150)} (peak ${num(ours10k?.peakRssMiB, 0, ' MiB')}, steady ${num(ours10k?.steadyRssMiB, 0, ' MiB')})`);
  const probes = r.scenarios.filter((s) => s.kind === 'static').map((s) => find(s, OURS)?.probeP99Ms).filter((v): v is number => v !== undefined);
  const worstProbe = probes.length ? Math.max(...probes) : undefined;
  out.push(`- a new VaultSecret during a refresh wave Ready in ≤ 1 s at p99: ${mark(worstProbe === undefined ? undefined : worstProbe <= 1000)} (worst scenario p99 ${ms(worstProbe)})`);
  const writes = r.scenarios.filter((s) => s.kind === 'static').map((s) => find(s, OURS)?.steadyKubeWrites).filter((v): v is number => v !== undefined);
  const maxWrites = writes.length ? Math.max(...writes) : undefined;
  out.push(`- zero Kubernetes writes on a refresh where nothing changed: ${mark(maxWrites === undefined ? undefined : maxWrites === 0)} (${num(maxWrites, 0)} writes)`);
  return out;
}
