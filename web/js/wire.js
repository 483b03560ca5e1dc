// @ts-check
// The wire formats, byte for byte those of the Python client (chalicelib/domain, bocage/client).
//
// Pure functions, no DOM: the same file runs in the browser and under node (tests/browser),
// where the Python implementation checks it. NaCl comes from tweetnacl (`globalThis.nacl`:
// the classic script /app/vendor/nacl-fast.min.js in the browser, require('tweetnacl') in node);
// hashes from WebCrypto.

const TOKEN_VERSION = 1;
export const TOKEN_LIFETIME = 120; // seconds; the server accepts at most 300
export const ENVELOPE_VERSION = 2;
export const MAX_INDEX = 2 ** 31 - 1;
export const PAD_BLOCK = 256;
export const MAX_CIPHERTEXT_BYTES = 64 * 1024;
const MAC_BYTES = 16;
export const MAX_PADDED_BYTES = Math.floor((MAX_CIPHERTEXT_BYTES - MAC_BYTES) / PAD_BLOCK) * PAD_BLOCK;
export const MAX_CONTENT_BYTES = MAX_PADDED_BYTES - 1;
export const SENDER_KEY_PURPOSE = 'bocage/sender-key/v2';
export const KINDS = ['message', 'poll', 'vote', 'poll_close', 'reaction', 'delete', 'edit'];
export const TARGETED_KINDS = ['poll_close', 'delete', 'edit'];
/** The content `type` each kind carries (bocage/client/crypto.py CONTENT_TYPES). */
export const CONTENT_TYPES = {
  message: 'text', poll: 'poll', vote: 'vote', poll_close: 'close', reaction: 'reaction', delete: 'delete',
  edit: 'edit',
};
/** Where a targeted kind's content names its target: it must equal the clear target. */
export const CONTENT_TARGETS = { poll_close: 'poll_id', delete: 'target', edit: 'target' };
const ENVELOPE_FIELDS = [
  'v', 'channel_id', 'message_id', 'sender_device', 'epoch', 'index', 'kind', 'target', 'sent_at', 'nonce',
  'ciphertext', 'signature',
];

export class CryptoError extends Error {}
export class ForgedMessage extends CryptoError {}
/** The clear kind or target (what the server acted on) differs from the sealed content. */
export class MislabelledMessage extends CryptoError {}

export function nacl() {
  const lib = globalThis.nacl;
  if (!lib || !lib.box || !lib.sign) throw new Error('tweetnacl is not loaded');
  return lib;
}

// -- bytes and text -------------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export const utf8 = (text) => encoder.encode(text);
export const fromUtf8 = (bytes) => decoder.decode(bytes);

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function randomBytes(n) {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/** base64url without padding (chalicelib/domain/encoding.py b64e). */
export function b64e(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** base64url with or without padding; CryptoError on anything else. */
export function b64d(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*={0,2}$/.test(text)) {
    throw new CryptoError('invalid base64url');
  }
  const bare = text.replace(/=+$/, '');
  if (bare.length % 4 === 1) throw new CryptoError('invalid base64url');
  const std = bare.replace(/-/g, '+').replace(/_/g, '/');
  let binary;
  try {
    binary = atob(std + '='.repeat((4 - (std.length % 4)) % 4));
  } catch {
    throw new CryptoError('invalid base64url');
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, without padding (chalicelib/domain/ids.py _b32). */
export function base32Lower(bytes) {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

// -- canonical JSON -------------------------------------------------------------------------

function quoteString(text, ascii) {
  const json = JSON.stringify(text);
  if (!ascii) return json;
  // Python's ensure_ascii: every non-ASCII UTF-16 unit as \uXXXX (lower-case hex).
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii): what Python
 * signs (ascii) and seals (not ascii). Integers only: the wire has no floats.
 */
export function canonicalJson(value, { ascii = false } = {}) {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('no NaN or Infinity in canonical JSON');
    return JSON.stringify(value);
  }
  if (typeof value === 'string') return quoteString(value, ascii);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, { ascii })).join(',')}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${keys.map((k) => `${quoteString(k, ascii)}:${canonicalJson(value[k], { ascii })}`).join(',')}}`;
}

// -- request tokens (chalicelib/domain/auth_token.py) ----------------------------------------

/** Python's urllib.parse.quote_plus: only A-Z a-z 0-9 _ . - ~ stay; space becomes +. */
export function quotePlus(text) {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** urlencode(sorted(query.items())): the canonical query, also what goes in the URL. */
export function canonicalQuery(query) {
  const items = Object.entries(query || {})
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => [String(k), String(v)]);
  items.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return items.map(([k, v]) => `${quotePlus(k)}=${quotePlus(v)}`).join('&');
}

export async function requestDigest(method, path, query, body) {
  const bodyHash = hex(await sha256(body || new Uint8Array(0)));
  const canonical = [method.toUpperCase(), path, canonicalQuery(query), bodyHash].join('\n');
  return hex(await sha256(utf8(canonical)));
}

export function newNonce() {
  return b64e(randomBytes(16));
}

/** ``base64url(claims) "." base64url(Ed25519 signature)``, bound to one request. */
export async function signToken(signSecretKey, subject, method, path, query, body, now, options = {}) {
  const lifetime = options.lifetime ?? TOKEN_LIFETIME;
  const claims = {
    v: TOKEN_VERSION,
    sub: subject,
    iat: now,
    exp: now + lifetime,
    nonce: options.nonce ?? newNonce(),
    req: await requestDigest(method, path, query, body),
  };
  const bytes = utf8(canonicalJson(claims, { ascii: true }));
  const signature = nacl().sign.detached(bytes, signSecretKey);
  return `${b64e(bytes)}.${b64e(signature)}`;
}

// -- identities and activation ---------------------------------------------------------------

/** d_ + base32(sha256(sign public key)[:10]) (chalicelib/domain/ids.py device_id_for). */
export async function deviceIdFor(signPublicKey) {
  return `d_${base32Lower((await sha256(signPublicKey)).slice(0, 10))}`;
}

/** Codes compare without case, dashes or spaces. */
export function normaliseCode(code) {
  return Array.from(String(code).toUpperCase())
    .filter((c) => /[A-Z0-9]/.test(c))
    .join('');
}

export async function codeHash(code) {
  return hex(await sha256(utf8(normaliseCode(code))));
}

export async function activationProofMessage(code, boxPublicKey) {
  return utf8(`bocage-activation\n${await codeHash(code)}\n${boxPublicKey}`);
}

/** {code, server} from an activation URL (`.../#/activate?server=...&code=...`) or a bare code. */
export function parseActivation(text) {
  const value = String(text || '').trim();
  if (!value.includes('://')) {
    return normaliseCode(value) ? { code: value, server: null } : null;
  }
  let fragment;
  try {
    fragment = new URL(value).hash.replace(/^#/, '');
  } catch {
    return null;
  }
  const query = fragment.includes('?') ? fragment.slice(fragment.indexOf('?') + 1) : fragment;
  const params = new URLSearchParams(query);
  const code = params.get('code');
  if (!code) return null;
  const server = params.get('server');
  return { code, server: server ? server.replace(/\/+$/, '') : null };
}

export function generateDeviceKeys() {
  const sign = nacl().sign.keyPair();
  const box = nacl().box.keyPair();
  return {
    signSecretKey: sign.secretKey, // 64 bytes: seed then public key
    signPublicKey: sign.publicKey,
    boxSecretKey: box.secretKey,
    boxPublicKey: box.publicKey,
  };
}

/** The keys of a device from its two 32-byte seeds (the Python profile's sign.key, box.key). */
export function deviceKeysFromSeeds(signSeed, boxSecret) {
  const sign = nacl().sign.keyPair.fromSeed(signSeed);
  const box = nacl().box.keyPair.fromSecretKey(boxSecret);
  return {
    signSecretKey: sign.secretKey,
    signPublicKey: sign.publicKey,
    boxSecretKey: box.secretKey,
    boxPublicKey: box.publicKey,
  };
}

// -- low-order box keys (chalicelib/domain/x25519.py; docs/protocol.md 13.6) -----------------

const P25519 = 2n ** 255n - 19n;
// u-coordinates (mod p) of the points of order 1, 2, 4 and 8: whatever is sealed to them opens
// for anyone. X25519 ignores the top bit and reads u >= p modulo p, so every encoding counts.
const SMALL_ORDER_U = new Set([
  0n,
  1n,
  P25519 - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
]);

/** Whether a 32-byte X25519 public key is all zero or of small order (never seal to it). */
export function isSmallOrder(publicKey) {
  if (publicKey.length !== 32) throw new CryptoError('an X25519 public key is 32 bytes');
  let u = 0n;
  for (let i = 31; i >= 0; i -= 1) u = (u << 8n) | BigInt(i === 31 ? publicKey[i] & 0x7f : publicKey[i]);
  return SMALL_ORDER_U.has(u % P25519);
}

// -- Ed25519 verification ----------------------------------------------------------------------

let webCryptoEd25519 = null; // unknown until first use; then whether this runtime has it
const verifyKeys = new Map();

async function hasWebCryptoEd25519() {
  if (webCryptoEd25519 === null) {
    try {
      const probe = new Uint8Array(nacl().sign.keyPair.fromSeed(new Uint8Array(32)).publicKey);
      await globalThis.crypto.subtle.importKey('raw', probe, { name: 'Ed25519' }, false, ['verify']);
      webCryptoEd25519 = true;
    } catch {
      webCryptoEd25519 = false;
    }
  }
  return webCryptoEd25519;
}

/**
 * Ed25519 verification: WebCrypto's where the runtime has it (Chromium 137+, node 20; some forty
 * times faster than tweetnacl's pure JS, and as strict as libsodium on non-canonical signatures),
 * tweetnacl's otherwise. A key WebCrypto refuses verifies nothing.
 */
export async function verifySignature(message, signature, publicKey) {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  if (!(await hasWebCryptoEd25519())) return nacl().sign.detached.verify(message, signature, publicKey);
  const id = b64e(publicKey);
  let key = verifyKeys.get(id);
  try {
    if (!key) {
      key = await globalThis.crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
      if (verifyKeys.size >= 4096) verifyKeys.clear();
      verifyKeys.set(id, key);
    }
    return await globalThis.crypto.subtle.verify('Ed25519', key, signature, message);
  } catch {
    return false;
  }
}

/** The bytes of a b64url box public key that is safe to seal to; CryptoError otherwise. */
export function checkBoxPublicKey(value) {
  const raw = b64d(value);
  if (isSmallOrder(raw)) {
    throw new CryptoError('box_public_key is all zero or of small order: nothing sealed to it would be secret');
  }
  return raw;
}

// -- sender keys (bocage/client/crypto.py) ---------------------------------------------------

const isIndex = (value) => Number.isInteger(value) && value >= 0 && value <= MAX_INDEX;

/**
 * A client-chosen message id: 128 random bits, base64url. Never starting with '-', so a person
 * can paste it as an argument of the CLI (argparse reads a leading '-' as an option).
 */
export function newMessageId() {
  for (;;) {
    const id = b64e(randomBytes(16));
    if (id[0] !== '-') return id;
  }
}

/**
 * Box a chain state (`chainKey` at `index`) to one device; the payload repeats the routing fields
 * it is bound to. Throws (CryptoError) for a small-order recipient key: anyone could open it.
 */
export function sealSenderKey(sender, recipientDevice, recipientBoxPublicKey, channelId, epoch, chainKey, index) {
  if (chainKey.length !== 32) throw new Error('a chain key is 32 bytes');
  if (!isIndex(index)) throw new Error('a chain index is an integer from 0 to 2**31 - 1');
  const recipientKey = checkBoxPublicKey(recipientBoxPublicKey);
  const payload = utf8(
    canonicalJson({
      purpose: SENDER_KEY_PURPOSE,
      channel_id: channelId,
      epoch,
      sender_device: sender.deviceId,
      recipient_device: recipientDevice,
      chain_key: b64e(chainKey),
      index,
    }),
  );
  const nonce = randomBytes(nacl().box.nonceLength);
  const boxed = nacl().box(payload, nonce, recipientKey, sender.boxSecretKey);
  return {
    recipient_device: recipientDevice,
    sender_device: sender.deviceId,
    epoch,
    sealed: b64e(concat(nonce, boxed)), // 24-byte nonce + ciphertext, as PyNaCl's Box.encrypt
  };
}

/** Open a chain state sealed to this device, checking every bound field: {chainKey, index}. */
export function openSenderKey(recipient, sealedEnvelope, senderBoxPublicKey, channelId) {
  const { sender_device: senderDevice, epoch, recipient_device: recipientDevice } = sealedEnvelope || {};
  if (typeof senderDevice !== 'string' || typeof recipientDevice !== 'string') {
    throw new CryptoError('malformed sealed key');
  }
  if (!Number.isInteger(epoch)) throw new CryptoError('malformed sealed key');
  if (recipientDevice !== recipient.deviceId) throw new CryptoError('sealed key is addressed to another device');
  let payload;
  try {
    const sealed = b64d(sealedEnvelope.sealed);
    const n = nacl().box.nonceLength;
    const senderKey = checkBoxPublicKey(senderBoxPublicKey);
    const opened = nacl().box.open(sealed.slice(n), sealed.slice(0, n), senderKey, recipient.boxSecretKey);
    if (!opened) throw new CryptoError('sealed key does not open');
    payload = JSON.parse(fromUtf8(opened));
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError('sealed key does not open');
  }
  const expected = {
    purpose: SENDER_KEY_PURPOSE,
    channel_id: channelId,
    epoch,
    sender_device: senderDevice,
    recipient_device: recipient.deviceId,
  };
  if (!payload || typeof payload !== 'object' || Object.entries(expected).some(([k, v]) => payload[k] !== v)) {
    throw new CryptoError('sealed key is bound to another channel, epoch or device (or is not a v2 key)');
  }
  if (!isIndex(payload.index)) throw new CryptoError('malformed sealed key');
  let chainKey;
  try {
    chainKey = b64d(payload.chain_key);
  } catch {
    throw new CryptoError('malformed sealed key');
  }
  if (chainKey.length !== 32) throw new CryptoError('malformed sealed key');
  return { chainKey, index: payload.index };
}

// -- messages --------------------------------------------------------------------------------

/** ISO/IEC 7816-4 padding to a multiple of 256 bytes: 0x80, then zeros. */
export function pad(data) {
  const padded = new Uint8Array((Math.floor(data.length / PAD_BLOCK) + 1) * PAD_BLOCK);
  padded.set(data);
  padded[data.length] = 0x80;
  return padded;
}

export function unpad(data) {
  if (!data.length || data.length % PAD_BLOCK) throw new CryptoError('bad padding length');
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end -= 1;
  if (end === 0 || data[end - 1] !== 0x80 || data.length - end >= PAD_BLOCK) throw new CryptoError('bad padding');
  return data.slice(0, end - 1);
}

/** The envelope as the server's model sees it: its fields only, defaults filled in. */
export function envelopeFields(raw) {
  const env = { v: ENVELOPE_VERSION, kind: 'message', target: null };
  for (const field of ENVELOPE_FIELDS) if (raw[field] !== undefined) env[field] = raw[field];
  return env;
}

/** Every envelope field but the signature, sorted, compact, ASCII (Envelope.signing_bytes). */
export function envelopeSigningBytes(envelope) {
  const fields = envelopeFields(envelope);
  delete fields.signature;
  return utf8(canonicalJson(fields, { ascii: true }));
}

/**
 * The content inside a sealed plaintext, if its labels agree with the clear ones (crypto.py
 * check_labels): a post labelled as a reaction, or a poll close whose clear target is not the
 * poll its content closes, is refused (MislabelledMessage).
 */
export function checkLabels(kind, target, sealed) {
  const isObject = (v) => Boolean(v) && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(sealed) || Object.keys(sealed).sort().join() !== 'content,kind,target' || !isObject(sealed.content)) {
    throw new MislabelledMessage('the sealed content does not carry its kind and target');
  }
  const { content } = sealed;
  if (sealed.kind !== kind || sealed.target !== target) {
    throw new MislabelledMessage(`the clear labels (${kind}, ${target}) differ from the sealed ones (${sealed.kind}, ${sealed.target})`);
  }
  if (!Object.hasOwn(CONTENT_TYPES, kind) || content.type !== CONTENT_TYPES[kind]) {
    throw new MislabelledMessage(`a ${kind} envelope carries content of type ${content.type}`);
  }
  const named = CONTENT_TARGETS[kind];
  if (named && content[named] !== target) {
    throw new MislabelledMessage(`the clear target ${target} differs from the content's ${named}`);
  }
  return content;
}

/** Encrypt `content` (with its kind and target) under message key `index`, and sign it all. */
export function sealMessage(sender, messageKey, { channelId, epoch, index, messageId, content, kind = 'message', sentAtMs, target = null }) {
  if (!KINDS.includes(kind)) throw new Error(`unknown kind ${kind}`);
  if (TARGETED_KINDS.includes(kind) !== (target !== null)) {
    throw new Error('target is required for poll_close and delete, and only for them');
  }
  if (!isIndex(index)) throw new Error('a ratchet index is an integer from 0 to 2**31 - 1');
  const sealed = { kind, target, content };
  try {
    checkLabels(kind, target, sealed);
  } catch (err) {
    throw new Error(`readers would drop this message: ${err.message}`);
  }
  const plaintext = utf8(canonicalJson(sealed));
  if (plaintext.length > MAX_CONTENT_BYTES) {
    throw Object.assign(new Error(`message content is ${plaintext.length} bytes; at most ${MAX_CONTENT_BYTES} fit`), { code: 'too_large' });
  }
  const nonce = randomBytes(nacl().secretbox.nonceLength);
  const ciphertext = nacl().secretbox(pad(plaintext), nonce, messageKey);
  const envelope = {
    v: ENVELOPE_VERSION,
    channel_id: channelId,
    message_id: messageId,
    sender_device: sender.deviceId,
    epoch,
    index,
    kind,
    target,
    sent_at: sentAtMs,
    nonce: b64e(nonce),
    ciphertext: b64e(ciphertext),
  };
  const signature = nacl().sign.detached(envelopeSigningBytes(envelope), sender.signSecretKey);
  return { ...envelope, signature: b64e(signature) };
}

/**
 * The signed envelope of a stored message, once its signature verifies with the sender device's
 * key (ForgedMessage if not): checked before any verdict on the sender, so a server's rewrite is
 * called a forgery rather than blamed on the member.
 */
export async function verifyEnvelope(raw, senderSignPublicKey) {
  const envelope = envelopeFields(raw);
  for (const field of ['channel_id', 'message_id', 'sender_device', 'nonce', 'ciphertext', 'signature']) {
    if (typeof envelope[field] !== 'string') throw new CryptoError('malformed envelope');
  }
  if (envelope.v !== ENVELOPE_VERSION || !KINDS.includes(envelope.kind) || !isIndex(envelope.index)) {
    throw new CryptoError('malformed envelope');
  }
  // The bounds of the Python Envelope: a date or epoch it refuses is refused here too, so both
  // clients judge (13.7, 14.2) and tally (section 8) on the same numbers.
  const within = (/** @type {unknown} */ value, /** @type {number} */ max) => Number.isSafeInteger(value) && Number(value) >= 0 && Number(value) <= max;
  if (!within(envelope.sent_at, 2 ** 42) || !within(envelope.epoch, 2 ** 31)) throw new CryptoError('malformed envelope');
  let verifyKey;
  try {
    verifyKey = b64d(senderSignPublicKey);
  } catch {
    throw new CryptoError('invalid sender signing key');
  }
  if (verifyKey.length !== 32) throw new CryptoError('invalid sender signing key');
  if ((await deviceIdFor(verifyKey)) !== envelope.sender_device) {
    throw new ForgedMessage("the signing key is not the sender device's key");
  }
  let signature;
  try {
    signature = b64d(envelope.signature);
  } catch {
    throw new ForgedMessage('envelope signature does not verify');
  }
  if (!(await verifySignature(envelopeSigningBytes(envelope), signature, verifyKey))) {
    throw new ForgedMessage('envelope signature does not verify');
  }
  return envelope;
}

/** Verify first (the key must be the sender device's), then decrypt, unpad and check the labels. */
export async function openMessage(raw, messageKey, senderSignPublicKey) {
  return openVerified(await verifyEnvelope(raw, senderSignPublicKey), messageKey);
}

/**
 * Decrypt, unpad and check the labels of an envelope `verifyEnvelope` returned (and only such a
 * one: nothing here checks the signature); the read path verifies before its verdict on the
 * sender, then opens with this, so each message costs one Ed25519 verification.
 */
export function openVerified(envelope, messageKey) {
  let padded;
  try {
    padded = nacl().secretbox.open(b64d(envelope.ciphertext), b64d(envelope.nonce), messageKey);
  } catch {
    padded = null;
  }
  if (!padded) throw new CryptoError('message does not decrypt with this key');
  let sealed;
  try {
    sealed = JSON.parse(fromUtf8(unpad(padded)));
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError('message content is not JSON');
  }
  if (!sealed || typeof sealed !== 'object' || Array.isArray(sealed)) {
    throw new CryptoError('message content is not a JSON object');
  }
  return checkLabels(envelope.kind, envelope.target, sealed);
}
