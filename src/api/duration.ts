// Go-style durations ("30s", "5m", "1h30m", "250ms"), the form Kubernetes users know from other operators.
// The pattern is a subset of what Go's time.ParseDuration accepts, so every string that passes it also
// passes the API server's CEL `duration()`, and parseDuration agrees with both.

/** Units accepted in durations, longest first so "ms" is not read as "m" followed by "s". */
const UNIT_MS: Record<string, number> = { h: 3_600_000, ms: 1, m: 60_000, s: 1_000 };

/** One or more number+unit pairs; decimals allowed ("1.5h"), as in Go. */
/** No backslashes, so it can be embedded in a CEL string literal as is. */
export const DURATION_PATTERN = '^([0-9]+([.][0-9]+)?(h|ms|m|s))+$';
const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /([0-9]+(?:\.[0-9]+)?)(h|ms|m|s)/g;

/** Longest duration string accepted; keeps the API server's CEL cost estimate for `duration(self)` small. */
export const DURATION_MAX_LENGTH = 32;

export const DURATION_HINT = 'a duration such as 30s, 5m, 1h or 1h30m (units h, m, s, ms)';

/** Milliseconds in a Go-style duration; throws on anything else, naming the accepted form. */
export function parseDuration(text: string): number {
  if (text.length > DURATION_MAX_LENGTH || !DURATION_RE.test(text)) {
    throw new Error(`invalid duration ${JSON.stringify(text)}: expected ${DURATION_HINT}`);
  }
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(PART_RE)) ms += Number(amount) * UNIT_MS[unit!]!;
  return Math.round(ms);
}

/** parseDuration without the throw, for validators. */
export function isDuration(text: string): boolean {
  return text.length <= DURATION_MAX_LENGTH && DURATION_RE.test(text);
}
