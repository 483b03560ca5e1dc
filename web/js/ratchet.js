// @ts-check
// The sender-key ratchet and the key ring that keeps it: bocage/client/ratchet.py in JS, the same
// rules step for step (docs/protocol.md, section 6). Pure: the ring is a plain object the
// messenger keeps in IndexedDB; HMAC-SHA256 comes from WebCrypto, so deriving is async.
//
// chain_{i+1} = HMAC-SHA256(chain_i, 0x02); message i is sealed under HMAC-SHA256(chain_i, 0x01).
// A device given the state at index n derives no key before n; a key forgotten stays forgotten.
import { CryptoError, randomBytes } from './wire.js';

/** Out-of-order and missing messages within this many still open; further is a clear error. */
export const MAX_SKIP = 2000;
/** A sender keeps the key of a message the server never confirmed this long (seconds). */
export const UNCONFIRMED_TTL = 7 * 86400;
/** A retired chain's tombstone outlives the longest retention (5 years) of its sealed key. */
export const TOMBSTONE_TTL = 5 * 366 * 86400;
const OWN = '';
const MESSAGE_KEY = new Uint8Array([1]);
const NEXT_CHAIN = new Uint8Array([2]);

export class KeyUnavailable extends CryptoError {}
export class TooFarAhead extends CryptoError {}
export class ReplayedMessage extends CryptoError {}

/**
 * @typedef {{key: Uint8Array, expires_at: number, seq: number | null, message_id: string | null}} Kept
 * @typedef {{chain_key: Uint8Array | null, index: number, kept: Record<string, Kept>, retired_until: number | null}} Chain
 * @typedef {{at: number, index: number, chain_key: Uint8Array}} Snapshot
 * @typedef {{days: number, issued_at: number, checked_at: number, by_device?: string}} Window
 * @typedef {{v: number, chains: Record<string, Chain>, distributed: Record<string, string[]>, seen: Record<string, string>, snapshots?: Record<string, Snapshot[]>, windows?: Record<string, Window>}} Ring
 */

/** @returns {Ring} */
export function emptyRing() {
  return { v: 2, chains: {}, distributed: {}, seen: {} };
}

/** A ring as stored, or an empty one for a missing or pre-ratchet (version 1) record. */
export function ringFrom(stored) {
  return stored && stored.v === 2 ? stored : emptyRing();
}

const slotOf = (channelId, epoch, sender) => `${channelId}|${epoch}|${sender}`;
const splitSlot = (slot) => {
  const [channelId, epoch, sender] = slot.split('|');
  return { channelId, epoch: Number(epoch), sender };
};

export function newChainKey() {
  return randomBytes(32);
}

async function hmac(key, data) {
  const subtle = globalThis.crypto.subtle;
  const imported = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', imported, data));
}

export const messageKey = (chainKey) => hmac(chainKey, MESSAGE_KEY);
export const nextChain = (chainKey) => hmac(chainKey, NEXT_CHAIN);

/** The chain `steps` indexes further on. */
export async function advance(chainKey, steps) {
  let chain = chainKey;
  for (let i = 0; i < steps; i += 1) chain = await nextChain(chain);
  return chain;
}

// -- my own chains -------------------------------------------------------------------------------

/** My chain's current {chainKey, index} for (channel, epoch), created on first use. */
export function ownState(ring, channelId, epoch) {
  const slot = slotOf(channelId, epoch, OWN);
  let chain = ring.chains[slot];
  if (!chain || !chain.chain_key) {
    chain = { chain_key: newChainKey(), index: 0, kept: {}, retired_until: null };
    ring.chains[slot] = chain;
  }
  return { chainKey: /** @type {Uint8Array} */ (chain.chain_key), index: chain.index };
}

export function hasOwn(ring, channelId, epoch = null) {
  return Object.entries(ring.chains).some(([slot, chain]) => {
    const s = splitSlot(slot);
    return s.sender === OWN && s.channelId === channelId && (epoch === null || s.epoch === epoch) && Boolean(chain.chain_key);
  });
}

/** The {index, key} of my next message; the chain moves on and the key is kept to read it back. */
export async function nextKey(ring, channelId, epoch, messageId, now) {
  const { chainKey, index } = ownState(ring, channelId, epoch);
  snapshot(ring, channelId, epoch, chainKey, index, now);
  const chain = ring.chains[slotOf(channelId, epoch, OWN)];
  const key = await messageKey(chainKey);
  chain.kept[index] = { key, expires_at: now + UNCONFIRMED_TTL, seq: null, message_id: messageId };
  chain.chain_key = await nextChain(chainKey);
  chain.index = index + 1;
  return { index, key };
}

/** The server stored my message at `index`: keep its key exactly until it expires. */
export function confirm(ring, channelId, epoch, index, seq, expiresAt) {
  const kept = ring.chains[slotOf(channelId, epoch, OWN)]?.kept[index];
  if (kept) Object.assign(kept, { seq, expires_at: expiresAt });
}

// -- recent history for new followers (docs/protocol.md, 23) -------------------------------------

const DAY = 86400;
/** How far ahead of this device's clock a recent-history choice may be dated: further, it is
 * refused (a wrong clock, or a signer planting a date no real later choice could beat). */
export const HISTORY_CLOCK_SKEW = 300;

/** Whether a choice dated `issuedAt` is more than HISTORY_CLOCK_SKEW ahead of `now`. */
export function datedAhead(issuedAt, now) {
  return issuedAt > now + HISTORY_CLOCK_SKEW;
}

/** Where a new follower's history starts: 00:00 UTC `days` days before today's; 0 days: now. */
export function windowStart(now, days) {
  return days <= 0 ? now : now - (now % DAY) - days * DAY;
}

/** The verified "last N days" choice kept for a tribe, or null. */
export function historyWindow(ring, channelId) {
  return ring.windows?.[channelId] || null;
}

/** Take a verified choice, unless it is older than the one kept (a replay); `days` null: asked,
 * and nothing newer was valid (keep what was believed, or 0 days). `byDevice`: its signer, asked
 * about again at each asking (0 days and the same `issuedAt`: the kept choice withdrawn). A kept
 * choice dated ahead of `now` (believed before devices refused those) counts as none. */
export function setWindow(ring, channelId, days, issuedAt, now, byDevice = '') {
  ring.windows = ring.windows || {};
  const stored = ring.windows[channelId];
  const kept = stored && !datedAhead(stored.issued_at, now) ? stored : null;
  if (days === null || (kept && issuedAt < kept.issued_at)) {
    if (kept) kept.checked_at = now;
    else ring.windows[channelId] = { days: 0, issued_at: 0, checked_at: now };
  } else {
    ring.windows[channelId] = { days, issued_at: issuedAt, checked_at: now, by_device: byDevice };
  }
  pruneSnapshots(ring, now);
}

function snapshot(ring, channelId, epoch, chainKey, index, now) {
  const window = historyWindow(ring, channelId);
  if (!window || window.days <= 0) return;
  ring.snapshots = ring.snapshots || {};
  const taken = (ring.snapshots[`${channelId}|${epoch}`] ||= []);
  const last = taken[taken.length - 1];
  if (!last || Math.floor(last.at / DAY) !== Math.floor(now / DAY)) taken.push({ at: now, index, chain_key: chainKey });
}

/** What to seal to a new follower: my chain at my first message in the window, within MAX_SKIP
 * of my current index; else my current state. */
export function historyState(ring, channelId, epoch, now) {
  const current = ownState(ring, channelId, epoch);
  const window = historyWindow(ring, channelId);
  if (!window || window.days <= 0) return current;
  pruneSnapshots(ring, now); // a message may have expired since the last forget()
  const start = windowStart(now, window.days);
  for (const snap of ring.snapshots?.[`${channelId}|${epoch}`] || []) {
    if (snap.at >= start && current.index - snap.index <= MAX_SKIP) return { chainKey: snap.chain_key, index: snap.index };
  }
  return current;
}

/** Keep a snapshot only inside its tribe's window, in a chain still held, and while every key it
 * derives is still kept (none of an expired message). */
function pruneSnapshots(ring, now) {
  for (const [key, taken] of Object.entries(ring.snapshots || {})) {
    const [channelId, epoch] = key.split('|');
    const chain = ring.chains[slotOf(channelId, epoch, OWN)];
    const start = windowStart(now, historyWindow(ring, channelId)?.days || 0);
    const kept = taken.filter((s) => chain && chain.chain_key && s.at >= start && allLive(chain, s.index, now));
    if (kept.length) /** @type {Record<string, Snapshot[]>} */ (ring.snapshots)[key] = kept;
    else delete /** @type {Record<string, Snapshot[]>} */ (ring.snapshots)[key];
  }
}

/** Every key from `from` to the frontier still kept and unexpired: nothing expired is readable. */
function allLive(chain, from, now) {
  for (let i = from; i < chain.index; i += 1) if (!chain.kept[i] || chain.kept[i].expires_at <= now) return false;
  return true;
}

// -- received chains -----------------------------------------------------------------------------

/** Take another device's chain; false (ignored) if the slot is or was held: the first state wins. */
export function addReceived(ring, channelId, epoch, senderDevice, chainKey, index) {
  if (chainKey.length !== 32) throw new Error('a chain key is 32 bytes');
  if (!Number.isInteger(index) || index < 0) throw new Error('a chain index is a non-negative integer');
  const slot = slotOf(channelId, epoch, senderDevice);
  if (!senderDevice || ring.chains[slot]) return false;
  ring.chains[slot] = { chain_key: chainKey, index, kept: {}, retired_until: null };
  return true;
}

/** Whether the slot is known (held or retired): then its sealed key is not fetched again. */
export function holds(ring, channelId, epoch, senderDevice) {
  return Boolean(ring.chains[slotOf(channelId, epoch, senderDevice)]);
}

// -- opening -------------------------------------------------------------------------------------

function checkReplay(ring, slot, index, seq, messageId) {
  const kept = ring.chains[slot].kept[index];
  if (kept && kept.seq !== null && kept.seq !== seq) {
    throw new ReplayedMessage(`replayed: this message was already shown at seq ${kept.seq}`);
  }
  if (kept && kept.message_id !== null && kept.message_id !== messageId) {
    throw new ReplayedMessage('replayed: another message was already shown with this index');
  }
  const where = ring.seen[`${splitSlot(slot).channelId}|${messageId}`];
  if (where !== undefined && where !== `${slot}#${index}`) {
    throw new ReplayedMessage('replayed: a message with this id was already shown');
  }
}

/**
 * Open message `index` of a chain (`senderDevice` null: mine) with `opener(key)`, which verifies
 * and decrypts. The chain moves on, and keys are kept, only once it succeeded.
 * Throws KeyUnavailable, TooFarAhead, ReplayedMessage, or whatever `opener` throws.
 */
export async function openWith(ring, channelId, epoch, senderDevice, index, { seq, messageId, expiresAt }, opener) {
  const slot = slotOf(channelId, epoch, senderDevice || OWN);
  const chain = ring.chains[slot];
  if (!chain) throw new KeyUnavailable('no key from this sender for this epoch');
  const kept = chain.kept[index];
  if (kept) {
    const result = await opener(kept.key);
    checkReplay(ring, slot, index, seq, messageId);
    Object.assign(kept, { seq, message_id: messageId, expires_at: expiresAt });
    ring.seen[`${channelId}|${messageId}`] = `${slot}#${index}`;
    return result;
  }
  if (!chain.chain_key || index < chain.index || !senderDevice) {
    throw new KeyUnavailable(
      "this message's key is not on this device: sent before it received the sender's key (before it joined), or forgotten once the message expired",
    );
  }
  if (index - chain.index > MAX_SKIP) {
    throw new TooFarAhead(
      `message ${index} is ${index - chain.index} steps past this device's key for the sender (at most ${MAX_SKIP} messages can be missing)`,
    );
  }
  const skipped = {};
  let chainKey = chain.chain_key;
  for (let i = chain.index; i < index; i += 1) {
    skipped[i] = { key: await messageKey(chainKey), expires_at: expiresAt, seq: null, message_id: null };
    chainKey = await nextChain(chainKey);
  }
  const key = await messageKey(chainKey);
  const result = await opener(key);
  checkReplay(ring, slot, index, seq, messageId);
  Object.assign(chain.kept, skipped);
  chain.kept[index] = { key, expires_at: expiresAt, seq, message_id: messageId };
  chain.chain_key = await nextChain(chainKey);
  chain.index = index + 1;
  ring.seen[`${channelId}|${messageId}`] = `${slot}#${index}`;
  return result;
}

// -- forgetting ----------------------------------------------------------------------------------

/**
 * Drop expired message keys; retire chains of past epochs that keep no key (`currentEpochs`:
 * channel id -> its epoch, when known), leaving a tombstone so their sealed key is not taken again.
 */
export function forget(ring, now, currentEpochs = {}) {
  for (const [slot, chain] of Object.entries(ring.chains)) {
    for (const [i, kept] of Object.entries(chain.kept)) if (kept.expires_at <= now) delete chain.kept[i];
    const { channelId, epoch } = splitSlot(slot);
    const current = currentEpochs[channelId] ?? -1;
    if (chain.retired_until !== null && chain.retired_until <= now) delete ring.chains[slot];
    else if (chain.chain_key && !Object.keys(chain.kept).length && epoch < current) {
      chain.chain_key = null;
      chain.retired_until = now + TOMBSTONE_TTL;
    }
  }
  pruneSnapshots(ring, now);
  ring.seen = {};
  for (const [slot, chain] of Object.entries(ring.chains)) {
    for (const [i, kept] of Object.entries(chain.kept)) {
      if (kept.message_id !== null && kept.seq !== null) ring.seen[`${splitSlot(slot).channelId}|${kept.message_id}`] = `${slot}#${i}`;
    }
  }
}

// -- distribution --------------------------------------------------------------------------------

export function markDistributed(ring, channelId, epoch, deviceIds) {
  const key = `${channelId}|${epoch}`;
  ring.distributed[key] = [...new Set([...(ring.distributed[key] || []), ...deviceIds])];
}

/** Devices (in the given order, without duplicates) that still need my chain. */
export function undistributed(ring, channelId, epoch, deviceIds) {
  const done = new Set(ring.distributed[`${channelId}|${epoch}`] || []);
  return [...new Set(deviceIds)].filter((d) => !done.has(d));
}
