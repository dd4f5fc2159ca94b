import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DURATION_PATTERN, isDuration, parseDuration } from '../../src/api/index.ts';

test('parseDuration reads Go-style durations', () => {
  const cases: [string, number][] = [
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1h0m10s', 3_610_000],
    ['90m', 5_400_000],
    ['250ms', 250],
    ['1m500ms', 60_500],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['0s', 0],
    ['30m1h', 5_400_000], // any order, as in Go
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

test('parseDuration rejects anything else, saying what it accepts', () => {
  for (const text of ['', '1', '5 m', '5min', '1d', '-1s', '1h 30m', 'm', '.5s', '1.s', '1H', `${'1'.repeat(40)}s`]) {
    assert.throws(() => parseDuration(text), /expected a duration such as 30s, 5m, 1h or 1h30m/, JSON.stringify(text));
    assert.equal(isDuration(text), false, JSON.stringify(text));
  }
});

test('the CRD pattern and parseDuration agree', () => {
  const pattern = new RegExp(DURATION_PATTERN);
  for (const text of ['1h30m', '10s', '1.5h', '5 m', '1d', '250ms']) assert.equal(pattern.test(text), isDuration(text), text);
});
