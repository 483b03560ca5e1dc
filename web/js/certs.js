// @ts-check
// Signed statements and chain evaluation (docs/protocol.md, sections 13 and 15): which members
// and devices of the organisation this browser can trust, byte for byte what bocage/client/
// certs.py and chalicelib/domain/statements.py decide, so a server cannot make the two clients
// disagree. Pure (no DOM, no network): the same file runs under node in tests/browser.
//
// Signatures are checked synchronously (tweetnacl); SHA-256 (WebCrypto) is async, so the few
// hashes evaluation needs (device ids, root fingerprints, role tie-breaks) are computed first by
// `TrustView.create` and evaluation itself is synchronous and memoised.
import { b64d, b64e, canonicalJson, concat, deviceIdFor, isSmallOrder, nacl, randomBytes, sha256, utf8 } from './wire.js';

export const MEMBER_CERT = 'bocage/member-cert/v2';
export const DEVICE_CERT = 'bocage/device-cert/v2';
export const TICKET = 'bocage/ticket/v2';
export const ROLE = 'bocage/role/v2';
export const REMOVAL = 'bocage/removal/v2';
export const REVOCATION = 'bocage/revocation/v2';
export const MEMBERSHIP = 'bocage/membership/v2';
export const FOLLOWER_CERT = 'bocage/follower-cert/v2';
export const NOTIFY = 'bocage/notify/v2';
export const PARTNER_ACCEPT = 'bocage/partner-accept/v2';
export const PARTNERSHIP = 'bocage/partnership/v2';
/** An end names its invitation (`ticket_key`, 22.7); v2, which named none, is only read where stored. */
export const PARTNERSHIP_END = 'bocage/partnership-end/v3';
export const PARTNERSHIP_END_V2 = 'bocage/partnership-end/v2';
export const HISTORY = 'bocage/history/v2';
/** The longest window of recent posts a public tribe may open to new followers (section 23). */
export const MAX_HISTORY_DAYS = 30;
export const MAX_STATEMENT_BYTES = 2048;
/** How far apart two devices' clocks may be when one statement's date is judged against another's. */
export const STATEMENT_CLOCK_SKEW = 300;
export const V1_MESSAGE = 'this client speaks protocol v1: update it';
export const MAX_DEPTH = 16;
export const MEMBER_TICKET_LIFETIME = 7 * 86400;
export const DEVICE_TICKET_LIFETIME = 86400;
const KEY_CHARS = 43;
export const FOREVER = 2 ** 53;
const ADMIN_ROLES = ['admin', 'owner'];
/** @type {Record<string, string[]>} */
const GRANTS = { admin: ['guest', 'member', 'admin'], owner: ['guest', 'member', 'admin', 'owner'] };
const GUEST = 'guest';
const ORG_ROLES = ['owner', 'admin', 'member', 'guest'];
const SAFETY_LABEL = 'bocage/safety/v2';
const VERIFY_PREFIX = 'bocage-verify:v2:';

/** A statement that cannot be trusted: wrong shape, wrong purpose or a bad signature. */
export class StatementError extends Error {}

/**
 * @typedef {Record<string, any>} Statement
 * @typedef {{code: string, member_id: string|null, device_id: string|null, message: string, channel_id?: string, verified?: boolean}} TrustWarning
 * @typedef {{member_id: string, identity_key: string, display_name: string, base_role: string|null, via: string}} MemberTrust
 * @typedef {{device_id: string, member_id: string, sign_public_key: string, box_public_key: string}} DeviceTrust
 */

// -- shapes (chalicelib/domain/statements.py _FIELDS) -----------------------------------------

const length = (text) => [...text].length; // code points, as Python's len()
// Python's str.strip() whitespace (str.isspace), which differs from JS trim() at the edges.
const PY_SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;

const isId = (prefix) => (v) => typeof v === 'string' && v.startsWith(`${prefix}_`) && length(v) === prefix.length + 17;
const isInt = (min) => (v) => typeof v === 'number' && Number.isInteger(v) && v >= min && v < FOREVER;
const oneOf = (...values) => (v) => values.includes(v);
const nullable = (check) => (v) => v === null || check(v);
const isBool = (v) => typeof v === 'boolean';
const isName = (v) => typeof v === 'string' && length(v) >= 1 && length(v) <= 120 && !PY_SPACE.test(v);
const isTime = isInt(0);

function isKey(v) {
  if (typeof v !== 'string' || v.length !== KEY_CHARS) return false;
  try {
    return b64d(v).length === 32;
  } catch {
    return false;
  }
}

/** @type {Record<string, Record<string, (v: unknown) => boolean>>} */
const FIELDS = {
  [MEMBER_CERT]: {
    org_id: isId('o'),
    member_id: isId('m'),
    identity_key: isKey,
    display_name: isName,
    ticket_key: nullable(isKey),
    root: isBool,
    issued_at: isTime,
  },
  [DEVICE_CERT]: {
    org_id: isId('o'),
    member_id: isId('m'),
    device_id: isId('d'),
    sign_public_key: isKey,
    box_public_key: isKey,
    identity_key: isKey,
    ticket_key: nullable(isKey),
    issued_at: isTime,
  },
  [`${TICKET}#member`]: {
    org_id: isId('o'),
    grant: oneOf('member'),
    ticket_key: isKey,
    role: oneOf(...ORG_ROLES),
    display_name: isName,
    issuer_device: isId('d'),
    issued_at: isTime,
    expires_at: isTime,
  },
  [`${TICKET}#device`]: {
    org_id: isId('o'),
    grant: oneOf('device'),
    ticket_key: isKey,
    member_id: isId('m'),
    issuer_device: isId('d'),
    issued_at: isTime,
    expires_at: isTime,
  },
  [`${TICKET}#follower`]: {
    org_id: isId('o'),
    grant: oneOf('follower'),
    ticket_key: isKey,
    channel_id: isId('c'),
    issuer_device: isId('d'),
    issued_at: isTime,
    expires_at: isTime,
  },
  [`${TICKET}#partner`]: {
    org_id: isId('o'),
    grant: oneOf('partner'),
    ticket_key: isKey,
    allow_tribes: isBool,
    issuer_device: isId('d'),
    issued_at: isTime,
    expires_at: isTime,
  },
  [PARTNER_ACCEPT]: {
    org_id: isId('o'),
    partner_org_id: isId('o'),
    root: isKey,
    ticket_key: isKey,
    by_device: isId('d'),
    issued_at: isTime,
  },
  [PARTNERSHIP]: {
    org_id: isId('o'),
    partner_org_id: isId('o'),
    partner_root: isKey,
    allow_tribes: isBool,
    ticket_key: isKey,
    by_device: isId('d'),
    issued_at: isTime,
  },
  [PARTNERSHIP_END_V2]: {
    org_id: isId('o'),
    partner_org_id: isId('o'),
    by_device: isId('d'),
    issued_at: isTime,
  },
  [PARTNERSHIP_END]: {
    org_id: isId('o'),
    partner_org_id: isId('o'),
    ticket_key: isKey,
    by_device: isId('d'),
    issued_at: isTime,
  },
  [FOLLOWER_CERT]: {
    org_id: isId('o'),
    channel_id: isId('c'),
    follower_id: isId('f'),
    device_id: isId('d'),
    sign_public_key: isKey,
    box_public_key: isKey,
    display_name: isName,
    ticket_key: isKey,
    issued_at: isTime,
  },
  [ROLE]: {
    org_id: isId('o'),
    member_id: isId('m'),
    identity_key: isKey,
    role: oneOf(...ORG_ROLES),
    serial: isInt(1),
    issued_at: isTime,
    by_device: isId('d'),
  },
  [REMOVAL]: {
    org_id: isId('o'),
    member_id: isId('m'),
    identity_key: isKey,
    issued_at: isTime,
    by_device: isId('d'),
  },
  [REVOCATION]: {
    org_id: isId('o'),
    member_id: isId('m'),
    device_id: isId('d'),
    sign_public_key: isKey,
    issued_at: isTime,
    by_device: isId('d'),
  },
  [MEMBERSHIP]: {
    org_id: isId('o'),
    channel_id: isId('c'),
    seq: isInt(0),
    prev: nullable((v) => typeof v === 'string' && v.length === KEY_CHARS),
    op: oneOf('create', 'add', 'remove', 'role', 'leave'),
    member_id: isId('m'),
    role: nullable(oneOf('author', 'member')),
    kind: nullable(oneOf('tribe', 'group', 'direct')),
    by_device: isId('d'),
    issued_at: isTime,
  },
  [NOTIFY]: {
    org_id: isId('o'),
    channel_id: isId('c'),
    member_id: isId('m'),
    mentions_only: isBool,
    issued_at: isTime,
    by_device: isId('d'),
  },
  [HISTORY]: {
    org_id: isId('o'),
    channel_id: isId('c'),
    days: (v) => isInt(0)(v) && Number(v) <= MAX_HISTORY_DAYS,
    issued_at: isTime,
    by_device: isId('d'),
  },
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** ASCII canonical JSON: what gets signed and hashed (docs/protocol.md, "Conventions"). */
export const canonical = (value) => canonicalJson(value, { ascii: true });

export function signingBytes(statement) {
  const { sig: _sig, ...body } = statement;
  return utf8(canonical(body));
}

function shapeKey(statement) {
  const purpose = statement.purpose;
  if (typeof purpose !== 'string') throw new StatementError('a statement needs a purpose');
  if (purpose.endsWith('/v1')) throw new StatementError(`${purpose}: ${V1_MESSAGE}`);
  return purpose === TICKET ? `${TICKET}#${statement.grant}` : purpose;
}

/** The statement if it has exactly the fields of `purpose`, well typed; StatementError if not. */
export function checkShape(statement, purpose) {
  if (!isObject(statement)) throw new StatementError(`${purpose} must be a JSON object`);
  const found = shapeKey(statement);
  const fields = FIELDS[found];
  if (!fields || !found.startsWith(purpose)) {
    throw new StatementError(`expected a ${purpose} statement, got ${JSON.stringify(statement.purpose)}`);
  }
  const expected = new Set(['purpose', 'sig', ...Object.keys(fields)]);
  const present = Object.keys(statement);
  if (present.length !== expected.size || present.some((k) => !expected.has(k))) {
    const missing = [...expected].filter((k) => !(k in statement)).sort();
    const extra = present.filter((k) => !expected.has(k)).sort();
    throw new StatementError(`${purpose}: missing fields ${JSON.stringify(missing)}, unknown fields ${JSON.stringify(extra)}`);
  }
  const bad = Object.keys(fields).filter((name) => !fields[name](statement[name])).sort();
  if (bad.length) throw new StatementError(`${purpose}: invalid ${bad.join(', ')}`);
  if (typeof statement.sig !== 'string') throw new StatementError(`${purpose}: sig must be base64url`);
  if (canonical(statement).length > MAX_STATEMENT_BYTES) {
    throw new StatementError(`${purpose}: larger than ${MAX_STATEMENT_BYTES} bytes`);
  }
  return statement;
}

/** The b64url Ed25519 public key of a 32-byte seed (identity, ticket and device keys). */
export function publicKeyOf(seed) {
  return b64e(nacl().sign.keyPair.fromSeed(seed).publicKey);
}

/** `body` (without `sig`) signed by the Ed25519 key of this 32-byte seed, its shape checked. */
export function signStatement(body, seed) {
  const key = nacl().sign.keyPair.fromSeed(seed);
  const signed = { ...body, sig: b64e(nacl().sign.detached(signingBytes(body), key.secretKey)) };
  return checkShape(signed, String(body.purpose));
}

/**
 * Signatures already checked, by digest of (key, signature, signed bytes): a warm client
 * re-verifies a roster of a thousand devices without a thousand Ed25519 verifications.
 */
export class VerifiedCache {
  constructor(entries = []) {
    /** @type {Set<string>} */
    this.seen = new Set(entries);
  }

  static key(publicKey, signature, bytes) {
    return b64e(nacl().hash(concat(publicKey, signature, bytes)).slice(0, 32));
  }

  toJSON() {
    return [...this.seen];
  }
}

let platformEd25519 = null; // WebCrypto's Ed25519, where the platform has it (probed once)

async function platformKey(raw) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle || platformEd25519 === false) return null;
  try {
    const key = await subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
    platformEd25519 = true;
    return key;
  } catch {
    if (platformEd25519 === null) platformEd25519 = false; // no Ed25519 here: tweetnacl does it all
    return null;
  }
}

/**
 * Check many (statement, claimed signer key) pairs at once with the platform's native Ed25519
 * and remember those that verify, so the synchronous evaluation that follows finds them in the
 * cache: a cold client checks a thousand devices in a fraction of the time tweetnacl takes.
 * Only successes are cached, keyed by key, signature and bytes; everything else (and every
 * platform without Ed25519 in WebCrypto) is verified by tweetnacl as before.
 * @param {VerifiedCache} cache
 * @param {{statement: any, key: unknown}[]} pairs
 */
export async function prewarm(cache, pairs) {
  const subtle = globalThis.crypto?.subtle;
  await Promise.all(
    pairs.map(async ({ statement, key }) => {
      if (!isObject(statement) || typeof key !== 'string' || typeof statement.sig !== 'string') return;
      let pk;
      let sig;
      try {
        pk = b64d(key);
        sig = b64d(statement.sig);
      } catch {
        return;
      }
      if (pk.length !== 32 || sig.length !== 64) return;
      const bytes = signingBytes(statement);
      const memo = VerifiedCache.key(pk, sig, bytes);
      if (cache.seen.has(memo)) return;
      const imported = await platformKey(pk);
      if (imported && subtle && (await subtle.verify({ name: 'Ed25519' }, imported, sig, bytes).catch(() => false))) cache.seen.add(memo);
    }),
  );
}

/**
 * The statement if it has the shape of `purpose` and `publicKey` (b64url) signed it.
 * @param {unknown} statement
 * @param {string} purpose
 * @param {string} publicKey
 * @param {VerifiedCache|null} [cache]
 * @returns {Statement}
 */
export function verifyStatement(statement, purpose, publicKey, cache = null) {
  const checked = checkShape(statement, purpose);
  let key;
  let sig;
  try {
    key = b64d(publicKey);
    sig = b64d(checked.sig);
  } catch {
    throw new StatementError(`${purpose}: the signature does not verify`);
  }
  const bytes = signingBytes(checked);
  if (key.length !== 32 || sig.length !== 64) throw new StatementError(`${purpose}: the signature does not verify`);
  const memo = cache ? VerifiedCache.key(key, sig, bytes) : null;
  if (memo && cache?.seen.has(memo)) return checked;
  if (!nacl().sign.detached.verify(bytes, sig, key)) throw new StatementError(`${purpose}: the signature does not verify`);
  if (memo) cache?.seen.add(memo);
  return checked;
}

/** b64url SHA-256 of the whole statement, signature included: what log entries chain by. */
export async function statementHash(statement) {
  return b64e(await sha256(utf8(canonical(statement))));
}

/** A public key's fingerprint: b64url(SHA-256(key)), 43 characters (the pinned root is one). */
export async function fingerprint(publicKey) {
  return b64e(await sha256(b64d(publicKey)));
}

// -- safety numbers (section 15) -------------------------------------------------------------

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** 60 digits in 12 groups of 5 from SHA-512(label || lower IK || higher IK). */
export function safetyNumber(identityA, identityB) {
  const [low, high] = [b64d(identityA), b64d(identityB)].sort(compareBytes);
  const digest = nacl().hash(concat(utf8(SAFETY_LABEL), low, high));
  const groups = [];
  for (let i = 0; i < 12; i += 1) {
    let value = 0;
    for (const byte of digest.slice(5 * i, 5 * i + 5)) value = value * 256 + byte; // < 2^40: exact
    groups.push(String(value % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

export const safetyDigits = (number) => String(number).replace(/\s+/g, '');

/** What the QR code shown by member `memberId` encodes. */
export function verifyPayload(orgId, memberId, number) {
  return `${VERIFY_PREFIX}${orgId}:${memberId}:${safetyDigits(number)}`;
}

/** A scanned payload or a typed number → {digits, org_id, member_id} (nulls for a typed one). */
export function parseVerification(text) {
  const value = String(text || '').trim();
  if (value.startsWith(VERIFY_PREFIX)) {
    const [org, member, digits] = value.slice(VERIFY_PREFIX.length).split(':');
    return /^\d{60}$/.test(digits || '') ? { digits, org_id: org, member_id: member } : null;
  }
  const digits = value.replace(/[\s-]+/g, '');
  return /^\d{60}$/.test(digits) ? { digits, org_id: null, member_id: null } : null;
}

// -- statements this client makes --------------------------------------------------------------

export const signSeed = (device) => device.signSecretKey.slice(0, 32);

/**
 * A fresh ticket: its seed (for the URL fragment only) and the signed ticket. Member and device
 * tickets are one-time with fixed lifetimes; a follower ticket (a public tribe's join link,
 * section 16.1) is multi-use and lasts `lifetime` seconds.
 */
export function newTicket(device, fields, now, lifetime = fields.grant === 'device' ? DEVICE_TICKET_LIFETIME : MEMBER_TICKET_LIFETIME) {
  const seed = randomBytes(32);
  const body = {
    purpose: TICKET,
    org_id: device.org_id,
    ticket_key: publicKeyOf(seed),
    issuer_device: device.device_id,
    issued_at: now,
    expires_at: now + lifetime,
    ...fields,
  };
  return { seed: b64e(seed), ticket: signStatement(body, signSeed(device)) };
}

/** The URL the server returned, with what only the fragment may carry (13.4). */
export function withFragment(url, params) {
  const extra = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  return extra ? `${url}&${extra}` : url;
}

/**
 * The certificates an activating device presents for its kind of invitation (13.4, 13.5).
 * `link`: {org, member, ticket?, root?, ik?}; `keys`: the new device's keys (b64url publics).
 * Returns {member_cert, device_cert, identitySeed (null on a linked device), identity_key}.
 */
export function activationCertificates(link, keys, displayName, now, identitySeed = randomBytes(32)) {
  const ticketSeed = link.ticket ? b64d(link.ticket) : null;
  const linking = Boolean(ticketSeed && link.ik);
  const identityKey = linking ? link.ik : publicKeyOf(identitySeed);
  const deviceBody = {
    purpose: DEVICE_CERT,
    org_id: link.org,
    member_id: link.member,
    device_id: keys.device_id,
    sign_public_key: keys.sign_public_key,
    box_public_key: keys.box_public_key,
    identity_key: identityKey,
    ticket_key: linking && ticketSeed ? publicKeyOf(ticketSeed) : null,
    issued_at: now,
  };
  if (linking && ticketSeed) {
    return { member_cert: null, device_cert: signStatement(deviceBody, ticketSeed), identitySeed: null, identity_key: identityKey };
  }
  const memberBody = {
    purpose: MEMBER_CERT,
    org_id: link.org,
    member_id: link.member,
    identity_key: identityKey,
    display_name: displayName,
    ticket_key: ticketSeed ? publicKeyOf(ticketSeed) : null,
    root: !ticketSeed && !link.root,
    issued_at: now,
  };
  return {
    member_cert: signStatement(memberBody, ticketSeed || identitySeed),
    device_cert: signStatement(deviceBody, identitySeed),
    identitySeed,
    identity_key: identityKey,
  };
}

// -- chain evaluation (bocage/client/certs.py TrustView) -------------------------------------

class Untrusted extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const warning = (code, message, memberId = null, deviceId = null) => ({ code, member_id: memberId, device_id: deviceId, message });

function checked(raw, purpose, memberId, deviceId = null) {
  try {
    return checkShape(raw, purpose);
  } catch (err) {
    if (!(err instanceof StatementError)) throw err;
    const code = deviceId ? 'uncertified_device' : 'uncertified_member';
    throw new Untrusted(raw == null ? code : 'invalid_statement', `${deviceId || memberId}: ${err.message}`);
  }
}

/**
 * The organisation as this client can verify it, from what GET /members returns, the root it
 * pinned, and what it verified (`verified`) or saw before (`seen`): member id → identity key;
 * and the revocations (`revoked`: device id → date) and removals (`removed`: member id → date)
 * it verified before (13.7): a listing without them, or dating them later, cannot bring the
 * device or member back (each such one is in `rollbacks`).
 */
export class TrustView {
  /**
   * @param {string} orgId
   * @param {string} root
   * @param {Iterable<Statement>} members
   * @param {Iterable<Statement>} devices
   * @param {{verified?: Record<string, string>, seen?: Record<string, string>, revoked?: Record<string, number>, removed?: Record<string, number>, derived?: Derived, cache?: VerifiedCache|null}} [options]
   */
  constructor(orgId, root, members, devices, { verified = {}, seen = {}, revoked = {}, removed = {}, derived = null, cache = null } = {}) {
    this.orgId = orgId;
    this.root = root;
    /** @type {Map<string, Statement>} */
    this.members = new Map([...members].map((m) => [String(m.member_id), m]));
    /** @type {Map<string, Statement>} */
    this.devices = new Map([...devices].map((d) => [String(d.device_id), d]));
    this.verified = { ...verified };
    this.seen = { ...seen };
    this.keptRevoked = { ...revoked };
    this.keptRemoved = { ...removed };
    /** @type {{member_id: string|null, device_id: string|null, at: number}[]} each revocation or removal kept that the listing dropped or dated later */
    this.rollbacks = [];
    this.derived = derived || { ids: new Map(), fingerprints: new Map(), hashes: new Map() };
    this.cache = cache;
    this.memberMemo = new Map();
    this.deviceMemo = new Map();
    this.rolesMemo = new Map();
    this.removedMemo = new Map();
    this.revokedMemo = new Map();
    this.busy = new Set();
    this.ticketUses = ticketUses(this.members.values(), this.devices.values());
  }

  /**
   * A view with the hashes evaluation needs computed first (WebCrypto is async), and, given a
   * cache, every signature checked ahead in parallel (prewarm).
   */
  static async create(orgId, root, members, devices, options = {}) {
    const m = [...members];
    const d = [...devices];
    const view = new TrustView(orgId, root, m, d, { ...options, derived: await derive(m, d) });
    if (view.cache) await prewarm(view.cache, view.claims());
    return view;
  }

  /** The key that claims to sign a device's statements (its certificate's; unchecked). */
  claimedKey(deviceId) {
    return this.devices.get(deviceId)?.device_cert?.sign_public_key;
  }

  /** Every statement listed, with the key it says signed it (for prewarm). */
  claims() {
    const self = (cert) => ({ statement: cert, key: cert?.ticket_key ?? cert?.identity_key });
    const by = (s, field) => ({ statement: s, key: this.claimedKey(s?.[field]) });
    const out = [];
    for (const m of this.members.values()) {
      out.push(self(m.member_cert), by(m.ticket, 'issuer_device'), by(m.removal, 'by_device'));
      for (const s of Array.isArray(m.role_statements) ? m.role_statements : []) out.push(by(s, 'by_device'));
    }
    for (const d of this.devices.values()) out.push(self(d.device_cert), by(d.ticket, 'issuer_device'), by(d.revocation, 'by_device'));
    return out;
  }

  // -- members ---------------------------------------------------------------------------

  /** @returns {MemberTrust|null} certified, endorsed, or verified by the viewer */
  member(memberId) {
    const found = this.memberAt(memberId, 0);
    return found instanceof Untrusted ? null : found;
  }

  /** Certified by the organisation (not merely verified by this viewer). */
  certified(memberId) {
    const found = this.member(memberId);
    return found !== null && (found.base_role !== null || this.roleStatements(found, 0).length > 0);
  }

  vouchedOnly(memberId) {
    const found = this.memberAt(memberId, 0);
    return !(found instanceof Untrusted) && found.via === 'server' && !this.certified(memberId);
  }

  /** The identity key the member's certificate names, checked or not (for verification). */
  identityKey(memberId) {
    const raw = this.members.get(memberId)?.member_cert;
    return isObject(raw) && 'identity_key' in raw ? String(raw.identity_key) : null;
  }

  displayName(memberId) {
    return this.member(memberId)?.display_name ?? null;
  }

  memberAt(memberId, depth) {
    if (this.memberMemo.has(memberId)) return this.memberMemo.get(memberId);
    const key = `m:${memberId}`;
    if (depth > MAX_DEPTH || this.busy.has(key)) {
      return new Untrusted('uncertified_member', `${memberId}: the certificate chain loops or is too deep`);
    }
    this.busy.add(key);
    let result;
    try {
      result = this.evaluateMember(memberId, depth);
    } catch (err) {
      if (!(err instanceof Untrusted)) throw err;
      result = err;
    } finally {
      this.busy.delete(key);
    }
    this.memberMemo.set(memberId, result);
    return result;
  }

  /** @returns {MemberTrust} */
  evaluateMember(memberId, depth) {
    const raw = this.members.get(memberId);
    if (!raw) throw new Untrusted('uncertified_member', `${memberId} is not a member of this organisation`);
    const cert = checked(raw.member_cert, MEMBER_CERT, memberId);
    if (cert.org_id !== this.orgId || cert.member_id !== memberId) {
      throw new Untrusted('invalid_statement', `${memberId}: the member certificate names another org or member`);
    }
    const identity = String(cert.identity_key);
    this.checkIdentity(memberId, identity);
    const trust = { member_id: memberId, identity_key: identity, display_name: String(cert.display_name), base_role: null, via: 'server' };
    if (cert.ticket_key === null) {
      this.verify(cert, MEMBER_CERT, identity, memberId);
      if (cert.root) {
        if (this.derived.fingerprints.get(identity) !== this.root) {
          throw new Untrusted('invalid_statement', `${memberId}: a root certificate that is not the pinned root`);
        }
        return { ...trust, base_role: 'owner', via: 'root' };
      }
      return trust;
    }
    if (cert.root) throw new Untrusted('invalid_statement', `${memberId}: a root certificate signed by a ticket`);
    const ticket = this.ticket(raw.ticket, cert, 'member', memberId, depth);
    return { ...trust, base_role: String(ticket.role), via: 'ticket' };
  }

  checkIdentity(memberId, identity) {
    const expected = this.verified[memberId] || this.seen[memberId];
    if (expected && expected !== identity) {
      const verified = memberId in this.verified;
      throw new Untrusted(
        'identity_changed',
        `${memberId}'s identity key changed${verified ? ' since you verified it' : ''}: verify their safety number again`,
      );
    }
  }

  /** The ticket behind a certificate signed by a ticket key, checked up the chain. */
  ticket(raw, cert, grant, memberId, depth) {
    const ticket = checked(raw, TICKET, memberId);
    if (ticket.grant !== grant || ticket.ticket_key !== cert.ticket_key || ticket.org_id !== this.orgId) {
      throw new Untrusted('invalid_statement', `${memberId}: the ticket does not match the certificate`);
    }
    if ((this.ticketUses.get(String(ticket.ticket_key)) || 0) > 1) {
      throw new Untrusted('ticket_reused', `${memberId}: this ticket certified more than one member or device`);
    }
    this.verify(cert, String(cert.purpose), String(cert.ticket_key), memberId);
    if (cert.issued_at > ticket.expires_at) {
      throw new Untrusted('invalid_statement', `${memberId}: certified after the ticket expired`);
    }
    const issuer = this.signer_(String(ticket.issuer_device), ticket.issued_at, depth + 1);
    this.verify(ticket, TICKET, issuer.sign_public_key, memberId);
    if (grant === 'device') {
      if (ticket.member_id !== memberId || issuer.member_id !== memberId) {
        throw new Untrusted('uncertified_device', `${memberId}: a device linked by another member's device`);
      }
      return ticket;
    }
    const allowed = GRANTS[this.roleAt(issuer.member_id, ticket.issued_at, depth + 1) || ''] || [];
    if (!allowed.includes(ticket.role)) {
      throw new Untrusted('uncertified_member', `${memberId}: invited by someone who could not grant that role`);
    }
    return ticket;
  }

  verify(statement, purpose, key, memberId, deviceId = null) {
    try {
      return verifyStatement(statement, purpose, key, this.cache);
    } catch (err) {
      if (!(err instanceof StatementError)) throw err;
      throw new Untrusted('invalid_statement', `${deviceId || memberId}: ${err.message}`);
    }
  }

  // -- roles, removals -------------------------------------------------------------------

  /** The member's organisation role at `at` (now by default); null if not certified. */
  role(memberId, at = FOREVER) {
    return this.roleAt(memberId, at, 0);
  }

  roleAt(memberId, at, depth) {
    const trust = this.memberAt(memberId, depth);
    if (trust instanceof Untrusted) return null;
    let best = null;
    for (const statement of this.roleStatements(trust, depth)) {
      if (statement.issued_at <= at && (best === null || this.ranksBefore(statement, best))) best = statement;
    }
    if (best !== null) return String(best.role);
    if (trust.base_role === null && memberId in this.verified && at === FOREVER) return 'member';
    return trust.base_role;
  }

  /** The highest serial a valid role statement of the member carries (0 if none). */
  highestSerial(memberId) {
    const trust = this.member(memberId);
    if (!trust) return 0;
    return Math.max(0, ...this.roleStatements(trust, 0).map((s) => Number(s.serial)));
  }

  roleStatements(trust, depth) {
    if (this.rolesMemo.has(trust.member_id)) return this.rolesMemo.get(trust.member_id);
    const valid = [];
    for (const raw of this.members.get(trust.member_id)?.role_statements || []) {
      try {
        valid.push(this.roleStatement(raw, trust, depth));
      } catch (err) {
        if (!(err instanceof Untrusted)) throw err;
      }
    }
    const kept = this.sameSide(valid, trust.base_role);
    this.rolesMemo.set(trust.member_id, kept);
    return kept;
  }

  /** A guest stays a guest and a member never becomes one (protocol section 21): the ticket's
   * role, or an e-mail invitee's first role statement, fixes the side; a later statement across
   * it is ignored, whoever signed it. */
  sameSide(statements, baseRole) {
    const hash = (s) => this.derived.hashes.get(canonical(s)) || '';
    const ordered = [...statements].sort((a, b) => a.serial - b.serial || (hash(a) < hash(b) ? -1 : hash(a) > hash(b) ? 1 : 0));
    let side = baseRole === null ? null : baseRole === GUEST;
    return ordered.filter((statement) => {
      if (side === null) side = statement.role === GUEST;
      return (statement.role === GUEST) === side;
    });
  }

  roleStatement(raw, trust, depth) {
    const statement = checked(raw, ROLE, trust.member_id);
    if (statement.org_id !== this.orgId || statement.member_id !== trust.member_id || statement.identity_key !== trust.identity_key) {
      throw new Untrusted('invalid_statement', `${trust.member_id}: a role statement for someone else`);
    }
    const at = statement.issued_at;
    const signer = this.signer_(String(statement.by_device), at, depth + 1);
    if (signer.member_id === trust.member_id) {
      throw new Untrusted('invalid_statement', `${trust.member_id}: a member cannot sign their own role`);
    }
    const need = statement.role === 'owner' ? ['owner'] : ADMIN_ROLES;
    if (!need.includes(this.roleAt(signer.member_id, at, depth + 1) || '')) {
      throw new Untrusted('invalid_statement', `${trust.member_id}: a role statement by someone not entitled`);
    }
    return this.verify(statement, ROLE, signer.sign_public_key, trust.member_id);
  }

  /** Highest serial wins; equal serials: the hash that sorts first. */
  ranksBefore(statement, best) {
    if (statement.serial !== best.serial) return statement.serial > best.serial;
    const hash = (s) => this.derived.hashes.get(canonical(s)) || '';
    return hash(statement) < hash(best);
  }

  /** When a valid removal statement removed the member, if one did. */
  removedAt(memberId) {
    if (!this.removedMemo.has(memberId)) {
      this.removedMemo.set(memberId, null);
      this.removedMemo.set(memberId, this.keptDate(memberId, null, this.removal(memberId, 0), this.keptRemoved));
    }
    return this.removedMemo.get(memberId);
  }

  /**
   * The earlier of the listed date and the one kept for the member (`deviceId`: for their
   * device's revocation); a kept one the listing lost, or dates later, is a rollback.
   * @param {string|null} memberId
   * @param {string|null} deviceId
   * @param {number|null} listed
   * @param {Record<string, number>} kept
   */
  keptDate(memberId, deviceId, listed, kept) {
    const key = deviceId || String(memberId);
    if (!Object.hasOwn(kept, key)) return listed;
    const before = kept[key];
    if (listed === null || listed > before) {
      this.rollbacks.push({ member_id: memberId, device_id: deviceId, at: before });
      return before;
    }
    return listed;
  }

  removal(memberId, depth) {
    const raw = this.members.get(memberId)?.removal;
    const trust = this.memberAt(memberId, depth);
    if (raw == null || trust instanceof Untrusted) return null;
    try {
      const statement = checked(raw, REMOVAL, memberId);
      const at = statement.issued_at;
      const signer = this.signer_(String(statement.by_device), at, depth + 1);
      const need = this.roleAt(memberId, at, depth + 1) === 'owner' ? ['owner'] : ADMIN_ROLES;
      if (statement.org_id !== this.orgId || statement.identity_key !== trust.identity_key || !need.includes(this.roleAt(signer.member_id, at, depth + 1) || '')) {
        return null;
      }
      this.verify(statement, REMOVAL, signer.sign_public_key, memberId);
      return at;
    } catch (err) {
      if (!(err instanceof Untrusted)) throw err;
      return null;
    }
  }

  // -- devices ---------------------------------------------------------------------------

  /** @returns {DeviceTrust|null} the device if its certificate chains to a trusted member (revoked or not) */
  device(deviceId) {
    const found = this.deviceAt(deviceId, 0);
    return found instanceof Untrusted ? null : found;
  }

  /** @returns {TrustWarning|null} why a device is not trusted */
  whyNot(deviceId) {
    const found = this.deviceAt(deviceId, 0);
    if (!(found instanceof Untrusted)) return null;
    const memberId = this.devices.get(deviceId)?.member_id;
    return warning(found.code, found.message, memberId ? String(memberId) : null, deviceId);
  }

  /** @returns {TrustWarning|null} */
  whyNotMember(memberId) {
    const found = this.memberAt(memberId, 0);
    if (found instanceof Untrusted) return warning(found.code, found.message, memberId);
    if (found.via === 'server' && this.roleAt(memberId, FOREVER, 0) === null) {
      return warning('server_vouched', `${memberId} (${found.display_name}) is vouched by the server only: verify or endorse them`, memberId);
    }
    return null;
  }

  /** @returns {DeviceTrust|null} a trusted device neither revoked nor of a removed member at `at` */
  usable(deviceId, at = FOREVER) {
    const found = this.device(deviceId);
    return found && this.active(found, at) ? found : null;
  }

  active(device, at) {
    const revoked = this.revokedAt(device.device_id);
    const removed = this.removedAt(device.member_id);
    if (this.roleAt(device.member_id, FOREVER, 0) === null) return false;
    return (revoked === null || at < revoked) && (removed === null || at < removed);
  }

  signer_(deviceId, at, depth) {
    const found = this.deviceAt(deviceId, depth);
    if (found instanceof Untrusted) throw new Untrusted(found.code, `signed by ${deviceId}, not a certified device: ${found.message}`);
    const revoked = this.revokedAt(deviceId);
    const removed = this.removedAt(found.member_id);
    if ((revoked !== null && at >= revoked) || (removed !== null && at >= removed)) {
      throw new Untrusted('invalid_statement', `signed by ${deviceId} after its revocation or removal`);
    }
    return found;
  }

  deviceAt(deviceId, depth) {
    if (this.deviceMemo.has(deviceId)) return this.deviceMemo.get(deviceId);
    const key = `d:${deviceId}`;
    if (depth > MAX_DEPTH || this.busy.has(key)) {
      return new Untrusted('uncertified_device', `${deviceId}: the certificate chain loops or is too deep`);
    }
    this.busy.add(key);
    let result;
    try {
      result = this.evaluateDevice(deviceId, depth);
    } catch (err) {
      if (!(err instanceof Untrusted)) throw err;
      result = err;
    } finally {
      this.busy.delete(key);
    }
    this.deviceMemo.set(deviceId, result);
    return result;
  }

  /** @returns {DeviceTrust} */
  evaluateDevice(deviceId, depth) {
    const raw = this.devices.get(deviceId);
    if (!raw) throw new Untrusted('uncertified_device', `${deviceId} is not a device of this organisation`);
    const cert = checked(raw.device_cert, DEVICE_CERT, String(raw.member_id), deviceId);
    const memberId = String(cert.member_id);
    this.sameDevice(raw, cert);
    const member = this.memberAt(memberId, depth + 1);
    if (member instanceof Untrusted) throw new Untrusted('uncertified_device', `${deviceId}: its member is not trusted: ${member.message}`);
    if (cert.identity_key !== member.identity_key) throw new Untrusted('uncertified_device', `${deviceId}: certified by another identity key`);
    if (cert.ticket_key === null) this.verify(cert, DEVICE_CERT, member.identity_key, memberId, deviceId);
    else this.ticket(raw.ticket, cert, 'device', memberId, depth);
    return { device_id: deviceId, member_id: memberId, sign_public_key: String(cert.sign_public_key), box_public_key: String(cert.box_public_key) };
  }

  /** The certificate is for this device, with the keys the server lists, in this org. */
  sameDevice(raw, cert) {
    const deviceId = String(raw.device_id);
    if (cert.org_id !== this.orgId || cert.device_id !== deviceId || cert.member_id !== raw.member_id) {
      throw new Untrusted('invalid_statement', `${deviceId}: the certificate names another org, member or device`);
    }
    if (this.derived.ids.get(cert.sign_public_key) !== deviceId) {
      throw new Untrusted('uncertified_device', `${deviceId}: the id is not derived from the certified key`);
    }
    if (raw.sign_public_key !== cert.sign_public_key || raw.box_public_key !== cert.box_public_key) {
      throw new Untrusted('uncertified_device', `${deviceId}: its keys differ from its certificate`);
    }
    if (isSmallOrder(b64d(cert.box_public_key))) throw new Untrusted('uncertified_device', `${deviceId}: a low-order box key`);
  }

  revokedAt(deviceId) {
    if (!this.revokedMemo.has(deviceId)) {
      this.revokedMemo.set(deviceId, null);
      const memberId = this.devices.get(deviceId)?.member_id;
      this.revokedMemo.set(deviceId, this.keptDate(memberId ? String(memberId) : null, deviceId, this.revocation(deviceId), this.keptRevoked));
    }
    return this.revokedMemo.get(deviceId);
  }

  revocation(deviceId) {
    const raw = this.devices.get(deviceId)?.revocation;
    const device = this.device(deviceId);
    if (raw == null || device === null) return null;
    try {
      const statement = checked(raw, REVOCATION, device.member_id, deviceId);
      const at = statement.issued_at;
      const signer = this.signer_(String(statement.by_device), at, 1);
      const okSigner = signer.member_id === device.member_id || ADMIN_ROLES.includes(this.roleAt(signer.member_id, at, 1) || '');
      const same =
        statement.org_id === this.orgId &&
        statement.member_id === device.member_id &&
        statement.device_id === deviceId &&
        statement.sign_public_key === device.sign_public_key;
      if (!okSigner || !same) return null;
      this.verify(statement, REVOCATION, signer.sign_public_key, device.member_id, deviceId);
      return at;
    } catch (err) {
      if (!(err instanceof Untrusted)) throw err;
      return null;
    }
  }

  // -- the membership log's view of the organisation (membership.js) ---------------------

  /** @returns {[string, string]|null} (member id, sign key) of a device that could sign at `at` */
  signer(deviceId, at) {
    const found = this.usable(deviceId, at);
    return found === null ? null : [found.member_id, found.sign_public_key];
  }

  orgRole(memberId, at) {
    const removed = this.removedAt(memberId);
    if (removed !== null && at >= removed) return null;
    return this.roleAt(memberId, at, 0);
  }

  /** Certified, and not yet removed at `at` (an entry's date: section 14). */
  mayJoin(memberId, at) {
    const removed = this.removedAt(memberId);
    return this.roleAt(memberId, FOREVER, 0) !== null && (removed === null || at < removed);
  }

  /** The organisation's own members may be in its tribes; a partner's are judged by shared.js. */
  tribesOpenTo(_memberId) {
    return true;
  }
}

/**
 * Who sent a message, from its device certificate, never from the server's `sender_member`
 * (which is only compared). A device that is not certified is nobody: the message is flagged.
 * @param {TrustView} trust
 * @param {{sender_device: string, sender_member?: string|null}} message
 * @returns {{member_id: string|null, display_name: string|null, sign_public_key: string|null, warning: TrustWarning|null}}
 */
export function certifiedSender(trust, message) {
  const device = trust.device(message.sender_device);
  if (!device) {
    const why = trust.whyNot(message.sender_device);
    const text = `a message from ${message.sender_device}, not a certified device${why ? `: ${why.message}` : ''}`;
    return { member_id: null, display_name: null, sign_public_key: null, warning: warning('forged_sender', text, message.sender_member ?? null, message.sender_device) };
  }
  const relabelled = message.sender_member != null && message.sender_member !== device.member_id;
  return {
    member_id: device.member_id,
    display_name: trust.member(device.member_id)?.display_name ?? null,
    sign_public_key: device.sign_public_key,
    warning: relabelled
      ? warning('forged_sender', `the server says ${message.sender_member} sent a message of ${device.member_id}'s device`, device.member_id, device.device_id)
      : null,
  };
}

/**
 * @typedef {{ids: Map<string, string>, fingerprints: Map<string, string>, hashes: Map<string, string>}} Derived
 * @returns {Promise<Derived>}
 */
async function derive(members, devices) {
  const ids = new Map();
  const fingerprints = new Map();
  const hashes = new Map();
  for (const d of devices) {
    const key = d.device_cert?.sign_public_key;
    if (!isKey(key) || ids.has(key)) continue;
    ids.set(key, await deviceIdFor(b64d(key)));
  }
  for (const m of members) {
    const cert = m.member_cert;
    if (isObject(cert) && cert.root === true && isKey(cert.identity_key)) {
      fingerprints.set(cert.identity_key, await fingerprint(cert.identity_key));
    }
    for (const s of Array.isArray(m.role_statements) ? m.role_statements : []) {
      if (isObject(s)) hashes.set(canonical(s), await statementHash(s));
    }
  }
  return { ids, fingerprints, hashes };
}

/** How many certificates name each ticket key (more than one: all of them are refused). */
function ticketUses(members, devices) {
  const uses = new Map();
  const certs = [...[...members].map((m) => m.member_cert), ...[...devices].map((d) => d.device_cert)];
  for (const cert of certs) {
    if (isObject(cert) && typeof cert.ticket_key === 'string') uses.set(cert.ticket_key, (uses.get(cert.ticket_key) || 0) + 1);
  }
  return uses;
}
