// @ts-check
// One line of the conversation: what a message shows, as data with a signature (equal
// signatures mean the element can stay as it is), and the element built from it.
import { h } from '../../dom.js';
import { formatDate, formatDateTime, formatTime, t } from '../../i18n.js';
import { tally } from '../../polls.js';
import { segments } from '../../rich-text.js';
import { fileChip } from './file-chip.js';
import { reactionSummary, snippet } from './history.js';
import { pollCard } from './poll-card.js';
import { FIRST_EMOJI, reactionChips, reactionPicker } from './reactions.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */
/** @typedef {import('./context.js').StoredMessage} StoredMessage */
/** @typedef {import('./history.js').Effects} Effects */
/** @typedef {import('./history.js').ReactionCount} ReactionCount */
/** @typedef {import('./poll-card.js').PollResult} PollResult */

/**
 * The log a message is read against.
 * @typedef {object} Log
 * @property {StoredMessage[]} messages
 * @property {Effects} done deletions and reactions
 * @property {Map<string, StoredMessage>} byId
 * @property {import('../../polls.js').Electorate | null} roster who may vote in the channel
 * @property {Map<string, number> | null} seen how far each member read (member id -> seq)
 */

/**
 * What the list keeps across rebuilds, and what a message's controls do.
 * @typedef {object} ItemHandlers
 * @property {{picker: string | null, confirm: string | null, editing: string | null, pending: Map<string, number[]>}} ui
 * @property {(key: 'picker' | 'confirm' | 'editing', value: string | null, messageId: string, focusKey: string) => void} setUi
 * @property {(msg: StoredMessage, emoji: string, remove: boolean) => void} react
 * @property {(messageId: string) => void} reply
 * @property {(messageId: string) => Promise<void>} remove delete for everyone
 * @property {(messageId: string, text: string) => Promise<void>} edit replace the text of my message
 */

/**
 * @typedef {object} MessageView
 * @property {StoredMessage} msg
 * @property {ReactionCount[]} reactions
 * @property {PollResult | null} poll
 * @property {{name: string, text: string} | null} quote
 * @property {{text: string, seq: number} | null} edited the author's latest edit
 * @property {{n: number, total: number} | null} seenBy "vu par N / M"
 * @property {string} signature
 */

/**
 * @param {ChannelContext} ctx
 * @param {ItemHandlers} handlers
 * @param {StoredMessage} msg
 * @param {Log} log
 * @returns {MessageView}
 */
export function describe(ctx, handlers, msg, log) {
  const edited = log.done.edits.get(msg.message_id) || null;
  const seenBy = seenCount(ctx, msg, log.seen);
  const reactions = msg.verified ? reactionSummary(msg, log.done.reactions) : [];
  const poll = msg.verified && msg.kind === 'poll' ? pollResult(msg, log) : null;
  const quote = msg.verified && msg.content?.reply_to ? quoteOf(ctx, msg.content.reply_to, log) : null;
  const id = msg.message_id;
  const signature = JSON.stringify([
    msg.seq, msg.verified, msg.error, msg.content, msg.expires_at, ctx.m.memberName(msg.sender_member),
    reactions, poll, quote, handlers.ui.picker === id, handlers.ui.confirm === id,
    ctx.mayPost(), ctx.mayManage(), msg.deleted, edited, handlers.ui.editing === id, seenBy,
  ]);
  return { msg, reactions, poll, quote, edited, seenBy, signature };
}

/**
 * "Vu par N / M": of the channel's other members, how many read up to this message. For its
 * sender, and a channel's managers.
 * @param {ChannelContext} ctx
 * @param {StoredMessage} msg
 * @param {Map<string, number> | null} seen
 * @returns {{n: number, total: number} | null}
 */
function seenCount(ctx, msg, seen) {
  if (!seen || msg.deleted || !msg.verified || (msg.sender_member !== ctx.m.memberId && !ctx.mayManage())) return null;
  const others = [...seen].filter(([member]) => member !== msg.sender_member);
  return { n: others.filter(([, seq]) => seq >= msg.seq).length, total: others.length };
}

/**
 * @param {StoredMessage} msg
 * @param {Log} log
 */
function pollResult(msg, log) {
  try {
    if (!log.roster) return null;
    const result = tally(log.messages, msg.message_id, log.roster.members, Date.now() / 1000, log.roster.departed);
    return { ...result, unverified: Boolean(log.roster.blocked) };
  } catch {
    return null;
  }
}

/**
 * @param {ChannelContext} ctx
 * @param {string} quotedId
 * @param {Log} log
 */
function quoteOf(ctx, quotedId, log) {
  const quoted = log.byId.get(quotedId);
  return {
    name: quoted ? ctx.nameOf(quoted.sender_member) : t('channel.someone'),
    text: log.done.deleted.has(quotedId) ? t('message.deleted') : snippet(quoted, log.done.edits),
  };
}

/**
 * @param {ChannelContext} ctx
 * @param {ItemHandlers} handlers
 * @param {MessageView} view
 * @returns {HTMLLIElement & {signature?: string}}
 */
export function messageItem(ctx, handlers, view) {
  const { msg } = view;
  const when = msg.sent_at_ms ? Math.floor(msg.sent_at_ms / 1000) : msg.stored_at;
  const headId = `h-${msg.message_id}`;
  const [actions, picker] = msg.verified && !msg.deleted ? messageActions(ctx, handlers, msg) : [null, null];
  const li = h('li', { class: ['msg', msg.sender_member === ctx.m.memberId ? 'mine' : null, msg.kind === 'poll' ? 'is-poll' : null, mentionsMe(ctx, msg) ? 'mentions-me' : null], id: `msg-${msg.message_id}` },
    h('article', { 'aria-labelledby': headId },
      h('header', { class: 'msg-head', id: headId },
        h('strong', { class: 'who' }, ctx.nameOf(msg.sender_member)),
        ' ',
        h('time', { datetime: new Date(when * 1000).toISOString(), title: formatDateTime(when) }, formatTime(when)),
        mentionsMe(ctx, msg) ? h('span', { class: 'badge mention-badge' }, t('message.mentions_you')) : null),
      messageBody(ctx, handlers, view),
      reactionChips(ctx, msg, view.reactions, handlers.react),
      h('footer', { class: 'msg-foot' },
        msg.expires_at ? h('span', { class: 'expiry' }, t('message.expires', { date: formatDate(msg.expires_at) })) : null,
        view.seenBy ? h('span', { class: 'seen-by' }, ' · ', t('message.seen_by', { n: view.seenBy.n, total: view.seenBy.total })) : null,
        actions),
      picker));
  return Object.assign(/** @type {HTMLLIElement} */ (li), { signature: view.signature });
}

/**
 * @param {ChannelContext} ctx
 * @param {ItemHandlers} handlers
 * @param {MessageView} view
 */
function messageBody(ctx, handlers, view) {
  const { msg } = view;
  if (msg.deleted) return h('p', { class: 'unreadable deleted' }, t('message.deleted_placeholder'));
  if (!msg.verified) {
    const reason = { forged: 'message.forged', forged_sender: 'message.forged_sender', uncertified_device: 'message.uncertified_device', not_a_member: 'message.not_a_member', pending_check: 'message.pending_check', mislabelled: 'message.mislabelled', too_far_ahead: 'message.too_far_ahead' }[msg.error || ''];
    return h('p', { class: 'unreadable' }, t(reason || 'message.no_key'));
  }
  if (msg.kind === 'poll') {
    return view.poll ? pollCard(ctx, msg, view.poll, handlers.ui.pending) : h('p', { class: 'unreadable' }, t('poll.error_no_poll'));
  }
  const quote = view.quote
    ? h('blockquote', { class: 'quote' },
        h('span', { class: 'quote-who' }, t('message.in_reply_to', { name: view.quote.name })), ' ', h('span', null, view.quote.text))
    : null;
  if (handlers.ui.editing === msg.message_id) return [quote, editForm(handlers, msg, view.edited?.text ?? String(msg.content?.text ?? ''))];
  const text = view.edited ? view.edited.text : String(msg.content?.text ?? '');
  const file = msg.content?.file ? fileChip(ctx, msg.content.file, msg.content.thumb) : null;
  const words = text || !file ? h('p', { class: 'text' }, richText(ctx, text, msg), view.edited ? h('span', { class: 'edited' }, ` (${t('message.edited')})`) : null) : null;
  return [quote, file, words];
}

/**
 * The members a message's sealed content mentions (its `mentions`), each with their name.
 * @param {ChannelContext} ctx
 * @param {StoredMessage} msg
 */
function mentionedIn(ctx, msg) {
  const ids = Array.isArray(msg.content?.mentions) ? msg.content.mentions.filter((/** @type {unknown} */ id) => typeof id === 'string') : [];
  return ids.map((/** @type {string} */ memberId) => ({ memberId, name: ctx.m.memberName(memberId) || '' }));
}

/** @param {ChannelContext} ctx @param {StoredMessage} msg */
function mentionsMe(ctx, msg) {
  return msg.verified && !msg.deleted && Array.isArray(msg.content?.mentions) && msg.content.mentions.includes(ctx.m.memberId);
}

/**
 * Text with its web links (opened in a new tab, telling the site nothing of where it was
 * found) and its mentions, built as elements: nothing in a message is ever parsed as HTML.
 * @param {ChannelContext} ctx
 * @param {string} text
 * @param {StoredMessage} msg
 */
function richText(ctx, text, msg) {
  return segments(text, mentionedIn(ctx, msg)).map((s) => {
    if (s.type === 'link') return h('a', { href: s.href, target: '_blank', rel: 'noopener noreferrer nofollow', class: 'msg-link' }, s.text);
    if (s.type === 'mention') return h('span', { class: ['mention', s.memberId === ctx.m.memberId ? 'me' : null] }, s.text);
    return s.text;
  });
}

/**
 * The text of my message, being edited: save sends an edit, Escape or cancel gives up.
 * @param {ItemHandlers} handlers
 * @param {StoredMessage} msg
 * @param {string} current
 */
function editForm(handlers, msg, current) {
  const id = msg.message_id;
  const input = h('textarea', { class: 'edit-text', 'data-key': 'edit-text', rows: 2, 'aria-label': t('message.edit_label') });
  input.value = current;
  const cancel = () => handlers.setUi('editing', null, id, 'edit');
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') cancel();
  });
  return h('form', { class: 'edit-form', onSubmit: (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (text && text !== current) handlers.edit(id, text);
    else cancel();
  } },
  input,
  h('div', { class: 'actions' },
    h('button', { type: 'submit', class: 'small primary', 'data-key': 'edit-save' }, t('message.edit_save')),
    h('button', { type: 'button', class: 'small', 'data-key': 'edit-cancel', onClick: cancel }, t('common.cancel'))));
}

/**
 * A run of messages this device cannot read, as one line.
 * @param {StoredMessage[]} folded
 * @param {string} key
 * @param {string} signature
 * @returns {HTMLLIElement & {signature?: string}}
 */
export function foldedItem(folded, key, signature) {
  const li = h('li', { class: 'msg folded', id: `msg-${key}` },
    h('p', { class: 'unreadable' }, t('message.no_key_many', { count: folded.length })));
  return Object.assign(/** @type {HTMLLIElement} */ (li), { signature });
}

/**
 * Reply, react and delete (with its confirmation), and the reaction picker when open.
 * @param {ChannelContext} ctx
 * @param {ItemHandlers} handlers
 * @param {StoredMessage} msg
 * @returns {[HTMLElement, HTMLElement | null]}
 */
function messageActions(ctx, handlers, msg) {
  const id = msg.message_id;
  const { ui, setUi } = handlers;
  const canDelete = msg.sender_member === ctx.m.memberId || ctx.mayManage();
  const pickerOpen = ui.picker === id;
  const actions = h('div', { class: 'msg-actions' });
  if (ctx.mayPost() && msg.kind === 'message') {
    actions.append(h('button', { type: 'button', class: 'link', 'data-key': 'reply', onClick: () => handlers.reply(id) }, t('message.reply')));
  }
  actions.append(h('button', {
    type: 'button',
    class: 'link',
    'data-key': 'react',
    'aria-expanded': pickerOpen ? 'true' : 'false',
    onClick: () => setUi('picker', pickerOpen ? null : id, id, pickerOpen ? 'react' : FIRST_EMOJI),
  }, t('message.react')));
  if (msg.kind === 'message' && msg.sender_member === ctx.m.memberId && ctx.mayPost()) {
    actions.append(h('button', { type: 'button', class: 'link', 'data-key': 'edit', onClick: () => setUi('editing', id, id, 'edit-text') }, t('message.edit')));
  }
  if (canDelete) actions.append(deleteControl(handlers, id));
  const picker = pickerOpen ? reactionPicker(msg, handlers.react, () => setUi('picker', null, id, 'react')) : null;
  return [actions, picker];
}

/**
 * "Delete", or while confirming: the question, yes and cancel.
 * @param {ItemHandlers} handlers
 * @param {string} id
 */
function deleteControl({ ui, setUi, remove }, id) {
  if (ui.confirm !== id) {
    return h('button', { type: 'button', class: 'link danger-text', 'data-key': 'delete', onClick: () => setUi('confirm', id, id, 'delete-yes') }, t('message.delete'));
  }
  return h('span', { class: 'confirm' },
    h('span', null, t('message.delete_confirm')),
    h('button', { type: 'button', class: 'small danger', 'data-key': 'delete-yes', onClick: () => remove(id) }, t('message.delete_yes')),
    h('button', { type: 'button', class: 'small', 'data-key': 'delete-no', onClick: () => setUi('confirm', null, id, 'delete') }, t('common.cancel')));
}
