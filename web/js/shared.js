// @ts-check
// Members of partner organisations in shared groups, as this browser verifies them
// (docs/protocol.md, 22.6; the same rules as bocage/client/shared.py). A partner's members are
// checked with our own rules (certs.js TrustView) up to the root our own partnership statement
// pins (partners.js), and only while that partnership is active in this device's view (a log's
// entry: at its date, so what was signed before an end stays verified, 22.7). SharedView answers
// for our organisation and those partners at once, so the log's replay (membership.js), the
// recipients of a sender key and a message's sender need nothing else.
// Pure: the caller fetches and stores; runs under node.
import { FOREVER, TrustView } from './certs.js';
import { DEPARTURE_SKEW_SECONDS, GUEST, PARTNER } from './membership.js';

/** @typedef {import('./certs.js').TrustWarning} TrustWarning */
/** @typedef {import('./certs.js').Statement} Statement */
/**
 * One partner as this device verifies it. `allow_tribes`: our statement lets its members into our
 * tribes; `their_allow_tribes`: its statement lets ours into its tribes; `active` false once this
 * device saw the end (the last listing still shows who wrote what, nobody of it gets a key).
 * `ends`: the dates (s) of the ends of every partnership with this organisation this device saw
 * (22.7): the log's entries from before the latest still verify, and a member in a channel is out
 * from the first end after they joined.
 * @typedef {{org_id: string, name: string, allow_tribes: boolean, their_allow_tribes: boolean, active: boolean, ends: number[], view: TrustView}} PartnerView
 */

/**
 * Whether a partner's members count as its members for an entry dated `at` (s, 22.7): while the
 * partnership is active, or up to its latest end (give or take the clocks' skew).
 * `PartnerView.partnered_at` in bocage/client/shared.py says the same.
 * @param {PartnerView} partner
 * @param {number} at
 */
export function partneredAt(partner, at) {
  return partner.active || partner.ends.some((end) => at <= end + DEPARTURE_SKEW_SECONDS);
}

const warning = (code, message, memberId = null, deviceId = null) => /** @type {TrustWarning} */ ({ code, member_id: memberId, device_id: deviceId, message });

/** The ids (`key` of each item) found in more than one listing. */
function listedTwice(listings, key) {
  const seen = new Set();
  const twice = new Set();
  for (const listing of listings) {
    const ids = new Set([...listing].map((item) => String(item[key])));
    for (const id of ids) (seen.has(id) ? twice : seen).add(id);
  }
  return twice;
}

/** Our organisation's view, answering for the members and devices of active partners too. */
export class SharedView extends TrustView {
  /**
   * @param {TrustView} own our organisation, as verified from GET /members
   * @param {PartnerView[]} partners every partner pinned in this device's view
   * @param {{follower?: boolean}} [options] a follower's view (16.3): it pins its organisation's
   *   root only and holds no partnership statement, so a partner's member in its tribe is
   *   someone it cannot verify
   */
  constructor(own, partners = [], { follower = false } = {}) {
    super(own.orgId, own.root, own.members.values(), own.devices.values(), { verified: own.verified, seen: own.seen, revoked: own.keptRevoked, removed: own.keptRemoved, derived: own.derived, cache: own.cache });
    /** @type {Map<string, PartnerView>} */
    this.partners = new Map(partners.map((p) => [p.org_id, p]));
    this.follower = follower;
    const views = [own, ...partners.map((p) => p.view)];
    // Ids listed by more than one organisation (ours and a partner's, or two partners'): a server
    // could otherwise pass a partner's member or device off as one of ours. Nobody answers for them.
    this.clashingMembers = listedTwice(views.map((v) => v.members.values()), 'member_id');
    this.clashingDevices = listedTwice(views.map((v) => v.devices.values()), 'device_id');
    /** @type {PartnerView} */
    this.clash = { org_id: '', name: '', allow_tribes: false, their_allow_tribes: false, active: false, ends: [], view: new TrustView('', own.root, [], []) };
    // Per partner, the empty, inactive view that answers for its members the server alone vouches
    // for: a partner's member must chain to the root our statement pins, else a server could add
    // anyone to a partner's listing and have them trusted as its member.
    /** @type {Map<string, PartnerView>} */
    this.unchained = new Map(partners.map((p) => [p.org_id, { ...p, allow_tribes: false, their_allow_tribes: false, active: false, ends: [], view: new TrustView(p.org_id, own.root, [], []) }]));
  }

  isUnchained(partner) {
    return partner !== null && partner === this.unchained.get(partner.org_id);
  }

  /** @returns {PartnerView|null} */
  activePartner(orgId) {
    const partner = this.partners.get(orgId);
    return partner && partner.active ? partner : null;
  }

  // -- which organisation answers ----------------------------------------------------------

  /** @returns {PartnerView|null} the partner listing this member (null: ours or nobody's; the empty view for an id listed twice) */
  partnerOfMember(memberId) {
    if (this.clashingMembers.has(memberId)) return this.clash;
    if (this.members.has(memberId)) return null;
    const partner = [...this.partners.values()].find((p) => p.view.members.has(memberId)) || null;
    if (partner && partner.view.vouchedOnly(memberId)) return /** @type {PartnerView} */ (this.unchained.get(partner.org_id));
    return partner;
  }

  /** The partner listing this device, which must be of a member of that same listing. */
  partnerOfDevice(deviceId) {
    if (this.clashingDevices.has(deviceId)) return this.clash;
    const owner = [...this.partners.values()].find((p) => p.view.devices.has(deviceId)) || null;
    const listed = (owner ? owner.view.devices : this.devices).get(deviceId);
    if (!listed) return null;
    const holder = this.partnerOfMember(String(listed.member_id));
    if (owner && holder === this.unchained.get(owner.org_id)) return holder;
    return holder === owner ? owner : this.clash;
  }

  // -- members -----------------------------------------------------------------------------

  member(memberId) {
    const partner = this.partnerOfMember(memberId);
    if (!partner) return super.member(memberId);
    const found = partner.view.member(memberId);
    return found && { ...found, display_name: `${found.display_name} (${partner.name})` };
  }

  certified(memberId) {
    const partner = this.partnerOfMember(memberId);
    return partner ? partner.view.certified(memberId) : super.certified(memberId);
  }

  vouchedOnly(memberId) {
    const partner = this.partnerOfMember(memberId);
    return partner ? partner.view.vouchedOnly(memberId) : super.vouchedOnly(memberId);
  }

  identityKey(memberId) {
    const partner = this.partnerOfMember(memberId);
    return partner ? partner.view.identityKey(memberId) : super.identityKey(memberId);
  }

  role(memberId, at = FOREVER) {
    const partner = this.partnerOfMember(memberId);
    return partner ? partner.view.role(memberId, at) : super.role(memberId, at);
  }

  removedAt(memberId) {
    const partner = this.partnerOfMember(memberId);
    return partner ? partner.view.removedAt(memberId) : super.removedAt(memberId);
  }

  whyNotMember(memberId) {
    const partner = this.partnerOfMember(memberId);
    if (this.unplaced(memberId)) return warning('uncertified_member', `${memberId}: ${FOLLOWERS_VERIFY_OWN}`, memberId);
    if (!partner) return super.whyNotMember(memberId);
    if (partner === this.clash) return warning('uncertified_member', `${memberId} is listed by more than one organisation`, memberId);
    if (this.isUnchained(partner)) return unchained(memberId, partner);
    if (!partner.active) return ended(memberId, partner);
    return partner.view.whyNotMember(memberId);
  }

  // -- devices -----------------------------------------------------------------------------

  device(deviceId) {
    const partner = this.partnerOfDevice(deviceId);
    return partner ? partner.view.device(deviceId) : super.device(deviceId);
  }

  whyNot(deviceId) {
    const partner = this.partnerOfDevice(deviceId);
    if (this.follower && !this.devices.has(deviceId)) return warning('uncertified_device', `${deviceId}: ${FOLLOWERS_VERIFY_OWN}`, null, deviceId);
    if (partner === this.clash) {
      return warning('uncertified_device', `${deviceId} is listed by more than one organisation, or for another's member`, null, deviceId);
    }
    if (partner && this.isUnchained(partner)) {
      const memberId = String(this.partners.get(partner.org_id)?.view.devices.get(deviceId)?.member_id);
      return { ...unchained(memberId, partner), device_id: deviceId };
    }
    return partner ? partner.view.whyNot(deviceId) : super.whyNot(deviceId);
  }

  usable(deviceId, at = FOREVER) {
    const partner = this.partnerOfDevice(deviceId);
    if (!partner) return super.usable(deviceId, at);
    return partner.active ? partner.view.usable(deviceId, at) : null;
  }

  revokedAt(deviceId) {
    const partner = this.partnerOfDevice(deviceId);
    return partner ? partner.view.revokedAt(deviceId) : super.revokedAt(deviceId);
  }

  // -- the membership log (membership.js) --------------------------------------------------

  signer(deviceId, at) {
    const partner = this.partnerOfDevice(deviceId);
    if (!partner) return super.signer(deviceId, at);
    return partneredAt(partner, at) ? partner.view.signer(deviceId, at) : null;
  }

  /** A partner's member is a `partner` here, whatever their role at home: never a manager nor an author of our channels. */
  orgRole(memberId, at) {
    const partner = this.partnerOfMember(memberId);
    if (this.unplaced(memberId)) return PARTNER; // never a manager nor an author, whoever they are
    if (!partner) return super.orgRole(memberId, at);
    return partneredAt(partner, at) && partner.view.orgRole(memberId, at) !== null ? PARTNER : null;
  }

  /** A partner's member: while partners at `at` (22.7), never a partner's guest (21). */
  mayJoin(memberId, at) {
    const partner = this.partnerOfMember(memberId);
    if (this.unplaced(memberId)) return true; // the host's manager signed the add; the server checked the partnership
    if (!partner) return super.mayJoin(memberId, at);
    return partneredAt(partner, at) && partner.view.mayJoin(memberId, at) && partner.view.orgRole(memberId, at) !== GUEST;
  }

  /** Undated: whether partners at the entry's date is `mayJoin`'s to say. */
  tribesOpenTo(memberId) {
    const partner = this.partnerOfMember(memberId);
    return this.unplaced(memberId) || partner === null || (partner.allow_tribes && (partner.active || partner.ends.length > 0));
  }

  /**
   * In a follower's view, anyone its organisation's listing does not name (a partner's member,
   * 22.6): in the tribe's state as a member it cannot verify, shown and sealed nothing.
   * @param {string} memberId
   */
  unplaced(memberId) {
    return this.follower && !this.members.has(memberId) && !this.keptIdentity(memberId);
  }

  /**
   * Whether this device verified or saw this member's identity key before: a server leaving our
   * own member out of the listing makes them unverified, never someone of a partner.
   * @param {string} memberId
   */
  keptIdentity(memberId) {
    return memberId in this.verified || memberId in this.seen;
  }

  /**
   * The partnership ends that cut this member out of channels (22.7, membership.js `cutAtEnds`):
   * those of the partner whose listing holds them; none for our own members.
   * @returns {number[]}
   */
  endsOf(memberId) {
    return this.partnerOfMember(memberId)?.ends ?? [];
  }
}

/**
 * The membership log's authority (membership.js) for a channel of whichever organisation it
 * belongs to, `host` (the creation's org_id): ours (our members are members, an active
 * partner's are partners) or an active partner's (its members are members, ours are partners,
 * let into its tribes only if its statement says so). A channel of anyone else verifies nobody.
 */
export class HostAuthority {
  /**
   * @param {string} host
   * @param {SharedView} view
   */
  constructor(host, view) {
    this.host = host;
    this.view = view;
    this.cache = view.cache;
    this.ours = host === view.orgId;
    this.partner = this.ours ? null : view.activePartner(host);
  }

  claimedKey(deviceId) {
    return this.view.claimedKey(deviceId) ?? [...this.view.partners.values()].map((p) => p.view.claimedKey(deviceId)).find(Boolean);
  }

  signer(deviceId, at) {
    return this.ours || this.partner ? this.view.signer(deviceId, at) : null;
  }

  orgRole(memberId, at) {
    if (this.ours) return this.view.orgRole(memberId, at);
    if (!this.partner) return null;
    const owner = this.view.partnerOfMember(memberId);
    if (owner === this.partner) return this.partner.view.orgRole(memberId, at);
    if (owner === null && this.view.members.has(memberId)) return this.view.orgRole(memberId, at) !== null ? PARTNER : null;
    return null; // a third organisation's member
  }

  /** On a side this channel admits (as `orgRole`), and not removed by `at`. */
  mayJoin(memberId, at) {
    if (this.ours) return this.view.mayJoin(memberId, at);
    if (!this.partner) return false;
    const owner = this.view.partnerOfMember(memberId);
    // The host's own member, its guests included: the host's rules.
    if (owner === this.partner) return partneredAt(this.partner, at) && this.partner.view.mayJoin(memberId, at);
    // Ours: our guests stay in our own channels (21).
    if (owner === null && this.view.members.has(memberId)) return this.view.orgRole(memberId, at) !== GUEST && this.view.mayJoin(memberId, at);
    return false; // a third organisation's member, or an id nobody answers for
  }

  tribesOpenTo(memberId) {
    if (this.ours) return this.view.tribesOpenTo(memberId);
    if (!this.partner) return false;
    return this.view.partnerOfMember(memberId) === this.partner || this.partner.their_allow_tribes;
  }

  unplaced(memberId) {
    return this.ours && this.view.unplaced(memberId);
  }
}

const FOLLOWERS_VERIFY_OWN = "not listed as a member of this organisation: a follower verifies the organisation's own members only, never a partner organisation's (its root is pinned by no statement a follower holds, 16.3), so nothing of theirs is shown or sealed to them here";

/** @returns {TrustWarning} */
function unchained(memberId, partner) {
  return warning('server_vouched', `${memberId} is vouched for by the server only, not certified under the root of ${partner.name} this organisation pinned: not trusted as its member`, memberId);
}

function ended(memberId, partner) {
  return warning('uncertified_member', `${memberId} is a member of ${partner.name}, whose partnership with your organisation ended`, memberId);
}

/**
 * Each partner pinned in `kept` (partners.js), as a PartnerView over its listing checked up to
 * the root our statement pins. `listings`: org id → {members, devices} (the last one fetched).
 * `options`: what this device keeps, the `verified` keys and, per organisation (org id → id →
 * value), the keys `seen` of partners' members (held against their listing as our own
 * members', 22.6) and the revocations and removals verified (`revoked`, `removed`, 13.7); and
 * the signatures cache.
 * @param {Record<string, {root: string|null, ended: boolean, active: boolean, ends?: Record<string, number>, name?: string, allow_tribes?: boolean, their_allow_tribes?: boolean}>} kept
 * @param {Record<string, {members: Statement[], devices: Statement[]}>} listings
 * @param {{cache?: any, verified?: Record<string, string>, seen?: Record<string, Record<string, string>>, revoked?: Record<string, Record<string, number>>, removed?: Record<string, Record<string, number>>}} [options]
 * @returns {Promise<PartnerView[]>}
 */
export async function partnerViews(kept, listings, { cache = null, verified = {}, seen = {}, revoked = {}, removed = {} } = {}) {
  const found = [];
  for (const [orgId, listing] of Object.entries(listings)) {
    const pinned = kept[orgId];
    if (!pinned?.root) continue;
    found.push({
      org_id: orgId,
      name: String(pinned.name || orgId),
      allow_tribes: Boolean(pinned.allow_tribes),
      their_allow_tribes: Boolean(pinned.their_allow_tribes),
      active: Boolean(pinned.active) && !pinned.ended,
      ends: Object.values(pinned.ends || {}).map(Number),
      view: await TrustView.create(orgId, pinned.root, listing.members, listing.devices, {
        cache,
        verified,
        seen: seen[orgId],
        revoked: revoked[orgId],
        removed: removed[orgId],
      }),
    });
  }
  return found;
}
