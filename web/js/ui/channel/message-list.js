// @ts-check
// The conversation: a list kept in step with the device's log. Each message is rebuilt only when
// what it shows changed (its signature), so an open reaction picker, a confirmation or a poll
// choice not yet sent survive live updates; the focused control is found again by its data-key
// when its message is rebuilt, and the list stays at the bottom when it was there.
import { focus, h } from '../../dom.js';
import { t } from '../../i18n.js';
import { effects, entries } from './history.js';
import { describe, foldedItem, messageItem } from './message-item.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */
/** @typedef {import('./context.js').StoredMessage} StoredMessage */
/** @typedef {import('./message-item.js').ItemHandlers} ItemHandlers */
/** @typedef {import('./message-item.js').Log} Log */
/** @typedef {import('./history.js').Entry} Entry */
/** @typedef {HTMLElement & {signature?: string}} Line */

const NEAR_BOTTOM = 80; // px: closer than this to the end counts as "at the bottom"

/**
 * @param {ChannelContext} ctx
 * @param {{onReply: (messageId: string) => void}} options
 */
export function createMessageList(ctx, { onReply }) {
  const list = h('ol', { class: 'messages', 'aria-label': t('channel.messages_label'), 'aria-describedby': 'messages-help' });
  const help = h('p', { id: 'messages-help', class: 'visually-hidden' }, t('channel.messages_help'));
  const scroller = h('div', { class: 'messages-scroll', role: 'region', tabindex: '0', 'aria-label': t('channel.messages_label') }, help, list);
  /** @type {Map<string, Line>} */
  let items = new Map(); // entry key -> its li
  /** @type {Log} */
  let log = { messages: [], done: effects([]), byId: new Map(), roster: null, seen: null };
  /** @type {{message_id: string, content: {text: string}}[]} written, not yet stored by the server */
  let pending = [];
  let first = true;
  const emptyItem = h('li', { class: 'empty' }, t('channel.empty'));

  const handlers = itemHandlers(ctx, list, () => render(), onReply);

  /** @param {Entry} entry */
  const lineFor = (entry) => {
    const existing = items.get(entry.key);
    if (entry.folded) {
      const signature = `fold:${entry.folded.length}`;
      return existing && existing.signature === signature ? existing : foldedItem(entry.folded, entry.key, signature);
    }
    const view = describe(ctx, handlers, entry.msg, log);
    return existing && existing.signature === view.signature ? existing : messageItem(ctx, handlers, view);
  };

  function render() {
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM;
    const focused = focusedControl(list);
    /** @type {Map<string, Line>} */
    const next = new Map();
    for (const entry of entries(log.messages, log.done)) next.set(entry.key, lineFor(entry));
    for (const waiting of pending) {
      if (log.byId.has(waiting.message_id)) continue; // sent meanwhile: shown as itself
      const key = `pending-${waiting.message_id}`;
      next.set(key, items.get(key) || pendingItem(ctx, waiting, key));
    }
    items = next;
    reconcile(list, next.size ? [...next.values()] : [emptyItem]);
    if (focused.li && !focused.li.isConnected) refocus(list, focused.li.id, focused.key);
    if (first || atBottom) scroller.scrollTop = scroller.scrollHeight;
    first = false;
  }

  return {
    element: scroller,
    /**
     * Bring a message into view and mark it (a search result); false when it is not shown here.
     * @param {string} messageId
     */
    reveal(messageId) {
      const li = list.querySelector(`#msg-${CSS.escape(messageId)}`);
      if (!(li instanceof HTMLElement)) return false;
      li.classList.add('found');
      li.scrollIntoView({ block: 'center' });
      li.querySelector('article')?.setAttribute('tabindex', '-1');
      li.querySelector('article')?.focus({ preventScroll: true });
      return true;
    },
    /**
     * Show the log (sorted by seq) against the channel's members.
     * @param {StoredMessage[]} messages
     * @param {import('../../polls.js').Electorate | null} roster who may vote
     * @param {{message_id: string, content: {text: string}}[]} [waiting] the outbox's, for this channel
     * @param {Map<string, number> | null} [seen] how far each member read
     */
    show(messages, roster, waiting = [], seen = null) {
      log = { messages, done: effects(messages), byId: new Map(messages.map((x) => [x.message_id, x])), roster, seen };
      pending = waiting;
      render();
    },
  };
}

/**
 * A message written here that the server has not stored yet: its text, "en attente".
 * @param {ChannelContext} ctx
 * @param {{message_id: string, content: {text: string}}} waiting
 * @param {string} key
 * @returns {Line}
 */
function pendingItem(ctx, waiting, key) {
  return h('li', { class: 'msg mine pending', id: `msg-${key}` },
    h('article', null,
      h('header', { class: 'msg-head' }, h('strong', { class: 'who' }, ctx.nameOf(ctx.m.memberId)), ' ', h('span', { class: 'pending-note' }, t('message.pending'))),
      h('p', { class: 'text' }, String(waiting.content?.text ?? ''))));
}

/**
 * What a message's controls do, and the state the list keeps for them across rebuilds.
 * @param {ChannelContext} ctx
 * @param {HTMLElement} list
 * @param {() => void} render
 * @param {(messageId: string) => void} reply
 * @returns {ItemHandlers}
 */
function itemHandlers(ctx, list, render, reply) {
  const { app, m, channelId } = ctx;
  /** @type {ItemHandlers} */
  const handlers = {
    ui: { picker: null, confirm: null, editing: null, pending: new Map() },
    setUi(key, value, messageId, focusKey) {
      handlers.ui[key] = value;
      render();
      focus(document.getElementById(`msg-${messageId}`)?.querySelector(`[data-key="${focusKey}"]`));
    },
    async react(msg, emoji, remove) {
      try {
        await m.react(channelId, msg.message_id, emoji, remove);
      } catch (err) {
        app.toast(app.errorText(err), 'error');
      }
    },
    reply,
    async edit(messageId, text) {
      try {
        await m.edit(channelId, messageId, text);
        handlers.ui.editing = null;
        render();
        focus(document.getElementById(`msg-${messageId}`)?.querySelector('[data-key="edit"]') || list);
      } catch (err) {
        app.toast(app.errorText(err), 'error');
      }
    },
    async remove(messageId) {
      try {
        await m.deleteForEveryone(channelId, messageId);
        handlers.ui.confirm = null;
        app.toast(t('message.deleted_done'));
        focus(document.getElementById('composer-text') || list);
      } catch (err) {
        app.toast(app.errorText(err), 'error');
      }
    },
  };
  return handlers;
}

/**
 * The message holding focus, and the data-key of its focused control.
 * @param {HTMLElement} list
 */
function focusedControl(list) {
  const active = document.activeElement;
  const li = active && list.contains(active) ? active.closest('li') : null;
  return { li, key: active?.getAttribute?.('data-key') };
}

/**
 * @param {HTMLElement} list
 * @param {string} id the rebuilt message's element id
 * @param {string | null | undefined} key
 */
function refocus(list, id, key) {
  const again = document.getElementById(id);
  focus((key && again?.querySelector(`[data-key="${key}"]`)) || again?.querySelector('button, input') || list);
}

/**
 * Make the list's children exactly these nodes, moving only what moved.
 * @param {HTMLElement} list
 * @param {Element[]} nodes
 */
function reconcile(list, nodes) {
  nodes.forEach((node, i) => {
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
  while (list.children.length > nodes.length) list.lastElementChild?.remove();
}
