// @ts-check
// A public tribe's printable poster, made on this device (the join link's secret never leaves it):
// A4 portrait, the organisation's and the tribe's names, and the link's QR code 150 mm wide, which
// a phone reads from well over a metre. The same page as the CLI's `bocage tribe poster`
// (bocage/client/poster.py): same sizes and places, in millimetres.
import { qrPath } from './qr.js';

const A4 = { width: 210, height: 297 };
const QR_MM = 150;
const QR_TOP = 75;

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
  const lines = [
    [orgName, 40, 14, 'bold'],
    [tribeName, 58, 10, 'normal'],
    ['Scannez pour suivre : ni e-mail, ni numéro de téléphone', 250, 5, 'normal'],
    ['Scan to follow: no e-mail, no phone number', 260, 5, 'normal'],
  ];
  const texts = lines
    .map(([text, y, size, weight]) =>
      `<text x="105" y="${y}" font-size="${size}" text-anchor="middle" font-weight="${weight}">${escape(String(text))}</text>`)
    .join('');
  return '<?xml version="1.0" encoding="UTF-8"?>\n'
    + `<svg xmlns="http://www.w3.org/2000/svg" width="${A4.width}mm" height="${A4.height}mm" viewBox="0 0 ${A4.width} ${A4.height}">`
    + `<title>${escape(orgName)} - ${escape(tribeName)}</title>`
    + `<rect width="${A4.width}" height="${A4.height}" fill="#fff"/>`
    + `<path class="qr" transform="translate(${left} ${QR_TOP}) scale(${scale.toFixed(6)})" shape-rendering="crispEdges" fill="#000" d="${path}"/>`
    + `<g font-family="Helvetica, Arial, sans-serif" fill="#000">${texts}</g>`
    + '</svg>\n';
}
