// @ts-check
// Sending a photo or a document (docs/protocol.md, 18), as the Python SDK does: a photo is made
// sober on the device first (its longest side brought to 1,600 px, re-encoded, its metadata and
// location left behind), the file is encrypted under a fresh key, uploaded to the short-lived
// URL the server gives, the message carrying the key is sent, then the blob is bound to it so it
// lives exactly as long as that message.
import { ApiError } from './api.js';
import { blobSize, fileRefContent, sealFile } from './filecrypt.js';
import { textContent } from './messenger.js';
import { b64e } from './wire.js';

export const MAX_SIDE = 1600;
const JPEG_QUALITY = 0.82;
/** The thumbnail inside the sealed message (docs/protocol.md, 18), as the Python client makes it. */
export const THUMB_MAX_BYTES = 8 * 1024;
const THUMB_SIDE = 160;
const THUMB_QUALITIES = [0.7, 0.55, 0.4, 0.25];
/** What is re-encoded (the Python client's list); any other type is sent as it is. */
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/bmp', 'image/tiff']);
/** Headers the browser sets itself and refuses from a page. */
const BROWSER_HEADERS = new Set(['content-length', 'host']);

/**
 * @typedef {object} Prepared
 * @property {Uint8Array} data
 * @property {string} name
 * @property {string} mime
 * @property {Uint8Array | null} thumb a photo's JPEG thumbnail (at most 8 KB), or none
 */

/** "photo.HEIC" → "photo.jpg". @param {string} name @param {string} ext */
function withExtension(name, ext) {
  const dot = name.lastIndexOf('.');
  return `${dot > 0 ? name.slice(0, dot) : name}.${ext}`;
}

/**
 * The bytes to send for a file the member picked: a photo resized, oriented and re-encoded
 * (drawing it on a canvas keeps the pixels only, never the EXIF), anything else as it is.
 * PNGs stay PNG (they may be transparent); other photos become JPEG.
 * @param {Blob} file @param {string} name @param {string} mime
 * @param {number} [maxSide] the organisation's choice (1,600 px unless its admins chose another)
 * @returns {Promise<Prepared>}
 */
export async function prepareFile(file, name, mime, maxSide = MAX_SIDE) {
  // The organisation's choice (480-4096 px) when the server's answer is one, else the default.
  const side = Number.isInteger(maxSide) && maxSide >= 480 && maxSide <= 4096 ? maxSide : MAX_SIDE;
  if (!IMAGE_TYPES.has(mime)) return { data: new Uint8Array(await file.arrayBuffer()), name, mime, thumb: null };
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  try {
    const png = mime === 'image/png';
    const type = png ? 'image/png' : 'image/jpeg';
    const photo = await encoded(draw(bitmap, side), type, JPEG_QUALITY);
    const small = draw(bitmap, THUMB_SIDE);
    let thumb = null;
    for (const quality of THUMB_QUALITIES) {
      const candidate = await encoded(small, 'image/jpeg', quality);
      if (candidate.length <= THUMB_MAX_BYTES) {
        thumb = candidate;
        break;
      }
    }
    return { data: photo, name: withExtension(name, png ? 'png' : 'jpg'), mime: type, thumb };
  } finally {
    bitmap.close();
  }
}

/** The picture on a canvas whose longest side is at most `side`. @param {ImageBitmap} bitmap @param {number} side */
function draw(bitmap, side) {
  const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  const drawing = canvas.getContext('2d');
  if (!drawing) throw new Error('no canvas');
  drawing.imageSmoothingQuality = 'high';
  drawing.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return canvas;
}

/** @param {HTMLCanvasElement} canvas @param {string} type @param {number} quality */
async function encoded(canvas, type, quality) {
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, type, quality));
  if (!blob) throw new Error('the photo could not be encoded');
  return new Uint8Array(await blob.arrayBuffer());
}

/** The upload was cancelled by the member: nothing was sent. */
export class UploadCancelled extends Error {
  name = 'UploadCancelled';
}

/**
 * @typedef {object} Progress
 * @property {(sent: number, total: number) => void} [onProgress] bytes of the blob sent so far
 * @property {AbortSignal} [signal] cancels the upload (then `UploadCancelled`, and no message)
 */

/**
 * PUT the blob to its slot, reporting progress (XMLHttpRequest: fetch reports none on upload).
 * @param {{upload_url: string, method: string}} slot @param {Record<string, string>} headers
 * @param {Uint8Array} blob @param {Progress} progress
 */
function upload(slot, headers, blob, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(slot.method, slot.upload_url);
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.upload.onprogress = (e) => onProgress?.(e.loaded, blob.length);
    request.onload = () => (request.status >= 200 && request.status < 300
      ? resolve(undefined)
      : reject(new ApiError(request.status, 'upload_refused', `the file store refused the upload (${request.status})`)));
    request.onerror = () => reject(new ApiError(0, 'network', 'the upload did not reach the file store'));
    request.onabort = () => reject(new UploadCancelled('the upload was cancelled'));
    if (signal?.aborted) return request.onabort(new ProgressEvent('abort'));
    signal?.addEventListener('abort', () => request.abort(), { once: true });
    request.send(new Blob([new Uint8Array(blob)]));
  });
}

/**
 * Encrypt, upload, send the message carrying the key, bind the blob to it.
 * @param {import('./messenger.js').Messenger} messenger
 * @param {string} channelId
 * @param {Prepared} file
 * @param {string} text the message's text beside the file (may be empty)
 * @param {{replyTo?: string | null, mentions?: string[]}} [extra]
 * @param {Progress} [progress]
 * @returns {Promise<{message_id: string, blob_id: string}>}
 */
export async function sendFile(messenger, channelId, file, text, extra = {}, progress = {}) {
  const api = messenger.api;
  const slot = await api.request('POST', `/channels/${channelId}/files`, { body: { size: blobSize(file.data.length) } });
  const { ref, blob } = await sealFile(file.data, slot.blob_id, file.name, file.mime);
  /** @type {Record<string, string>} */
  const headers = { 'Content-Type': 'application/octet-stream' };
  for (const [name, value] of Object.entries(slot.headers || {})) {
    if (!BROWSER_HEADERS.has(name.toLowerCase())) headers[name] = String(value);
  }
  await upload(slot, headers, blob, progress);
  /** @type {Record<string, unknown>} */
  const content = { ...textContent(text, extra), file: fileRefContent(ref) };
  if (file.thumb) content.thumb = b64e(file.thumb);
  const messageId = (await messenger.send(channelId, content)).message_id;
  await api.request('PUT', `/channels/${channelId}/files/${ref.blobId}`, { body: { message_id: messageId } });
  return { message_id: messageId, blob_id: ref.blobId };
}
