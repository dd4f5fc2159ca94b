// The benchmark's latency chart as a reader of the report gets it: a valid PNG (signature, chunks, CRCs,
// scanlines) of the requested size, with every series that has data drawn in its colour, for awkward data
// too; and the nearest-rank percentiles its legend and the harness use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, inflateSync } from 'node:zlib';
import {
  formatMs, latencyChartHeight, renderLatencyChart, SERIES_COLOURS, type LatencyPanel, type Rgb,
} from '../../bench/chart.ts';
import { median, percentile } from '../../bench/stats.ts';

interface Image {
  width: number;
  height: number;
  /** RGB rows without filter bytes. */
  pixels: Buffer;
}

function decodePng(png: Buffer): Image {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const chunks: { type: string; data: Buffer }[] = [];
  let off = 8;
  while (off < png.length) {
    assert.ok(off + 12 <= png.length, 'truncated chunk');
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    assert.equal(png.readUInt32BE(off + 8 + len), crc32(png.subarray(off + 4, off + 8 + len)), `CRC of ${type}`);
    chunks.push({ type, data });
    off += 12 + len;
  }
  assert.equal(off, png.length, 'no bytes after the last chunk');
  const types = chunks.map((c) => c.type);
  assert.equal(types[0], 'IHDR');
  assert.equal(types.at(-1), 'IEND');
  assert.ok(types.slice(1, -1).every((t) => t === 'IDAT') && types.length >= 3, `chunk order ${types.join(',')}`);
  const ihdr = chunks[0]!.data;
  assert.equal(ihdr.length, 13);
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  assert.deepEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0], 'RGB, 8 bits, deflate, filter method 0, no interlace');
  assert.equal(chunks.at(-1)!.data.length, 0);
  const raw = inflateSync(Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data)));
  assert.equal(raw.length, height * (1 + width * 3), 'inflated size = height * (1 + width * 3)');
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (1 + width * 3)], 0, `filter byte of scanline ${y}`);
    raw.copy(pixels, y * width * 3, y * (1 + width * 3) + 1, (y + 1) * (1 + width * 3));
  }
  return { width, height, pixels };
}

function countColour(img: Image, [r, g, b]: Rgb): number {
  let n = 0;
  for (let i = 0; i < img.pixels.length; i += 3) {
    if (img.pixels[i] === r && img.pixels[i + 1] === g && img.pixels[i + 2] === b) n++;
  }
  return n;
}

/** Deterministic log-normal-ish latencies around `medianMs`. */
function latencies(n: number, medianMs: number, seed = 1): number[] {
  let s = seed;
  const rnd = (): number => ((s = (s * 48271) % 2147483647) / 2147483647);
  return Array.from({ length: n }, () => medianMs * Math.exp(0.6 * (rnd() + rnd() + rnd() - 1.5)));
}

const SAMPLE: LatencyPanel[] = [
  { title: 'static-1000', series: [
    { label: 'floor', latenciesMs: latencies(1000, 40, 1) },
    { label: 'vault-sync-operator', latenciesMs: latencies(1000, 1200, 2) },
    { label: 'vso', latenciesMs: latencies(1000, 9000, 3) },
  ] },
  { title: 'dynamic-1000', series: [
    { label: 'floor', latenciesMs: latencies(1000, 120, 4) },
    { label: 'vault-sync-operator', latenciesMs: latencies(1000, 2500, 5) },
  ] },
];

test('renders a valid PNG, 1000 px wide and one 360 px panel per scenario by default', () => {
  const img = decodePng(renderLatencyChart(SAMPLE));
  assert.equal(img.width, 1000);
  assert.equal(img.height, 2 * 360);
  assert.equal(img.height, latencyChartHeight(SAMPLE));
  const white = countColour(img, [255, 255, 255]);
  assert.ok(white > img.width * img.height * 0.6, 'mostly white background');
  assert.ok(white < img.width * img.height, 'something is drawn');
});

test('honours width, panel height and title', () => {
  const titled = decodePng(renderLatencyChart(SAMPLE, { width: 640, panelHeight: 300, title: 'benchmark' }));
  assert.equal(titled.width, 640);
  assert.ok(titled.height > 600, 'the title adds a band above the panels');
  assert.equal(titled.height, latencyChartHeight(SAMPLE, { panelHeight: 300, title: 'benchmark' }));
  const plain = decodePng(renderLatencyChart(SAMPLE, { width: 640, panelHeight: 300 }));
  assert.equal(plain.height, 600);
  assert.throws(() => renderLatencyChart(SAMPLE, { width: 10 }), RangeError);
  assert.throws(() => renderLatencyChart(SAMPLE, { panelHeight: 12.5 }), RangeError);
});

test('every series with data appears in its own colour', () => {
  const img = decodePng(renderLatencyChart(SAMPLE));
  const counts = SERIES_COLOURS.slice(0, 3).map((c) => countColour(img, c));
  // Well beyond the legend swatch (3 x 29 px): the curves themselves are drawn.
  for (const [i, n] of counts.entries()) assert.ok(n > 400, `series ${i} colour has ${n} pixels`);
  assert.equal(new Set(SERIES_COLOURS.map((c) => c.join())).size, SERIES_COLOURS.length, 'colours are distinct');
  assert.equal(countColour(img, SERIES_COLOURS[3]!), 0, 'no colour without a series');
});

test('a series with no data only gets its legend swatch', () => {
  const swatchOnly = decodePng(renderLatencyChart([{ title: 't', series: [{ label: 'empty', latenciesMs: [] }] }]));
  const withData = decodePng(renderLatencyChart([{ title: 't', series: [{ label: 'one', latenciesMs: [1, 10, 100, 1000] }] }]));
  assert.ok(countColour(swatchOnly, SERIES_COLOURS[0]!) < countColour(withData, SERIES_COLOURS[0]!));
});

test('edge cases render without throwing and draw what data there is', () => {
  const cases: Record<string, LatencyPanel[]> = {
    'no panels': [],
    'no series': [{ title: 'nothing', series: [] }],
    'empty series': [{ title: 'empty', series: [{ label: 'a', latenciesMs: [] }, { label: 'b', latenciesMs: [] }] }],
    'one value': [{ title: 'one', series: [{ label: 'a', latenciesMs: [250] }] }],
    'all equal': [{ title: 'equal', series: [{ label: 'a', latenciesMs: Array(500).fill(1000) }] }],
    'zeros': [{ title: 'zeros', series: [{ label: 'a', latenciesMs: [0, 0, 0, 0.5, 2] }] }],
    'only zeros': [{ title: 'only zeros', series: [{ label: 'a', latenciesMs: [0, 0] }] }],
    'power of ten': [{ title: 'decade', series: [{ label: 'a', latenciesMs: [100, 100] }] }],
    'wide range': [{ title: 'wide', series: [
      { label: 'fast', latenciesMs: [1, 2, 3, 5] }, { label: 'slow', latenciesMs: [60_000, 300_000, 600_000] },
    ] }],
    'junk values': [{ title: 'junk', series: [{ label: 'a', latenciesMs: [NaN, Infinity, -5, 12, 30] }] }],
    'huge values': [{ title: 'huge', series: [{ label: 'a', latenciesMs: [1, 1e300] }] }],
    'many series': [{ title: 'many', series: Array.from({ length: 9 }, (_, i) => ({ label: `s${i}`, latenciesMs: latencies(50, 10 ** (i % 5), i + 1) })) }],
    'long text': [{ title: 'x'.repeat(400), series: [{ label: 'y'.repeat(400), latenciesMs: [5] }] }],
    'unknown characters': [{ title: 'é ✓ \t ×', series: [{ label: 'ünïcode', latenciesMs: [5] }] }],
  };
  for (const [name, panels] of Object.entries(cases)) {
    const img = decodePng(renderLatencyChart(panels, { title: name }));
    assert.equal(img.width, 1000, name);
    assert.equal(img.height, latencyChartHeight(panels, { title: name }), name);
    assert.ok(img.height >= 44 + 360, name);
    const withData = panels.flatMap((p) => p.series).filter((s) => s.latenciesMs.some(Number.isFinite));
    if (withData.length > 0) assert.ok(countColour(img, SERIES_COLOURS[0]!) > 0, `${name}: first series drawn`);
  }
  // Nine series do not fit 360 px with an 80 px plot: the panel grows rather than squeezing the plot away.
  assert.ok(latencyChartHeight(cases['many series']!) > 360);
});

test('percentile is nearest-rank', () => {
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.ok(Number.isNaN(median([])));
  assert.equal(percentile([7], 0), 7);
  assert.equal(percentile([7], 99), 7);
  const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
  assert.equal(percentile(ten, 0), 1);
  assert.equal(percentile(ten, 10), 1);
  assert.equal(percentile(ten, 11), 2);
  assert.equal(percentile(ten, 50), 5);
  assert.equal(percentile(ten, 90), 9);
  assert.equal(percentile(ten, 99), 10);
  assert.equal(percentile(ten, 100), 10);
  assert.deepEqual(ten, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 'input is not sorted in place');
  // p99 of 1000 values is the 990th smallest.
  const thousand = Array.from({ length: 1000 }, (_, i) => 1000 - i);
  assert.equal(percentile(thousand, 99), 990);
  assert.equal(percentile([3, 1, 2], 50), 2);
  assert.equal(median([4, 1, 3, 2]), 2);
  assert.equal(median([5, 1, 3]), 3);
});

test('legend latencies read naturally', () => {
  assert.equal(formatMs(0), '0 ms');
  assert.equal(formatMs(3.456), '3.46 ms');
  assert.equal(formatMs(850), '850 ms');
  assert.equal(formatMs(1234), '1.23 s');
  assert.equal(formatMs(1200), '1.2 s');
  assert.equal(formatMs(612_000), '612 s');
  assert.equal(formatMs(3_600_000), '3600 s');
  assert.equal(formatMs(NaN), '-');
});
