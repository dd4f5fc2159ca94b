import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OperatorMetrics } from '../../src/metrics/metrics.ts';

test('every metric the Grafana dashboard queries is one the operator exports', async () => {
  const dashboard = JSON.parse(readFileSync(new URL('../../charts/vault-sync-operator/dashboards/vault-sync-operator.json', import.meta.url), 'utf8'));
  const queried = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) for (const m of String(target.expr).matchAll(/\b(vaultsync_[a-z_]+|process_[a-z_]+)/g)) queried.add(m[1]!);
  }
  assert.ok(queried.size >= 12, `the dashboard queries ${queried.size} metrics`);
  const exported = await new OperatorMetrics().metrics();
  const names = new Set([...exported.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  for (const name of queried) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(names.has(base), `${name} is not exported by the operator`);
  }
});
