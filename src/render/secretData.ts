// From Vault's answer to the bytes of a Secret: pick keys, merge sources, render templates, and fingerprint
// the result. All pure; the reconciler does the I/O.
import { createHmac } from 'node:crypto';

export type SourceData = Record<string, unknown>;

/** Vault values are JSON; a Secret holds bytes. Strings stay as they are, everything else becomes JSON. */
export function toBytes(value: unknown): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Keeps only `keys` (when given). Missing requested keys are reported, not silently dropped. */
export function selectKeys(data: SourceData, keys: string[] | undefined): { data: SourceData; missing: string[] } {
  if (!keys || keys.length === 0) return { data, missing: [] };
  const picked: SourceData = {};
  const missing: string[] = [];
  for (const key of keys) {
    if (Object.hasOwn(data, key)) picked[key] = data[key];
    else missing.push(key);
  }
  return { data: picked, missing };
}

/** Merges several sources; later ones win on conflicting keys (the documented precedence of kvMerge). */
export function mergeSources(sources: SourceData[]): SourceData {
  return Object.assign({}, ...sources) as SourceData;
}

/** Secret data keys must match [-._a-zA-Z0-9]+. */
export function invalidSecretKeys(keys: string[]): string[] {
  return keys.filter((k) => !/^[-._a-zA-Z0-9]+$/.test(k) || k.length > 253);
}

/**
 * A keyed HMAC of the rendered data, for drift detection without storing values: order-independent,
 * and unambiguous about key/value boundaries (lengths are hashed in).
 */
export function dataHmac(key: Buffer, data: Record<string, Buffer>): string {
  const mac = createHmac('sha256', key);
  for (const name of Object.keys(data).sort()) {
    const value = data[name]!;
    mac.update(`${Buffer.byteLength(name)}:${name}:${value.length}:`);
    mac.update(value);
  }
  return `sha256:${mac.digest('hex')}`;
}

export function sameData(a: Record<string, Buffer>, b: Record<string, Buffer>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => b[k] !== undefined && a[k]!.equals(b[k]!));
}
