// @ts-check
// A public tribe's printable poster, made on this device (the join link's secret never leaves it):
// A4 portrait, the organisation's and the tribe's names, and the link's QR code 150 mm wide, which
// a phone reads from well over a metre. The same page as the CLI's `bocage tribe poster`
// (bocage/client/poster.py): same sizes and places, in millimetres, as SVG or as PDF. The PDF is
// written here (a dozen lines of objects) rather than by a library of hundreds of kilobytes.
import { qrPath, qrRuns } from './qr.js';

const A4 = { width: 210, height: 297 };
const QR_MM = 150;
const QR_TOP = 75;
const PT_PER_MM = 72 / 25.4;

const TEXT_WIDTH_MM = 180; // a line never runs into the page's 15 mm margins
const BOLD_EM = 0.62; // Helvetica Bold's wide letters (capitals, m, w) on average, with room to spare

/**
 * `sizeMm`, or less so that a long name fits the page's width (as poster.py's `_fitted`).
 * @param {string} text
 * @param {number} sizeMm
 */
const fitted = (text, sizeMm) => Math.round(Math.min(sizeMm, TEXT_WIDTH_MM / (BOLD_EM * Math.max(text.length, 1))) * 100) / 100;

/**
 * The poster's words: [text, baseline from the top in mm, size in mm, bold]; long names smaller.
 * @param {string} orgName
 * @param {string} tribeName
 * @returns {Array<[string, number, number, boolean]>}
 */
const lines = (orgName, tribeName) => [
  [orgName, 40, fitted(orgName, 14), true],
  [tribeName, 58, fitted(tribeName, 10), false],
  ['Scannez pour suivre : ni e-mail, ni numéro de téléphone', 250, 5, false],
  ['Scan to follow: no e-mail, no phone number', 260, 5, false],
];

/** @param {string} text */
const escape = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] || c);

/**
 * The poster as an SVG document.
 * @param {string} orgName
 * @param {string} tribeName
 * @param {string} joinUrl
 */
export function posterSvg(orgName, tribeName, joinUrl) {
  const { size, path } = qrPath(joinUrl);
  const scale = QR_MM / size;
  const left = (A4.width - QR_MM) / 2;
  const texts = lines(orgName, tribeName)
    .map(([text, y, size, bold]) =>
      `<text x="105" y="${y}" font-size="${size}" text-anchor="middle" font-weight="${bold ? 'bold' : 'normal'}">${escape(text)}</text>`)
    .join('');
  return '<?xml version="1.0" encoding="UTF-8"?>\n'
    + `<svg xmlns="http://www.w3.org/2000/svg" width="${A4.width}mm" height="${A4.height}mm" viewBox="0 0 ${A4.width} ${A4.height}">`
    + `<title>${escape(orgName)} - ${escape(tribeName)}</title>`
    + `<rect width="${A4.width}" height="${A4.height}" fill="#fff"/>`
    + `<path class="qr" transform="translate(${left} ${QR_TOP}) scale(${scale.toFixed(6)})" shape-rendering="crispEdges" fill="#000" d="${path}"/>`
    + `<g font-family="Helvetica, Arial, sans-serif" fill="#000">${texts}</g>`
    + '</svg>\n';
}

/**
 * Unicode to the standard fonts' WinAnsiEncoding (Windows-1252 in its printable range, PDF 1.7
 * annex D), read from the browser's own decoder rather than a hand-written table: French needs
 * é, à, ç… (Latin-1) but also œ, Œ, ’ and €, which Latin-1 lacks. Control codes are left out.
 */
const WIN_ANSI = (() => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const chars = new TextDecoder('windows-1252').decode(bytes);
  /** @type {Map<string, number>} */
  const table = new Map();
  [...chars].forEach((c, i) => {
    if (!/\p{Cc}/u.test(c)) table.set(c, i);
  });
  return table;
})();

/**
 * A PDF literal string of the text in WinAnsi, as a binary string (one character per byte):
 * accents typed as combining marks are composed first; anything the font lacks becomes "?".
 * @param {string} text
 */
function pdfString(text) {
  const bytes = [...text.normalize('NFC')].map((c) => WIN_ANSI.get(c) ?? 0x3f);
  const body = bytes.map((b) => (b === 0x28 || b === 0x29 || b === 0x5c ? '\\' : '') + String.fromCharCode(b)).join('');
  return { body: `(${body})`, length: bytes.length };
}

/**
 * The document's title for a reader's window, in UTF-16BE (any script), as a hex string.
 * @param {string} text
 */
function pdfTitle(text) {
  let hex = 'FEFF';
  for (let i = 0; i < text.length; i += 1) hex += text.charCodeAt(i).toString(16).padStart(4, '0').toUpperCase();
  return `<${hex}>`;
}

/**
 * The same poster as a one-page PDF 1.4 with a sound cross-reference table. The QR code is drawn
 * in module units (one "cm" maps them 150 mm wide, rows going down as in the SVG), so its modules
 * meet exactly; the words use the standard Helvetica fonts, centred on Helvetica's average
 * advance, as the CLI does.
 * @param {string} orgName
 * @param {string} tribeName
 * @param {string} joinUrl
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function posterPdf(orgName, tribeName, joinUrl) {
  const { size, runs } = qrRuns(joinUrl);
  const module = (QR_MM / size) * PT_PER_MM;
  const pageW = A4.width * PT_PER_MM;
  const pageH = A4.height * PT_PER_MM;
  const left = ((A4.width - QR_MM) / 2) * PT_PER_MM;
  const top = pageH - QR_TOP * PT_PER_MM;
  const ops = [
    `q ${module.toFixed(6)} 0 0 ${(-module).toFixed(6)} ${left.toFixed(4)} ${top.toFixed(4)} cm 0 g`,
    ...runs.map(([row, col, n]) => `${col} ${row} ${n} 1 re`),
    'f Q',
  ];
  for (const [text, y, mm, bold] of lines(orgName, tribeName)) {
    const pt = mm * PT_PER_MM;
    const { body, length } = pdfString(text);
    const x = (pageW - 0.55 * length * pt) / 2;
    ops.push(`BT /${bold ? 'F2' : 'F1'} ${pt.toFixed(2)} Tf ${x.toFixed(2)} ${(pageH - y * PT_PER_MM).toFixed(2)} Td ${body} Tj ET`);
  }
  const content = ops.join('\n');
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${pageW.toFixed(2)} ${pageH.toFixed(2)}] `
      + '/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>',
    `<< /Title ${pdfTitle(`${orgName} - ${tribeName}`)} /Producer (Bocage) >>`,
  ];
  // Every string here is one character per byte, so lengths are byte offsets.
  let out = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets = objects.map((body, i) => {
    const at = out.length;
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return at;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  out += offsets.map((at) => `${String(at).padStart(10, '0')} 00000 n \n`).join('');
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info ${objects.length} 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Uint8Array.from(out, (c) => c.charCodeAt(0));
}
