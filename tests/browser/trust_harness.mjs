// Runs the web app's trust code (web/js/certs.js, membership.js) under node for
// test_trust_compat.py: reads a JSON array of commands on stdin, writes a JSON array of results.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
globalThis.nacl = require('tweetnacl');
const wire = await import('../../web/js/wire.js');
const certs = await import('../../web/js/certs.js');
const membership = await import('../../web/js/membership.js');
const followers = await import('../../web/js/followers.js');
const mentions = await import('../../web/js/mentions.js');
const partners = await import('../../web/js/partners.js');
const recentHistory = await import('../../web/js/recent-history.js');
const trustModule = await import('../../web/js/trust.js');
const shared = await import('../../web/js/shared.js');

const d = wire.b64d;
const error = (err) => ({ error: err.constructor.name, message: err.message });

/** Everything a view decides about every member and device it lists. */
function verdicts(view) {
  const members = {};
  for (const id of view.members.keys()) members[id] = memberVerdict(view, id);
  const devices = {};
  for (const id of view.devices.keys()) devices[id] = deviceVerdict(view, id);
  return { members, devices };
}

function memberVerdict(view, id) {
  const trust = view.member(id);
  return {
    trusted: trust !== null,
    display_name: trust?.display_name ?? null,
    role: view.role(id),
    certified: view.certified(id),
    vouched_only: view.vouchedOnly(id),
    why_not: view.whyNotMember(id)?.code ?? null,
    removed_at: view.removedAt(id),
  };
}

function deviceVerdict(view, id) {
  return { trusted: view.device(id) !== null, usable: view.usable(id) !== null, why_not: view.whyNot(id)?.code ?? null, revoked_at: view.revokedAt(id) };
}

// `cached`: with a cache of checked signatures, so the platform's Ed25519 checks them ahead (prewarm).
const view = (a) =>
  certs.TrustView.create(a.org_id, a.root, a.members, a.devices, {
    verified: a.verified || {},
    seen: a.seen || {},
    cache: a.cached ? new certs.VerifiedCache() : null,
  });

/** A device record as the web app keeps it, from the signing seed the test gives. */
/** The channel a case asks the log of: the one it names, else the one its log is of (a case
 * that does not test a substituted log). */
const asked = (a) => a.channel_id ?? a.kept?.channel_id ?? a.answer?.entries?.[0]?.channel_id ?? null;

/** A web Messenger whose channel list holds `channel_id` as direct (of `listed`) and whose log is `entries`. */
async function directMessenger(args) {
  const { Messenger } = await import('../../web/js/messenger.js');
  const trust = await view(args);
  const reported = [];
  const messenger = Object.create(Messenger.prototype);
  const channel = { channel_id: args.channel_id, kind: 'direct', name: 'listed', direct_members: args.listed };
  Object.assign(messenger, {
    device: { org_id: args.org_id, member_id: args.me },
    channels: new Map([[args.channel_id, channel]]),
    directory: { devices: new Map(), members: new Map() },
    tribeFollowers: new Map(),
    followerNames: new Map(),
    trust: {
      view: trust,
      membership: async () => ({ state: (await membership.replay(args.entries, trust)).state, blocked: false }),
      recipients: async () => ({ devices: [], followers: new Map() }),
      cut: (state) => state, // no partner here: nothing to cut at an end
      report: (warnings) => reported.push(...warnings.map((w) => w.code)),
      displayName: (id) => trust.displayName(id),
    },
  });
  return { messenger, reported };
}
/** A TrustKeeper over `stored` (its IndexedDB record 'trust', in `memory`), once it read our listing. */
async function rebuiltKeeper(args) {
  const memory = new Map(args.stored ? [['trust', structuredClone(args.stored)]] : []);
  const store = { get: async (k) => memory.get(k), put: async (k, v) => void memory.set(k, structuredClone(v)) };
  const keeper = new trustModule.TrustKeeper(store, { org_id: args.org_id, member_id: args.member_id, device_id: args.device_id, root: args.root });
  await keeper.load();
  await keeper.rebuild(args.members, args.devices);
  return { keeper, memory };
}
const signer = (device) => ({ ...device, signSecretKey: wire.deviceKeysFromSeeds(d(device.sign_seed), new Uint8Array(32)).signSecretKey });
const outcome = async (fn) => {
  try {
    return await fn();
  } catch (err) {
    return error(err);
  }
};

const commands = {
  async partner_ticket({ device, allow_tribes, now }) {
    return partners.partnerTicket(signer(device), allow_tribes, now);
  },
  async partner_links({ answer, seed, root }) {
    return partners.invitationLinks(answer, seed, root);
  },
  async partner_parse({ text }) {
    return outcome(() => partners.parsePartner(text));
  },
  async partner_accept({ device, text, server, allow_tribes, now }) {
    return outcome(() => partners.acceptInvitation(signer(device), text, server, allow_tribes, now));
  },
  async partner_end({ device, partner, ticket_key, now }) {
    return partners.partnershipEnd(signer(device), partner, ticket_key, now);
  },
  /** Whether this admin device would countersign, and what. */
  async partner_countersign(args) {
    const trust = await view(args);
    const due = partners.awaitsUs(args.entry, trust, args.device.member_id, args.kept || {});
    const { statement, warnings } = partners.countersignature(args.entry, trust, signer(args.device), args.now);
    return { due, statement, codes: warnings.map((w) => w.code) };
  },
  /** The ticket key an end of the listed `entry` would name, or the refusal (22.7). */
  async partner_end_key(args) {
    const trust = await view(args);
    return outcome(() => ({ ticket_key: partners.verifiedTicketKey(args.entry, trust, args.kept || {}) }));
  },
  /** A partner's member's contact card: the link made from `card`, or the one pasted checked (22.6). */
  async partner_card_url({ app_url, card }) {
    return partners.cardUrl(app_url, card);
  },
  async partner_card_check({ text, pinned, listing }) {
    try {
      return await partners.checkCard(partners.parseCard(text), pinned, listing);
    } catch (err) {
      return { ...error(err), code: err.code ?? null };
    }
  },
  /** The partnership as this device verifies it, over the partner's GET /partners/{org}/members. */
  async partner_check(args) {
    const trust = await view(args);
    const kept = args.kept || {};
    const { entry, warnings } = await partners.checkPartner(args.entry, { view: trust, ownRoot: args.root, kept, partnerListing: async () => args.partner_listing, now: args.now });
    return { status: entry.status, partner_root: entry.partner_root, codes: warnings.map((w) => w.code), messages: warnings.map((w) => w.message), kept };
  },
  async sign({ body, seed }) {
    try {
      const statement = certs.signStatement(body, d(seed));
      return { statement, hash: await certs.statementHash(statement) };
    } catch (err) {
      return error(err);
    }
  },
  async verify({ statement, purpose, key }) {
    try {
      certs.verifyStatement(statement, purpose, key);
      return { ok: true };
    } catch (err) {
      return error(err);
    }
  },
  async public_key({ seed }) {
    return certs.publicKeyOf(d(seed));
  },
  async fingerprint({ key }) {
    return certs.fingerprint(key);
  },
  async safety({ a, b, org_id, member_id }) {
    const number = certs.safetyNumber(a, b);
    return { number, payload: certs.verifyPayload(org_id, member_id, number), parsed: certs.parseVerification(certs.verifyPayload(org_id, member_id, number)) };
  },
  async parse_verification({ text }) {
    return certs.parseVerification(text);
  },
  async with_fragment({ url, params }) {
    return certs.withFragment(url, params);
  },
  async activation_certs({ link, keys, display_name, now, identity_seed }) {
    const out = certs.activationCertificates(link, keys, display_name, now, identity_seed ? d(identity_seed) : undefined);
    return { member_cert: out.member_cert, device_cert: out.device_cert, identity_key: out.identity_key };
  },
  async small_order({ key }) {
    return wire.isSmallOrder(d(key));
  },
  async evaluate(args) {
    return verdicts(await view(args));
  },
  async direct_id({ org_id, a, b }) {
    return membership.directChannelId(org_id, a, b);
  },
  async new_channel_id() {
    return membership.newChannelId();
  },
  /**
   * The web Messenger's openDirect when its channel list already holds the pair's id and the
   * server serves `entries` as its log: the channel, or the refusal and what was reported.
   */
  async open_direct(args) {
    const { messenger, reported } = await directMessenger({ ...args, listed: [args.me, args.other] });
    // Sending in it from the channel list (which calls it direct): is the roster blocked?
    const { blocked } = await messenger.certifyRoster(args.channel_id, { devices: [], roster: 1 });
    try {
      return { opened: (await messenger.openDirect(args.other)).channel_id, blocked, reported };
    } catch (err) {
      return { opened: null, code: err.code ?? null, blocked, reported };
    }
  },
  /**
   * A channel the server lists as our direct conversation with the members `listed`, whose log
   * is `entries`: the name the list shows it under, and whether a send from the list is blocked.
   */
  async listed_direct(args) {
    const { messenger, reported } = await directMessenger(args);
    const listed = messenger.channel(args.channel_id);
    listed.direct_with = await messenger.listedPartner(listed); // as loadChannels does
    const { blocked } = await messenger.certifyRoster(args.channel_id, { devices: [], roster: 1 });
    return { name: messenger.channelName(listed), blocked, reported };
  },
  /** Whether the log replayed is the direct conversation of `me` with `other` (openDirect's check). */
  async direct_of(args) {
    const { state } = await membership.replay(args.entries, await view(args));
    return membership.isDirectOf(args.channel_id, args.org_id, state, args.me, args.other);
  },
  async replay(args) {
    const { state, error: err } = await membership.replay(args.entries, await view(args));
    return { state, error: err ? err.message : null };
  },
  async advance(args) {
    return membership.advance(args.kept, args.answer, await view(args), asked(args));
  },
  /** Each state's verdict on each (member, sent_at, kind) question: the reason refused, or null. */
  async refuses_sender({ states, questions }) {
    return states.map((state) => questions.map(([member, sentAt, kind]) => membership.refusesSender(state, member, sentAt, kind)));
  },
  /** Each (sent_at, revoked_at, removed_at) question's verdict (13.7): the reason refused, or null. */
  async refuses_ended_device({ questions }) {
    return questions.map(([sentAt, revokedAt, removedAt]) => membership.refusesEndedDevice(sentAt, revokedAt, removedAt));
  },
  /**
   * The web client's TrustKeeper over `stored` alone, before any listing is verified (an offline
   * start): its verdict on each [member, device, sent_at, kind] question in `channel_id`.
   */
  async offline_senders(args) {
    const memory = new Map([['trust', structuredClone(args.stored)]]);
    const store = { get: async (k) => memory.get(k), put: async (k, v) => void memory.set(k, structuredClone(v)) };
    const keeper = new trustModule.TrustKeeper(store, { org_id: args.org_id, member_id: args.member_id, device_id: args.device_id, root: args.root });
    await keeper.load();
    const api = { get: async () => Promise.reject(Object.assign(new Error('offline'), { status: 0 })) };
    const refuses = [];
    for (const [member, device, sentAt, kind] of args.questions) refuses.push(await keeper.refusedSender(api, args.channel_id, member, device, sentAt, kind, { ask: false }));
    return { view: keeper.view !== null, refuses };
  },
  /**
   * The web client's re-judgment of cached records (Messenger.judgedAgain) over `stored`, where
   * nothing but the kept revocations and removals can judge: no log kept for the channel, or
   * (`lost_device`) a verified view whose listing no longer names the device and cannot be asked.
   */
  async cached_judged(args) {
    const { Messenger } = await import('../../web/js/messenger.js');
    const memory = new Map([['trust', structuredClone(args.stored)]]);
    const store = { get: async (k) => memory.get(k), put: async (k, v) => void memory.set(k, structuredClone(v)) };
    const keeper = new trustModule.TrustKeeper(store, { org_id: args.org_id, member_id: args.member_id, device_id: args.device_id, root: args.root });
    await keeper.load();
    const m = Object.create(Messenger.prototype);
    m.trust = keeper;
    m.device = { role: 'member', org_id: args.org_id, member_id: args.member_id, device_id: args.device_id };
    m.api = { get: async () => Promise.reject(Object.assign(new Error('unavailable'), { status: 503 })) };
    if (args.lost_device) {
      keeper.view = { device: () => null, revokedAt: () => null, removedAt: () => null, endsOf: () => [] };
      m.deviceInfo = async () => Promise.reject(Object.assign(new Error('unavailable'), { status: 503 }));
    }
    const judged = [];
    for (const record of args.records) {
      const after = await m.judgedAgain(record, false);
      judged.push(after === record ? 'unchanged' : { verified: after.verified, error: after.error ?? null, detail: after.detail ?? null, held: after.held ?? null });
    }
    return judged;
  },
  /**
   * Messenger.retryUnreadable over a kept channel whose unreadable record is deleted for everyone
   * while the retry waits on the network (its `open`): what the store holds afterwards. The store
   * keeps records as db.js does (a revision replaces only an unchanged record).
   */
  async retry_during_deletion({ record }) {
    const { Messenger } = await import('../../web/js/messenger.js');
    const rows = new Map([[record.seq, structuredClone(record)]]);
    const store = {
      messages: async () => [...rows.values()].map((r) => structuredClone(r)),
      putMessages: async (list) => list.forEach((r) => rows.set(r.seq, structuredClone(r))),
      reviseMessages: async (pairs) => pairs.forEach(([before, after]) => {
        if (JSON.stringify(rows.get(before.seq)) === JSON.stringify(before)) rows.set(after.seq, structuredClone(after));
      }),
    };
    const m = Object.create(Messenger.prototype);
    m.store = store;
    m.open = async (raw) => {
      // Meanwhile, the catch-up applies a deletion for everyone of that very message.
      rows.set(record.seq, { ...rows.get(record.seq), deleted: true, content: null, raw: null, verified: false });
      return { ...raw, verified: true, content: { type: 'text', text: 'secret' } };
    };
    m.judgeCached = async (held) => held;
    await m.retryUnreadable(record.channel_id);
    return rows.get(record.seq);
  },
  async sign_entry({ device, channel_id, state, change, now }) {
    const keys = wire.deviceKeysFromSeeds(d(device.sign_seed), new Uint8Array(32));
    return membership.signEntry({ ...device, signSecretKey: keys.signSecretKey }, channel_id, state, change, now);
  },
  /** A log replayed from the host's side with our organisation and its partners (22.6); a
   * follower's view (`follower`, 16.3) with none. `ids`: more member and device ids to judge;
   * `from`: a kept state the entries extend (else they start at entry 0). */
  async shared(args) {
    const partnerViews = await shared.partnerViews(args.kept, args.listings);
    const trust = new shared.SharedView(await view(args), partnerViews, { follower: Boolean(args.follower) });
    const { state, error: err } = await membership.replay(args.entries, new shared.HostAuthority(args.host, trust), args.from ?? null, args.channel_id ?? null);
    const views = [trust, ...partnerViews.map((p) => p.view)];
    const members = new Set([...views.flatMap((v) => [...v.members.keys()]), ...(args.ids?.members || [])]);
    const devices = new Set([...views.flatMap((v) => [...v.devices.keys()]), ...(args.ids?.devices || [])]);
    const out = {
      state,
      error: err ? err.message : null,
      verdicts: {
        members: Object.fromEntries([...members].map((id) => [id, memberVerdict(trust, id)])),
        devices: Object.fromEntries([...devices].map((id) => [id, deviceVerdict(trust, id)])),
      },
      recipients: [],
      warnings: [],
    };
    if (args.roster) {
      const selected = membership.effectiveRoster(trust, state, args.roster, args.self);
      out.recipients = selected.devices.map((dev) => dev.device_id).sort();
      out.warnings = selected.warnings.map((w) => ({ code: w.code, member_id: w.member_id, device_id: w.device_id, message: w.message }));
    }
    return out;
  },
  async recipients(args) {
    const trust = await view(args);
    return membership.effectiveRoster(trust, args.state, args.roster, args.self);
  },
  /** What the web client decides before a send, from the server's answers (membership, roster). */
  async decide(args) {
    const trust = await view({ ...args, cached: true });
    const out = { blocked: false, state: null, recipients: [], senders: [], warnings: [] };
    if (args.answer) {
      const advanced = await membership.advance(args.kept, args.answer, trust, asked(args));
      Object.assign(out, { blocked: advanced.blocked, state: advanced.state });
      out.warnings.push(...advanced.warnings);
      if (!advanced.blocked && args.roster) {
        const verified = await followers.verifyFollowers(trust, advanced.state, args.roster, args.channel_id);
        const selected = membership.effectiveRoster(trust, advanced.state, args.roster, args.self, verified);
        out.recipients = selected.devices.map((dev) => dev.device_id).sort();
        out.warnings.push(...selected.warnings);
      }
    }
    for (const message of args.messages || []) {
      const sender = certs.certifiedSender(trust, message);
      out.senders.push(sender.member_id);
      if (sender.warning) out.warnings.push(sender.warning);
    }
    const roles = Object.fromEntries([...trust.members.keys()].map((id) => [id, trust.role(id)]));
    return { ...out, roles, codes: [...new Set(out.warnings.map((w) => w.code))].sort() };
  },
  async sender(args) {
    const trust = await view(args);
    return certs.certifiedSender(trust, args.message);
  },
  async notify_choice({ device, channel_id, mentions_only, now }) {
    const keys = wire.deviceKeysFromSeeds(d(device.sign_seed), new Uint8Array(32));
    return mentions.notifyStatement({ ...device, signSecretKey: keys.signSecretKey }, channel_id, mentions_only, now);
  },
  /** The warnings the web client lists after reporting these, in order. */
  async kept_warnings(args) {
    const keeper = new trustModule.TrustKeeper(null, {});
    keeper.report(args.warnings);
    return [...keeper.warnings.values()];
  },
  /** Whether the web client believes a tribe's recent-history choice (section 23). */
  async history_choice(args) {
    const trust = await view({ ...args, cached: true });
    const advanced = await membership.advance(null, args.answer, trust, asked(args));
    return recentHistory.verifiedChoice(trust, advanced.state, args.org_id, args.channel_id, args.statement, args.now);
  },
  /** Whether the web client withdraws the choice it kept (`kept`, as its ring holds it) when it
   * asks again and is served `statement` (section 23). */
  async history_withdraws(args) {
    const trust = await view({ ...args, cached: true });
    const advanced = await membership.advance(null, args.answer, trust, asked(args));
    const found = recentHistory.verifiedChoice(trust, advanced.state, args.org_id, args.channel_id, args.statement, args.now);
    return recentHistory.withdrawsKept(trust, advanced.state, args.kept, found);
  },
  /** Whether the web client believes the server's notice ending a device's part in a call (19.4),
   * with the trust view and the channel's verified membership from the server's answers. */
  async call_notice(args) {
    const trust = await view({ ...args, cached: true });
    const advanced = await membership.advance(null, args.answer, trust, asked(args));
    const session = await import('../../web/js/call/call-session.js');
    const m = {
      trust: { view: trust, cut: (state) => state }, // one organisation, no partner: nothing to cut
      loadDirectory: async () => {},
      roster: async () => ({ state: advanced.state, blocked: false, devices: [] }),
    };
    const checked = await session.verifySignal(m, args.frame);
    return checked ? { by_server: checked.byServer } : null;
  },
  /** The web client learning its partners while the server fails `failing` (paths, status 503):
   * whether it threw, what it reported, whether the partner's device it knew stays usable, what
   * it asked and whose listings it keeps. The server serves `served` (else the `listings` kept),
   * and `entries` as GET /partners (none by default). */
  async learn_partners(args) {
    const memory = new Map();
    const store = { get: async (k) => memory.get(k), put: async (k, v) => void memory.set(k, v) };
    const keeper = new trustModule.TrustKeeper(store, { org_id: args.org_id, member_id: args.member_id, device_id: args.device_id, root: args.root });
    await keeper.load();
    Object.assign(keeper.kept, { partners: structuredClone(args.kept), partner_listings: structuredClone(args.listings) });
    await keeper.rebuild(args.members, args.devices);
    const asked = [];
    const answer = async (path) => {
      asked.push(path);
      if (args.failing.includes(path)) throw Object.assign(new Error('the server is not answering'), { status: 503 });
      return path === '/partners' ? { partners: args.entries ?? [] } : (args.served ?? args.listings)[path.split('/')[2]];
    };
    let thrown = null;
    try {
      await keeper.learnPartners({ get: answer }, answer);
    } catch (err) {
      thrown = String(err);
    }
    return {
      thrown,
      codes: [...keeper.warnings.values()].map((w) => w.code),
      usable: args.usable.map((id) => keeper.view?.usable(id) != null),
      asked,
      listed: Object.keys(keeper.kept.partner_listings || {}),
    };
  },
  /**
   * The web client's TrustKeeper (trust.js) over `stored` (its IndexedDB record 'trust'), our
   * organisation's listing and a server that serves `entries` as the channel's log: the state it
   * keeps, its verdict on each [member, device, sent_at, kind] question, whom it seals to in
   * `roster`, what it reports and what it stores (22.7).
   */
  async keeper(args) {
    const { keeper, memory } = await rebuiltKeeper(args);
    const channel = args.channel_id;
    const entries = args.entries;
    const head = entries.length ? { seq: entries.length - 1, hash: await certs.statementHash(entries[entries.length - 1]) } : null;
    const api = {
      get: async (path, query) => {
        if (path !== `/channels/${channel}/membership`) throw Object.assign(new Error(`nothing at ${path}`), { status: 404 });
        return { channel_id: channel, entries: entries.slice(Number(query?.from ?? 0)), head, more: false };
      },
    };
    const { state } = await keeper.membership(api, channel, 'listed');
    const refuses = [];
    for (const [member, device, sentAt, kind] of args.questions || []) refuses.push(await keeper.refusedSender(api, channel, member, device, sentAt, kind));
    const sealed = args.roster ? await keeper.recipients(channel, state, args.roster) : { devices: [], warnings: [] };
    // The server's notices ending a device's part in a call (19.4), judged with this keeper.
    const session = await import('../../web/js/call/call-session.js');
    const m = { trust: keeper, loadDirectory: async () => {}, roster: async () => ({ state, blocked: false, devices: [] }) };
    const notices = [];
    for (const frame of args.notices || []) notices.push(Boolean((await session.verifySignal(m, frame))?.byServer));
    return {
      state,
      refuses,
      notices,
      recipients: sealed.devices.map((dev) => dev.device_id).sort(),
      roster_warnings: sealed.warnings.map((w) => ({ code: w.code, device_id: w.device_id })),
      codes: [...new Set([...keeper.warnings.values()].map((w) => w.code))].sort(),
      stored: memory.get('trust') ?? null,
    };
  },
  /**
   * The web client's TrustKeeper over `stored` (its IndexedDB record 'trust'), our listing and
   * the partners' kept in it: what it keeps, what it reports, and its verdict on every member and
   * device, ours and partners'. `card`: a partner's member's contact card checked (against
   * `pinned` and `listing`) and its key pinned, as the Messenger does, after the listings were read.
   */
  async keeper_view(args) {
    const { keeper, memory } = await rebuiltKeeper(args);
    if (args.card) {
      const checked = await partners.checkCard(partners.parseCard(args.card.text), args.card.pinned, args.card.listing);
      await keeper.pinIdentity(checked.org_id, checked.member_id, checked.identity_key);
    }
    const view = keeper.view;
    const views = [view, ...[...view.partners.values()].map((p) => p.view)];
    return {
      members: Object.fromEntries(views.flatMap((v) => [...v.members.keys()]).map((id) => [id, memberVerdict(view, id)])),
      devices: Object.fromEntries(views.flatMap((v) => [...v.devices.keys()]).map((id) => [id, deviceVerdict(view, id)])),
      warnings: [...keeper.warnings.values()].map((w) => ({ code: w.code, member_id: w.member_id, device_id: w.device_id, message: w.message })),
      stored: memory.get('trust') ?? null,
    };
  },
  /** Whom the web client would name in `notify`, from the server's statements. */
  async to_notify(args) {
    const trust = await view(args);
    return mentions.toNotify(trust, args.org_id, args.channel_id, args.mentioned, args.statements);
  },
};

const input = JSON.parse(readFileSync(0, 'utf8'));
const output = [];
for (const { op, ...args } of input) {
  output.push(await commands[op](args));
}
process.stdout.write(JSON.stringify(output));
