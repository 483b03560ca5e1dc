// @ts-check
// Photos and documents encrypted on the device (docs/protocol.md section 18): byte for byte
// bocage/client/filecrypt.py. A fresh key per file; the padded file sealed in 64 KiB SecretBox
// chunks whose nonce binds a random per-file prefix, the chunk index and a final flag, so chunks
// cannot be reordered, dropped, cut off or swapped in from another file unnoticed. Pure: runs in
// the browser and under node (tests/browser/files_harness.mjs).
import { CryptoError, b64d, b64e, concat, hex, nacl, randomBytes, sha256 } from './wire.js';

export const VERSION = 1;
export const CHUNK_BYTES = 64 * 1024;
export const MAC_BYTES = 16;
export const KEY_BYTES = 32;
export const PREFIX_BYTES = 16;
export const HEADER_BYTES = 1 + PREFIX_BYTES;
const MIN_GRAIN_BITS = 8;
const MANTISSA_BITS = 3;
const MARKER = 0x80;
const MAX_NAME = 255;
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
const BLOB_ID = /^[A-Za-z0-9_-]{3,64}$/;
const REF_KEYS = ['blob_id', 'key', 'mime', 'name', 'sha256', 'size'];

/** A blob that does not open as the file its message describes: never show any of it. */
export class FileCryptoError extends CryptoError {}
/** A chunk was altered, moved, or comes from another file. */
export class TamperedFile extends FileCryptoError {}
/** The blob stops before its last chunk. */
export class TruncatedFile extends FileCryptoError {}

/**
 * @typedef {{ blobId: string, name: string, mime: string, size: number, sha256: string, key: Uint8Array }} FileRef
 */

/** @param {number} n */
const bitLength = (n) => n.toString(2).length;

/** The bucket a file of `size` bytes is padded to (size + 1 rounded to 3 bits after the leading one). */
export function paddedSize(size) {
  const length = size + 1;
  const grain = 2 ** Math.max(MIN_GRAIN_BITS, bitLength(length) - 1 - MANTISSA_BITS);
  return Math.ceil(length / grain) * grain;
}

/** The stored blob's length for a file of `size` bytes: all the server learns of it. */
export function blobSize(size) {
  const padded = paddedSize(size);
  return HEADER_BYTES + padded + Math.ceil(padded / CHUNK_BYTES) * MAC_BYTES;
}

function chunkNonce(prefix, index, final) {
  const nonce = new Uint8Array(24);
  nonce.set(prefix);
  new DataView(nonce.buffer).setUint32(PREFIX_BYTES, index, false);
  nonce[23] = final ? 1 : 0;
  return nonce;
}

/**
 * The blob for `data`: version byte, nonce prefix, then the sealed chunks of the padded file.
 * @param {Uint8Array} data @param {Uint8Array} key @param {Uint8Array} [prefix]
 */
export function encryptFile(data, key, prefix = randomBytes(PREFIX_BYTES)) {
  if (key.length !== KEY_BYTES) throw new Error('a file key is 32 bytes');
  if (prefix.length !== PREFIX_BYTES) throw new Error('a nonce prefix is 16 bytes');
  const padded = new Uint8Array(paddedSize(data.length));
  padded.set(data);
  padded[data.length] = MARKER;
  const count = Math.ceil(padded.length / CHUNK_BYTES);
  const parts = [Uint8Array.of(VERSION), prefix];
  for (let index = 0; index < count; index += 1) {
    const chunk = padded.subarray(index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES);
    parts.push(nacl().secretbox(chunk, chunkNonce(prefix, index, index === count - 1), key));
  }
  return concat(...parts);
}

function openChunk(sealed, prefix, index, final, key) {
  const opened = nacl().secretbox.open(sealed, chunkNonce(prefix, index, final), key);
  if (opened) return opened;
  if (final && nacl().secretbox.open(sealed, chunkNonce(prefix, index, false), key)) {
    throw new TruncatedFile(`the file is cut short: chunk ${index} is not its last`);
  }
  throw new TamperedFile(`chunk ${index} of the file does not open: altered, moved or from another file`);
}

/**
 * The file `ref` describes, from its stored blob; FileCryptoError if it is not exactly it.
 * @param {Uint8Array} blob @param {FileRef} ref @returns {Promise<Uint8Array>}
 */
export async function decryptFile(blob, ref) {
  if (blob.length < HEADER_BYTES + MAC_BYTES || blob[0] !== VERSION) {
    throw new TamperedFile('not a Bocage file blob (version 1)');
  }
  const prefix = blob.subarray(1, HEADER_BYTES);
  const body = blob.subarray(HEADER_BYTES);
  const step = CHUNK_BYTES + MAC_BYTES;
  const count = Math.ceil(body.length / step);
  const plain = [];
  for (let index = 0; index < count; index += 1) {
    const sealed = body.subarray(index * step, (index + 1) * step);
    if (sealed.length < MAC_BYTES) throw new TamperedFile(`chunk ${index} of the file is too short`);
    plain.push(openChunk(sealed, prefix, index, index === count - 1, ref.key));
  }
  const padded = concat(...plain);
  if (padded.length !== paddedSize(ref.size)) {
    throw new TruncatedFile(`the file is ${padded.length} padded bytes, its message says ${paddedSize(ref.size)}`);
  }
  const data = padded.slice(0, ref.size);
  const rest = padded.subarray(ref.size);
  if (rest[0] !== MARKER || rest.subarray(1).some((b) => b !== 0)) {
    throw new TamperedFile("the file's padding is not exactly 0x80 then zeros");
  }
  if (hex(await sha256(data)) !== ref.sha256) throw new TamperedFile("the file's SHA-256 is not the one its message names");
  return data;
}

/** The message's `content.file` for a reference. @param {FileRef} ref */
export function fileRefContent(ref) {
  return { blob_id: ref.blobId, key: b64e(ref.key), mime: ref.mime, name: ref.name, sha256: ref.sha256, size: ref.size };
}

/**
 * A fresh key, the blob to upload and the reference to put in the message.
 * @param {Uint8Array} data @param {string} blobId @param {string} name @param {string} mime
 */
export async function sealFile(data, blobId, name, mime) {
  const key = randomBytes(KEY_BYTES);
  const ref = { blobId, name, mime, size: data.length, sha256: hex(await sha256(data)), key };
  parseFileRef(fileRefContent(ref));
  return { ref, blob: encryptFile(data, key) };
}

function field(raw, name, type) {
  const value = raw[name];
  if (typeof value !== type || (type === 'number' && !Number.isInteger(value))) {
    throw new FileCryptoError(`the message's file has no valid '${name}'`);
  }
  return value;
}

/** A message's `content.file`, checked. @returns {FileRef} */
export function parseFileRef(raw) {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || Object.keys(raw).sort().join() !== REF_KEYS.join()) {
    throw new FileCryptoError("the message's file must have exactly blob_id, key, mime, name, sha256, size");
  }
  const blobId = field(raw, 'blob_id', 'string');
  const name = field(raw, 'name', 'string');
  const mime = field(raw, 'mime', 'string');
  const size = field(raw, 'size', 'number');
  const digest = field(raw, 'sha256', 'string');
  if (!BLOB_ID.test(blobId)) throw new FileCryptoError("the message's file has a malformed blob_id");
  const chars = [...name].length; // code points, as Python counts them
  if (chars < 1 || chars > MAX_NAME || /[/\\\0]/.test(name) || name === '.' || name === '..') {
    throw new FileCryptoError("the message's file name must be 1-255 characters, no path");
  }
  if (!MIME.test(mime)) throw new FileCryptoError("the message's file type is not a media type");
  if (size < 0 || size > 2 ** 31 - 1 || !/^[0-9a-f]{64}$/.test(digest)) {
    throw new FileCryptoError("the message's file has a bad size or sha256");
  }
  const key = b64d(field(raw, 'key', 'string'));
  if (key.length !== KEY_BYTES) throw new FileCryptoError("the message's file key is not 32 bytes");
  return { blobId, name, mime, size, sha256: digest, key };
}
