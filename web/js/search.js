// @ts-check
// Searching what this device holds: the messages it opened and keeps (IndexedDB), never the
// server, which has only ciphertext. Case and accents are ignored; an edited message is found
// by its latest text, a deleted one not at all.
import { effects, SHOWN_KINDS, shownText } from './ui/channel/history.js';
import { fold } from './rich-text.js';

/** @typedef {import('./ui/channel/context.js').StoredMessage} StoredMessage */

/**
 * @typedef {object} Found
 * @property {StoredMessage} msg
 * @property {string} text the text that matched (the latest edit's, if edited)
 * @property {number} when seconds
 */

export const MIN_QUERY = 2;

/**
 * The messages whose text contains every word of the query, newest first.
 * @param {StoredMessage[]} messages of any channels, in any order
 * @param {string} query
 * @param {number} [limit]
 * @returns {Found[]}
 */
export function searchMessages(messages, query, limit = 50) {
  const words = fold(query).split(/\s+/u).filter(Boolean);
  if (fold(query).trim().length < MIN_QUERY) return [];
  /** @type {Found[]} */
  const found = [];
  for (const channelMessages of byChannel(messages).values()) {
    const done = effects(channelMessages);
    for (const msg of channelMessages) {
      if (!msg.verified || !SHOWN_KINDS.has(msg.kind) || done.deleted.has(msg.message_id)) continue;
      const text = shownText(msg, done.edits);
      const folded = fold(text);
      if (words.every((w) => folded.includes(w))) found.push({ msg, text, when: whenOf(msg) });
    }
  }
  return found.sort((a, b) => newestFirst(a.msg, b.msg)).slice(0, limit);
}

/**
 * The last message a channel shows (edits applied, deletions skipped): its list's preview.
 * @param {StoredMessage[]} messages one channel's, sorted by seq
 * @returns {Found | null}
 */
export function lastShown(messages) {
  const done = effects(messages);
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const msg = messages[i];
    if (!SHOWN_KINDS.has(msg.kind) || done.deleted.has(msg.message_id)) continue;
    const text = msg.verified ? shownText(msg, done.edits) : '';
    return { msg, text, when: whenOf(msg) };
  }
  return null;
}

/** By the time it was written (to the millisecond), then by the channel's order. */
function newestFirst(/** @type {StoredMessage} */ a, /** @type {StoredMessage} */ b) {
  const ms = (/** @type {StoredMessage} */ m) => m.sent_at_ms || (m.stored_at || 0) * 1000;
  return ms(b) - ms(a) || b.seq - a.seq;
}

/** @param {StoredMessage} msg */
function whenOf(msg) {
  return msg.sent_at_ms ? Math.floor(msg.sent_at_ms / 1000) : msg.stored_at || 0;
}

/** @param {StoredMessage[]} messages */
function byChannel(messages) {
  /** @type {Map<string, StoredMessage[]>} */
  const channels = new Map();
  for (const msg of [...messages].sort((a, b) => a.seq - b.seq)) {
    const list = channels.get(msg.channel_id) || [];
    list.push(msg);
    channels.set(msg.channel_id, list);
  }
  return channels;
}
