// A small raster chart renderer for the benchmark report: one empirical CDF of create -> Ready latency per
// scenario, panels stacked vertically, written as a PNG with nothing but node:zlib. x is latency on a log10
// axis (whole decades, values clamped to >= 1 ms), y is the fraction of objects ready. Text uses the 5x7
// bitmap font below, drawn at 2x.
import { crc32, deflateSync } from 'node:zlib';
import { percentile } from './stats.ts';

export interface LatencySeries {
  label: string;
  latenciesMs: number[];
}

export interface LatencyPanel {
  title: string;
  series: LatencySeries[];
}

export interface LatencyChartOptions {
  /** Image width in pixels, 400..10000; default 1000. */
  width?: number;
  /** Height of each panel in pixels, 200..10000; default 360. A panel grows when its legend needs the room. */
  panelHeight?: number;
  /** Drawn centred above the panels. */
  title?: string;
}

export type Rgb = readonly [number, number, number];

/** Series colours (Okabe-Ito, colour-blind friendly, yellow left out for contrast on white). A label keeps
 * its colour in every panel: colours go to labels in order of first appearance. */
export const SERIES_COLOURS: readonly Rgb[] = [
  [0x00, 0x72, 0xb2], // blue
  [0xd5, 0x5e, 0x00], // vermillion
  [0x00, 0x9e, 0x73], // bluish green
  [0xcc, 0x79, 0xa7], // reddish purple
  [0xe6, 0x9f, 0x00], // orange
  [0x56, 0xb4, 0xe9], // sky blue
];

const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [0x22, 0x22, 0x22];
const MUTED: Rgb = [0x77, 0x77, 0x77];
const FRAME: Rgb = [0x55, 0x55, 0x55];
const GRID: Rgb = [0xdd, 0xdd, 0xdd];
const GRID_MINOR: Rgb = [0xf0, 0xf0, 0xf0];
const SEPARATOR: Rgb = [0xcc, 0xcc, 0xcc];

// ---------------------------------------------------------------------------------------------------------
// Font: 5 columns x 9 rows per glyph (rows 0-6 body, 7-8 descenders), 16 glyphs per band. The first line of a
// band names the glyphs (each centred over its 5 columns; an escaped quote or backslash shifts the rest of
// that line by one in the source only). Glyphs are spaced proportionally by their ink.

const FONT_BANDS: readonly (readonly string[])[] = [
  [
    '        !     "     #     $     %     &     \'     (     )     *     +     ,     -     .     /',
    '..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... ....#',
    '..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#',
    '..... ..#.. ..... ##### #.#.. ...#. #.#.. ..... ..#.. ..#.. #.#.# ..#.. ..... ..... ..... ...#.',
    '..... ..#.. ..... .#.#. .###. ..#.. .#... ..... ..#.. ..#.. .###. ##### ..... .###. ..... ..#..',
    '..... ..#.. ..... ##### ..#.# .#... #.#.# ..... ..#.. ..#.. #.#.# ..#.. ..... ..... ..... .#...',
    '..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. ..... ..... ..... #....',
    '..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... ..#.. ..... ..#.. #....',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... .....',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....',
  ],
  [
    '  0     1     2     3     4     5     6     7     8     9     :     ;     <     =     >     ?',
    '.###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.',
    '#...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...# ..... ..... ..#.. ..... ..#.. #...#',
    '#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...# ..#.. ..#.. .#... ##### ...#. ....#',
    '#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .#### ..... ..... #.... ..... ....# ...#.',
    '##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# ..... ..... .#... ##### ...#. ..#..',
    '#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. ..#.. ..#.. ..#.. ..... ..#.. .....',
    '.###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ..... ..#.. ...#. ..... .#... ..#..',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... ..... .....',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....',
  ],
  [
    '  @     A     B     C     D     E     F     G     H     I     J     K     L     M     N     O',
    '.###. .###. ####. .###. ####. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.',
    '#...# #...# #...# #...# #...# #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#',
    '#.### #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#',
    '#.#.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#',
    '#.### #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#',
    '#.... #...# #...# #...# #...# #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#',
    '.###. #...# ####. .###. ####. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....',
  ],
  [
    '  P     Q     R     S     T     U     V     W     X     Y     Z     [     \\     ]     ^     _',
    '####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. ..... .###. ..#.. .....',
    '#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... #.... ...#. .#.#. .....',
    '#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... .#... ...#. #...# .....',
    '####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....',
    '#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... ...#. ...#. ..... .....',
    '#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... ....# ...#. ..... .....',
    '#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. ..... .###. ..... .....',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... #####',
    '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....',
  ],
  [
    '  `     a     b     c     d     e     f     g     h     i     j     k     l     m     n     o',
    '.#... ..... #.... ..... ....# ..... ..##. ..... #.... ..#.. ...#. #.... .##.. ..... ..... .....',
    '..#.. ..... #.... ..... ....# ..... .#..# ..... #.... ..... ..... #.... ..#.. ..... ..... .....',
    '..... .###. ####. .###. .#### .###. .#... .#### #.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.',
    '..... ....# #...# #.... #...# #...# ###.. #...# ##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#',
    '..... .#### #...# #.... #...# ##### .#... #...# #...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#',
    '..... #...# #...# #...# #...# #.... .#... #...# #...# ..#.. ...#. #.#.. ..#.. #.#.# #...# #...#',
    '..... .#### ####. .###. .#### .###. .#... .#### #...# .###. ...#. #..#. .###. #.#.# #...# .###.',
    '..... ..... ..... ..... ..... ..... ..... ....# ..... ..... #..#. ..... ..... ..... ..... .....',
    '..... ..... ..... ..... ..... ..... ..... .###. ..... ..... .##.. ..... ..... ..... ..... .....',
  ],
  [
    '  p     q     r     s     t     u     v     w     x     y     z     {     |     }     ~     ×',
    '..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ...#. ..#.. .#... ..... .....',
    '..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. ..... #...#',
    '####. .#### #.##. .#### ###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#... .#.#.',
    '#...# #...# ##..# #.... .#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.# ..#..',
    '#...# #...# #.... .###. .#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#. .#.#.',
    '#...# #...# #.... ....# .#..# #..## .#.#. #.#.# .#.#. #...# .#... ..#.. ..#.. ..#.. ..... #...#',
    '####. .#### #.... ####. ..##. .##.# ..#.. .#.#. #...# .#### ##### ...#. ..#.. .#... ..... .....',
    '#.... ....# ..... ..... ..... ..... ..... ..... ..... ....# ..... ..... ..... ..... ..... .....',
    '#.... ....# ..... ..... ..... ..... ..... ..... ..... .###. ..... ..... ..... ..... ..... .....',
  ],
];

const GLYPH_COLS = 5;
const GLYPH_ROWS = 9;
/** Height of capitals and digits, in font pixels. */
const CAP_HEIGHT = 7;
const SPACE_ADVANCE = 3;

interface Glyph {
  /** One bitmask per row; bit 4 is the leftmost column. */
  rows: number[];
  /** First and last inked column. */
  left: number;
  right: number;
}

function parseFont(bands: readonly (readonly string[])[]): Map<string, Glyph> {
  const font = new Map<string, Glyph>();
  for (const band of bands) {
    const [names, ...rows] = band;
    if (names === undefined || rows.length !== GLYPH_ROWS) throw new Error('font band needs a name line and 9 rows');
    const count = (rows[0]!.length + 1) / (GLYPH_COLS + 1);
    for (let g = 0; g < count; g++) {
      const ch = names[g * (GLYPH_COLS + 1) + 2];
      if (ch === undefined) throw new Error(`font band is missing the name of glyph ${g}`);
      const bits = rows.map((row) => {
        const cells = row.slice(g * (GLYPH_COLS + 1), g * (GLYPH_COLS + 1) + GLYPH_COLS);
        if (!/^[.#]{5}$/.test(cells)) throw new Error(`font glyph ${JSON.stringify(ch)} has a bad row ${JSON.stringify(cells)}`);
        return [...cells].reduce((acc, c) => (acc << 1) | (c === '#' ? 1 : 0), 0);
      });
      const ink = bits.reduce((a, b) => a | b, 0);
      let left = 0;
      let right = GLYPH_COLS - 1;
      if (ink !== 0) {
        while (!(ink & (1 << (GLYPH_COLS - 1 - left)))) left++;
        while (!(ink & (1 << (GLYPH_COLS - 1 - right)))) right--;
      }
      font.set(ch, { rows: bits, left, right });
    }
  }
  return font;
}

const FONT = parseFont(FONT_BANDS);
const FALLBACK = FONT.get('?')!;

function glyph(ch: string): Glyph {
  return FONT.get(ch) ?? FALLBACK;
}

/** Advance of one character in font pixels, including the one-column gap after it. */
function advance(ch: string): number {
  if (ch === ' ' || ch === '\t') return SPACE_ADVANCE;
  const g = glyph(ch);
  return g.right - g.left + 2;
}

// ---------------------------------------------------------------------------------------------------------
// Canvas

class Canvas {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * 3).fill(255);
  }

  set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.pixels[i] = c[0];
    this.pixels[i + 1] = c[1];
    this.pixels[i + 2] = c[2];
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) this.set(i, j, c);
  }

  /** Bresenham with a square brush of `thickness` pixels; `dash` = [on, off] lengths in steps. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1, dash?: readonly [number, number]): void {
    x0 = Math.round(x0); y0 = Math.round(y0); x1 = Math.round(x1); y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    const lo = -Math.floor((thickness - 1) / 2);
    const hi = lo + thickness - 1;
    let err = dx + dy;
    for (let step = 0; ; step++) {
      if (!dash || step % (dash[0] + dash[1]) < dash[0]) {
        for (let j = lo; j <= hi; j++) for (let i = lo; i <= hi; i++) this.set(x0 + i, y0 + j, c);
      }
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) { err += dy; x0 += sx; }
      if (e2 <= dx) { err += dx; y0 += sy; }
    }
  }

  /** Draws `s` with its cap top at y; returns the width drawn. */
  text(x: number, y: number, s: string, c: Rgb, scale = 2, bold = false): number {
    let pen = Math.round(x);
    for (const ch of s) {
      if (ch !== ' ' && ch !== '\t') {
        const g = glyph(ch);
        for (let r = 0; r < GLYPH_ROWS; r++) {
          const bits = g.rows[r]!;
          for (let col = g.left; col <= g.right; col++) {
            if (!(bits & (1 << (GLYPH_COLS - 1 - col)))) continue;
            this.rect(pen + (col - g.left) * scale, Math.round(y) + r * scale, scale + (bold ? 1 : 0), scale, c);
          }
        }
      }
      pen += advance(ch) * scale;
    }
    return pen - Math.round(x);
  }
}

/** Width of `s` in pixels at `scale`, without the gap after the last character. */
function textWidth(s: string, scale = 2): number {
  let w = 0;
  for (const ch of s) w += advance(ch);
  return Math.max(0, w - 1) * scale;
}

/** Shortens `s` with ".." until it fits in `max` pixels. */
function fit(s: string, max: number, scale = 2): string {
  if (textWidth(s, scale) <= max) return s;
  const chars = [...s];
  while (chars.length > 0 && textWidth(chars.join('') + '..', scale) > max) chars.pop();
  return chars.join('') + '..';
}

// ---------------------------------------------------------------------------------------------------------
// PNG

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

/** RGB, 8 bits per channel, no interlace, filter 0 (None) on every scanline. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (rgb.length !== width * height * 3) throw new RangeError('pixel buffer does not match width x height x 3');
  const stride = width * 3;
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method
  ihdr[12] = 0; // no interlace
  return Buffer.concat([
    PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---------------------------------------------------------------------------------------------------------
// Chart

/** "850 ms", "1.23 s", "612 s": three significant digits at most. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const sig = (v: number): string => String(Number(v.toPrecision(3)));
  if (Math.abs(ms) < 1000) return `${sig(ms)} ms`;
  const s = ms / 1000;
  return Math.abs(s) >= 1000 ? `${Math.round(s)} s` : `${sig(s)} s`;
}

const TEXT_SCALE = 2;
const TEXT_HEIGHT = CAP_HEIGHT * TEXT_SCALE;
const MARGIN_LEFT = 72;
const MARGIN_RIGHT = 56;
const CHART_TITLE_HEIGHT = 44;
const PANEL_TITLE_HEIGHT = 44;
const X_LABELS_HEIGHT = 36;
const LEGEND_ROW = 24;
const PANEL_BOTTOM_PAD = 14;
const MIN_PLOT_HEIGHT = 80;
/** Data is drawn this far inside the frame, so that curves never hide under it. */
const INSET = 6;
const DEFAULT_WIDTH = 1000;
const DEFAULT_PANEL_HEIGHT = 360;

/** Height of one panel: `panelHeight`, or more when the legend would leave the plot under 80 pixels. */
function panelHeightFor(panel: LatencyPanel, panelHeight: number): number {
  const legend = Math.max(1, panel.series.length) * LEGEND_ROW;
  return Math.max(panelHeight, PANEL_TITLE_HEIGHT + MIN_PLOT_HEIGHT + X_LABELS_HEIGHT + legend + PANEL_BOTTOM_PAD);
}

/** Total image height for these panels and options (what renderLatencyChart produces). */
export function latencyChartHeight(panels: LatencyPanel[], opts: LatencyChartOptions = {}): number {
  const panelHeight = opts.panelHeight ?? DEFAULT_PANEL_HEIGHT;
  const list = panels.length ? panels : [EMPTY_PANEL];
  return (opts.title ? CHART_TITLE_HEIGHT : 0) + list.reduce((h, p) => h + panelHeightFor(p, panelHeight), 0);
}

const EMPTY_PANEL: LatencyPanel = { title: 'no scenarios', series: [] };

function checkSize(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min || v > 10_000) throw new RangeError(`${name} must be an integer in ${min}..10000, got ${v}`);
  return v;
}

/**
 * One panel per scenario, stacked vertically, each an empirical CDF: x = latency in ms on a log10 axis,
 * y = fraction of objects ready (0..1). Returns PNG bytes.
 */
export function renderLatencyChart(panels: LatencyPanel[], opts: LatencyChartOptions = {}): Buffer {
  const width = checkSize('width', opts.width ?? DEFAULT_WIDTH, 400);
  const panelHeight = checkSize('panelHeight', opts.panelHeight ?? DEFAULT_PANEL_HEIGHT, 200);
  const list = panels.length ? panels : [EMPTY_PANEL];
  const canvas = new Canvas(width, latencyChartHeight(list, opts));

  const colours = new Map<string, Rgb>();
  for (const p of list) {
    for (const s of p.series) {
      if (!colours.has(s.label)) colours.set(s.label, SERIES_COLOURS[colours.size % SERIES_COLOURS.length]!);
    }
  }

  let y = 0;
  if (opts.title) {
    const title = fit(opts.title, width - 20);
    canvas.text((width - textWidth(title)) / 2, 16, title, INK, TEXT_SCALE, true);
    y = CHART_TITLE_HEIGHT;
  }
  list.forEach((panel, i) => {
    const h = panelHeightFor(panel, panelHeight);
    if (i > 0 || opts.title) canvas.rect(12, y, width - 24, 1, SEPARATOR);
    drawPanel(canvas, panel, y, h, colours);
    y += h;
  });
  return encodePng(canvas.width, canvas.height, canvas.pixels);
}

interface Prepared {
  series: LatencySeries;
  colour: Rgb;
  /** Finite values, sorted, as measured (for the legend). */
  sorted: number[];
}

function drawPanel(canvas: Canvas, panel: LatencyPanel, top: number, height: number, colours: Map<string, Rgb>): void {
  const width = canvas.width;
  const left = MARGIN_LEFT;
  const right = width - MARGIN_RIGHT;
  const legendRows = Math.max(1, panel.series.length);
  const plotTop = top + PANEL_TITLE_HEIGHT;
  const plotBottom = top + height - PANEL_BOTTOM_PAD - legendRows * LEGEND_ROW - X_LABELS_HEIGHT;

  canvas.text(left, top + 16, fit(panel.title, right - left), INK, TEXT_SCALE);

  const prepared: Prepared[] = panel.series.map((s) => ({
    series: s,
    colour: colours.get(s.label)!,
    sorted: s.latenciesMs.filter(Number.isFinite).sort((a, b) => a - b),
  }));
  const all = prepared.flatMap((p) => p.sorted);
  const hasData = all.length > 0;

  // x range: whole decades around every value of the panel, at least one decade; 1 ms .. 10 s without data.
  let lo = 0;
  let hi = 4;
  if (hasData) {
    const min = Math.max(1, all.reduce((a, b) => Math.min(a, b), Infinity));
    const max = Math.max(1, all.reduce((a, b) => Math.max(a, b), -Infinity));
    lo = Math.floor(Math.log10(min));
    hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  }
  const dataLeft = left + INSET;
  const dataRight = right - INSET;
  const dataTop = plotTop + INSET;
  const dataBottom = plotBottom - INSET;
  const px = (ms: number): number => dataLeft + ((Math.log10(Math.max(1, ms)) - lo) / (hi - lo)) * (dataRight - dataLeft);
  const py = (f: number): number => dataBottom - f * (dataBottom - dataTop);
  const decadePx = (dataRight - dataLeft) / (hi - lo);

  // Grid: minor lines at 2..9 of each decade when there is room, then decades and quarters.
  if (decadePx >= 48) {
    for (let d = lo; d < hi; d++) {
      for (let m = 2; m <= 9; m++) {
        const x = Math.round(px(m * 10 ** d));
        canvas.line(x, plotTop + 1, x, plotBottom - 1, GRID_MINOR);
      }
    }
  }
  for (let d = lo; d <= hi; d++) {
    const x = Math.round(px(10 ** d));
    canvas.line(x, plotTop + 1, x, plotBottom - 1, GRID);
  }
  const yTicks = [0, 0.25, 0.5, 0.75, 1];
  // Quarters get a label only when labels would not touch.
  const yLabels = py(0) - py(0.25) >= TEXT_HEIGHT + 6 ? yTicks : [0, 0.5, 1];
  for (const f of yTicks) canvas.line(left + 1, Math.round(py(f)), right - 1, Math.round(py(f)), GRID);
  const y99 = Math.round(py(0.99));
  canvas.line(left + 1, y99, right - 1, y99, MUTED, 1, [6, 4]);

  // Frame, ticks and labels.
  canvas.rect(left, plotTop, right - left + 1, 1, FRAME);
  canvas.rect(left, plotBottom, right - left + 1, 1, FRAME);
  canvas.rect(left, plotTop, 1, plotBottom - plotTop + 1, FRAME);
  canvas.rect(right, plotTop, 1, plotBottom - plotTop + 1, FRAME);
  for (const f of yTicks) {
    const ty = Math.round(py(f));
    canvas.rect(left - 5, ty, 5, 1, FRAME);
    if (!yLabels.includes(f)) continue;
    const label = String(f);
    canvas.text(left - 9 - textWidth(label), ty - TEXT_HEIGHT / 2, label, INK);
  }
  canvas.text(right + 6, y99 - TEXT_HEIGHT / 2 + 1, 'p99', MUTED);

  // Decade labels, thinned out when they would touch; 2 and 5 as well when there are at most two decades.
  const labelled: number[] = [];
  let every = 1;
  while (decadePx * every < textWidth('100 ms') + 20) every++;
  for (let d = lo; d <= hi; d++) if ((d - lo) % every === 0) labelled.push(10 ** d);
  if (hi - lo <= 2) for (let d = lo; d < hi; d++) labelled.push(2 * 10 ** d, 5 * 10 ** d);
  for (const ms of labelled) {
    const x = Math.round(px(ms));
    canvas.rect(x, plotBottom + 1, 1, 5, FRAME);
    const label = formatMs(ms);
    canvas.text(x - textWidth(label) / 2, plotBottom + 10, label, INK);
  }

  // One step line per series: the empirical CDF, rising at each distinct value.
  for (const p of prepared) {
    const n = p.sorted.length;
    if (n === 0) continue;
    let x0 = px(p.sorted[0]!);
    let y0 = py(0);
    for (let i = 0; i < n; ) {
      const v = Math.max(1, p.sorted[i]!);
      while (i < n && Math.max(1, p.sorted[i]!) === v) i++;
      const x = px(v);
      const yv = py(i / n);
      canvas.line(x0, y0, x, y0, p.colour, 2);
      canvas.line(x, y0, x, yv, p.colour, 2);
      x0 = x;
      y0 = yv;
    }
  }
  if (!hasData) {
    const msg = 'no data';
    canvas.text((left + right - textWidth(msg)) / 2, (plotTop + plotBottom - TEXT_HEIGHT) / 2, msg, MUTED);
  }

  // Legend: swatch, label, p50, p99 and n in aligned columns.
  const legendTop = plotBottom + X_LABELS_HEIGHT;
  const rows = prepared.map((p) => {
    const n = p.sorted.length;
    return {
      p,
      stats: n === 0
        ? ['no data']
        : [`p50 ${formatMs(percentile(p.sorted, 50))}`, `p99 ${formatMs(percentile(p.sorted, 99))}`, `n=${n}`],
    };
  });
  const gap = 28;
  const labelX = left + 40;
  const statWidths = [0, 1, 2].map((c) => Math.max(0, ...rows.map((r) => (r.stats.length > 1 ? textWidth(r.stats[c]!) : 0))));
  const statsTotal = statWidths.reduce((a, b) => a + b + gap, 0);
  const labelMax = Math.max(textWidth('no data'), width - 16 - labelX - statsTotal);
  const labelWidth = Math.min(labelMax, Math.max(0, ...rows.map((r) => textWidth(r.p.series.label))));
  rows.forEach((r, i) => {
    const ty = legendTop + i * LEGEND_ROW;
    const mid = ty + TEXT_HEIGHT / 2;
    canvas.line(left, mid, left + 28, mid, r.p.colour, 3);
    canvas.text(labelX, ty, fit(r.p.series.label, labelMax), INK);
    let x = labelX + labelWidth + gap;
    r.stats.forEach((s, c) => {
      canvas.text(x, ty, s, r.stats.length > 1 ? INK : MUTED);
      x += statWidths[c]! + gap;
    });
  });
  if (rows.length === 0) canvas.text(left, legendTop, 'no series', MUTED);
}
