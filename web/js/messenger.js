// @ts-check
// End-to-end encrypted messaging for this browser's device: bocage/client/messenger.py in JS.
//
// Sender keys are ratchets (ratchet.js): made here, their current state sealed to each roster
// device once per epoch and kept in the ring (IndexedDB); messages are sealed under the next key
// and signed before they leave, and verified (labels included) before they show.
// Events (EventTarget): 'message' (an opened message), 'channels', 'roster' (channel id),
// 'status' (online/offline), 'revoked', 'error'.
import { Api, ApiError } from './api.js';
import { directChannelId, isDirectOf, newChannelId, signEntry } from './membership.js';
import { isFollowerId, newPoll, tally } from './polls.js';
import {
  KeyUnavailable,
  ReplayedMessage,
  TooFarAhead,
  addReceived,
  confirm,
  emptyRing,
  forget,
  hasOwn,
  historyState,
  historyWindow,
  holds,
  markDistributed,
  nextKey,
  openWith,
  ownState,
  ringFrom,
  setWindow,
  undistributed,
} from './ratchet.js';
import {
  CryptoError,
  ForgedMessage,
  MislabelledMessage,
  b64e,
  newMessageId,
  openSenderKey,
  openVerified,
  sealMessage,
  sealSenderKey,
  signToken,
  verifyEnvelope,
} from './wire.js';
import { FOLLOWER_CERT, fingerprint, newTicket, statementHash, withFragment } from './certs.js';
import { SENDER_UNCHECKED, TrustKeeper } from './trust.js';
import { isNews } from './attention.js';

const KEYS_PER_CALL = 200; // at ~400 bytes each, 500 sealed keys are over the 128 KiB body limit
const READ_LIMIT = 200;
// What a retry opens again: no key yet, an uncertified sender, and the membership verdicts (14.2).
const SENDER_RETRIED = ['not_a_member', 'pending_check'];
const RETRIED = ['no_key', 'forged_sender', ...SENDER_RETRIED];
/** How often a tribe's roster is asked again for a follower's device not verified there (16.3). */
const FOLLOWER_ROSTER_MS = 2000;
const DAY_SECONDS = 86400;
// API Gateway (and bocage serve) close a WebSocket after 10 minutes without a frame from the
// client: a ping after 8 quiet minutes keeps it, with 2 minutes to spare for the timers of a
// background tab, which browsers run late. On AWS, API Gateway answers it alone (no function runs).
const PING_EVERY = 480_000;
const PING_CHECK = 60_000;
// A send over the open WebSocket waits this long for its ack, then goes over REST under the same
// message id (the server stores an id once, so a late ack costs nothing but a duplicate answer).
const ACK_TIMEOUT = 10_000;
const CONNECT_PATH = '$connect';
// Close codes (docs/protocol.md, section 9). Replaced: this device opened newer connections past
// its cap; reconnecting by itself would close one of them in turn, so only the user brings this
// tab back (returning to it, or the status button). Rate limited: back, but after 30 s at least.
const CLOSE_REPLACED = 4008;
const CLOSE_RATE_LIMITED = 4029;
const RATE_LIMITED_PAUSE = 30_000;
const slot = (...parts) => parts.join('|');
const nowSeconds = () => Math.floor(Date.now() / 1000);
const READABLE_KINDS = new Set(['message', 'poll']);
const DIRECT_ATTEMPTS = 5; // the other member may be opening the same direct conversation

/** What a follower's device may send (docs/protocol.md, 16.3). */
const FOLLOWER_KINDS = new Set(['reaction', 'vote']);

export class Messenger extends EventTarget {
  /** `device`: the stored device record (identity and private keys). */
  constructor(store, device) {
    super();
    this.store = store;
    this.device = device;
    this.keys = { deviceId: device.device_id, signSecretKey: device.signSecretKey, boxSecretKey: device.boxSecretKey };
    this.api = new Api(device.server, this.keys);
    this.api.onUnauthorized = (err) => this.unauthorized(err);
    this.ring = emptyRing();
    this.trust = new TrustKeeper(store, device);
    this.trust.addEventListener('warnings', (e) => this.emit('warnings', /** @type {CustomEvent} */ (e).detail));
    this.trust.addEventListener('membership', (e) => this.emit('membership', /** @type {CustomEvent} */ (e).detail));
    this.directory = null;
    this.directoryAt = 0;
    this.channels = new Map();
    this.rosters = new Map();
    /** @type {Map<string, Map<string, {device_id: string, member_id: string, sign_public_key: string, box_public_key: string}>>}
     * per public tribe, the followers this device verified there (16.3): never across tribes */
    this.tribeFollowers = new Map();
    /** @type {Map<string, number>} channel id -> when its roster was last asked for a follower */
    this.followerRosterAt = new Map();
    /** @type {Map<string, string>} a verified follower's name, from their certificate */
    this.followerNames = new Map();
    /** @type {Map<string, number>} per channel, the highest seq held with nothing missing before it */
    this.seen = new Map();
    /** @type {Map<string, {at: number, promise: Promise<void>}>} per channel and epoch, the last key fetch */
    this.keyFetches = new Map();
    this.ws = null;
    this.online = false;
    this.stopped = false;
    this.backoff = 1000;
    this.lastFrame = 0; // when this client last sent a WebSocket frame (ms)
    this.revoked = false;
    /** @type {Promise<void> | null} the outbox flush at work, if any */
    this.flushing = null;
    this.replaced = false; // closed for a newer connection of this device: wait for the user
    /** @type {Map<string, {resolve: (result: any) => void, reject: (err: Error) => void, timer: any}>} sends awaiting their ack, by ref */
    this.acks = new Map();
  }

  get memberId() {
    return this.device.member_id;
  }

  get deviceId() {
    return this.device.device_id;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  unauthorized(err) {
    if (!this.revoked && /revoked|unknown device|unknown member|removed/i.test(err.detail || '')) this.onRevoked();
  }

  /** Revoked or removed: stop, and erase what this device kept (a lost phone keeps nothing). */
  async onRevoked() {
    if (this.revoked) return;
    this.revoked = true;
    this.stop();
    await this.store.eraseContent().catch(() => null);
    this.ring = emptyRing();
    this.emit('revoked');
  }

  async init() {
    this.ring = ringFrom(await this.store.ring());
    await this.trust.load();
    await this.api.health().catch(() => null); // learns the server's clock
  }

  // -- key ring ----------------------------------------------------------------------------

  /**
   * Every change to the ring runs here. One device may be open in several tabs: they share the
   * ring through IndexedDB, under a lock, and the stored ring is the truth (a ratchet must never
   * hand out the same index twice, nor move back).
   */
  async withRing(work) {
    const run = async () => {
      this.ring = ringFrom(await this.store.ring());
      const result = await work();
      await this.store.saveRing(this.ring);
      return result;
    };
    return globalThis.navigator?.locks ? navigator.locks.request('bocage-ring', run) : run();
  }

  // -- channels ----------------------------------------------------------------------------

  async loadChannels() {
    const { channels } = await this.api.get('/channels');
    for (const c of channels) c.direct_with = await this.listedPartner(c);
    this.channels = new Map(channels.map((c) => [c.channel_id, c]));
    await this.store.put('channels', channels).catch(() => null);
    const epochs = Object.fromEntries(channels.map((c) => [c.channel_id, c.epoch]));
    await this.withRing(async () => forget(this.ring, nowSeconds(), epochs));
    for (const c of channels) await this.refineUnread(c.channel_id);
    const strangers = channels.some((c) => c.kind === 'direct' && (c.direct_members || []).some((id) => !this.memberName(id)));
    if (strangers) await this.loadDirectory().catch(() => null); // a direct conversation is named after the other
    if (this.trust.own && !this.trust.partnersAsked && !this.isFollower() && this.sharesWithPartners()) {
      await this.trust.learnPartners(this.api, (path) => this.memberPages(path)).catch(() => null); // a shared group (22.6)
    }
    this.emit('channels');
    return channels;
  }

  /** The channel list last fetched, kept on the device: an offline start still lists and opens them. */
  async loadCachedChannels() {
    if (this.channels.size) return;
    const channels = (await this.store.get('channels').catch(() => null)) || [];
    this.channels = new Map(channels.map((c) => [c.channel_id, c]));
    if (channels.length) this.emit('channels');
  }

  /**
   * The server counts every envelope past this device's cursor, reactions and votes too. When
   * the cache holds that whole range, count only what a person reads: others' messages and polls
   * news to them (isNews), their senders judged again as the channel would show them
   * (judgeCached): a refused one (14.2, 15) is no unread message.
   */
  async refineUnread(channelId) {
    const c = this.channels.get(channelId);
    if (!c) return;
    const from = c.cursor || 0;
    const to = c.latest_seq || 0;
    if (to <= from) {
      c.unread = 0;
      return;
    }
    const inRange = (await this.store.messages(channelId)).filter((m) => m.seq > from && m.seq <= to);
    if (inRange.length < to - from) return; // a gap: keep the server's count
    const others = inRange.filter((m) => READABLE_KINDS.has(m.kind) && m.sender_device !== this.deviceId && m.sender_member !== this.memberId && !m.deleted);
    const unread = (await this.judgeCached(others)).filter(isNews).length;
    // Frames are handled concurrently: a count made for a range that moved meanwhile (a newer
    // message, the channel read) is stale; the refine that moved it counts.
    if ((c.cursor || 0) === from && (c.latest_seq || 0) === to) c.unread = unread;
  }

  channel(channelId) {
    return this.channels.get(channelId) || null;
  }

  /** Whether I may post (message, poll) here: a tribe's plain members only react and vote. */
  mayPost(channel) {
    return Boolean(channel) && (channel.kind !== 'tribe' || channel.my_role === 'author');
  }

  /** Managers: the organisation's admins and the channel's authors. */
  mayManage(channel) {
    return this.isAdmin() || channel?.my_role === 'author';
  }

  isAdmin() {
    return ['owner', 'admin'].includes(this.device.role);
  }

  /** A public tribe's follower (docs/protocol.md, 16.3): reads, reacts and votes, nothing more. */
  isFollower() {
    return this.device.role === 'follower';
  }

  /** Stop following (16.3): the server deletes this follower and their device; then this browser forgets. */
  leaveAsFollower() {
    return this.api.request('DELETE', '/follower');
  }

  /** A channel whose id this client makes, so it signs the log's creation entry (section 14). */
  async createChannel(kind, name) {
    const { channelId, seed } = await newChannelId();
    const change = { op: 'create', memberId: this.memberId, role: 'author', kind };
    const membership = signEntry(this.device, channelId, null, change, this.api.now());
    const created = await this.api.request('POST', '/channels', { body: { kind, name, membership, id_seed: seed } });
    await this.loadChannels();
    return created;
  }

  /**
   * The direct conversation with a member (section 14.1): its id is the pair's, so it is found
   * again; else created with its two signed entries. When the other member is opening it at
   * the same moment the server answers 409: ask again shortly.
   */
  async openDirect(memberId) {
    const channelId = await directChannelId(this.device.org_id, this.memberId, memberId);
    if (this.channels.has(channelId)) return this.requireDirect(this.channels.get(channelId), memberId);
    const now = this.api.now();
    const creation = signEntry(this.device, channelId, null, { op: 'create', memberId: this.memberId, role: 'author', kind: 'direct' }, now);
    const state = { channel_id: channelId, kind: 'direct', members: { [this.memberId]: 'author' }, seq: 0, head: await statementHash(creation), org_id: this.device.org_id };
    const addition = signEntry(this.device, channelId, state, { op: 'add', memberId, role: 'author' }, now);
    for (let attempt = 1; ; attempt += 1) {
      try {
        const opened = await this.api.request('PUT', `/direct/${memberId}`, { body: { membership: [creation, addition] } });
        await this.loadChannels();
        return this.requireDirect(opened, memberId);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 409 && attempt < DIRECT_ATTEMPTS)) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  /**
   * The channel, if its verified log is a `direct` one of exactly this member and us (14.1): the
   * pair's id alone (or the server's word) could be a group someone else made under it.
   */
  async requireDirect(channel, memberId) {
    const channelId = String(channel.channel_id);
    const { state, blocked } = await this.trust.membership(this.api, channelId, `direct:${Date.now()}`);
    if (blocked || !state) throw membershipBlocked(channelId);
    if (await isDirectOf(channelId, this.device.org_id, state, this.memberId, memberId)) return channel;
    const members = Object.keys(state.members).sort();
    const message = `${channelId}: not the direct conversation with ${memberId} (its signed log is a '${state.kind}' of ${members.join(', ')}); nothing is sent there`;
    this.trust.report([{ code: 'direct_squatted', member_id: memberId, device_id: null, message, channel_id: channelId }]);
    throw Object.assign(new Error(message), { status: 409, code: 'direct_squatted' });
  }

  /**
   * The other member of a channel listed as our direct conversation, when its id is that pair's
   * (14.1); else null. `direct_members` is the server's word: a lying one could list our
   * conversation with Carol as Bob's, and we would write to "Bob" sealed to Carol.
   */
  async listedPartner(channel) {
    if (channel?.kind !== 'direct' || !this.device) return null;
    const other = (channel.direct_members || []).find((id) => id !== this.memberId);
    return other && (await directChannelId(this.device.org_id, this.memberId, other)) === channel.channel_id ? other : null;
  }

  /** What a channel is called here: a direct conversation by the other member's certified name. */
  channelName(channel) {
    if (channel?.kind !== 'direct') return channel?.name || '';
    const other = channel.direct_with; // the pair its id proves (listedPartner)
    return (other && this.memberName(other)) || channel.name;
  }

  addMember(channelId, memberId, role = 'member') {
    return this.changeMembership(channelId, memberId, 'PUT', (state) => ({ op: memberId in state.members ? 'role' : 'add', memberId, role }), { role });
  }

  // -- a partner's member's contact card (docs/protocol.md, 22.6) ------------------------------

  /** This member's card for partners: the link (under `appUrl`) with our identity key's fingerprint. */
  async myCard(appUrl) {
    if (!this.trust.own) await this.loadDirectory();
    const me = this.trust.own?.member(this.memberId);
    if (!me) throw new Error('this device does not see its own member certified yet: try again later');
    const { cardUrl } = await import('./partners.js');
    const card = { org_id: this.device.org_id, member_id: this.memberId, name: me.display_name, fingerprint: await fingerprint(me.identity_key) };
    return { ...card, url: cardUrl(appUrl, card) };
  }

  /**
   * The partner's member a pasted or opened card names, checked against the server's listing of
   * that one member (GET /partners/{o}/members/{m}); CardRefused with its reason otherwise.
   */
  async checkCard(text) {
    const { parseCard, checkCard, CardRefused } = await import('./partners.js');
    const card = parseCard(text);
    if (card.org_id === this.device.org_id) throw new CardRefused('card_own', 'this card is of your own organisation: add the member from its directory');
    const pinned = () => this.trust.kept.partners?.[card.org_id];
    if (!pinned()?.active) await this.loadDirectory({ partners: true });
    const notMember = (err) => {
      throw err instanceof ApiError && err.status === 404 ? new CardRefused('card_not_member', err.detail) : err;
    };
    // Not a partner in this device's view: refused before asking the server anything.
    const listing = pinned()?.active ? await this.api.get(`/partners/${card.org_id}/members/${card.member_id}`).catch(notMember) : { members: [], devices: [] };
    const checked = await checkCard(card, pinned(), listing);
    await this.trust.pinIdentity(card.org_id, checked.member_id, checked.identity_key); // the card's key, checked: kept from now on
    return checked;
  }

  /** Add the member a partner's card names, once checked; then learn their listing (22.6). */
  async addFromCard(channelId, text) {
    const checked = await this.checkCard(text);
    await this.addMember(channelId, checked.member_id);
    await this.loadDirectory({ partners: true });
    return checked;
  }

  removeMember(channelId, memberId) {
    return this.changeMembership(channelId, memberId, 'DELETE', () => ({ op: memberId === this.memberId ? 'leave' : 'remove', memberId }));
  }

  /** Sign the next log entry on the verified head; once more if the log moved meanwhile (409). */
  async changeMembership(channelId, memberId, method, change, extra = {}) {
    for (let attempt = 0; ; attempt += 1) {
      await this.loadDirectory(); // the member may have activated since
      const { state, blocked } = await this.trust.membership(this.api, channelId, `change:${Date.now()}`);
      if (blocked || !state) throw membershipBlocked(channelId);
      const membership = signEntry(this.device, channelId, state, change(state), this.api.now());
      try {
        const result = await this.api.request(method, `/channels/${channelId}/members/${memberId}`, { body: { ...extra, membership } });
        this.rosters.delete(channelId);
        return result;
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 409 && attempt === 0)) throw err;
      }
    }
  }

  // -- the organisation: signed operations (docs/protocol.md, 13.3, 13.8, 13.9) ------------

  /**
   * A QR or link invitation: a one-time ticket signed here, its secret and the pinned root only
   * in the URL's fragment. An e-mailed invitation cannot carry a secret: no ticket (13.7).
   */
  async invite(displayName, role, email = null) {
    if (email) return this.api.request('POST', '/invitations', { body: { display_name: displayName, role, email } });
    const { seed, ticket } = newTicket(this.device, { grant: 'member', role, display_name: displayName }, this.api.now());
    const invitation = await this.api.request('POST', '/invitations', { body: { display_name: displayName, role, ticket } });
    return { ...invitation, activation_url: withFragment(invitation.activation_url, { ticket: seed, root: this.device.root }) };
  }

  /** A link for one more device of mine, certified by a ticket this device signs (13.3). */
  async linkDevice() {
    if (!this.trust.view) await this.loadDirectory();
    const ik = this.trust.myIdentityKey();
    if (!ik) throw new Error('this member has no identity key');
    const { seed, ticket } = newTicket(this.device, { grant: 'device', member_id: this.memberId }, this.api.now());
    const invitation = await this.api.request('POST', '/devices/link', { body: { ticket } });
    return { ...invitation, activation_url: withFragment(invitation.activation_url, { ticket: seed, root: this.device.root, ik }) };
  }

  // -- public tribes (section 16) ---------------------------------------------------------------

  /**
   * Make a tribe public: a join link whose fragment carries the ticket's seed and our root. The
   * full link is kept on this device (for its QR code), never sent; a new one replaces the last.
   */
  async publishTribe(channelId, { days = 365, cap = null } = {}) {
    const { seed, ticket } = newTicket(this.device, { grant: 'follower', channel_id: channelId }, this.api.now(), days * DAY_SECONDS);
    const answer = await this.api.request('PUT', `/channels/${channelId}/public`, { body: cap ? { ticket, cap } : { ticket } });
    const url = withFragment(answer.join_url, { ticket: seed, root: this.device.root });
    await this.store.put(`join:${channelId}`, url);
    return { ...answer, join_url: url };
  }

  /** The tribe's join link as its managers see it (null when not public), with the full link if this device made it. */
  async joinLink(channelId) {
    let status;
    try {
      status = await this.api.get(`/channels/${channelId}/public`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
    const url = status.revoked ? null : await this.store.get(`join:${channelId}`).catch(() => null);
    return { ...status, join_url: url || null };
  }

  async revokeJoinLink(channelId) {
    const status = await this.api.request('DELETE', `/channels/${channelId}/public`);
    await this.store.delete(`join:${channelId}`);
    return status;
  }

  async setRole(memberId, role) {
    if (!this.trust.view) await this.loadDirectory();
    // Never sign across the guest line (section 21): an honest server refuses such a statement,
    // and a dishonest one could keep it and serve it alone. The side is the certified role, else
    // (an e-mail invitee not yet endorsed) the listed one.
    const side = this.trust.view?.role(memberId) ?? this.directory?.members.get(memberId)?.role;
    if (side && (side === 'guest') !== (role === 'guest')) {
      throw Object.assign(new Error('a guest stays a guest and a member never becomes one'), { code: 'guest_line' });
    }
    const statement = this.trust.roleStatement(memberId, role, this.api.now());
    const result = await this.api.request('PUT', `/members/${memberId}/role`, { body: { role, statement } });
    await this.loadDirectory();
    return result;
  }

  /** Confirm an e-mail invitee for everyone: a role statement naming their identity key. */
  endorse(memberId) {
    const listed = this.directory?.members.get(memberId)?.role;
    return this.setRole(memberId, listed === 'guest' || listed === 'admin' ? listed : 'member');
  }

  async removeFromOrg(memberId) {
    if (!this.trust.view) await this.loadDirectory();
    const statement = this.trust.removalStatement(memberId, this.api.now());
    return this.api.request('DELETE', `/members/${memberId}`, { body: { statement } });
  }

  async revokeDevice(device) {
    const statement = this.trust.revocationStatement(device, this.api.now());
    return this.api.request('POST', `/devices/${device.device_id}/revoke`, { body: { statement } });
  }

  async roster(channelId, { fresh = false } = {}) {
    const cached = this.rosters.get(channelId);
    if (cached && !fresh) return cached;
    const devices = [];
    let cursor = null;
    let page;
    do {
      page = await this.api.get(`/channels/${channelId}/roster`, cursor ? { cursor } : undefined);
      devices.push(...page.devices);
      cursor = page.cursor;
    } while (cursor);
    const roster = await this.certifyRoster(channelId, { ...page, devices });
    this.rosters.set(channelId, roster);
    return roster;
  }

  /**
   * The server's roster reduced to the effective roster (section 14): certified devices of the
   * members in the verified membership log, with their certified keys. `listed` keeps what the
   * server said; `blocked` after a rolled-back or forked log (nothing is sealed or sent then).
   */
  async certifyRoster(channelId, raw) {
    // A follower's own device is in no member listing (it is in its tribes' rosters only).
    // A partner's device is in its own organisation's listing (22.6), which the trust view holds.
    const unplaced = raw.devices.filter((d) => d.device_id !== this.deviceId && !this.directory?.devices.has(d.device_id) && !this.trust.view?.device(d.device_id));
    // A follower's device is in no listing (16.3): only another device may be a partner's.
    const partners = unplaced.some((d) => d.device_cert?.purpose !== FOLLOWER_CERT);
    // Followers are in no listing: only another unplaced device is worth asking the listing again,
    // or a follower's ticket signed by a device this view does not know yet (a manager's new
    // phone), at most every FOLLOWER_ROSTER_MS.
    const newIssuer = raw.devices.some((d) => d.device_cert?.purpose === FOLLOWER_CERT && d.ticket?.issuer_device && !this.trust.view?.device(String(d.ticket.issuer_device)));
    const stale = newIssuer && Date.now() - this.directoryAt >= FOLLOWER_ROSTER_MS;
    if (!this.trust.view || partners || stale) await this.loadDirectory({ partners });
    const { state, blocked: unextended } = await this.trust.membership(this.api, channelId, raw.roster);
    // Listed as a direct conversation (so shown under the other member's name) but signed as
    // something else: a group squatting on the pair's id (14.1). Nothing is sealed or sent there.
    // Nor one listed as our conversation with a member its id and log do not pair us with.
    const listed = this.channel(channelId);
    const partner = listed?.kind === 'direct' ? await this.listedPartner(listed) : null;
    const squatted = !unextended && listed?.kind === 'direct' && !(partner && (await isDirectOf(channelId, this.device.org_id, state, this.memberId, partner)));
    if (squatted) {
      const members = Object.keys(state?.members || {}).sort().join(', ');
      const message = `${channelId}: listed as a direct conversation, but its signed log is not ours with the member listed (a '${state?.kind}' of ${members}); nothing is sent there`;
      this.trust.report([{ code: 'direct_squatted', member_id: null, device_id: null, message, channel_id: channelId }]);
    }
    const blocked = unextended || squatted;
    // The followers verified in this tribe (their certificates, this tribe's ticket), sealed to
    // or not (a partner's member seals them nothing): their reactions and votes open and count
    // here, and only here.
    const { devices, followers } = blocked ? { devices: [], followers: new Map() } : await this.trust.recipients(channelId, state, raw.devices);
    // On a rolled-back or forked log, the followers last verified stand (the tally says it
    // counts the last verified members, 8): nothing is sealed to anyone there anyway.
    if (!blocked) this.tribeFollowers.set(channelId, followers);
    for (const row of raw.devices) {
      if (followers.has(row.device_id)) this.followerNames.set(row.member_id, String(row.device_cert?.display_name || ''));
    }
    // Listed as in: the verified state uncut (a manager still sees, and may remove, a member an
    // end cut), the followers and this follower.
    const members = new Set([...Object.keys(state?.members || {}), ...this.voters(channelId, state).members]);
    return { ...raw, listed: raw.devices, devices, members, blocked, state };
  }

  /**
   * Who may vote in the channel (section 8): the verified membership cut at the ends (22.7), as
   * senders are judged, and the followers verified in this tribe (16.3); never the server's
   * roster; with who left or was cut, and when (a closed poll counts those in at its close).
   * Without a verified state (none kept yet), no member. Offline (no roster asked yet), the
   * followers are those whose votes this device verified against the tribe's ticket when it
   * opened them (`opened`, the kept messages).
   * @param {string} channelId
   * @param {import('./membership.js').LogState|null} [state] the verified state (default: the kept one)
   * @param {any[]} [opened] the channel's opened messages, for the followers when offline
   * @returns {import('./polls.js').Electorate}
   */
  voters(channelId, state = this.trust.kept.logs[channelId] || null, opened = []) {
    const cut = this.trust.cut(state);
    const members = new Set(Object.keys(cut?.members || {}));
    const verified = this.tribeFollowers.get(channelId);
    for (const f of verified?.values() || []) members.add(f.member_id);
    if (!verified) for (const x of opened) if (x.verified && x.kind === 'vote' && isFollowerId(x.sender_member)) members.add(x.sender_member);
    if (this.isFollower()) members.add(this.memberId); // a follower's own vote counts in their own tally (16.3)
    return { members, departed: { ...(cut?.former || {}) } };
  }

  // -- directory -----------------------------------------------------------------------------

  /** Every page of a member listing (`GET /members`, or a partner's, 22.4). */
  async memberPages(path) {
    const members = [];
    const devices = [];
    let cursor = null;
    do {
      const page = await this.api.get(path, cursor ? { cursor } : undefined);
      members.push(...page.members);
      devices.push(...page.devices);
      cursor = page.cursor;
    } while (cursor);
    return { members, devices };
  }

  /**
   * Our organisation's listing, verified; and our partners' (22.6) when asked (`partners`), or
   * whenever this device pinned one or lists a channel shared with one.
   */
  async loadDirectory({ partners = false } = {}) {
    const listed = await this.memberPages('/members');
    const members = new Map(listed.members.map((m) => [m.member_id, { ...m, devices: [] }]));
    const devices = listed.devices;
    for (const d of devices) members.get(d.member_id)?.devices.push(d);
    this.directory = { members, devices: new Map(devices.map((d) => [d.device_id, d])) };
    this.directoryAt = Date.now();
    await this.trust.rebuild([...members.values()], devices);
    if (!this.isFollower() && (partners || this.trust.hasPartners() || this.sharesWithPartners())) {
      await this.trust.learnPartners(this.api, (path) => this.memberPages(path));
    }
    const me = members.get(this.memberId);
    if (me && (me.role !== this.device.role || me.display_name !== this.device.display_name)) {
      this.device = { ...this.device, role: me.role, display_name: me.display_name };
      await this.store.saveDevice(this.device);
      this.emit('channels');
    }
    return this.directory;
  }

  /** A channel listed here is another organisation's, or has had a partner's members (22.6). */
  sharesWithPartners() {
    return [...this.channels.values()].some((c) => (c.org_id && c.org_id !== this.device.org_id) || c.partner_orgs?.length);
  }

  /** A device's certified keys (its certificate's, checked to the root); null if not certified. */
  async deviceInfo(deviceId) {
    if (!this.directory) await this.loadDirectory();
    const unknown = !this.directory.devices.has(deviceId) && !this.trust.view?.device(deviceId);
    // A follower has no partners to ask (16.3): it reloads for a device activated since only.
    const partnersAsked = this.trust.partnersAsked || this.isFollower();
    if (unknown && (Date.now() - this.directoryAt > 2000 || !partnersAsked)) {
      await this.loadDirectory({ partners: true }); // a device activated since we last looked, or a partner's (22.6)
    }
    return this.trust.view?.device(deviceId) || null;
  }

  /**
   * The certified sender of a stored message, the server's stamp only compared (section 15). A
   * follower does not reload its directory for a member its tribe's verified log holds as one it
   * cannot verify (a partner's, 16.3): no listing of its own would name them.
   */
  async certifiedSender(message, channelId = '') {
    const unplaced = this.isFollower() && (this.trust.kept.logs[channelId]?.unplaced || []).includes(message.sender_member);
    if (!unplaced) await this.deviceInfo(message.sender_device);
    return this.trust.sender(message);
  }

  /**
   * A follower verified in this tribe (16.3): their certified keys, or null (undefined: the
   * tribe's roster never verified here, say offline). An unknown one asks the roster again at
   * most every FOLLOWER_ROSTER_MS per channel, not per message; never without `ask` (a cached
   * record shown again: the roster as kept judges).
   */
  async tribeFollower(channelId, deviceId, ask = true) {
    if (this.isFollower() || this.channel(channelId)?.kind !== 'tribe') return null; // followers do not read each other
    const asked = this.followerRosterAt.get(channelId) ?? -Infinity;
    if (ask && !this.tribeFollowers.get(channelId)?.has(deviceId) && Date.now() - asked >= FOLLOWER_ROSTER_MS) {
      this.followerRosterAt.set(channelId, Date.now());
      await this.roster(channelId, { fresh: true }).catch(() => null);
    }
    const verified = this.tribeFollowers.get(channelId);
    return verified ? verified.get(deviceId) || null : undefined;
  }

  /** The name a member's certificate carries (the server's listing only for the uncertified). */
  memberName(memberId) {
    if (memberId?.startsWith('f_')) return this.followerNames.get(memberId) || null;
    return this.trust.displayName(memberId) || this.directory?.members.get(memberId)?.display_name || null;
  }

  // -- sending -------------------------------------------------------------------------------

  /** Seal my chain's current state to every roster device that lacks it; returns the epoch. */
  async distributeKey(channelId, roster = null) {
    const current = roster || (await this.roster(channelId, { fresh: true }));
    const epoch = Number(current.epoch);
    const history = await this.historyChoice(channelId, current);
    return this.withRing(async () => {
      await this.distributeLocked(channelId, epoch, current, history);
      return epoch;
    });
  }

  /**
   * distributeKey's work, inside withRing. A follower this device verified (16.3) gets my chain
   * as it was at my first message in the tribe's recent-history window (section 23), everyone
   * else its current state. `history`: a choice just asked for (historyChoice), to take first.
   */
  async distributeLocked(channelId, epoch, roster, history = null) {
    if (history) setWindow(this.ring, channelId, history.days, history.issued_at, history.now, history.by_device);
    const targets = new Map(roster.devices.filter((d) => d.device_id !== this.deviceId).map((d) => [d.device_id, d]));
    const missing = undistributed(this.ring, channelId, epoch, [...targets.keys()]);
    const current = ownState(this.ring, channelId, epoch);
    const window = historyState(this.ring, channelId, epoch, nowSeconds());
    const sealed = [];
    for (const d of missing) {
      const { chainKey, index } = targets.get(d).member_id.startsWith('f_') ? window : current;
      try {
        sealed.push(sealSenderKey(this.keys, d, targets.get(d).box_public_key, channelId, epoch, chainKey, index));
      } catch (err) {
        if (!(err instanceof CryptoError)) throw err; // a small-order key: anyone could open it, never sealed to
      }
    }
    for (let i = 0; i < sealed.length; i += KEYS_PER_CALL) {
      await this.api.request('PUT', `/channels/${channelId}/keys`, {
        body: { epoch, keys: sealed.slice(i, i + KEYS_PER_CALL) },
      });
    }
    markDistributed(this.ring, channelId, epoch, sealed.map((k) => k.recipient_device));
    forget(this.ring, nowSeconds(), { [channelId]: epoch });
  }

  /** Seal, sign and send; retried once on stale_epoch (someone left: re-key). */
  async send(channelId, content, { kind = 'message', target = null, messageId = newMessageId() } = {}) {
    const notify = content.type === 'text' && content.mentions?.length ? await this.notifyFor(channelId, content.mentions) : [];
    for (let attempt = 0; ; attempt += 1) {
      const roster = await this.roster(channelId, { fresh: true });
      if (roster.blocked) throw membershipBlocked(channelId);
      const epoch = Number(roster.epoch);
      const history = await this.historyChoice(channelId, roster);
      const envelope = await this.withRing(async () => {
        await this.distributeLocked(channelId, epoch, roster, history);
        const { index, key } = await nextKey(this.ring, channelId, epoch, messageId, nowSeconds());
        return sealMessage(this.keys, key, { channelId, epoch, index, messageId, content, kind, target, sentAtMs: Date.now() });
      });
      let result;
      try {
        result = await this.postEnvelope(channelId, envelope, notify);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'stale_epoch' && attempt === 0) continue;
        throw err;
      }
      if (!result.duplicate) {
        await this.withRing(async () => confirm(this.ring, channelId, epoch, envelope.index, result.seq, result.expires_at));
      }
      const opened = {
        channel_id: channelId,
        seq: result.seq,
        message_id: messageId,
        kind,
        target,
        sender_member: this.memberId,
        sender_device: this.deviceId,
        sent_at_ms: envelope.sent_at,
        stored_at: this.api.now(),
        expires_at: result.expires_at,
        verified: true,
        content,
      };
      await this.accept([opened]);
      return result;
    }
  }

  /**
   * Over the open WebSocket when there is one (the `send` action: no REST request and no token
   * to spend; docs/protocol.md, section 9), else over REST. A socket that closes or leaves the
   * send unanswered for ACK_TIMEOUT hands it to REST under the same message id: stored once.
   */
  async postEnvelope(channelId, envelope, notify = []) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      try {
        return await this.sendOverSocket(envelope, notify);
      } catch (err) {
        if (err instanceof ApiError) throw err; // the server's answer: the same as over REST
      }
    }
    const query = notify.length ? { notify: notify.join(',') } : undefined;
    return this.api.request('POST', `/channels/${channelId}/messages`, { body: envelope, query });
  }

  /** @returns {Promise<any>} the ack's receipt, as `POST .../messages` answers */
  sendOverSocket(envelope, notify = []) {
    const ref = envelope.message_id;
    this.settleAck(ref, null, new Error('sent again')); // a second send of one id: the REST fallback answers it
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settleAck(ref, null, new Error('no ack')), ACK_TIMEOUT);
      this.acks.set(ref, { resolve, reject, timer });
      this.sendFrame(notify.length ? { action: 'send', ref, envelope, notify } : { action: 'send', ref, envelope });
    });
  }

  /**
   * The mentioned members whose own signed choice here is "mentions only" (section 17): one
   * request, for a text that mentions someone only. A failure names nobody: the message still
   * goes, only their notification is lost.
   * @param {string} channelId
   * @param {string[]} mentioned
   * @returns {Promise<string[]>}
   */
  async notifyFor(channelId, mentioned) {
    try {
      const statements = await this.choiceStatements(channelId);
      const { toNotify } = await import('./mentions.js'); // only when a text mentions someone
      return toNotify(this.trust.view, this.device.org_id, channelId, mentioned, statements);
    } catch (err) {
      console.warn('notify: the mentioned members could not be checked', err);
      return [];
    }
  }

  /**
   * The members whose latest choice in this channel, as this browser verifies it (a device its
   * trust view certifies for that member signed it), is "mentions only": to show this member's
   * own choice, which another of its devices may have made.
   * @param {string} channelId
   * @returns {Promise<Set<string>>}
   */
  async mentionsOnlyMembers(channelId) {
    const statements = await this.choiceStatements(channelId);
    const { mentionsOnly } = await import('./mentions.js');
    return mentionsOnly(this.trust.view, this.device.org_id, channelId, statements);
  }

  /**
   * The members' choices the server serves for a channel (unverified: the callers check them),
   * with the trust view reloaded when one names a device it does not know yet.
   * @param {string} channelId
   * @returns {Promise<unknown[]>}
   */
  async choiceStatements(channelId) {
    const answer = await this.api.get(`/channels/${channelId}/members`);
    const statements = Array.isArray(answer.notify) ? answer.notify : [];
    const unknown = statements.some((s) => typeof s?.by_device === 'string' && !this.trust.view?.device(s.by_device));
    if (!this.trust.view || unknown) await this.loadDirectory(); // a device linked since
    return statements;
  }

  /**
   * Be woken in this channel only when mentioned (`true`), or by every message: this member's
   * choice, signed by this device and posted (section 17).
   * @param {string} channelId
   * @param {boolean} mentionsOnly
   */
  async setMentionsOnly(channelId, mentionsOnly) {
    const { notifyStatement } = await import('./mentions.js');
    const statement = notifyStatement(this.device, channelId, mentionsOnly, this.api.now());
    return this.api.request('PUT', `/channels/${channelId}/notify`, { body: { statement } });
  }

  // -- recent history for new followers (section 23) ------------------------------------------

  /**
   * The tribe's recent-history choice to take into the ring, or null for nothing to change: asked
   * once a day, and whenever a follower this device never sealed to is on the roster (so it is
   * verified before anything older is shared); believed only if a manager's certified device
   * signed it (`days: null`: asked, nothing newer to believe).
   * @returns {Promise<{days: number | null, issued_at: number, by_device: string, now: number} | null>}
   */
  async historyChoice(channelId, roster, force = false) {
    if (this.isFollower() || roster.state?.kind !== 'tribe' || roster.blocked) return null;
    const now = nowSeconds();
    const kept = historyWindow(this.ring, channelId);
    const followers = roster.devices.filter((d) => d.member_id.startsWith('f_')).map((d) => d.device_id);
    const newcomers = undistributed(this.ring, channelId, Number(roster.epoch), followers);
    if (!force && !newcomers.length && kept && now - kept.checked_at < 86400) return null;
    let statement = null;
    try {
      statement = (await this.api.get(`/channels/${channelId}/history`)).statement;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err; // unanswered: keep what was believed before
    }
    const { verifiedChoice, withdrawsKept, withdrawnWarning } = await import('./recent-history.js');
    const check = () => verifiedChoice(this.trust.view, roster.state, this.device.org_id, channelId, statement, now);
    let found = check();
    if (found && 'warning' in found) {
      await this.loadDirectory(); // perhaps signed on a device linked since
      found = check();
    }
    if (found && 'warning' in found) this.trust.report([{ ...found.warning, member_id: null, device_id: null }]);
    if (kept && withdrawsKept(this.trust.view, roster.state, kept, found)) {
      // The choice believed before lost its signer's standing (revoked, demoted, gone): 0 days.
      this.trust.report([{ ...withdrawnWarning(channelId), member_id: null, device_id: null }]);
      return { days: 0, issued_at: kept.issued_at, by_device: '', now };
    }
    if (found === null || 'warning' in found) return { days: null, issued_at: 0, by_device: '', now };
    return { days: found.days, issued_at: found.issued_at, by_device: found.by_device, now };
  }

  /** How many days of this tribe this device shares with a new follower, asked and verified now. */
  async recentHistoryDays(channelId) {
    const roster = await this.roster(channelId, { fresh: true });
    const history = await this.historyChoice(channelId, roster, true);
    return this.withRing(async () => {
      if (history) setWindow(this.ring, channelId, history.days, history.issued_at, history.now, history.by_device);
      return historyWindow(this.ring, channelId)?.days || 0;
    });
  }

  /**
   * A manager lets new followers of a public tribe read its last `days` days (0: from joining),
   * signed by this device; the authors' devices verify it before sharing anything.
   * @param {string} channelId
   * @param {number} days
   */
  async setRecentHistory(channelId, days) {
    const { historyStatement } = await import('./recent-history.js');
    const statement = historyStatement(this.device, channelId, days, this.api.now());
    await this.api.request('PUT', `/channels/${channelId}/history`, { body: { statement } });
    return this.recentHistoryDays(channelId);
  }

  /** Answer the send waiting on `ref`, if any: with the ack's receipt, or an error. */
  settleAck(ref, frame, err = null) {
    const waiting = this.acks.get(ref);
    if (!waiting) return false;
    this.acks.delete(ref);
    clearTimeout(waiting.timer);
    if (err) waiting.reject(err);
    else if (frame.type === 'error') waiting.reject(new ApiError(frame.status || 0, frame.error || 'error', frame.message || ''));
    else {
      const { message_id, channel_id, seq, expires_at, duplicate, online } = frame;
      waiting.resolve({ message_id, channel_id, seq, expires_at, duplicate, online });
    }
    return true;
  }

  sendText(channelId, text, replyTo = null) {
    return this.send(channelId, textContent(text, { replyTo }));
  }

  // -- the outbox: what is written is kept until the server stored it ------------------------

  /**
   * Write a text: kept in the outbox (IndexedDB) first, so neither a lost network nor leaving
   * the page loses it, then sent with the outbox. Returns false when it waits for the network
   * ("en attente"); throws when the server refuses it (it leaves the outbox then).
   */
  async write(channelId, text, { replyTo = null, mentions = [] } = {}) {
    const content = textContent(text, { replyTo, mentions });
    const entry = { channel_id: channelId, message_id: newMessageId(), content, queued_at: Date.now() };
    await this.store.putOutbox(entry);
    this.emit('outbox', channelId);
    const { refused } = await this.flushOutbox(entry.message_id);
    if (refused.has(entry.message_id)) throw refused.get(entry.message_id);
    return !(await this.store.outbox()).some((x) => x.message_id === entry.message_id);
  }

  /**
   * Send what the outbox holds, oldest first, each under the id it was given when written: the
   * server stores a message id once, so a send whose answer was lost, or a second tab sending
   * the same entry, lands exactly once. Stops at the first network failure (kept for the next
   * reconnect); a message the server refuses (4xx) leaves the outbox and is reported.
   * @param {string | null} own the entry whose writer reports its own refusal
   * @returns {Promise<{refused: Map<string, Error>}>}
   */
  async flushOutbox(own = null) {
    while (this.flushing) await this.flushing;
    /** @type {Map<string, Error>} */
    const refused = new Map();
    this.flushing = (async () => {
      for (const entry of await this.store.outbox()) {
        try {
          await this.send(entry.channel_id, entry.content, { messageId: entry.message_id });
        } catch (err) {
          if (!(err instanceof ApiError) || err.status === 0 || err.status >= 500) return; // offline, or later
          refused.set(entry.message_id, err);
          if (entry.message_id !== own) this.emit('error', err); // written earlier: say it here
        }
        await this.store.removeOutbox(entry);
        this.emit('outbox', entry.channel_id);
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
    return { refused };
  }

  react(channelId, messageId, emoji, remove = false) {
    return this.send(channelId, { type: 'reaction', target: messageId, emoji, remove }, { kind: 'reaction' });
  }

  /**
   * How far each member has read the channel ("vu par N / M"): member id -> seq, from the read
   * cursors the server keeps (GET /channels/{c}/seen: a group's members, a tribe's managers).
   * @returns {Promise<Map<string, number>>}
   */
  async seenBy(channelId) {
    const { members } = await this.api.get(`/channels/${channelId}/seen`);
    return new Map(members.map((x) => [x.member_id, x.seq]));
  }

  /** Replace the text of one of my messages, on every device (an `edit`, section 7). */
  edit(channelId, messageId, text) {
    return this.send(channelId, { type: 'edit', target: messageId, text }, { kind: 'edit', target: messageId });
  }

  deleteForEveryone(channelId, messageId) {
    return this.send(channelId, { type: 'delete', target: messageId }, { kind: 'delete', target: messageId });
  }

  async createPoll(channelId, question, options, { multiple = false, closesAt = null, showVoters = false } = {}) {
    const poll = newPoll(question, options, { multiple, closesAt, showVoters });
    const result = await this.send(channelId, poll, { kind: 'poll' });
    return { ...result, poll_id: result.message_id };
  }

  vote(channelId, pollId, choices) {
    return this.send(channelId, { type: 'vote', poll_id: pollId, choices }, { kind: 'vote' });
  }

  closePoll(channelId, pollId) {
    return this.send(channelId, { type: 'close', poll_id: pollId }, { kind: 'poll_close', target: pollId });
  }

  async pollResults(channelId, pollId, messages) {
    const roster = await this.roster(channelId);
    const { members, departed } = this.voters(channelId, roster.state); // cut with the ends known now
    return tally(messages, pollId, members, Date.now() / 1000, departed);
  }

  // -- reading -------------------------------------------------------------------------------

  /** If I send here, give my current key to devices that joined since (multi-device). */
  async shareKeys(channelId) {
    if (!hasOwn(this.ring, channelId)) return;
    const roster = await this.roster(channelId, { fresh: true });
    if (hasOwn(this.ring, channelId, Number(roster.epoch))) await this.distributeKey(channelId, roster);
  }

  async read(channelId, since = 0, limit = READ_LIMIT) {
    await this.shareKeys(channelId);
    const page = await this.api.get(`/channels/${channelId}/messages`, { since, limit });
    const heldSince = Date.now();
    const messages = [];
    for (const m of page.messages) messages.push(await this.open(m, { heldSince }));
    return { messages, cursor: page.cursor, more: page.more };
  }

  /**
   * Whether a live message follows, without a gap, what this device already holds of the channel
   * (then no catch-up read is needed to show it); the channel counts as read up to it.
   * @param {{channel_id: string, seq: number}} message
   */
  followsSeen(message) {
    const seen = this.seen.get(message.channel_id);
    if (seen === undefined || message.seq !== seen + 1) return false;
    this.seen.set(message.channel_id, message.seq);
    const channel = this.channels.get(message.channel_id);
    if (channel) {
      channel.cursor = Math.max(channel.cursor || 0, message.seq);
      channel.unread = Math.max(0, (channel.latest_seq || 0) - channel.cursor);
    }
    return true;
  }

  /** Everything since this device's cursor, into the cache; returns the new messages. */
  async catchUp(channelId) {
    let cursor = await this.store.cursor(channelId);
    const fresh = [];
    for (;;) {
      const page = await this.read(channelId, cursor);
      fresh.push(...page.messages);
      await this.accept(page.messages, { emit: false });
      const moved = page.cursor !== cursor;
      cursor = page.cursor;
      await this.store.saveCursor(channelId, cursor);
      if (!moved || !page.more) break;
    }
    this.seen.set(channelId, Math.max(this.seen.get(channelId) || 0, cursor));
    const channel = this.channels.get(channelId);
    if (channel) {
      channel.cursor = Math.max(channel.cursor || 0, cursor);
      channel.latest_seq = Math.max(channel.latest_seq || 0, cursor);
      channel.unread = Math.max(0, channel.latest_seq - channel.cursor);
      await this.refineUnread(channelId);
      this.emit('channels');
    }
    return fresh;
  }

  /**
   * Retry cached messages that had no key yet (a sender shares it on their next send or read),
   * and those whose sender the membership refused or could not check (14.2): a refusal judged on
   * a log since refreshed (a member added meanwhile) must not stay for good. `errors`: which.
   */
  async retryUnreadable(channelId, { errors = RETRIED } = {}) {
    const cached = await this.store.messages(channelId);
    const heldSince = Date.now(); // a key fetch from before this retry is not enough: ask again
    const retried = [];
    // A follower's reaction or vote not placed (signer) may be a new follower's the roster did
    // not hold yet (asked at most every FOLLOWER_ROSTER_MS): tried again, never lost.
    const retriable = (m) => errors.includes(m.error) || (m.error === 'uncertified_device' && isFollowerId(m.sender_member));
    for (const m of cached) {
      if (!retriable(m) || !m.raw) continue; // a sender verified since counts now
      const opened = await this.open(m.raw, { heldSince });
      if ('error' in opened && opened.error === 'replayed') continue; // shown once: never a second copy
      if (opened.verified || ('error' in opened && opened.error !== m.error)) retried.push([m, opened]);
    }
    // Written over the records as they were read only: a deletion for everyone (or anything
    // else) that landed during the network waits above is not undone.
    if (retried.length) await this.store.reviseMessages(retried);
    await this.applyDeletions(retried.map(([, opened]) => opened));
    // Opened once, refused since (judgeCached): judged again, the content already in hand.
    const held = cached.filter((m) => m.held !== undefined && retriable(m));
    const judged = await this.judgeCached(held, { ask: true });
    return retried.length + judged.filter((m, i) => m !== held[i]).length;
  }

  /** Store opened messages, apply deletions, and tell the UI. */
  async accept(opened, { emit = true } = {}) {
    const messages = opened.filter((m) => m.error !== 'replayed'); // shown once: never a second copy
    if (!messages.length) return;
    await this.store.putMessages(messages);
    await this.applyDeletions(messages);
    if (emit) for (const m of messages) this.emit('message', m);
  }

  /** The verified deletions for everyone among `messages` applied to the records they name. */
  async applyDeletions(messages) {
    const deletions = messages.filter((m) => m.kind === 'delete' && m.verified && m.target);
    for (const d of deletions) {
      const cached = await this.store.messages(d.channel_id);
      const hit = cached.find((m) => m.message_id === d.target);
      if (hit && !hit.deleted) {
        const { held, ...gone } = hit; // a refused message's content aside (judgeCached) goes too
        await this.store.putMessages([{ ...gone, deleted: true, content: null, raw: null, verified: false }]);
      }
    }
  }

  /**
   * Verify then decrypt one stored message; forged or unreadable ones are flagged, not shown.
   * `heldSince`: when (this device's clock, ms) the message was already in hand; a key fetch
   * begun before then may predate its sender's envelope and is not reused for it.
   */
  async open(message, { heldSince = Date.now() } = {}) {
    const channelId = message.channel_id;
    const epoch = Number(message.epoch);
    const sender = message.sender_device;
    const shown = {
      channel_id: channelId,
      seq: message.seq,
      message_id: message.message_id,
      kind: message.kind,
      target: message.target ?? null,
      sender_member: message.sender_member,
      sender_device: sender,
      sent_at_ms: message.sent_at,
      stored_at: message.stored_at,
      expires_at: message.expires_at,
      verified: false,
    };
    if (message.deleted) return { ...shown, deleted: true };
    const signed = await this.signer(message);
    if ('refused' in signed) return { ...shown, sender_member: signed.memberId, ...signed.refused, raw: message };
    const { author, member } = signed;
    shown.sender_member = author.member_id; // the device certificate's member, never the server's stamp
    // The signature first, once (the envelope it returns is the one decrypted): a server's
    // rewrite (of sent_at, say) is no member's doing.
    let envelope;
    try {
      envelope = await verifyEnvelope(message, author.sign_public_key);
    } catch (err) {
      return { ...shown, ...openError(err, message) };
    }
    // 14.2: a certified device of someone not in the channel sends nothing here (a follower is
    // checked against the tribe's ticket instead, 16.3), whatever the server let through.
    if (member) {
      const refused = await this.senderRefusal(channelId, author.member_id, sender, message.sent_at, message.kind);
      // Kept with the message: re-judged after the next membership refresh (retryUnreadable).
      if (refused) return { ...shown, ...refused, raw: message };
    }
    try {
      const content = await this.openSealed(message, envelope, heldSince);
      return { ...shown, verified: true, content };
    } catch (err) {
      return { ...shown, ...openError(err, message) };
    }
  }

  /**
   * Who signed a message, fresh or cached (15, 16.3): this follower's own device (in no member
   * listing), a follower verified in this tribe (their certificate against its ticket; a
   * reaction or a vote only) or a certified device, whose member 14.2 judges next (`member`).
   * Otherwise `refused`, with the member it is shown as. The server's stamp only says where to
   * look first: a follower's, or none (a refused record keeps none), asks the tribe's followers
   * (its roster at most every FOLLOWER_ROSTER_MS, and only if `ask`); `followersUnknown` when
   * this tribe's roster was never verified here (a cached verdict then stands).
   * @returns {Promise<{author: {member_id: string, sign_public_key: string}, member: boolean} | {refused: {error: string}, memberId: string|null, followersUnknown?: boolean}>}
   */
  async signer(message, { ask = true } = {}) {
    const { channel_id: channelId, sender_device: sender, sender_member: stamp } = message;
    const mine = this.isFollower() && sender === this.deviceId ? { member_id: this.memberId, sign_public_key: b64e(this.device.signPublicKey) } : null;
    const follower = !mine && (!stamp || stamp.startsWith('f_')) ? await this.tribeFollower(channelId, sender, ask) : null;
    // Stamped a follower's, and no follower of the tribe's verified roster: one who left (most
    // days, in a town), or the roster not verified yet here (`followersUnknown`, `pending_check`:
    // tried again). Not placed, quietly: no forgery alert, no directory asked again; a post so
    // stamped is refused anyway (16.3), and a server can withhold a message as well. The stamp
    // stays on the refused record, so it is judged the same way at the next start, and such a
    // record is tried again with the roster (retryUnreadable: a new follower's, not yet listed).
    // A certified member's device stamped so goes to the certified check: a relabel, warned.
    if (!mine && !follower && stamp?.startsWith('f_') && !this.trust.view?.device(sender)) {
      const unknown = follower === undefined;
      return { refused: { error: unknown ? 'pending_check' : 'uncertified_device' }, memberId: stamp, followersUnknown: unknown };
    }
    const author = mine || follower || (await this.certifiedSender(message, channelId));
    if (!author?.sign_public_key) {
      const error = author && 'uncertified' in author && author.uncertified ? 'uncertified_device' : 'forged_sender';
      return { refused: { error }, memberId: null, followersUnknown: follower === undefined };
    }
    // 16.3: a follower reacts and votes, nothing more (a post, an edit or a deletion in a
    // follower's name is not applied, whoever stored it).
    if (author.member_id?.startsWith('f_') && !FOLLOWER_KINDS.has(message.kind)) return { refused: { error: 'forged_sender' }, memberId: author.member_id };
    return { author, member: !mine && !follower };
  }

  /**
   * 14.2's verdict on a certified member's message, fresh or cached: null when its sender may
   * send in the channel, else the error (and reason) it is shown with. `ask`: a refusal may ask
   * the log again (trust.refusedSender); otherwise the kept state judges alone.
   */
  async senderRefusal(channelId, memberId, deviceId, sentAtMs, kind, ask = true) {
    const why = await this.trust.refusedSender(this.api, channelId, memberId, deviceId, sentAtMs, kind, { ask });
    if (why === SENDER_UNCHECKED) return { error: 'pending_check' };
    return why ? { error: 'not_a_member', detail: why } : null;
  }

  /**
   * Cached messages as the current verified state judges their senders (14.2, 15, 22.7). The
   * cache keeps an opened message's content with what judges its sender (its device, signed
   * `sent_at_ms`, kind), never a verdict to trust: one written by an older version of this app,
   * or before this device saw a removal, a partnership's end or a revocation, is judged again
   * here, without verifying or decrypting again. A refused one keeps its content aside (`held`,
   * never shown) for a later verdict; a verdict that changed is written back. `ask`: a refusal
   * may ask the log, or a tribe's roster for a follower, again (a retry); the open channel, its
   * previews and search judge on what is kept (the roster keeps an open channel's log and
   * followers fresh).
   * @param {any[]} messages cached records, of any channels
   */
  async judgeCached(messages, { ask = false } = {}) {
    const judged = [];
    for (const m of messages) judged.push(await this.judgedAgain(m, ask));
    const revised = judged.map((m, i) => [messages[i], m]).filter(([before, after]) => before !== after);
    if (revised.length) {
      await this.store.reviseMessages(revised);
      this.emit('channels'); // the channel list's previews may show them
    }
    return judged;
  }

  /**
   * One cached record judged again (judgeCached): itself when the verdict stands. Without a
   * kept log (the channel's roster brings it) there is nothing to judge with. Until the
   * organisation's listing is verified here (an offline start), the kept log alone judges, and
   * only to refuse (a stored refusal was reached knowing more). Its signer is found as for a
   * fresh message (signer: a follower against the tribe's ticket, 16.3), its verdict the same.
   */
  async judgedAgain(m, ask) {
    const content = m.verified ? m.content : m.held;
    if (m.deleted || content === undefined) return m;
    // What needs neither a log nor the listing (13.7: signed after a revocation or removal this
    // device kept) refuses whatever else cannot be judged now.
    const kept = this.trust.keptEnded(m.sent_at_ms, m.sender_device, m.sender_member);
    const unjudged = () => (kept ? this.judgedAs(m, content, m.sender_member, { error: 'not_a_member', detail: kept }) : m);
    if (!this.trust.kept.logs[m.channel_id]) return unjudged();
    if (!this.trust.view) {
      // A follower's reaction or vote needs the tribe's roster verified (16.3): it waits.
      if (!m.sender_member || m.sender_member.startsWith('f_')) return unjudged();
      const refused = await this.senderRefusal(m.channel_id, m.sender_member, m.sender_device, m.sent_at_ms, m.kind, ask);
      return refused ? this.judgedAs(m, content, m.sender_member, refused) : m;
    }
    // A device the listing (or a tribe's roster, for a follower) cannot be asked about now: the
    // record waits for the next read rather than be called forged.
    // Refused by an older version, a record may have lost the server's stamp: its raw envelope
    // keeps it (only where to look first: a follower's, or a member's).
    const stamped = m.sender_member || !m.raw ? m : { ...m, sender_member: m.raw.sender_member ?? null };
    const signed = await this.signer(stamped, { ask }).catch(() => undefined);
    if (signed === undefined || ('refused' in signed && signed.followersUnknown)) return unjudged();
    if ('refused' in signed) return this.judgedAs(m, content, signed.memberId, signed.refused);
    const memberId = signed.author.member_id;
    const refused = signed.member ? await this.senderRefusal(m.channel_id, memberId, m.sender_device, m.sent_at_ms, m.kind, ask) : null;
    return this.judgedAs(m, content, memberId, refused);
  }

  /** A cached record with a verdict: refused (its content kept aside, `held`) or shown; itself when unchanged. */
  judgedAs(m, content, memberId, refused) {
    const { error, detail, held, ...rest } = m;
    const again = refused
      ? { ...rest, sender_member: memberId, verified: false, content: null, held: content, ...refused }
      : { ...rest, sender_member: memberId, verified: true, content };
    const same = again.verified === m.verified && again.error === error && again.detail === detail && again.sender_member === m.sender_member;
    return same ? m : again;
  }

  /**
   * Derive the message's key from the sender's chain, then decrypt `envelope` (the message's,
   * already verified) and check its labels.
   */
  async openSealed(message, envelope, heldSince) {
    const { channel_id: channelId, epoch, sender_device: sender, index, seq } = message;
    if (![epoch, index, seq].every(Number.isInteger)) throw new CryptoError('malformed message');
    const own = sender === this.deviceId;
    if (!own && !holds(this.ring, channelId, epoch, sender)) await this.fetchKeys(channelId, epoch, heldSince);
    return this.withRing(async () =>
      openWith(
        this.ring,
        channelId,
        epoch,
        own ? null : sender,
        index,
        { seq, messageId: message.message_id, expiresAt: message.expires_at },
        (key) => openVerified(envelope, key),
      ),
    );
  }

  /**
   * The sealed sender keys of one epoch, asked once for many messages: a fetch is reused only
   * if it began once the message was in hand (`heldSince`), so it saw every envelope sealed
   * before the message was sent (a sender stores its key first). An older fetch would miss a
   * key shared just now, say by a member who joined and sends for the first time.
   */
  async fetchKeys(channelId, epoch, heldSince) {
    const fetchSlot = slot(channelId, epoch);
    const last = this.keyFetches.get(fetchSlot);
    if (last && last.at >= heldSince) return last.promise;
    const promise = this.fetchKeysNow(channelId, epoch);
    this.keyFetches.set(fetchSlot, { at: Date.now(), promise });
    return promise;
  }

  async fetchKeysNow(channelId, epoch) {
    let sealed;
    try {
      ({ keys: sealed } = await this.api.get(`/channels/${channelId}/keys`, { epoch }));
    } catch (err) {
      if (err instanceof ApiError) return;
      throw err;
    }
    const opened = [];
    for (const entry of sealed) {
      const cached = this.tribeFollowers.get(channelId)?.get(entry.sender_device);
      const device = cached || (await this.deviceInfo(entry.sender_device)) || (await this.tribeFollower(channelId, entry.sender_device));
      if (!device) continue;
      try {
        opened.push([entry.sender_device, openSenderKey(this.keys, entry, device.box_public_key, channelId)]);
      } catch (err) {
        if (!(err instanceof CryptoError)) throw err; // a bad envelope is ignored, never trusted
      }
    }
    if (opened.length) {
      await this.withRing(async () => {
        for (const [senderDevice, { chainKey, index }] of opened) addReceived(this.ring, channelId, epoch, senderDevice, chainKey, index);
      });
    }
  }

  // -- live ----------------------------------------------------------------------------------

  async connect() {
    this.stopped = false;
    this.flushOutbox().catch(() => null); // the network is back, perhaps before the socket knows
    if (this.ws || this.replaced) return; // a replaced tab comes back through resume()
    let url;
    try {
      url = (await this.api.health()).ws_url;
    } catch {
      url = null;
    }
    if (!url) {
      this.scheduleReconnect();
      return;
    }
    const token = await signToken(this.keys.signSecretKey, this.deviceId, 'GET', CONNECT_PATH, {}, new Uint8Array(0), this.api.now());
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.online = true;
      this.backoff = 1000;
      this.lastFrame = Date.now();
      this.pinger = setInterval(() => {
        if (Date.now() - this.lastFrame >= PING_EVERY) this.sendFrame({ action: 'ping' });
      }, PING_CHECK);
      this.emit('status', { online: true });
      this.loadChannels().catch(() => null); // what arrived while away: unread counts, new channels
      this.flushOutbox().catch(() => null); // what was written offline
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handleFrame(frame).catch((err) => this.emit('error', err));
    };
    ws.onclose = (event) => {
      clearInterval(this.pinger);
      for (const ref of [...this.acks.keys()]) this.settleAck(ref, null, new Error('closed')); // to REST
      const was = this.online;
      // Refused at $connect: ask the REST API why (a revoked device learns it here).
      if (!was) this.api.get('/me').catch(() => null);
      this.ws = null;
      this.online = false;
      // API Gateway's close carries no code: the `replaced` error frame before it set the flag.
      if (event.code === CLOSE_REPLACED) this.replaced = true;
      if (event.code === CLOSE_RATE_LIMITED) this.backoff = Math.max(this.backoff, RATE_LIMITED_PAUSE);
      if (was || this.replaced) this.emit('status', { online: false, replaced: this.replaced });
      this.scheduleReconnect();
    };
  }

  /** The user came back to a tab whose connection a newer one replaced: connect again. */
  resume() {
    if (!this.replaced) return;
    this.replaced = false;
    this.backoff = 1000;
    this.connect();
  }

  scheduleReconnect() {
    if (this.stopped || this.revoked || this.replaced) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 30_000);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  sendFrame(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      this.lastFrame = Date.now();
    }
  }

  async handleFrame(frame) {
    const channelId = frame.channel_id;
    switch (frame.type) {
      case 'message': {
        const opened = await this.open(frame.message); // held since now: an older key fetch is not reused
        const channel = this.channels.get(opened.channel_id);
        if (channel) {
          channel.latest_seq = Math.max(channel.latest_seq || 0, opened.seq);
          if (opened.sender_device === this.deviceId) channel.cursor = Math.max(channel.cursor || 0, opened.seq);
          channel.unread = Math.max(0, channel.latest_seq - (channel.cursor || 0));
        }
        await this.accept([opened]);
        await this.refineUnread(opened.channel_id);
        this.emit('channels');
        break;
      }
      case 'joined':
      case 'device':
        this.rosters.delete(channelId);
        if (frame.type === 'joined' && frame.member_id === this.memberId) await this.loadChannels();
        if (frame.type === 'device') await this.loadDirectory();
        await this.shareKeys(channelId); // a new device may be waiting for my key
        if (this.channels.has(channelId)) await this.roster(channelId, { fresh: true }).catch(() => null); // the signed log: who joined, by whom
        await this.retryUnreadable(channelId, { errors: SENDER_RETRIED }).catch(() => null); // judged before that log: shown on 'roster'
        this.emit('roster', channelId);
        break;
      case 'left':
        this.rosters.delete(channelId);
        if (frame.member_id === this.memberId) {
          this.channels.delete(channelId);
          await this.store.dropChannel(channelId);
          await this.store.put('channels', [...this.channels.values()]);
          await this.trust.forgetChannel(channelId);
          this.emit('channels');
        } else if (this.channels.has(channelId)) {
          await this.roster(channelId, { fresh: true }).catch(() => null); // the signed log says who left
        }
        this.emit('roster', channelId);
        break;
      case 'revoked':
        this.rosters.delete(channelId);
        if (frame.device_id === this.deviceId) await this.onRevoked();
        this.emit('roster', channelId);
        break;
      case 'rotated': // the epoch moved on (keys older than one retention): the next send re-keys
        this.rosters.delete(channelId);
        break;
      case 'role':
        if (frame.member_id === this.memberId && this.channels.has(channelId)) {
          this.channels.get(channelId).my_role = frame.role;
          this.emit('channels');
        }
        this.trust.checkedAt.delete(channelId); // a role entry does not move the roster's version
        if (this.channels.has(channelId)) await this.roster(channelId, { fresh: true }).catch(() => null);
        this.emit('roster', channelId);
        break;
      case 'channel':
        if (this.channels.has(channelId)) {
          this.channels.get(channelId).name = frame.name;
          this.emit('channels');
        }
        break;
      case 'call':
      case 'call_ack':
        this.emit('call', frame); // the call code (web/js/call/) loads on the first one
        break;
      case 'batch': // several frames in one WebSocket message (protocol section 9): each in order
        for (const inner of Array.isArray(frame.frames) ? frame.frames : []) {
          if (!inner || typeof inner !== 'object' || inner.type === 'batch') continue; // never nested
          await this.handleFrame(inner).catch((err) => this.emit('error', err)); // one bad frame, not the rest
        }
        break;
      case 'ack':
        this.settleAck(frame.ref, frame);
        break;
      case 'error':
        if (typeof frame.ref === 'string' && frame.ref.startsWith('call-')) {
          this.emit('call', frame); // a refused call signal: the call view says why
          break;
        }
        if (frame.ref && this.settleAck(frame.ref, frame)) break; // a send's answer: its caller reports it
        if (frame.error === 'replaced') {
          this.replaced = true; // the close follows; not an error the user caused
          break;
        }
        this.emit('error', new ApiError(frame.status || 0, frame.error || 'error', frame.message || ''));
        break;
      default:
        break; // pong
    }
  }
}

/** Why a message is not shown: `no_key` ones are retried when a key arrives, the rest are final. */
function openError(err, message) {
  if (err instanceof ForgedMessage) return { error: 'forged' };
  if (err instanceof MislabelledMessage) return { error: 'mislabelled', detail: err.message };
  if (err instanceof ReplayedMessage) return { error: 'replayed', detail: err.message };
  if (err instanceof KeyUnavailable) return { error: 'no_key', raw: message, detail: err.message };
  if (err instanceof TooFarAhead) return { error: 'too_far_ahead', detail: err.message };
  if (err instanceof CryptoError) return { error: 'undecryptable' };
  throw err;
}

/** A channel whose membership log the server rolled back or forked: nothing is sealed or sent. */
function membershipBlocked(channelId) {
  return Object.assign(new Error(`the membership log of ${channelId} does not extend the one seen here`), {
    status: 409,
    code: 'membership_blocked',
  });
}

/**
 * A text message's sealed content: the text, the message it answers, and the members it
 * mentions by id (their "@Name" is in the text; section 9 of the protocol).
 * @param {string} text
 * @param {{replyTo?: string | null, mentions?: string[]}} [extra]
 */
export function textContent(text, { replyTo = null, mentions = [] } = {}) {
  /** @type {{type: string, text: string, reply_to?: string, mentions?: string[]}} */
  const content = { type: 'text', text };
  if (replyTo) content.reply_to = replyTo;
  if (mentions.length) content.mentions = mentions;
  return content;
}
