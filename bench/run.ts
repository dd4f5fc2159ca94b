// The benchmark command (`npm run bench`): every scenario × subject × run on a fresh local stack, medians
// over the runs, and a JSON result, a Markdown table and a PNG of the latency distributions.
//
//   node bench/run.ts [--scenarios static-1000,static-10000,dynamic-1000] [--subjects floor,vault-sync-operator,vso]
//                     [--runs 3] [--runs-large 1] [--concurrency 64] [--out bench/results/DATE]
// --runs-large applies to scenarios of 10,000 objects, whose runs take tens of minutes for the slowest subject.
import { cpus, totalmem, release } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { measureRun, type RunResult, type Scenario } from './harness.ts';
import { SUBJECTS, type SubjectName } from './subjects.ts';
import { markdownReport, type BenchResult, type SubjectSummary } from './report.ts';
import { renderLatencyChart } from './chart.ts';
import { median } from './stats.ts';

const SCENARIOS: Record<string, Scenario> = {
  'static-1000': { id: 'static-1000', kind: 'static', n: 1000 },
  'static-10000': { id: 'static-10000', kind: 'static', n: 10_000 },
  'dynamic-1000': { id: 'dynamic-1000', kind: 'dynamic', n: 1000 },
  // Quick checks of the harness itself; not part of the default set.
  'static-100': { id: 'static-100', kind: 'static', n: 100 },
  'dynamic-100': { id: 'dynamic-100', kind: 'dynamic', n: 100 },
};
const DEFAULT_SCENARIOS = ['static-1000', 'static-10000', 'dynamic-1000'];

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: node bench/run.ts [--scenarios ${Object.keys(SCENARIOS).join(',')}] ` +
    `[--subjects ${Object.keys(SUBJECTS).join(',')}] [--runs N] [--concurrency N] [--out DIR]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string', default: DEFAULT_SCENARIOS.join(',') },
      subjects: { type: 'string', default: Object.keys(SUBJECTS).join(',') },
      runs: { type: 'string', default: '3' },
      'runs-large': { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '64' },
      out: { type: 'string', default: join('bench', 'results', new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')) },
    },
  });
  const scenarios = values.scenarios.split(',').map((s) => SCENARIOS[s] ?? usage(`unknown scenario "${s}"`));
  const subjects = values.subjects.split(',').map((s) => SUBJECTS[s as SubjectName] ?? usage(`unknown subject "${s}"`));
  const runs = Number(values.runs);
  const runsLarge = Number(values['runs-large']);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(runs) || runs < 1) usage('--runs must be a positive integer');
  if (!Number.isInteger(runsLarge) || runsLarge < 1) usage('--runs-large must be a positive integer');
  if (!Number.isInteger(concurrency) || concurrency < 1) usage('--concurrency must be a positive integer');
  const out = values.out;
  mkdirSync(out, { recursive: true });
  const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

  const result: BenchResult = {
    startedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version },
    settings: { runs: {}, concurrency, refreshSeconds: {}, dynamicTtlSeconds: {}, probes: 20 },
    scenarios: [],
  };
  for (const scenario of scenarios) {
    // The refresh wave has to come after the initial sync for the probes to measure it.
    const refreshSeconds = scenario.n >= 10_000 ? 180 : scenario.n > 100 ? 60 : 15;
    const dynamicTtlSeconds = scenario.n > 100 ? 60 : 30;
    const scenarioRuns = scenario.n >= 10_000 ? runsLarge : runs;
    if (scenario.kind === 'static') result.settings.refreshSeconds[scenario.id] = refreshSeconds;
    else result.settings.dynamicTtlSeconds[scenario.id] = dynamicTtlSeconds;
    result.settings.runs[scenario.id] = scenarioRuns;
    const perSubject = new Map<string, RunResult[]>();
    // Subjects alternate within each round, so a drift of the machine over time hits all of them.
    for (let r = 1; r <= scenarioRuns; r++) {
      for (const subject of subjects) {
        const workDir = join(out, 'runs', `${scenario.id}-${subject.name}-${r}`);
        mkdirSync(workDir, { recursive: true });
        log(`${scenario.id} run ${r}/${scenarioRuns}: ${subject.name}`);
        const res = await measureRun({
          scenario, subject, concurrency, refreshSeconds, dynamicTtlSeconds,
          probes: result.settings.probes, timeoutSeconds: Math.max(600, scenario.n * 0.2), workDir, log,
        });
        perSubject.set(subject.name, [...(perSubject.get(subject.name) ?? []), res]);
        writeFileSync(join(out, 'result.json'), JSON.stringify({ ...result, partial: Object.fromEntries(perSubject) }, null, 1));
      }
    }
    result.scenarios.push({
      id: scenario.id, kind: scenario.kind, n: scenario.n,
      subjects: [...perSubject.entries()].map(([name, results]) => summarize(name, results)),
    });
    writeFileSync(join(out, 'result.json'), JSON.stringify(result, null, 1));
  }

  writeFileSync(join(out, 'result.json'), JSON.stringify(result, null, 1));
  writeFileSync(join(out, 'report.md'), markdownReport(result));
  writeFileSync(join(out, 'latency.png'), renderLatencyChart(result.scenarios.map((s) => ({
    title: `${s.id}: create -> Ready latency (median run)`,
    series: s.subjects.map((sub) => ({ label: sub.subject, latenciesMs: sub.medianRun.latenciesMs })),
  })), { title: 'vault-sync-operator benchmark' }));
  log(`results in ${out}: result.json, report.md, latency.png`);
  process.stdout.write(markdownReport(result));
}

/** Medians over runs; the run whose total time is the median keeps its full latency distribution. */
function summarize(subject: string, runs: RunResult[]): SubjectSummary {
  const byTime = [...runs].sort((a, b) => (a.allReadySeconds ?? a.allSecretsSeconds) - (b.allReadySeconds ?? b.allSecretsSeconds));
  const medianRun = byTime[Math.floor((byTime.length - 1) / 2)]!;
  const m = (f: (r: RunResult) => number | undefined) => {
    const values = runs.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v));
    return values.length ? median(values) : undefined;
  };
  return {
    subject, runs: runs.length, medianRun,
    allSecretsSeconds: m((r) => r.allSecretsSeconds)!,
    allReadySeconds: m((r) => r.allReadySeconds),
    completed: Math.min(...runs.map((r) => r.completed)),
    p50Ms: m((r) => r.p50Ms)!, p99Ms: m((r) => r.p99Ms)!,
    probeP99Ms: m((r) => r.probe?.p99Ms),
    peakRssMiB: m((r) => r.process?.peakRssMiB), steadyRssMiB: m((r) => r.process?.steadyRssMiB),
    syncCpuSeconds: m((r) => r.process?.syncCpuSeconds),
    initialKubePerObject: m((r) => r.requests.initial.kube.total / r.n),
    initialVaultPerObject: m((r) => r.requests.initial.vault.total / r.n),
    steadyKubePerObject: m((r) => r.requests.steady && r.requests.steady.kube.total / r.requests.steady.objects),
    steadyKubeWrites: m((r) => r.requests.steady?.kube.writes),
    steadyVaultPerObject: m((r) => r.requests.steady && r.requests.steady.vault.total / r.requests.steady.objects),
    renewalPeakPerSecond: m((r) => r.renewals?.peakPerSecond),
    renewalMeanPerSecond: m((r) => r.renewals?.meanPerSecond),
  };
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
