// @ts-check
// A file in a message (docs/protocol.md, 18): its name, type and size from the sealed content,
// and "Télécharger", which fetches the encrypted blob, decrypts and checks it on this device
// and hands it to the browser. A file whose reference or bytes do not check out is refused.
import { h } from '../../dom.js';
import { formatSize, t } from '../../i18n.js';
import { b64d } from '../../wire.js';
import { FileCryptoError, TamperedFile, blobSize, decryptFile, parseFileRef } from '../../filecrypt.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */


/** The most a thumbnail may be (the senders' limit): anything else is not shown. */
const THUMB_MAX_BYTES = 8 * 1024;

/**
 * A photo's thumbnail from the sealed message, or null when there is none or it is not one
 * (too long, not base64, not a JPEG).
 * @param {unknown} raw @returns {Uint8Array | null}
 */
function thumbnailOf(raw) {
  if (typeof raw !== 'string' || raw.length > Math.ceil((THUMB_MAX_BYTES * 4) / 3) + 4) return null;
  try {
    const bytes = b64d(raw);
    return bytes.length <= THUMB_MAX_BYTES && bytes[0] === 0xff && bytes[1] === 0xd8 ? bytes : null;
  } catch {
    return null;
  }
}

/**
 * @param {ChannelContext} ctx
 * @param {unknown} raw the message's `content.file`
 * @param {unknown} [rawThumb] the message's `content.thumb`
 * @returns {HTMLElement}
 */
export function fileChip(ctx, raw, rawThumb) {
  let ref;
  try {
    ref = parseFileRef(raw);
  } catch {
    return h('p', { class: 'unreadable' }, t('file.malformed'));
  }
  const fileRef = ref;
  const status = h('span', { class: 'file-status', role: 'status' });
  /** The file, fetched, decrypted and checked on this device; null (and why, in the status) if not. */
  const fetchFile = async () => {
    status.textContent = t('file.downloading');
    try {
      const { url } = await ctx.m.api.get(`/channels/${ctx.channelId}/files/${fileRef.blobId}`);
      const answer = await fetch(url, { credentials: 'omit' });
      if (!answer.ok) throw new Error(t('file.unavailable'));
      const data = await decryptFile(await readAtMost(answer, blobSize(fileRef.size)), fileRef);
      status.textContent = '';
      return data;
    } catch (err) {
      status.textContent = err instanceof FileCryptoError ? t('file.tampered') : ctx.app.errorText(err);
      return null;
    }
  };
  const button = h('button', { type: 'button', class: 'small', 'data-key': 'download' }, t('file.download'));
  button.addEventListener('click', async () => {
    button.disabled = true;
    const data = await fetchFile();
    if (data) save(data, fileRef.name, fileRef.mime);
    button.disabled = false;
  });
  const thumb = ref.mime.startsWith('image/') ? thumbnailOf(rawThumb) : null;
  return h('div', { class: 'file-chip' },
    thumb ? photo(thumb, fileRef, fetchFile) : null,
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, '📎'),
    h('span', { class: 'file-name' }, ref.name),
    h('span', { class: 'file-size' }, ` · ${formatSize(ref.size)}`),
    button,
    status);
}

/**
 * The thumbnail at once; a tap fetches the photo itself and shows it in its place.
 * @param {Uint8Array} thumb @param {import('../../filecrypt.js').FileRef} ref
 * @param {() => Promise<Uint8Array | null>} fetchFile
 */
function photo(thumb, ref, fetchFile) {
  const image = h('img', { class: 'file-thumb', alt: ref.name, src: objectUrl(thumb, 'image/jpeg') });
  const open = h('button', { type: 'button', class: 'photo', 'aria-label': t('file.show_photo', { name: ref.name }) }, image);
  open.addEventListener('click', async () => {
    open.disabled = true;
    const data = await fetchFile();
    if (data) {
      image.src = objectUrl(data, ref.mime);
      image.className = 'file-photo';
      open.replaceWith(image);
    } else {
      open.disabled = false;
    }
  });
  return open;
}

/** @param {Uint8Array} data @param {string} mime */
function objectUrl(data, mime) {
  return URL.createObjectURL(new Blob([new Uint8Array(data)], { type: mime }));
}

/** @param {Uint8Array} data @param {string} name @param {string} mime */
function save(data, name, mime) {
  const url = URL.createObjectURL(new Blob([new Uint8Array(data)], { type: mime }));
  const link = h('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * The body, refused past `limit` bytes as it arrives: a server cannot fill the device's memory
 * with a "file" bigger than the sealed message says.
 * @param {Response} answer @param {number} limit
 */
async function readAtMost(answer, limit) {
  if (!answer.body) return new Uint8Array(await answer.arrayBuffer());
  const reader = answer.body.getReader();
  const parts = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      throw new TamperedFile('the blob is longer than the file the message announces');
    }
    parts.push(value);
  }
  const whole = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    whole.set(part, at);
    at += part.length;
  }
  return whole;
}
