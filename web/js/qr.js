// @ts-check
// QR codes drawn in the browser (qrcode-generator from npm, served as /app/vendor/qrcode.mjs),
// as an SVG of the activation URL: nothing leaves the device to make it.
import qrcode from '../vendor/qrcode.mjs';
import { svg } from './dom.js';

/** A quiet zone of four modules, as the standard asks. */
export const QUIET = 4;

/**
 * The code's size in modules (quiet zone included) and its dark runs, [row, column, length] in
 * modules: one reading of the symbol for the screen's path and the poster's SVG and PDF.
 * @param {string} text
 * @returns {{ size: number, runs: Array<[number, number, number]> }}
 */
export function qrRuns(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const count = qr.getModuleCount();
  /** @type {Array<[number, number, number]>} */
  const runs = [];
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (!qr.isDark(row, col)) continue;
      const start = col;
      while (col + 1 < count && qr.isDark(row, col + 1)) col += 1;
      runs.push([row + QUIET, start + QUIET, col - start + 1]);
    }
  }
  return { size: count + QUIET * 2, runs };
}

/**
 * The code's size and an SVG path of its dark runs, one unit per module: drawn on screen here,
 * and 150 mm wide on the A4 poster (poster.js).
 * @param {string} text
 */
export function qrPath(text) {
  const { size, runs } = qrRuns(text);
  return { size, path: runs.map(([row, col, n]) => `M${col} ${row}h${n}v1h-${n}z`).join('') };
}

export function qrSvg(text, label) {
  const { size, path } = qrPath(text);
  return svg(
    'svg',
    { viewBox: `0 0 ${size} ${size}`, class: 'qr', role: 'img', 'aria-label': label, 'shape-rendering': 'crispEdges' },
    svg('title', null, label),
    svg('rect', { width: size, height: size, fill: '#ffffff' }),
    svg('path', { d: path, fill: '#000000' }),
  );
}
