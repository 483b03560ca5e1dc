// @ts-check
// What this browser trusts, kept between sessions (IndexedDB key 'trust'): the identity keys it
// saw and verified, the revocations and removals it verified, the role serials and membership-log
// heads it saw, and the warnings it must show. certs.js and membership.js decide; this module remembers and reports (protocol.md 13-15).
import {
  FOLLOWER_CERT,
  REMOVAL,
  REVOCATION,
  ROLE,
  TrustView,
  VerifiedCache,
  certifiedSender,
  parseVerification,
  safetyDigits,
  safetyNumber,
  signSeed,
  signStatement,
  verifyPayload,
} from './certs.js';
import { advance, cutAtEnds, effectiveRoster, formerKnown, refusesEndedDevice, refusesSender } from './membership.js';
import { HostAuthority, SharedView, partnerViews } from './shared.js';

const LOG_PAGE = 500;
const HISTORY_KEPT = 200; // signed membership events remembered per channel, for display
const SENDER_RECHECK_MS = 2000; // a refused sender asks for the log again at most this often per channel
/** `refusedSender`'s answer when the kept log refuses and the log could not be asked again. */
export const SENDER_UNCHECKED = 'unchecked';

/**
 * @typedef {import('./certs.js').TrustWarning} TrustWarning
 * @typedef {import('./membership.js').LogState} LogState
 * @typedef {{op: string, member_id: string, role: string|null, by_member: string|null, at: number, seq: number}} MembershipEvent
 * @typedef {import('./partners.js').KeptPartner} KeptPartner
 * @typedef {{members: any[], devices: any[]}} Listing
 * `revoked` / `removed`: org id → device id / member id → the date of the revocation / removal
 * verified once (13.7), ours and partners', each under the organisation whose listing speaks for
 * that id; `partner_seen`: org id → member id → the identity key first verified of a partner's
 * member (22.6), apart from `seen` (our own members'), so a partner's listing pins nothing under
 * one of our ids.
 * @typedef {{seen: Record<string, string>, verified: Record<string, string>, revoked: Record<string, Record<string, number>>, removed: Record<string, Record<string, number>>, partner_seen: Record<string, Record<string, string>>, serials: Record<string, number>, logs: Record<string, LogState>, history: Record<string, MembershipEvent[]>, partners?: Record<string, KeptPartner>, partner_listings?: Record<string, Listing>}} Kept
 */

// A warning about no member and no device (invalid_history, invalid_partnership) is told apart by
// its message, which names the channel or partnership, so one never hides another.
const warningKey = (w) => `${w.code}|${w.member_id || ''}|${w.device_id || ''}|${w.member_id || w.device_id ? '' : w.message}`;

export class TrustKeeper extends EventTarget {
  /**
   * @param {{get(key: string): Promise<any>, put(key: string, value: any): Promise<void>}} store
   * @param {{org_id: string, member_id: string, device_id: string, root?: string, server_root?: string|null, signSecretKey: Uint8Array}} device
   */
  constructor(store, device) {
    super();
    this.store = store;
    this.device = device;
    /** @type {Kept} */
    this.kept = { seen: {}, verified: {}, revoked: {}, removed: {}, partner_seen: {}, serials: {}, logs: {}, history: {} };
    /** @type {TrustView|null} our organisation only, as GET /members shows it */
    this.own = null;
    /** @type {SharedView|null} ours and our active partners' members (22.6): what the log, sealing and senders use */
    this.view = null;
    this.cache = new VerifiedCache();
    /** @type {Map<string, TrustWarning>} */
    this.warnings = new Map();
    /** @type {Map<string, number|string>} the roster version each channel's log was last checked at */
    this.checkedAt = new Map();
    /** @type {Map<string, boolean>} */
    this.blocked = new Map();
    /** @type {Map<string, number>} when a refused sender last made each channel's log be asked again */
    this.senderChecks = new Map();
    this.senderUnchecked = new Set(); // channels whose last sender check could not fetch the log
    /** whether the partnerships were asked for since this page opened (22.6) */
    this.partnersAsked = false;
    /** Bumped whenever what judges senders may have changed (the view, a kept log or end): cached verdicts are read again. */
    this.version = 0;
  }

  async load() {
    const stored = await this.store.get('trust');
    if (stored) this.kept = { seen: {}, verified: {}, revoked: {}, removed: {}, partner_seen: {}, serials: {}, logs: {}, history: {}, ...stored };
    await this.dateEnds();
    this.checkRoot(this.device.server_root);
  }

  /**
   * Ends kept before they had dates (22.7) are dated now, when this device first reads them,
   * and kept so: an ended partner's members are then cut from now on, never from the beginning.
   */
  async dateEnds() {
    const undated = Object.values(this.kept.partners || {}).filter((p) => (p.ended || p.ended_keys?.length) && !p.ends);
    if (!undated.length) return;
    const { keptEnds } = await import('./partners.js');
    const now = Math.floor(Date.now() / 1000);
    for (const partner of undated) partner.ends = keptEnds(partner, now);
    await this.save();
  }

  async save() {
    this.version += 1;
    await this.store.put('trust', this.kept);
  }

  /** Add warnings; tell listeners ('warnings') when any is new. */
  report(warnings) {
    let fresh = false;
    for (const w of warnings) {
      if (!this.warnings.has(warningKey(w))) fresh = true;
      this.warnings.set(warningKey(w), w);
    }
    if (fresh) this.dispatchEvent(new CustomEvent('warnings', { detail: [...this.warnings.values()] }));
  }

  dismiss(w) {
    this.warnings.delete(warningKey(w));
    this.dispatchEvent(new CustomEvent('warnings', { detail: [...this.warnings.values()] }));
  }

  /**
   * Evaluate GET /members's answer against the pinned root. Identity keys seen for the first
   * time are remembered (a later change blocks the member); role serials only go up.
   */
  async rebuild(members, devices) {
    if (!this.device.root) {
      this.view = null;
      this.own = null;
      this.version += 1;
      this.report([{ code: 'root_mismatch', member_id: null, device_id: null, message: 'this device pinned no root: activate it again' }]);
      return null;
    }
    const { verified, seen, revoked, removed } = this.kept;
    const org = this.device.org_id;
    const view = await TrustView.create(org, this.device.root, members, devices, { verified, seen, revoked: revoked[org], removed: removed[org], cache: this.cache });
    this.own = view;
    await this.keepEndings(view, () => true);
    await this.share();
    const warnings = [];
    let changed = false;
    for (const m of members) {
      const id = String(m.member_id);
      if (!m.member_cert || m.status === 'removed') continue; // invited, not activated yet; or gone
      const why = view.whyNotMember(id);
      if (why && ['identity_changed', 'ticket_reused', 'invalid_statement'].includes(why.code)) {
        warnings.push({ ...why, verified: id in this.kept.verified });
      }
      const trusted = view.member(id);
      if (!trusted) continue;
      if (!this.kept.seen[id]) {
        this.kept.seen[id] = trusted.identity_key;
        changed = true;
      }
      const serial = view.highestSerial(id);
      const before = this.kept.serials[id] || 0;
      if (serial > before) {
        this.kept.serials[id] = serial;
        changed = true;
      } else if (serial < before) {
        warnings.push({ code: 'role_rollback', member_id: id, device_id: null, message: `${id}: the server shows role serial ${serial}, below ${before} seen before` });
      }
    }
    if (changed) await this.save();
    this.report(warnings);
    return view;
  }

  /** The view over our organisation and the partners pinned here, from their last listings. */
  async share() {
    if (!this.own) return;
    const { verified, partner_seen: seen, revoked, removed } = this.kept;
    const found = await partnerViews(this.kept.partners || {}, this.kept.partner_listings || {}, { cache: this.cache, verified, seen, revoked, removed });
    this.view = new SharedView(this.own, found, { follower: this.device.member_id.startsWith('f_') });
    this.checkedAt.clear(); // another view may accept entries the last one refused: replay again
    await this.pinPartners(this.view);
    this.version += 1; // senders are judged on the new view
  }

  /**
   * Revocations and removals this listing proves are kept (13.7), under its organisation, for
   * the ids it `speaksFor` ('device' / 'member', id); one a later listing drops, or dates later,
   * is reported (`revocation_rollback`) and stays: a server cannot bring a stolen device back
   * into the keys by serving an older listing.
   * @param {TrustView} view
   * @param {(kind: string, id: string) => boolean} speaksFor
   */
  async keepEndings(view, speaksFor) {
    const revoked = (this.kept.revoked[view.orgId] ||= {});
    const removed = (this.kept.removed[view.orgId] ||= {});
    const devices = [...view.devices].filter(([id]) => speaksFor('device', id));
    const members = [...view.members].filter(([id]) => speaksFor('member', id));
    let changed = keep(devices, 'revocation', revoked, (id) => view.revokedAt(id));
    changed = keep(members, 'removal', removed, (id) => view.removedAt(id)) || changed;
    this.report(view.rollbacks.map(({ member_id: memberId, device_id: deviceId, at }) => {
      const what = deviceId ? `the revocation of device ${deviceId}` : `the removal of member ${memberId}`;
      return { code: 'revocation_rollback', member_id: memberId, device_id: deviceId, message: `the server no longer shows ${what} this device verified (dated ${at}): kept` };
    }));
    if (changed) await this.save();
  }

  /**
   * Partners' members' identity keys, seen for the first time, are kept per partner like our own
   * members' (a later change is `identity_changed`, 22.6), and so are their revocations and
   * removals; only for the ids the shared view gives that partner (chained to its pinned root,
   * listed by no other organisation): a partner's listing never speaks for our ids, nor for
   * another partner's.
   * @param {SharedView} shared
   */
  async pinPartners(shared) {
    let changed = false;
    for (const partner of shared.partners.values()) {
      const theirs = (kind, id) => (kind === 'device' ? shared.partnerOfDevice(id) : shared.partnerOfMember(id)) === partner;
      await this.keepEndings(partner.view, theirs);
      if (!partner.active) continue;
      const seen = (this.kept.partner_seen[partner.org_id] ||= {});
      for (const memberId of partner.view.members.keys()) {
        const trusted = partner.view.member(memberId);
        if (!trusted || memberId in seen) continue;
        if (theirs('member', memberId) && partner.view.certified(memberId)) {
          seen[memberId] = trusted.identity_key;
          changed = true;
        }
      }
    }
    if (changed) await this.save();
  }

  /**
   * Keep this identity key as the one seen for a partner's member (their contact card, whose
   * fingerprint matched, 22.6): a later different key is `identity_changed`.
   */
  async pinIdentity(orgId, memberId, identityKey) {
    (this.kept.partner_seen[orgId] ||= {})[memberId] = identityKey;
    await this.save();
    await this.share();
  }

  /**
   * The partnerships as this device verifies them (22.5, never countersigning), then each active
   * partner's listing (GET /partners/{o}/members), checked up to the root our statement pins
   * (22.6). An ended partner's last listing is kept: who wrote what before the end; one this
   * device never had (a new device) is asked for once (22.7). A guest's or a follower's 403
   * means no partners. Any other failure keeps what was verified before and is reported
   * (`partners_unavailable`): it never stops our own channels from working.
   * @param {{get(path: string, query?: any): Promise<any>, now?(): number}} api
   * @param {(path: string) => Promise<Listing>} pages every page of a member listing
   */
  async learnPartners(api, pages) {
    if (!this.own || !this.device.root) return;
    this.partnersAsked = true;
    let answer;
    try {
      answer = await api.get('/partners');
    } catch (err) {
      if (/** @type {any} */ (err)?.status !== 403) this.report([partnersUnavailable('the partnerships', err)]);
      return;
    }
    const kept = (this.kept.partners ||= {});
    const listings = { ...(this.kept.partner_listings || {}) };
    // Partnership rules load when a device meets a partner: the first screen stays light.
    const { checkPartner } = await import('./partners.js');
    // Each partner's listing is asked once per refresh: the partnership's check and the shared
    // view read the same answer (a failure too, reported where it is read).
    /** @type {Map<string, Promise<Listing>>} */
    const asked = new Map();
    const partnerListing = (orgId) => {
      if (!asked.has(orgId)) asked.set(orgId, pages(`/partners/${orgId}/members`));
      return /** @type {Promise<Listing>} */ (asked.get(orgId));
    };
    // A partner whose listing fails (but for a 403) keeps its last verified listing, reported.
    const tolerate = async (what, work) => {
      try {
        await work();
      } catch (err) {
        if (/** @type {any} */ (err)?.status === 403) throw err;
        this.report([partnersUnavailable(what, err)]);
      }
    };
    const now = api.now ? api.now() : Math.floor(Date.now() / 1000);
    for (const entry of answer.partners || []) {
      await tolerate(`the partnership with ${entry?.partner_org_id}`, async () => {
        const { warnings } = await checkPartner(entry, { view: this.own, ownRoot: String(this.device.root), kept, partnerListing, now });
        this.report(warnings);
      });
    }
    for (const [orgId, partner] of Object.entries(kept)) {
      // An ended partner's listing is asked once, when none is kept: the log's entries from
      // before its end are verified with it (22.7).
      if (partner.root && ((partner.active && !partner.ended) || !listings[orgId])) {
        await tolerate(`the listing of ${orgId}`, async () => {
          listings[orgId] = await partnerListing(orgId);
        });
      }
    }
    this.kept.partner_listings = listings;
    await this.save();
    await this.share();
  }

  /** Whether this device pinned a partner (so a full refresh asks the partnerships again). */
  hasPartners() {
    return Object.values(this.kept.partners || {}).some((p) => p.root);
  }

  /** The server's `root` (activation answer, hints) against the pinned one. */
  checkRoot(serverRoot) {
    if (serverRoot && this.device.root && serverRoot !== this.device.root) {
      this.report([{ code: 'root_mismatch', member_id: null, device_id: null, message: `the server names root ${serverRoot}, not the pinned ${this.device.root}` }]);
    }
  }

  // -- channels --------------------------------------------------------------------------

  /**
   * The channel's verified membership state, fetching the log from the kept head when the
   * roster version moved. Returns {state, blocked}: blocked after a rollback or a fork.
   * @param {{get(path: string, query?: any): Promise<any>}} api
   */
  async membership(api, channelId, version) {
    const stored = this.kept.logs[channelId] || null;
    // Kept before 22.6, a state names no host: only our own organisation's channels were read.
    const kept = stored && !stored.org_id ? { ...stored, org_id: this.device.org_id } : stored;
    if (kept && this.checkedAt.get(channelId) === version) {
      return { state: kept, blocked: this.blocked.get(channelId) || false };
    }
    const entries = [];
    let from = formerKnown(kept) ? kept.seq : 0; // kept without who left (14.2): replayed once from 0
    let answer;
    do {
      answer = await api.get(`/channels/${channelId}/membership`, { from, limit: LOG_PAGE });
      const page = Array.isArray(answer.entries) ? answer.entries : [];
      entries.push(...page);
      from += page.length;
      if (!page.length) break;
    } while (answer.more);
    if (!this.view) throw new Error('the organisation is not loaded yet');
    // The host is the creation's organisation, kept with the state; never a later page's entry.
    const host = kept ? kept.org_id : String(entries[0]?.org_id ?? this.device.org_id);
    const result = await advance(kept, { entries, head: answer.head }, new HostAuthority(host, this.view), channelId);
    for (const w of result.warnings) w.channel_id = channelId;
    this.report(result.warnings);
    this.blocked.set(channelId, result.blocked);
    this.checkedAt.set(channelId, version);
    this.senderUnchecked.delete(channelId); // the log answered: it judges senders again
    if (result.state && !result.blocked && result.state !== stored) {
      this.kept.logs[channelId] = result.state;
      const events = result.applied.map((e) => ({
        op: e.op,
        member_id: e.member_id,
        role: e.role,
        by_member: this.view.signer(e.by_device, e.issued_at)?.[0] ?? null,
        at: e.issued_at,
        seq: e.seq,
      }));
      this.kept.history[channelId] = [...(this.kept.history[channelId] || []), ...events].slice(-HISTORY_KEPT);
      await this.save();
      // Changes seen live (not the first replay of a channel): every member is told, signed.
      if (kept && events.length) this.dispatchEvent(new CustomEvent('membership', { detail: { channelId, events } }));
    }
    return { state: result.state, blocked: result.blocked, entries };
  }

  /**
   * Who gets a sender key in the channel (section 14; its followers, 16.3), the rest reported,
   * and the followers verified there (`followers`: their votes and reactions are theirs), whether
   * sealed to or not.
   */
  async recipients(channelId, state, rosterDevices) {
    if (!this.view) return { devices: [], warnings: [], followers: new Map() };
    // A follower reads no other follower, nor seals to one a server would list (16.3).
    const follower = this.device.member_id.startsWith('f_');
    const listed = follower ? [] : rosterDevices.filter((d) => d.device_cert?.purpose === FOLLOWER_CERT);
    // Followers are a public tribe's only: their rules load with the first one (first screen's weight).
    const checked = listed.length ? await (await import('./followers.js')).verifyFollowers(this.view, state, listed, channelId) : new Map();
    /** @type {Map<string, import('./certs.js').DeviceTrust>} */
    const followers = new Map();
    for (const [deviceId, found] of checked) if ('sign_public_key' in found) followers.set(deviceId, found);
    let sealed = checked;
    if (follower || (state?.org_id && state.org_id !== this.view.orgId)) {
      // A follower seals its own votes and reactions to the tribe's members only; a partner's
      // member seals nothing to the host's followers, who cannot verify them, and warns nothing.
      rosterDevices = rosterDevices.filter((d) => d.device_cert?.purpose !== FOLLOWER_CERT);
      sealed = new Map();
    }
    const { devices, warnings } = effectiveRoster(this.view, this.cut(state), rosterDevices, this.device.device_id, sealed);
    this.report(warnings.map((w) => ({ ...w, channel_id: channelId })));
    return { devices, warnings, followers };
  }

  /**
   * The state senders and recipients are judged on (22.7): an ended partner's members are out
   * from the end. Only the judgment is cut: the state kept and extended never is.
   * @param {LogState|null} state
   */
  cut(state) {
    const view = this.view;
    return cutAtEnds(state, view ? (memberId) => view.endsOf(memberId) : (memberId) => this.keptEndsOf(memberId));
  }

  /**
   * Before a view is verified (an offline start): the ends this device kept for the partner
   * whose kept listing names the member (22.7), so an offline start cuts as the last online
   * view did. Only ever used to cut (take trust away), so the listing need not be verified
   * again: a member it names wrongly is cut, never let in.
   * @param {string} memberId
   */
  keptEndsOf(memberId) {
    const ends = [];
    for (const [orgId, listing] of Object.entries(this.kept.partner_listings || {})) {
      if ((listing?.members || []).some((m) => String(m?.member_id) === memberId)) ends.push(...Object.values(this.kept.partners?.[orgId]?.ends || {}).map(Number));
    }
    return ends;
  }

  /** The signed membership events verified for a channel, oldest first. */
  history(channelId) {
    return this.kept.history[channelId] || [];
  }

  forgetChannel(channelId) {
    delete this.kept.logs[channelId];
    delete this.kept.history[channelId];
    this.checkedAt.delete(channelId);
    return this.save();
  }

  // -- senders ---------------------------------------------------------------------------

  /**
   * Why the channel's verified membership refuses a message of `memberId`'s device (section
   * 14.2), or null. A refusal asks for the log again first, at most every 2 s per channel: a
   * page of messages costs one fetch, not one per message. SENDER_UNCHECKED when the log could
   * not be fetched (offline, 5xx, 429): nobody is blamed on a state perhaps stale. `ask: false`:
   * the kept state judges alone (a cached message shown again, whose log the roster keeps fresh).
   * First, whatever the log says: nothing the device signed after its revocation, or its
   * member's removal from the organisation (ours or a partner's, kept dates included), counts
   * (13.7); before the listing is verified here, the kept dates judge.
   * @param {{get(path: string, query?: any): Promise<any>}} api
   */
  /**
   * Why a message is refused by the revocations and removals this device kept alone (13.7), or
   * null: for a record nothing else can judge now (no log kept, a device the listing lost).
   * @param {unknown} sentAtMs
   * @param {string} deviceId
   * @param {string|null} memberId
   */
  keptEnded(sentAtMs, deviceId, memberId) {
    // Each date in its own organisation's record (a partner's, when its kept listing names the
    // id; else ours), as the online view reads them: an id another organisation also uses
    // borrows nothing.
    const orgOf = (/** @type {'members'|'devices'} */ rows, /** @type {string} */ id) => {
      const key = rows === 'members' ? 'member_id' : 'device_id';
      const found = Object.entries(this.kept.partner_listings || {}).find(([, l]) => (l?.[rows] || []).some((r) => String(r?.[key]) === id));
      return found ? found[0] : this.device.org_id;
    };
    const at = (/** @type {Record<string, Record<string, number>>} */ kept, /** @type {string} */ org, /** @type {string} */ id) => {
      const byId = kept?.[org] || {};
      return Object.hasOwn(byId, id) ? byId[id] : null;
    };
    const revoked = at(this.kept.revoked, orgOf('devices', deviceId), deviceId);
    return refusesEndedDevice(sentAtMs, revoked, memberId ? at(this.kept.removed, orgOf('members', memberId), memberId) : null);
  }

  async refusedSender(api, channelId, memberId, deviceId, sentAtMs, kind, { ask = true } = {}) {
    const view = this.view;
    const ended = view
      ? refusesEndedDevice(sentAtMs, view.revokedAt(deviceId), view.removedAt(memberId))
      : this.keptEnded(sentAtMs, deviceId, memberId);
    if (ended) return this.refused(channelId, memberId, deviceId, ended);
    let why = refusesSender(this.cut(this.kept.logs[channelId] || null), memberId, sentAtMs, kind);
    const now = Date.now();
    if (why && ask && this.view && now - (this.senderChecks.get(channelId) || 0) > SENDER_RECHECK_MS) {
      this.senderChecks.set(channelId, now);
      // A log no longer ours to read (403): the state kept judges.
      let forbidden = false;
      const fetched = await this.membership(api, channelId, `sender:${now}`).catch((err) => {
        forbidden = err?.status === 403;
        return null;
      });
      if (fetched) why = refusesSender(this.cut(fetched.state), memberId, sentAtMs, kind);
      if (fetched || forbidden) this.senderUnchecked.delete(channelId);
      else this.senderUnchecked.add(channelId);
    }
    if (why && this.senderUnchecked.has(channelId)) return SENDER_UNCHECKED;
    return why ? this.refused(channelId, memberId, deviceId, why) : null;
  }

  /** A sender refused (14.2), reported as `not_a_member`; the reason is returned. */
  refused(channelId, memberId, deviceId, why) {
    this.report([{ code: 'not_a_member', member_id: memberId, device_id: deviceId, channel_id: channelId, message: `${channelId}: a message from ${deviceId}: ${why}` }]);
    return why;
  }

  /** The certified sender of a message (null member: not a certified device). */
  sender(message) {
    if (!this.view) return null;
    const found = certifiedSender(this.view, message);
    // A follower cannot place a partner's member's device (16.3): "not certified", with why, as
    // the Python client says; never flagged as a forgery.
    const why = found.warning && this.view.follower ? this.view.whyNot(message.sender_device) : null;
    const uncertified = why?.code === 'uncertified_device' ? why : null;
    if (found.warning) this.report([uncertified || found.warning]);
    return { ...found, uncertified: Boolean(uncertified) };
  }

  displayName(memberId) {
    return this.view?.displayName(memberId) ?? null;
  }

  // -- verification (section 15) ---------------------------------------------------------

  myIdentityKey() {
    return this.view?.identityKey(this.device.member_id) ?? null;
  }

  /** The safety number with a member, the QR payload I show, and where the member stands. */
  safety(memberId) {
    const mine = this.myIdentityKey();
    const theirs = this.view?.identityKey(memberId) ?? null;
    if (!mine || !theirs) return null;
    const number = safetyNumber(mine, theirs);
    return {
      number,
      payload: verifyPayload(this.device.org_id, this.device.member_id, number),
      identity_key: theirs,
      verified: this.kept.verified[memberId] === theirs,
      changed: Boolean(this.kept.verified[memberId] && this.kept.verified[memberId] !== theirs) || this.view?.whyNotMember(memberId)?.code === 'identity_changed',
      certified: this.view?.certified(memberId) ?? false,
      vouched_only: this.view?.vouchedOnly(memberId) ?? false,
    };
  }

  isVerified(memberId) {
    const ik = this.view?.identityKey(memberId);
    return Boolean(ik && this.kept.verified[memberId] === ik);
  }

  /**
   * A typed or scanned number against the one computed here: on a match the member's current
   * identity key is marked verified (and seen), on this device only. Returns 'ok', 'mismatch',
   * 'other_member' (a scanned code shown by someone else) or 'unknown'.
   */
  async confirm(memberId, text) {
    const safety = this.safety(memberId);
    const parsed = parseVerification(text);
    if (!safety || !parsed) return safety ? 'mismatch' : 'unknown';
    if (parsed.member_id && (parsed.member_id !== memberId || parsed.org_id !== this.device.org_id)) return 'other_member';
    if (parsed.digits !== safetyDigits(safety.number)) return 'mismatch';
    this.kept.verified[memberId] = safety.identity_key;
    this.kept.seen[memberId] = safety.identity_key;
    await this.save();
    for (const [key, w] of this.warnings) if (w.member_id === memberId && ['identity_changed', 'server_vouched'].includes(w.code)) this.warnings.delete(key);
    this.dispatchEvent(new CustomEvent('warnings', { detail: [...this.warnings.values()] }));
    return 'ok';
  }

  // -- statements an admin's device signs (13.8, 13.9) -----------------------------------

  /** A role statement for `memberId` (also how an e-mail invitee is endorsed). */
  roleStatement(memberId, role, now) {
    const identityKey = this.view?.identityKey(memberId);
    if (!identityKey) throw new Error(`${memberId} has no identity key yet`);
    const serial = Math.max(this.view?.highestSerial(memberId) || 0, this.kept.serials[memberId] || 0) + 1;
    return signStatement(
      { purpose: ROLE, org_id: this.device.org_id, member_id: memberId, identity_key: identityKey, role, serial, issued_at: now, by_device: this.device.device_id },
      signSeed(this.device),
    );
  }

  removalStatement(memberId, now) {
    const identityKey = this.view?.identityKey(memberId);
    if (!identityKey) return null; // never activated: nothing to sign about
    return signStatement(
      { purpose: REMOVAL, org_id: this.device.org_id, member_id: memberId, identity_key: identityKey, issued_at: now, by_device: this.device.device_id },
      signSeed(this.device),
    );
  }

  revocationStatement(device, now) {
    return signStatement(
      {
        purpose: REVOCATION,
        org_id: this.device.org_id,
        member_id: device.member_id,
        device_id: device.device_id,
        sign_public_key: device.sign_public_key,
        issued_at: now,
        by_device: this.device.device_id,
      },
      signSeed(this.device),
    );
  }
}

/**
 * Record in `kept` the date of each listed item's valid `field` statement (and check again the
 * ones kept); whether anything changed.
 * @param {[string, any][]} listed [id, the listing's record]
 * @param {string} field
 * @param {Record<string, number>} kept
 * @param {(id: string) => number|null} dateOf
 */
function keep(listed, field, kept, dateOf) {
  let changed = false;
  for (const [id, raw] of listed) {
    if (raw[field] == null && !Object.hasOwn(kept, id)) continue;
    const at = dateOf(id);
    if (at !== null && kept[id] !== at) {
      kept[id] = at;
      changed = true;
    }
  }
  return changed;
}

/** The partnerships or a partner's listing could not be read: the last verified are kept. */
function partnersUnavailable(what, err) {
  const why = /** @type {any} */ (err)?.message || String(err);
  return { code: 'partners_unavailable', member_id: null, device_id: null, message: `${what} could not be read (${why}): the last verified are kept, partners' members added since are not known yet` };
}
