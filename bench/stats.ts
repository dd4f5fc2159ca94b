// Order statistics for the benchmark: nearest-rank percentiles and the median.

/** Nearest rank: the smallest value such that at least p% of the values are ≤ it. Empty → NaN. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}
