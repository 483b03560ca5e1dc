// @ts-check
// A channel's signed membership log (docs/protocol.md, section 14): replaying it, keeping the
// last verified state, refusing a log that does not extend it, and signing the entries this
// browser makes. The same rules as chalicelib/domain/membership_log.py; pure, runs under node.
//
// The organisation side of each check (who signed, with which role at the time, who may join)
// comes from an authority: a TrustView (certs.js) built from the certificates this client checked.
import { FOLLOWER_CERT, MEMBERSHIP, STATEMENT_CLOCK_SKEW, StatementError, checkShape, prewarm, signSeed, signStatement, statementHash, verifyStatement } from './certs.js';
import { base32Lower, randomBytes, sha256, utf8 } from './wire.js';

const ADMIN_ROLES = ['admin', 'owner'];
/** A guest's organisation role: in their own organisation's channels only (section 21). */
export const GUEST = 'guest';
/** What an authority answers as the organisation role of an active partner's member (22.6):
 * never a manager nor an author, in a tribe only if the host's statement allows it. */
export const PARTNER = 'partner';
const NEVER_AUTHORS = [GUEST, PARTNER];
const DIRECT_PURPOSE = 'bocage/direct/v2';
/** How far after a member's departure (its entry's `issued_at`, seconds) a message they signed
 * may be dated (`sent_at`, ms) and still be theirs: clocks differ (section 14.2). */
export const DEPARTURE_SKEW_SECONDS = 300;
/** What a tribe's members who are not its authors may send (as the server's rule, section 14.2). */
const AUDIENCE_KINDS = new Set(['reaction', 'vote']);
/** How far before the latest entry it follows an entry may be dated (section 14, "Dates"):
 * `ENTRY_ORDER_SKEW_SECONDS` in chalicelib/domain/membership_log.py. */
export const ENTRY_ORDER_SKEW_SECONDS = 600;
const CHANNEL_PURPOSE = 'bocage/channel/v2';

/** An entry that does not extend the log: unsigned, unchained or unauthorised. */
export class LogError extends Error {}

/**
 * A state's `org_id` is the host, named by the creation: every later entry must name it too, so
 * an entry a partner's member signs (22.6) never makes the channel look like the partner's.
 * `former`: who left (`remove`, `leave`) and did not come back, with the departure's `issued_at`
 * (section 14.2); `authored_until`: who stopped being an author (made a member, or left as an
 * author), with when (in a tribe only authors post); `joined`: when each member was last added
 * (the creation for its creator), so a partner's member is out from the first end of the
 * partnership after it (22.7). All three are absent from a state kept before they existed, or
 * whose rebuild failed.
 * @typedef {{channel_id: string, kind: string, members: Record<string, string>, seq: number, head: string, org_id: string, former?: Record<string, number>, authored_until?: Record<string, number>, joined?: Record<string, number>, created_at?: number, issued_at?: number, unplaced?: string[]}} LogState
 * @typedef {{signer(deviceId: string, at: number): [string, string]|null, orgRole(memberId: string, at: number): string|null, mayJoin(memberId: string, at: number): boolean, tribesOpenTo(memberId: string): boolean, unplaced?: (memberId: string) => boolean, now?: () => number, cache?: any, claimedKey?: (deviceId: string) => unknown}} Authority
 */

function shape(entry) {
  try {
    return checkShape(entry, MEMBERSHIP);
  } catch (err) {
    if (err instanceof StatementError) throw new LogError(err.message);
    throw err;
  }
}

/** The member whose certified device signed the entry; LogError if none did. */
function signerOf(entry, authority) {
  const found = authority.signer(String(entry.by_device), entry.issued_at);
  if (!found) throw new LogError(`entry ${entry.seq}: ${entry.by_device} is not a certified device at that time`);
  const [memberId, publicKey] = found;
  try {
    verifyStatement(entry, MEMBERSHIP, publicKey, authority.cache || null);
  } catch (err) {
    if (err instanceof StatementError) throw new LogError(`entry ${entry.seq}: ${err.message}`);
    throw err;
  }
  return memberId;
}

/**
 * The state after entry 0, which must create the channel. A client names the channel it asked
 * for (`channelId`), so a server cannot pass another channel's log off as this one's.
 * @returns {Promise<LogState>}
 */
export async function create(entry, authority, channelId = null) {
  const e = shape(entry);
  if (channelId !== null && e.channel_id !== channelId) throw new LogError(`entry 0 is for another channel than ${channelId}`);
  if (e.seq !== 0 || e.prev !== null || e.op !== 'create') {
    throw new LogError("entry 0 must be the channel's creation (seq 0, prev null, op create)");
  }
  if (e.role !== 'author' || e.kind === null) throw new LogError('the creation names the kind and makes its creator an author');
  const signer = signerOf(e, authority);
  if (signer !== e.member_id) throw new LogError("a channel's creator signs its creation");
  if (authority.orgRole(signer, e.issued_at) === GUEST) throw new LogError('a guest creates no channel (section 21)');
  if (authority.orgRole(signer, e.issued_at) === PARTNER) throw new LogError("only the organisation's own members create its channels (section 22.6)");
  if (e.kind === 'tribe' && !ADMIN_ROLES.includes(authority.orgRole(signer, e.issued_at) || '')) {
    throw new LogError("only the organisation's admins create tribes");
  }
  return { channel_id: e.channel_id, kind: e.kind, members: { [signer]: 'author' }, seq: 0, head: await statementHash(e), org_id: e.org_id, former: {}, authored_until: {}, joined: { [signer]: e.issued_at }, created_at: e.issued_at, issued_at: e.issued_at };
}

/** @returns {Promise<LogState>} the state after one more entry; LogError if it does not extend it */
export async function extend(state, entry, authority) {
  const e = shape(entry);
  if (e.channel_id !== state.channel_id) throw new LogError(`entry ${e.seq} is for another channel`);
  if (e.seq !== state.seq + 1 || e.prev !== state.head) throw new LogError(`entry ${e.seq} does not follow entry ${state.seq}`);
  if (e.kind !== null) throw new LogError(`entry ${e.seq}: only the creation names a kind`);
  if (e.org_id !== state.org_id) throw new LogError(`entry ${e.seq} names another organisation than the channel's host`);
  const latest = state.issued_at ?? 0;
  if (e.issued_at < latest - ENTRY_ORDER_SKEW_SECONDS) throw new LogError(`entry ${e.seq} is dated before the entries it follows`);
  const members = { ...state.members };
  const held = (state.unplaced || []).filter((m) => m in members);
  if (unplacedLeave(e, state, authority)) {
    delete members[e.member_id];
  } else {
    const signer = signerOf(e, authority);
    if (state.kind === 'direct') await checkDirect(e, signer, state);
    apply(e, signer, members, state, authority);
    if (e.op === 'add' && authority.unplaced?.(e.member_id)) held.push(e.member_id);
  }
  const unplaced = held.filter((m) => m in members).sort();
  const former = Object.fromEntries(Object.entries(state.former || {}).filter(([m]) => !(m in members)));
  if (e.op === 'remove' || e.op === 'leave') former[e.member_id] = e.issued_at;
  const authored = { ...(state.authored_until || {}) };
  if (members[e.member_id] === 'author') delete authored[e.member_id];
  else if (state.members[e.member_id] === 'author') authored[e.member_id] = e.issued_at;
  const joined = Object.fromEntries(Object.entries(state.joined || {}).filter(([m]) => m in members));
  if (e.op === 'add') joined[e.member_id] = e.issued_at;
  const next = { ...state, members, seq: e.seq, head: await statementHash(e), former, authored_until: authored, joined, issued_at: Math.max(latest, e.issued_at) };
  if (unplaced.length) next.unplaced = unplaced;
  else delete next.unplaced;
  return next;
}

/**
 * A member this view cannot verify leaves (16.3: a follower's view of a partner's member): the
 * signature cannot be checked, but the entry takes out only someone never trusted here, so the
 * entries after it still verify. Only one whose `add` this view replayed as such (`unplaced` in
 * the state; never an author, nor anyone the view now verifies), dated no earlier than the
 * entries it follows nor later than this device's clock: a forged one is then no worse than a
 * withheld log, the managers' later entries do not chain to it. `_unplaced_leave` in
 * chalicelib/domain/membership_log.py.
 * @param {Record<string, any>} e
 * @param {LogState} state
 * @param {Authority} authority
 */
function unplacedLeave(e, state, authority) {
  const target = e.member_id;
  const at = Number(e.issued_at);
  const now = authority.now?.() ?? Math.floor(Date.now() / 1000); // a test's authority may set the clock
  return state.kind === 'tribe' && e.op === 'leave' && e.role === null && (state.unplaced || []).includes(target) && target in state.members && state.members[target] !== 'author'
    && (state.issued_at ?? 0) <= at && at <= now + STATEMENT_CLOCK_SKEW && Boolean(authority.unplaced?.(target)) && authority.signer(String(e.by_device), at) === null;
}

/**
 * Why a channel message of `kind` from `memberId` signed as sent at `sentAtMs` is not theirs to
 * send here, or null (section 14.2): a member, or one who left after sending it; in a tribe,
 * only authors send anything but reactions and votes (the server's rule), or one who was an
 * author when they sent it. `refuses_sender` in chalicelib/domain/membership_log.py says the same.
 * @param {LogState|null} state
 * @param {string} memberId
 * @param {unknown} sentAtMs
 * @param {string} kind
 * @returns {string|null}
 */
export function refusesSender(state, memberId, sentAtMs, kind) {
  const role = state && memberId in state.members ? state.members[memberId] : null;
  if (role === null) {
    const left = state?.former?.[memberId];
    if (left === undefined) return 'not a member of this channel';
    if (!sentBy(sentAtMs, left)) return 'sent after leaving the channel';
  }
  if (state?.kind === 'tribe' && role !== 'author' && !AUDIENCE_KINDS.has(kind)) {
    const until = state.authored_until?.[memberId];
    if (until === undefined || !sentBy(sentAtMs, until)) return 'not an author of this tribe';
  }
  return null;
}

/**
 * Why a message signed at `sentAtMs` counts for nobody (section 13.7), or null: it is dated later
 * than its device's revocation or its member's removal from the organisation (dates in s, null
 * when none), give or take the clocks' skew. A revoked device's key still verifies, so its signed
 * date is all there is to go on: this stops what is dated honestly after the revocation, not a
 * thief who backdates (13.7).
 * `refuses_ended_device` in chalicelib/domain/membership_log.py says the same.
 * @param {unknown} sentAtMs
 * @param {number|null} revokedAt
 * @param {number|null} removedAt
 * @returns {string|null}
 */
export function refusesEndedDevice(sentAtMs, revokedAt, removedAt) {
  if (revokedAt !== null && !sentBy(sentAtMs, revokedAt)) return 'sent after its device was revoked';
  if (removedAt !== null && !sentBy(sentAtMs, removedAt)) return 'sent after its member was removed from the organisation';
  return null;
}

/**
 * The state as this device judges senders and recipients with (section 22.7): a member of a
 * partner organisation whose partnership with ours ended after they joined (less the clocks'
 * skew) is out from the first such end, as if they had left then (and stopped authoring, for an
 * author). `endsOf(memberId)`: the end dates (s) of the partnerships with that member's
 * organisation, none for our own. The log is never cut: only ever keep and extend the uncut
 * state. `cut_at_ends` in chalicelib/domain/membership_log.py says the same.
 * @template {LogState|null} S
 * @param {S} state
 * @param {(memberId: string) => Iterable<number>} endsOf
 * @returns {S}
 */
export function cutAtEnds(state, endsOf) {
  if (!state) return state;
  const members = { ...state.members };
  const former = { ...(state.former || {}) };
  const authored = { ...(state.authored_until || {}) };
  let cut = false;
  for (const [memberId, role] of Object.entries(state.members)) {
    const since = (state.joined?.[memberId] ?? state.created_at ?? 0) - DEPARTURE_SKEW_SECONDS;
    const after = [...endsOf(memberId)].filter((end) => end >= since);
    if (!after.length) continue;
    const end = Math.min(...after);
    delete members[memberId];
    former[memberId] = end;
    if (role === 'author') authored[memberId] = end;
    cut = true;
  }
  return cut ? { ...state, members, former, authored_until: authored } : state;
}

/** Whether a message's `sent_at` (ms) is at or before an entry's `issued_at` (s), give or take the clocks' skew. */
function sentBy(sentAtMs, issuedAt) {
  return Number.isInteger(sentAtMs) && Number(sentAtMs) <= (issuedAt + DEPARTURE_SKEW_SECONDS) * 1000;
}

/**
 * Whether a kept state knows who left, who of them were authors and when each member joined
 * (else it is rebuilt from entry 0, sections 14.2 and 22.7).
 * @param {LogState|null} state
 */
export function formerKnown(state) {
  return Boolean(state && state.former && state.authored_until && state.joined);
}

/**
 * The direct conversation of two members (section 14.1): `c_` + base32 of the first 80 bits of
 * SHA-256 over the purpose, the organisation and the sorted pair, one per line.
 * @returns {Promise<string>}
 */
export async function directChannelId(orgId, memberA, memberB) {
  const [first, second] = [memberA, memberB].sort();
  const digest = await sha256(utf8(`${DIRECT_PURPOSE}\n${orgId}\n${first}\n${second}`));
  return `c_${base32Lower(digest.slice(0, 10))}`;
}

/**
 * Whether a verified log state is our direct conversation with `other` (14.1): the pair's id
 * alone could be a group someone else made under it.
 * @returns {Promise<boolean>}
 */
export async function isDirectOf(channelId, orgId, state, me, other) {
  const members = Object.keys(state?.members || {});
  const pair = me !== other && (await directChannelId(orgId, me, other)) === channelId;
  return pair && state?.kind === 'direct' && members.length === 2 && members.includes(me) && members.includes(other);
}

/** A direct conversation's log is its creation and the addition, by its creator, of the one
 * other member its id names: nobody joins, leaves or changes role after that. */
async function checkDirect(entry, signer, state) {
  const creator = Object.keys(state.members)[0];
  const pair = entry.member_id !== signer && (await directChannelId(entry.org_id, signer, entry.member_id)) === state.channel_id;
  if (!(entry.op === 'add' && entry.seq === 1 && entry.role === 'author' && signer === creator && pair)) {
    throw new LogError(`entry ${entry.seq}: a direct conversation keeps its two members and no other`);
  }
}

function apply(entry, signer, members, state, authority) {
  const { op, member_id: target, role, seq } = entry;
  if (op === 'leave') {
    if (signer !== target || !(target in members) || role !== null) {
      throw new LogError(`entry ${seq}: only a member in the channel leaves it, by themselves`);
    }
    delete members[target];
    return;
  }
  const manager = members[signer] === 'author' || ADMIN_ROLES.includes(authority.orgRole(signer, entry.issued_at) || '');
  if (!manager) throw new LogError(`entry ${seq}: ${signer} may not manage this channel`);
  if (role === 'author' && state.kind !== 'direct') {
    const targetRole = authority.orgRole(target, entry.issued_at) || '';
    if (NEVER_AUTHORS.includes(targetRole)) {
      const why = targetRole === PARTNER ? "a partner's member is never a channel's author (section 22.6)" : "a guest is never a channel's author (section 21)";
      throw new LogError(`entry ${seq}: ${why}`);
    }
  }
  if (op === 'add') {
    if (target in members || role === null || !authority.mayJoin(target, entry.issued_at - DEPARTURE_SKEW_SECONDS)) throw new LogError(`entry ${seq}: ${target} cannot be added`);
    if (state.kind === 'tribe' && !authority.tribesOpenTo(target)) {
      throw new LogError(`entry ${seq}: the organisation lets no partner's member into its tribes`);
    }
    members[target] = role;
  } else if (op === 'role') {
    if (!(target in members) || role === null) throw new LogError(`entry ${seq}: ${target} is not in the channel`);
    members[target] = role;
  } else if (op === 'remove') {
    if (!(target in members) || role !== null) throw new LogError(`entry ${seq}: ${target} is not in the channel`);
    delete members[target];
  } else {
    throw new LogError(`entry ${seq}: a channel is created once`);
  }
}

/**
 * Replay entries onto `state` (null: from entry 0): the last valid state, the error that
 * stopped the replay, if any, and the entries applied (what members are shown as signed events).
 * @returns {Promise<{state: LogState|null, error: LogError|null, applied: Record<string, any>[]}>}
 */
export async function replay(entries, authority, state = null, channelId = null) {
  let current = state;
  const applied = [];
  for (const entry of entries) {
    try {
      current = current === null ? await create(entry, authority, channelId) : await extend(current, entry, authority);
      applied.push(entry);
    } catch (err) {
      if (err instanceof LogError) return { state: current, error: err, applied };
      throw err;
    }
  }
  return { state: current, error: null, applied };
}

/**
 * What a client concludes from the server's answer to GET /channels/{c}/membership?from=<kept
 * seq>, given the state it kept (null for none: the answer starts at entry 0).
 * - `blocked`: a rollback or a fork: keep the old state, seal and send nothing in the channel;
 * - otherwise the new verified state (the one before an invalid entry, reported).
 * @param {LogState|null} kept
 * @param {{entries: any[], head?: {seq: number, hash: string}|null}} answer
 * @param {Authority} authority
 * @param {string} channelId the channel asked for: a log (or kept state) of another is refused
 * @returns {Promise<{state: LogState|null, blocked: boolean, warnings: import('./certs.js').TrustWarning[], applied: Record<string, any>[]}>}
 */
export async function advance(kept, answer, authority, channelId) {
  const entries = Array.isArray(answer.entries) ? answer.entries : [];
  const note = (code, message) => [{ code, member_id: null, device_id: null, message }];
  if (kept && kept.channel_id !== channelId) {
    return { state: null, blocked: true, applied: [], warnings: note('membership_invalid', `${channelId}: the state kept here is another channel's`) };
  }
  let rest = entries;
  /** @type {import('./certs.js').TrustWarning[]} */
  const rebuilt = [];
  if (kept && !formerKnown(kept)) {
    // Kept before it kept who left (14.2) or when each joined (22.7): the answer starts at entry
    // 0, replayed once up to the kept entry, which must still hash to the kept head (a fork stays
    // a fork).
    const again = await replay(entries.slice(0, kept.seq + 1), authority, null, channelId);
    if (again.state && again.state.seq === kept.seq) {
      if (again.state.head !== kept.head) {
        return { state: kept, blocked: true, applied: [], warnings: note('membership_fork', `the server's membership log of ${kept.channel_id} differs from the one seen here up to entry ${kept.seq}`) };
      }
      const { former, authored_until, joined, created_at, issued_at, unplaced } = again.state;
      kept = { ...kept, former, authored_until, joined, created_at, issued_at };
      if (unplaced) kept.unplaced = unplaced;
    } else {
      // Kept without `former`, as before: the next check replays from entry 0 again.
      rebuilt.push(...note('membership_invalid', `${channelId}: who left before entry ${kept.seq} could not be replayed again (${again.error?.message})`));
    }
    rest = entries.slice(kept.seq);
  }
  if (kept) {
    const headSeq = Number(answer.head?.seq ?? -1);
    if (headSeq < kept.seq) {
      return { state: kept, blocked: true, applied: [], warnings: note('membership_rollback', `the server's membership log of ${kept.channel_id} ends at ${headSeq}, before entry ${kept.seq} seen here`) };
    }
    const first = rest[0];
    if (!first || first.seq !== kept.seq || (await statementHash(first)) !== kept.head) {
      return { state: kept, blocked: true, applied: [], warnings: note('membership_fork', `the server's membership log of ${kept.channel_id} differs from the one seen here at entry ${kept.seq}`) };
    }
  }
  if (authority.cache && authority.claimedKey) {
    await prewarm(authority.cache, entries.map((e) => ({ statement: e, key: authority.claimedKey(e?.by_device) })));
  }
  const { state, error, applied } = await replay(kept ? rest.slice(1) : rest, authority, kept, channelId);
  if (rebuilt.length && state) {
    delete state.former;
    delete state.authored_until;
    delete state.joined;
  }
  return { state, blocked: false, applied, warnings: [...rebuilt, ...(error ? note('membership_invalid', error.message) : [])] };
}

/**
 * A new channel id made by the client, so it can sign the creation (section 14), from a random
 * seed sent with it: the server refuses an id it does not make, so no group takes a pair's
 * direct id (14.1).
 * @returns {Promise<{channelId: string, seed: string}>}
 */
export async function newChannelId() {
  const seed = base32Lower(randomBytes(16));
  const digest = await sha256(utf8(`${CHANNEL_PURPOSE}\n${seed}`));
  return { channelId: `c_${base32Lower(digest.slice(0, 10))}`, seed };
}

/**
 * A signed entry by this device. `device`: {org_id, device_id, signSecretKey}; `state`: the
 * verified state it extends (null for a creation, which names this device's organisation). An
 * entry names the channel's host: ours, or the partner's whose group this is (22.6).
 */
export function signEntry(device, channelId, state, { op, memberId, role = null, kind = null }, now) {
  const body = {
    purpose: MEMBERSHIP,
    org_id: state ? state.org_id : device.org_id,
    channel_id: channelId,
    seq: state ? state.seq + 1 : 0,
    prev: state ? state.head : null,
    op,
    member_id: memberId,
    role,
    kind,
    by_device: device.device_id,
    issued_at: now,
  };
  return signStatement(body, signSeed(device));
}

/**
 * The devices a sender key goes to (section 14, "effective roster"): those the server's roster
 * lists, certified and usable, of members in the verified state, with their certified box key.
 * Everything left out is reported. `self`: this device, which needs no copy.
 * @param {import('./certs.js').TrustView} trust
 * @param {LogState|null} state
 * @param {{device_id: string, member_id: string, box_public_key?: string, device_cert?: {purpose?: string}|null}[]} roster
 * @param {string} self
 * @param {Map<string, import('./certs.js').DeviceTrust|import('./certs.js').TrustWarning>} [followers]
 *   the roster's followers as followers.js verified them (a public tribe's; none elsewhere)
 */
export function effectiveRoster(trust, state, roster, self, followers = new Map()) {
  /** @type {import('./certs.js').DeviceTrust[]} */
  const devices = [];
  /** @type {import('./certs.js').TrustWarning[]} */
  const warnings = [];
  const refuse = (code, row, message) => warnings.push({ code, member_id: row.member_id ?? null, device_id: row.device_id, message });
  for (const row of roster) {
    if (row.device_id === self) continue;
    // A public tribe's followers (protocol.md, 16.3), verified beforehand (followers.js).
    if (row.device_cert?.purpose === FOLLOWER_CERT) {
      const follower = followers.get(row.device_id);
      if (follower && 'sign_public_key' in follower) devices.push(follower);
      else if (follower && 'code' in follower) warnings.push(follower);
      else refuse('uncertified_follower', row, `${row.device_id}: a follower not verified`);
      continue;
    }
    const device = trust.usable(row.device_id);
    if (!device) {
      const why = trust.whyNot(row.device_id) || trust.whyNotMember(String(row.member_id));
      if (why) warnings.push({ ...why, device_id: row.device_id });
      else refuse('uncertified_device', row, `${row.device_id}: revoked, or its member removed or not trusted`);
    } else if (row.box_public_key !== undefined && row.box_public_key !== device.box_public_key) {
      refuse('uncertified_device', row, `${row.device_id}: the roster's box key differs from its certificate`);
    } else if (!state || !(device.member_id in state.members)) {
      refuse('not_in_membership', row, `${row.device_id}: its member is not in the channel's verified membership`);
    } else {
      devices.push(device);
    }
  }
  return { devices, warnings };
}
