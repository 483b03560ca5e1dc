// @ts-check
// A channel's log read as a conversation: which messages show, which are deleted, who reacted
// with what, and the runs of messages this device cannot read. Pure functions of the log.
import { latestEdits } from '../../edits.js';
import { t } from '../../i18n.js';

/** @typedef {import('./context.js').StoredMessage} StoredMessage */
/** @typedef {Map<string, Map<string, Map<string, {seq: number, remove: boolean}>>>} ReactionLog target -> emoji -> member -> latest */
/** @typedef {{deleted: Set<string>, reactions: ReactionLog, edits: Map<string, {text: string, seq: number}>}} Effects */
/** @typedef {[string, string[]]} ReactionCount an emoji and the members showing it, sorted */
/** @typedef {{key: string, msg?: StoredMessage, folded?: StoredMessage[]}} Entry one line of the list */

/** The kinds that are a line of the conversation; the others act on one (reaction, delete, edit, vote). */
export const SHOWN_KINDS = new Set(['message', 'poll']);
const MAX_EMOJI = 16;
const SNIPPET = 80;

/**
 * Deletions, reactions and edits, as the log's later entries leave them.
 * @param {StoredMessage[]} messages
 * @returns {Effects}
 */
export function effects(messages) {
  /** @type {Set<string>} */
  const deleted = new Set();
  /** @type {ReactionLog} */
  const reactions = new Map();
  for (const msg of messages) {
    if (msg.deleted) deleted.add(msg.message_id);
    if (!msg.verified) continue;
    if (msg.kind === 'delete' && msg.content?.target) deleted.add(msg.content.target);
    if (isReaction(msg)) addReaction(reactions, msg);
  }
  return { deleted, reactions, edits: latestEdits(messages) };
}

/** @param {StoredMessage} msg */
function isReaction(msg) {
  return msg.kind === 'reaction' && msg.content?.target && typeof msg.content.emoji === 'string' && msg.content.emoji.length <= MAX_EMOJI;
}

/**
 * @param {ReactionLog} reactions
 * @param {StoredMessage} msg
 */
function addReaction(reactions, msg) {
  const { target, emoji, remove } = msg.content;
  const byEmoji = reactions.get(target) || new Map();
  const byMember = byEmoji.get(emoji) || new Map();
  const prev = byMember.get(msg.sender_member);
  if (!prev || prev.seq < msg.seq) byMember.set(msg.sender_member, { seq: msg.seq, remove: Boolean(remove) });
  byEmoji.set(emoji, byMember);
  reactions.set(target, byEmoji);
}

/**
 * The reactions a message shows: each emoji with the members whose latest word is "yes".
 * @param {StoredMessage} msg
 * @param {ReactionLog} reactions
 * @returns {ReactionCount[]}
 */
export function reactionSummary(msg, reactions) {
  const byEmoji = reactions.get(msg.message_id);
  if (!byEmoji) return [];
  /** @type {ReactionCount[]} */
  const summary = [];
  for (const [emoji, byMember] of byEmoji) {
    const who = [...byMember].filter(([, v]) => !v.remove).map(([id]) => id).sort();
    if (who.length) summary.push([emoji, who]);
  }
  return summary;
}

/**
 * A message in a few words, for a quote or the reply banner.
 * @param {StoredMessage | undefined | null} message
 * @param {Map<string, {text: string}>} [edits] the latest edits, by message id
 */
export function snippet(message, edits) {
  if (!message) return t('message.unavailable');
  if (message.deleted) return t('message.deleted');
  const text = shownText(message, edits);
  return text.length > SNIPPET ? `${text.slice(0, SNIPPET)}…` : text;
}

/**
 * What a message says: a poll its question, a text its latest edit or itself.
 * @param {StoredMessage} message
 * @param {Map<string, {text: string}>} [edits] the latest edits, by message id
 * @returns {string}
 */
export function shownText(message, edits) {
  if (message.kind === 'poll') return String(message.content?.question ?? '');
  return String(edits?.get(message.message_id)?.text ?? message.content?.text ?? '');
}

/**
 * The lines of the list: shown messages, a bodiless "message supprimé" line for each deleted
 * one, runs of unreadable ones (sent before this device joined) folded into one line.
 * @param {StoredMessage[]} messages
 * @param {Effects} done
 * @returns {Entry[]}
 */
export function entries(messages, done) {
  /** @type {Entry[]} */
  const lines = [];
  for (const msg of messages) {
    if (!SHOWN_KINDS.has(msg.kind)) continue;
    if (done.deleted.has(msg.message_id)) {
      lines.push({ key: msg.message_id, msg: { ...msg, deleted: true, verified: false, content: null } });
      continue;
    }
    const last = lines[lines.length - 1];
    if (msg.error === 'no_key' && last?.folded) last.folded.push(msg);
    else if (msg.error === 'no_key') lines.push({ key: `fold-${msg.seq}`, folded: [msg] });
    else lines.push({ key: msg.message_id, msg });
  }
  return lines;
}
