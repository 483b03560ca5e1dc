// @ts-check
// Partner organisations as this browser verifies them (docs/protocol.md, section 22; the same
// rules as bocage/client/partners.py). A partner's root is pinned only through a partnership
// statement signed by an admin device of our own organisation, checked up to our pinned root;
// the inviting side countersigns only an acceptance signed with the invitation's ticket key,
// which travelled in the code alone. An end once seen is remembered with its date (`kept`): a
// server that hides it later is caught. Pure: the caller fetches and stores; runs under node.
import {
  FOREVER,
  PARTNERSHIP,
  PARTNERSHIP_END,
  PARTNERSHIP_END_V2,
  PARTNER_ACCEPT,
  STATEMENT_CLOCK_SKEW,
  StatementError,
  TICKET,
  TrustView,
  checkShape,
  fingerprint,
  newTicket,
  publicKeyOf,
  signSeed,
  signStatement,
  verifyStatement,
  withFragment,
} from './certs.js';
import { CryptoError, b64d } from './wire.js';

/** @typedef {import('./certs.js').Statement} Statement */
/** @typedef {import('./certs.js').TrustWarning} TrustWarning */
/** @typedef {{org_id: string, member_id: string, device_id: string, root?: string, signSecretKey: Uint8Array}} Device */
/** @typedef {{code: string, org: string, ticket: string, root: string, server: string|null}} PartnerTarget */
/**
 * What this device keeps per partner; `ends`: ticket key → the end's date (s) of every
 * partnership with it whose end this device saw (22.7); for shared groups (22.6) also the
 * partner's name as first seen with a verified partnership, and whether our statement
 * (`allow_tribes`) and theirs (`their_allow_tribes`) let the other's members into tribes.
 * `begun`: ticket key → when that partnership began as verified here (its verified statements),
 * which an end's signature may not predate; a record without it knows none (ends first seen).
 * `ended_keys` is how a record kept before ends had dates names them.
 * @typedef {{root: string|null, ticket_key: string, ended: boolean, active: boolean, ends?: Record<string, number>, begun?: Record<string, number>, ended_keys?: string[], name?: string, allow_tribes?: boolean, their_allow_tribes?: boolean}} KeptPartner
 */

/**
 * Every invitation (ticket key) of this partner whose end this device saw, with the end's date
 * (22.7): a listing that shows one again without its end, even after a newer partnership, is a
 * rollback. A record kept before ends had dates names their keys only: dated `now`, as first
 * seen (the caller keeps them so). `_ends` in bocage/client/partners.py says the same.
 * @param {KeptPartner | undefined} before
 * @param {number} now
 * @returns {Record<string, number>}
 */
export function keptEnds(before, now) {
  /** @type {Record<string, number>} */
  const ends = Object.fromEntries(Object.entries(before?.ends || {}).map(([key, at]) => [key, Number(at)]));
  const undated = new Set((before?.ended_keys || []).map(String));
  if (before?.ended) undated.add(String(before.ticket_key));
  for (const key of undated) if (!Object.hasOwn(ends, key)) ends[key] = now;
  return ends;
}

/**
 * The invitation's ticket key a GET /partners entry lists (what our end names, 22.7).
 * @param {Statement} entry
 */
export function ticketKeyOf(entry) {
  return entry.ticket && typeof entry.ticket === 'object' ? String(entry.ticket.ticket_key) : '';
}
/** @typedef {{members: Statement[], devices: Statement[]}} Listing */

export const PARTNER_TICKET_SECONDS = 7 * 86400;
const MAX_PARTNER_TICKET_SECONDS = 30 * 86400;
const CODE_PREFIX = 'bocage-partner:v2:';
const ADMIN_ROLES = ['admin', 'owner'];
const PARTS = ['code', 'org', 'ticket', 'root'];

/** A refusal this device reports as `invalid_partnership`. */
export class PartnerRefused extends Error {}

const looksLike = (value, prefix) => typeof value === 'string' && value.startsWith(`${prefix}_`) && value.length === prefix.length + 17;
const warn = (code, message) => /** @type {TrustWarning} */ ({ code, member_id: null, device_id: null, message });
const refused = (partner, message) => warn('invalid_partnership', `partnership with ${partner}: ${message}`);

// -- codes and links (22.2) -----------------------------------------------------------------

/** The invitation as one line to paste: the link's content without the server. */
export function partnerCode(code, orgId, seed, root) {
  return `${CODE_PREFIX}${code}:${orgId}:${seed}:${root}`;
}

/**
 * A partner code or link (chalicelib/domain/partners.py parse_partner); PartnerRefused naming
 * what is wrong.
 * @param {string} text
 * @returns {PartnerTarget}
 */
export function parsePartner(text) {
  const value = String(text || '').trim();
  /** @type {Record<string, string>} */
  let params;
  let server = null;
  if (value.startsWith(CODE_PREFIX)) {
    const parts = value.slice(CODE_PREFIX.length).split(':');
    if (parts.length !== 4) throw new PartnerRefused('a partner code has four parts after bocage-partner:v2:');
    params = Object.fromEntries(PARTS.map((name, i) => [name, parts[i]]));
  } else {
    const hash = value.indexOf('#');
    const fragment = hash < 0 ? '' : value.slice(hash + 1);
    if (!fragment.startsWith('/partner?')) throw new PartnerRefused('not a partner invitation: give its code (bocage-partner:v2:...) or link');
    params = Object.fromEntries(new URLSearchParams(fragment.slice('/partner?'.length)));
    server = (params.server || '').replace(/\/+$/, '') || null;
  }
  const missing = PARTS.filter((name) => !params[name]);
  if (missing.length) throw new PartnerRefused(`this partner invitation lacks ${missing.join(', ')}: copy all of it`);
  if (!looksLike(params.org, 'o') || !looksLike(params.code, 'p')) throw new PartnerRefused('this partner invitation names no organisation or code');
  let sizes;
  try {
    sizes = [b64d(params.ticket).length, b64d(params.root).length];
  } catch {
    throw new PartnerRefused("this partner invitation's ticket or root is not base64url");
  }
  if (sizes[0] !== 32 || sizes[1] !== 32) throw new PartnerRefused("this partner invitation's ticket and root must be 32 bytes each");
  return { code: params.code, org: params.org, ticket: params.ticket, root: params.root, server };
}

// -- a member's contact card for partners (22.6) --------------------------------------------

/**
 * A contact card refused; `code` names the reason for the app's message (error.<code>).
 * @typedef {'card_invalid'|'card_own'|'card_not_partner'|'card_mismatch'|'card_uncertified'|'card_not_member'} CardCode
 */
export class CardRefused extends PartnerRefused {
  /** @param {CardCode} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export const CARD_MISMATCH = "this card's key does not match what the server lists: ask them for their card again";

/**
 * The link a member hands to a partner's group manager (chalicelib/domain/partners.py card_url):
 * who they are, with the fingerprint of their identity key; no secret.
 * @param {string} appUrl
 * @param {{org_id: string, member_id: string, name: string, fingerprint: string}} card
 */
export function cardUrl(appUrl, card) {
  const query = new URLSearchParams({ org: card.org_id, member: card.member_id, name: card.name, fp: card.fingerprint });
  return `${appUrl.replace(/\/+$/, '')}/#/card?${query}`;
}

/**
 * A contact card's link as pasted or scanned (chalicelib/domain/partners.py parse_card).
 * @param {string} text
 * @returns {{org_id: string, member_id: string, name: string, fingerprint: string}}
 */
export function parseCard(text) {
  const value = String(text || '').trim();
  const hash = value.indexOf('#');
  const fragment = hash < 0 ? '' : value.slice(hash + 1);
  if (!fragment.startsWith('/card?')) throw new CardRefused('card_invalid', 'not a contact card: paste the whole link (…/#/card?org=…)');
  const params = Object.fromEntries(new URLSearchParams(fragment.slice('/card?'.length)));
  const missing = ['org', 'member', 'fp'].filter((name) => !params[name]);
  if (missing.length) throw new CardRefused('card_invalid', `this contact card lacks ${missing.join(', ')}: copy all of it`);
  if (!looksLike(params.org, 'o') || !looksLike(params.member, 'm')) throw new CardRefused('card_invalid', 'this contact card names no organisation or member');
  let size;
  try {
    size = b64d(params.fp).length;
  } catch {
    throw new CardRefused('card_invalid', "this contact card's fingerprint is not base64url");
  }
  if (size !== 32) throw new CardRefused('card_invalid', "this contact card's fingerprint must be 32 bytes");
  return { org_id: params.org, member_id: params.member, name: params.name || '', fingerprint: params.fp };
}

/**
 * The partner's member a card names, checked against GET /partners/{o}/members/{m}: certified up
 * to the root our statement pins, their identity key the card's (a server listing another key,
 * or nobody, is refused), and someone who may join our groups. With the identity key checked,
 * which the caller keeps (22.6).
 * @param {{org_id: string, member_id: string, fingerprint: string}} card
 * @param {KeptPartner | undefined} pinned what this device keeps about the card's organisation
 * @param {Listing} listing
 */
export async function checkCard(card, pinned, listing) {
  if (!pinned?.root || !pinned.active || pinned.ended) {
    throw new CardRefused('card_not_partner', 'this card is of an organisation that is not an active partner of yours');
  }
  const view = await TrustView.create(card.org_id, pinned.root, listing.members, listing.devices);
  const listed = view.identityKey(card.member_id);
  if (!listed || (await fingerprint(listed)) !== card.fingerprint) throw new CardRefused('card_mismatch', CARD_MISMATCH);
  const member = view.member(card.member_id);
  if (!member || !view.certified(card.member_id)) {
    throw new CardRefused('card_uncertified', "this card's member is not certified up to their organisation's pinned root");
  }
  if (!view.mayJoin(card.member_id, FOREVER) || view.role(card.member_id) === 'guest') {
    throw new CardRefused('card_not_member', "this card's member may not join your groups (removed, or a guest)");
  }
  return { member_id: card.member_id, org_id: card.org_id, display_name: `${member.display_name} (${pinned.name || card.org_id})`, identity_key: listed };
}

// -- what this device signs -----------------------------------------------------------------

/**
 * A partner ticket signed by this admin device: its seed goes only into the code and link.
 * @param {Device} device
 * @param {boolean} allowTribes
 * @param {number} now
 * @returns {{seed: string, ticket: Statement}}
 */
export function partnerTicket(device, allowTribes, now) {
  return newTicket(device, { grant: 'partner', allow_tribes: allowTribes }, now, PARTNER_TICKET_SECONDS);
}

/**
 * The code and full link to show, from POST /partners/invitations's answer: the secret seed and
 * our root are added here, never sent.
 * @param {{code: string, org_id: string, url: string}} answer
 * @param {string} seed
 * @param {string} root
 */
export function invitationLinks(answer, seed, root) {
  return { code: partnerCode(answer.code, answer.org_id, seed, root), url: withFragment(answer.url, { ticket: seed, root }) };
}

/**
 * What an admin device of the accepting organisation posts to POST /partners/accept: the
 * acceptance carrying our root, signed with the code's ticket key, and our statement pinning
 * the inviter's root from the code.
 * @param {Device & {root: string}} device
 * @param {string} codeOrUrl
 * @param {string} server this deployment's API address (a link naming another one is refused)
 * @param {boolean} allowTribes whether our tribes let the partner's members in
 * @param {number} now
 */
export function acceptInvitation(device, codeOrUrl, server, allowTribes, now) {
  const target = parsePartner(codeOrUrl);
  if (target.org === device.org_id) throw new PartnerRefused('this invitation comes from your own organisation');
  if (target.server !== null && target.server !== server.replace(/\/+$/, '')) {
    throw new PartnerRefused(`this invitation is for another deployment (${target.server}): partners share one`);
  }
  const seed = b64d(target.ticket);
  const ticketKey = publicKeyOf(seed);
  const acceptance = signStatement(
    { purpose: PARTNER_ACCEPT, org_id: device.org_id, partner_org_id: target.org, root: device.root, ticket_key: ticketKey, by_device: device.device_id, issued_at: now },
    seed,
  );
  const statement = partnershipStatement(device, target.org, target.root, ticketKey, allowTribes, now);
  return { code: target.code, acceptance, statement };
}

/** This organisation's statement pinning a partner's root, signed by this (admin's) device. */
export function partnershipStatement(device, partnerOrg, partnerRoot, ticketKey, allowTribes, now) {
  const body = {
    purpose: PARTNERSHIP,
    org_id: device.org_id,
    partner_org_id: partnerOrg,
    partner_root: partnerRoot,
    allow_tribes: allowTribes,
    ticket_key: ticketKey,
    by_device: device.device_id,
    issued_at: now,
  };
  return signStatement(body, signSeed(device));
}

/**
 * The end of the partnership made by the invitation `ticketKey`, signed by this (admin's)
 * device: DELETE /partners/{org}. It names the invitation, so it ends no later partnership (22.7).
 */
export function partnershipEnd(device, partnerOrg, ticketKey, now) {
  const body = { purpose: PARTNERSHIP_END, org_id: device.org_id, partner_org_id: partnerOrg, ticket_key: ticketKey, by_device: device.device_id, issued_at: now };
  return signStatement(body, signSeed(device));
}

/**
 * An end statement, its shape checked: v3 names its invitation (`ticket_key`); v2, signed before
 * ends did, names none (still read where stored). chalicelib/domain/partners.py end_shape.
 * @param {unknown} statement
 */
function endShape(statement) {
  const purpose = statement && typeof statement === 'object' ? /** @type {Statement} */ (statement).purpose : null;
  return checkShape(statement, purpose === PARTNERSHIP_END_V2 ? PARTNERSHIP_END_V2 : PARTNERSHIP_END);
}

// -- checks (the same as chalicelib/domain/partners.py) ----------------------------------------

/** A partner ticket of `orgId` signed by `issuerKey`, lasting at most 30 days. */
export function verifyPartnerTicket(ticket, orgId, issuerKey) {
  const checked = verifyStatement(ticket, TICKET, issuerKey);
  if (checked.grant !== 'partner' || checked.org_id !== orgId) throw new StatementError('expected a partner ticket of this organisation');
  const issued = Number(checked.issued_at);
  const expires = Number(checked.expires_at);
  if (!(issued < expires && expires <= issued + MAX_PARTNER_TICKET_SECONDS)) throw new StatementError('a partner ticket expires after it is issued, within 30 days');
  return checked;
}

/** The acceptance, signed by the ticket's key (only whoever held the code could). */
export function verifyAcceptance(acceptance, ticket, accepter) {
  const shaped = checkShape(acceptance, PARTNER_ACCEPT);
  if (shaped.ticket_key !== ticket.ticket_key) throw new StatementError('the acceptance names another ticket');
  const checked = verifyStatement(shaped, PARTNER_ACCEPT, String(ticket.ticket_key));
  if (checked.org_id !== accepter || checked.partner_org_id !== ticket.org_id) throw new StatementError('the acceptance names other organisations');
  if (Number(checked.issued_at) > Number(ticket.expires_at)) throw new StatementError('the acceptance was signed after the invitation expired');
  return checked;
}

function verifyPartnership(statement, orgId, partnerOrg, ticketKey, signerKey) {
  const checked = verifyStatement(statement, PARTNERSHIP, signerKey);
  if (checked.org_id !== orgId || checked.partner_org_id !== partnerOrg) throw new StatementError('the partnership statement names other organisations');
  if (checked.ticket_key !== ticketKey) throw new StatementError('the partnership statement names another invitation');
  return checked;
}

/** The signing key of `deviceId` if it is a certified device of an admin of `view` at `at`. */
function adminSigner(view, deviceId, at) {
  const signer = view.signer(deviceId, at);
  if (signer === null) throw new PartnerRefused(`${deviceId} is not a certified device of ${view.orgId}`);
  if (!ADMIN_ROLES.includes(view.orgRole(signer[0], at) || '')) throw new PartnerRefused(`${deviceId} was not an admin's device when it signed`);
  return signer[1];
}

/** A partner ticket signed by a device of one of our admins, certified in our view. */
function ourTicket(view, ticket) {
  const shaped = checkShape(ticket, TICKET);
  const key = adminSigner(view, String(shaped.issuer_device), Number(shaped.issued_at));
  return verifyPartnerTicket(shaped, view.orgId, key);
}

const isRefusal = (err) => err instanceof StatementError || err instanceof PartnerRefused || err instanceof CryptoError;

// -- the inviting side's countersignature (22.3) --------------------------------------------------

/**
 * Whether this device, an admin's, should countersign this listed partnership: never one whose
 * end it saw (a server hiding the end would otherwise get a fresh countersignature).
 * @param {Statement} entry a GET /partners entry
 * @param {TrustView} view our organisation
 * @param {string} memberId this device's member
 * @param {Record<string, KeptPartner>} [kept] what this device remembers per partner
 */
export function awaitsUs(entry, view, memberId, kept = {}) {
  if (Object.hasOwn(keptEnds(kept[String(entry.partner_org_id)], 0), ticketKeyOf(entry))) return false;
  return ADMIN_ROLES.includes(view.role(memberId) || '') && entry.side === 'inviter' && entry.ours == null && entry.end == null;
}

/**
 * Our statement for PUT /partners/{org}, only if the ticket is our admin's and the acceptance
 * its key's; pinning exactly the root the acceptance carries. A refusal is a warning.
 * @param {Statement} entry
 * @param {TrustView} view
 * @param {Device} device
 * @param {number} now
 * @returns {{statement: Statement|null, warnings: TrustWarning[]}}
 */
export function countersignature(entry, view, device, now) {
  const partner = String(entry.partner_org_id);
  try {
    const ticket = ourTicket(view, entry.ticket);
    const acceptance = verifyAcceptance(entry.acceptance, ticket, partner);
    const statement = partnershipStatement(device, partner, String(acceptance.root), String(ticket.ticket_key), Boolean(ticket.allow_tribes), now);
    return { statement, warnings: [] };
  } catch (err) {
    if (!isRefusal(err)) throw err;
    return { statement: null, warnings: [refused(partner, `not countersigned: ${err.message}`)] };
  }
}

// -- the partnership as this device verifies it (22.5) --------------------------------------------

/**
 * The entry with `status` (pending | active | ended) and `partner_root` as this device verifies
 * them, the warnings, and `kept` updated (the caller stores it). `now`: this device's clock (s),
 * which dates an end first seen here (22.7).
 * @param {Statement} entry a GET /partners entry
 * @param {{view: TrustView, ownRoot: string, kept: Record<string, KeptPartner>, partnerListing: (orgId: string) => Promise<Listing>, now: number}} context
 * @returns {Promise<{entry: Record<string, any>, warnings: TrustWarning[]}>}
 */
export async function checkPartner(entry, { view, ownRoot, kept, partnerListing, now }) {
  const partner = String(entry.partner_org_id);
  const ticketKey = ticketKeyOf(entry);
  /** @type {TrustWarning[]} */
  const warnings = [];
  let root = null;
  try {
    root = pinnedByUs(entry, partner, ticketKey, view);
  } catch (err) {
    if (!isRefusal(err)) throw err;
    if (entry.ours != null) warnings.push(refused(partner, err.message));
  }
  let theirsOk = false;
  if (root !== null && entry.theirs != null) {
    try {
      await checkTheirs(entry.theirs, partner, ticketKey, root, view.orgId, ownRoot, partnerListing);
      theirsOk = true;
    } catch (err) {
      if (!isRefusal(err)) throw err;
      warnings.push(refused(partner, `the partner's statement: ${err.message}`));
    }
  }
  const before = kept[partner];
  const ends = keptEnds(before, now);
  /** @type {Record<string, number>} */
  const begun = Object.fromEntries(Object.entries(before?.begun || {}).map(([key, at]) => [key, Number(at)]));
  if (root !== null) begun[ticketKey] = Math.max(begun[ticketKey] ?? 0, latestOf(entry.ours, theirsOk ? entry.theirs : null));
  const keptAt = Object.hasOwn(ends, ticketKey) ? ends[ticketKey] : null;
  let endedAt = null;
  if (entry.end != null) {
    // Our own invitation, never countersigned, of a partner of which this device keeps nothing.
    const unpinned = entry.ours == null && !before?.root && Object.keys(before?.begun || {}).length === 0 && vouched(entry, view);
    try {
      endedAt = await endDate(entry, partner, { view, keptAt, root: root ?? before?.root ?? null, unpinned, begun: begun[ticketKey] ?? null, partnerListing, now, warnings });
    } catch (err) {
      if (!isRefusal(err)) throw err;
      warnings.push(refused(partner, `end statement ignored: ${err.message}`));
    }
  }
  let ended = endedAt !== null;
  const began = root !== null ? Number(entry.ours.issued_at) : null; // verified
  const rollback = ended ? null : rolledBack(entry, root, view, before, ends, began, begun);
  if (rollback !== null) {
    warnings.push(warn('partnership_rollback', `partnership with ${partner}: ${rollback.why}`));
    ended = true;
    endedAt = rollback.at;
  }
  const status = ended ? 'ended' : root !== null && theirsOk ? 'active' : 'pending';
  if (endedAt !== null && !Object.hasOwn(ends, ticketKey)) ends[ticketKey] = endedAt;
  if (root !== null || endedAt !== null) { // not a hidden end: the kept record stays
    const name = pinnedName(partner, before, String(entry.partner_name || partner), warnings);
    kept[partner] = {
      root: root ?? before?.root ?? null,
      ticket_key: ticketKey,
      ended,
      active: status === 'active',
      ends,
      begun,
      name,
      allow_tribes: Boolean(entry.ours?.allow_tribes),
      their_allow_tribes: Boolean(entry.theirs?.allow_tribes),
    };
  }
  return { entry: { ...entry, status, server_status: entry.status, partner_root: root, verified: root !== null }, warnings };
}

/**
 * The partner's name as first seen with a verified partnership: no statement signs it, so a
 * server renaming it later cannot make its members show as another organisation's (22.6); a
 * change is reported (`partner_renamed`), not taken.
 */
function pinnedName(partner, before, served, warnings) {
  const pinned = String(before?.name || served);
  if (served !== pinned) {
    warnings.push(warn('partner_renamed', `the server now names ${partner} '${served}'; its members stay shown with '${pinned}', the name this device first saw`));
  }
  return pinned;
}

/** The partner's root our own organisation's statement pins (and, inviting, the acceptance carried). */
function pinnedByUs(entry, partner, ticketKey, view) {
  if (entry.ours == null) throw new PartnerRefused('your organisation has not signed this partnership yet');
  const shaped = checkShape(entry.ours, PARTNERSHIP);
  const key = adminSigner(view, String(shaped.by_device), Number(shaped.issued_at));
  const ours = verifyPartnership(shaped, view.orgId, partner, ticketKey, key);
  if (entry.side === 'inviter') {
    const acceptance = verifyAcceptance(entry.acceptance, ourTicket(view, entry.ticket), partner);
    if (acceptance.root !== ours.partner_root) throw new PartnerRefused('our statement pins another root than the one the acceptance carried');
  }
  return String(ours.partner_root);
}

/**
 * The partner's statement names this pair, this invitation and our root, signed by a device of
 * one of the partner's admins certified up to the root our statement pins.
 */
async function checkTheirs(theirs, partner, ticketKey, root, orgId, ownRoot, partnerListing) {
  const shaped = checkShape(theirs, PARTNERSHIP);
  if (shaped.org_id !== partner || shaped.partner_org_id !== orgId || shaped.ticket_key !== ticketKey) {
    throw new PartnerRefused("the partner's statement names another pair or invitation");
  }
  if (shaped.partner_root !== ownRoot) throw new PartnerRefused("the partner's statement pins another root than ours");
  const { members, devices } = await partnerListing(partner);
  const theirView = await TrustView.create(partner, root, members, devices);
  const key = adminSigner(theirView, String(shaped.by_device), Number(shaped.issued_at));
  verifyPartnership(shaped, partner, orgId, ticketKey, key);
}

/**
 * When the partnership ended in this device's view (22.5, 22.7); a refusal if the end does not
 * count. An end by either side counts (ending only takes trust away), but ours must verify, and
 * one naming another invitation (an earlier partnership's, served again) is not this one's. It
 * is dated by its signature when that verifies (the partner's, over its listing up to the root
 * we pinned), else when first seen (`now`), whichever is earlier; a date kept once (`keptAt`)
 * never moves. Its signature dates it only after our statement of this partnership verified
 * here (`begun`, now or before) and if not older than that: else it is dated when first seen,
 * reported when that moves it (a v2 end of an earlier partnership, or an end signed for an
 * invitation before it was accepted), except a v3 end of our own invitation never countersigned
 * (`unpinned`, nothing of that partner kept here): that date changes nothing judged here.
 * @param {Statement} entry the GET /partners entry, with its `end`
 * @param {string} partner
 * @param {{view: TrustView, keptAt: number|null, root: string|null, unpinned: boolean, begun: number|null, partnerListing: (orgId: string) => Promise<Listing>, now: number, warnings: TrustWarning[]}} context
 * @returns {Promise<number>}
 */
async function endDate(entry, partner, { view, keptAt, root, unpinned, begun, partnerListing, now, warnings }) {
  const shaped = endShape(entry.end);
  const parties = new Set([shaped.org_id, shaped.partner_org_id]);
  if (parties.size !== 2 || !parties.has(partner) || !parties.has(view.orgId)) throw new PartnerRefused('the end statement names another pair');
  const named = shaped.ticket_key ?? null;
  if (named !== null && named !== ticketKeyOf(entry)) throw new PartnerRefused("it names another invitation than this partnership's");
  let signedAt = null;
  if (shaped.org_id === view.orgId) signedAt = signedEnd(shaped, view);
  else if (keptAt === null) signedAt = await partnersEnd(shaped, partner, root, partnerListing, warnings);
  if (keptAt !== null) return keptAt;
  if (signedAt !== null && (begun === null || signedAt + STATEMENT_CLOCK_SKEW < begun)) {
    if (begun !== null) warnings.push(refused(partner, 'its end is dated before the partnership began: dated when first seen'));
    else if (signedAt + STATEMENT_CLOCK_SKEW < now && !(unpinned && named !== null)) warnings.push(refused(partner, `${UNVERIFIED_BEGIN}: its end is dated when first seen`));
    signedAt = null;
  }
  return signedAt === null ? now : Math.min(now, signedAt);
}

const UNVERIFIED_BEGIN = 'this device never verified our statement of this partnership';

/**
 * Why an entry showing no end is ended all the same (`partnership_rollback`), and its end's date
 * (null: the kept record stays the one whose end this device saw), or null: an end seen of its
 * invitation; a kept end behind an entry whose invitation does not verify; or an older
 * partnership (`began`: our verified statement) than one whose end was seen, and whose beginning
 * was verified here (`begun`: it ended before that one began; an end dated when an old record was
 * first read, with no known beginning, proves nothing).
 * @param {Statement} entry
 * @param {string|null} root
 * @param {TrustView} view
 * @param {KeptPartner|undefined} before
 * @param {Record<string, number>} ends
 * @param {number|null} began
 * @param {Record<string, number>} begun
 * @returns {{why: string, at: number|null}|null}
 */
function rolledBack(entry, root, view, before, ends, began, begun) {
  const key = ticketKeyOf(entry);
  if (Object.hasOwn(ends, key)) return { why: 'the server hides its end, which this device saw', at: ends[key] };
  if (before?.ended && root === null && !vouched(entry, view)) return { why: 'the server hides its end, which this device saw, behind another invitation', at: null };
  const later = Object.keys(ends).filter((k) => Object.hasOwn(begun, k) && began !== null && begun[k] > began + STATEMENT_CLOCK_SKEW).map((k) => begun[k]);
  if (later.length) return { why: 'the server shows an older one again than one whose end this device saw', at: Math.min(...later) };
  return null;
}

/** Whether the entry's invitation verifies (`vouch`), without saying why not. */
function vouched(entry, view) {
  try {
    vouch(entry, String(entry.partner_org_id), ticketKeyOf(entry), view);
    return true;
  } catch (err) {
    if (!isRefusal(err)) throw err;
    return false;
  }
}

/**
 * Throw unless the entry's invitation verifies: through our statement, or (the inviter's pending
 * case) our admin's ticket and an acceptance signed with its key.
 * @param {Statement} entry
 * @param {string} partner
 * @param {string} ticketKey
 * @param {TrustView} view
 */
function vouch(entry, partner, ticketKey, view) {
  if (entry.ours != null) pinnedByUs(entry, partner, ticketKey, view);
  else if (entry.side === 'inviter') verifyAcceptance(entry.acceptance, ourTicket(view, entry.ticket), partner);
  else throw new PartnerRefused('your organisation has not signed this partnership');
}

/**
 * The ticket key an end of the listed partnership `entry` names (22.7): one this device kept for
 * a pinned partnership, or one the entry shows (`vouch`); never a key the listing alone gives (a
 * server could get an end signed for an invitation not yet accepted and serve it later as that
 * partnership's).
 * @param {Statement} entry
 * @param {TrustView} view
 * @param {Record<string, KeptPartner>} kept
 * @returns {string}
 */
export function verifiedTicketKey(entry, view, kept) {
  const partner = String(entry.partner_org_id);
  const key = ticketKeyOf(entry);
  const before = kept[partner];
  if (key && before?.root && before.ticket_key === key) return key;
  try {
    vouch(entry, partner, key, view);
  } catch (err) {
    if (!isRefusal(err)) throw err;
    throw new PartnerRefused(`not ending the partnership with ${partner}: its invitation does not verify (${err.message})`);
  }
  return key;
}

/**
 * The latest date among the partnership's statements that verified (ours, theirs; the ticket and
 * the acceptance are older): an honest end is never signed before them, and a statement the
 * server made up cannot push that date later.
 * @param {...(Statement|null|undefined)} verified
 */
function latestOf(...verified) {
  return Math.max(0, ...verified.filter((s) => s != null).map((s) => Number(/** @type {Statement} */ (s).issued_at)));
}

/** The end's `issued_at`, once checked signed by a device of an admin of its side (`view`). */
function signedEnd(shaped, view) {
  const key = adminSigner(view, String(shaped.by_device), Number(shaped.issued_at));
  verifyStatement(shaped, String(shaped.purpose), key);
  return Number(shaped.issued_at);
}

/**
 * The partner's end's `issued_at` if one of its admins signed it, up to the root we pinned (its
 * listing names the end's signers); null when that cannot be shown (nothing pinned, a listing
 * the server does not give, or a signature that does not check, reported): the end is then
 * dated when seen.
 * @param {TrustWarning[]} warnings
 */
async function partnersEnd(shaped, partner, root, partnerListing, warnings) {
  if (!root) return null;
  let listing;
  try {
    listing = await partnerListing(partner);
  } catch (err) {
    if (typeof (/** @type {any} */ (err)?.status) === 'number') return null;
    throw err;
  }
  try {
    return signedEnd(shaped, await TrustView.create(partner, root, listing.members, listing.devices));
  } catch (err) {
    if (!isRefusal(err)) throw err;
    warnings.push(refused(partner, `its end does not verify (${err.message}): dated when this device first saw it`));
    return null;
  }
}
