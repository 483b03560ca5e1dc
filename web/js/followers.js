// @ts-check
// Which followers of a public tribe get its sender keys, as this device verifies them
// (docs/protocol.md, 16.3; bocage/client/followers.py's rules): never on the server's word.
// A roster device is a follower when its certificate is a follower certificate. It gets the key
// only when its join ticket names this tribe and organisation and was signed by a device this
// view certifies, unrevoked then, of a member who was then an admin or owner, or who is an
// author in the tribe's verified log; and when its certificate was signed by that ticket's key,
// for exactly the roster's keys and ids, before the link expired and before its signer left.
import { FOLLOWER_CERT, StatementError, TICKET, checkShape, publicKeyOf, signStatement, verifyStatement } from './certs.js';
import { CryptoError, b64d, b64e, base32Lower, checkBoxPublicKey, deviceIdFor, sha256, utf8 } from './wire.js';
import { ENTRY_ORDER_SKEW_SECONDS } from './membership.js';
import { HostAuthority, SharedView } from './shared.js';

/** @typedef {import('./certs.js').TrustView} TrustView */
/** @typedef {import('./certs.js').DeviceTrust} DeviceTrust */
/** @typedef {import('./certs.js').TrustWarning} TrustWarning */
/** @typedef {import('./membership.js').LogState} LogState */
/** @typedef {{device_id: string, member_id?: string, sign_public_key?: string, box_public_key?: string, device_cert?: any, ticket?: any}} RosterRow */

const MAX_JOIN_TICKET_SECONDS = 5 * 365 * 86400;
const ADMIN_ROLES = ['admin', 'owner'];

/** @param {RosterRow} row */
export function isFollowerDevice(row) {
  return Boolean(row.device_cert) && row.device_cert.purpose === FOLLOWER_CERT;
}

/** f_ + base32(sha256(sign public key)[:10]) (chalicelib/domain/ids.py follower_id_for). */
export async function followerIdFor(signPublicKey) {
  return `f_${base32Lower((await sha256(signPublicKey)).slice(0, 10))}`;
}

/**
 * A joining device's follower certificate, signed with the join link's ticket key (16.2; the
 * same bytes as bocage/client/issuing.py follower_cert).
 * @param {{org: string, channel: string, ticket: string}} link the join URL's parameters
 * @param {Uint8Array} signPublicKey
 * @param {Uint8Array} boxPublicKey
 * @param {string} displayName
 * @param {number} now
 */
export async function followerCertificate(link, signPublicKey, boxPublicKey, displayName, now) {
  const seed = b64d(link.ticket);
  const body = {
    purpose: FOLLOWER_CERT,
    org_id: link.org,
    channel_id: link.channel,
    follower_id: await followerIdFor(signPublicKey),
    device_id: await deviceIdFor(signPublicKey),
    sign_public_key: b64e(signPublicKey),
    box_public_key: b64e(boxPublicKey),
    display_name: displayName,
    ticket_key: publicKeyOf(seed),
    issued_at: now,
  };
  return signStatement(body, seed);
}

/** What a joining device signs with its new key (chalicelib/domain/followers.py join_proof_message). */
export function joinProofMessage(linkId, boxPublicKey) {
  return utf8(`bocage-join\n${linkId}\n${boxPublicKey}`);
}

/**
 * Every follower the roster lists, verified: the device trust of those who get the key, a
 * warning for each refused one.
 * @param {TrustView} view
 * @param {LogState|null} state
 * @param {RosterRow[]} roster
 * @param {string} channelId
 * @returns {Promise<Map<string, DeviceTrust|TrustWarning>>}
 */
export async function verifyFollowers(view, state, roster, channelId) {
  /** @type {Map<string, DeviceTrust|TrustWarning>} */
  const found = new Map();
  for (const row of roster.filter(isFollowerDevice)) found.set(row.device_id, await verifiedFollower(view, state, row, channelId));
  return found;
}

/**
 * @param {TrustView} view
 * @param {LogState|null} state
 * @param {RosterRow} row
 * @param {string} channelId
 * @returns {Promise<DeviceTrust|TrustWarning>}
 */
export async function verifiedFollower(view, state, row, channelId) {
  const refused = (/** @type {string} */ message) => ({ code: 'uncertified_follower', member_id: row.member_id ?? null, device_id: row.device_id, message: `${row.device_id}: ${message}` });
  // A ticket naming a group or a direct conversation makes nobody a reader there (no signed "joined").
  if (state?.kind !== 'tribe') return refused(`followers are a public tribe's; this channel's signed log is a '${state?.kind ?? 'unknown'}'`);
  try {
    const shape = checkShape(row.ticket, TICKET);
    const issuedAt = Number(shape.issued_at);
    if (issuedAt < (state?.created_at ?? 0) - ENTRY_ORDER_SKEW_SECONDS) return refused('its join ticket is dated before the tribe was created');
    const issuer = view.usable(String(shape.issuer_device), issuedAt);
    if (!issuer) return refused('its join ticket was not signed by a certified, unrevoked device');
    // In a partner's tribe (22.6), the host's ticket is checked with the host's roles.
    const host = state?.org_id || view.orgId;
    const roles = host !== view.orgId && view instanceof SharedView ? new HostAuthority(host, view) : view;
    const role = roles.orgRole(issuer.member_id, issuedAt);
    if (!ADMIN_ROLES.includes(role || '') && state?.members[issuer.member_id] !== 'author') {
      return refused('its join ticket was signed by someone who does not manage this tribe');
    }
    const ticket = joinTicket(shape, host, channelId, issuer.sign_public_key, view.cache);
    const cert = await followerCert(row, ticket, view.cache);
    const revoked = view.revokedAt(issuer.device_id);
    const removed = view.removedAt(issuer.member_id);
    const at = Number(cert.issued_at);
    if ((revoked !== null && at >= revoked) || (removed !== null && at >= removed)) {
      return refused("certified after its join ticket's signer was revoked or removed");
    }
    // Anyone with the poster can certify a "follower" over a member's public keys: the device
    // stays the member's, or the server could file her votes under that follower and refuse her posts.
    if (view.device(row.device_id)) return refused("its keys are a certified member device's: a follower certificate cannot take them over");
    /** @type {DeviceTrust} the certificate's keys, never the roster's */
    const device = {
      device_id: row.device_id,
      member_id: String(row.member_id),
      sign_public_key: String(cert.sign_public_key),
      box_public_key: String(cert.box_public_key),
    };
    return device;
  } catch (err) {
    // A key that is no base64url (CryptoError) is a refusal too, never a failed send.
    if (err instanceof StatementError || err instanceof CryptoError) return refused(err.message);
    throw err;
  }
}

/**
 * A follower ticket of this tribe, signed by the issuer's device key; StatementError if not.
 * Signatures checked once stay checked (`cache`): a tribe of a thousand followers is not a
 * thousand verifications at each send.
 */
function joinTicket(shape, orgId, channelId, issuerSignKey, cache) {
  const checked = verifyStatement(shape, TICKET, issuerSignKey, cache);
  if (checked.grant !== 'follower' || checked.org_id !== orgId || checked.channel_id !== channelId) {
    throw new StatementError('ticket: expected a follower ticket of this tribe');
  }
  const issued = Number(checked.issued_at);
  const expires = Number(checked.expires_at);
  if (!(issued < expires && expires <= issued + MAX_JOIN_TICKET_SECONDS)) {
    throw new StatementError('ticket: expires_at must follow issued_at, within five years');
  }
  return checked;
}

/** The follower's certificate, signed by the ticket's key for exactly this row's keys and ids. */
async function followerCert(row, ticket, cache) {
  const checked = verifyStatement(row.device_cert, FOLLOWER_CERT, String(ticket.ticket_key), cache);
  const signKey = String(row.sign_public_key);
  const raw = b64d(signKey);
  const expected = {
    org_id: ticket.org_id,
    channel_id: ticket.channel_id,
    ticket_key: ticket.ticket_key,
    sign_public_key: signKey,
    box_public_key: row.box_public_key,
    device_id: await deviceIdFor(raw),
    follower_id: await followerIdFor(raw),
  };
  const wrong = Object.entries(expected).filter(([name, value]) => checked[name] !== value).map(([name]) => name).sort();
  if (wrong.length) throw new StatementError(`follower_cert: ${wrong.join(', ')} do not match this device and join link`);
  if (Number(checked.issued_at) > Number(ticket.expires_at)) throw new StatementError('follower_cert: issued after its join link expired');
  try {
    checkBoxPublicKey(String(row.box_public_key));
  } catch (err) {
    throw new StatementError(err instanceof Error ? err.message : String(err));
  }
  if (checked.device_id !== row.device_id || checked.follower_id !== row.member_id) {
    throw new StatementError('the roster names another device or follower than its certificate');
  }
  return checked;
}
