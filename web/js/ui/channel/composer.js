// @ts-check
// Writing in a channel: the text box (Enter sends, Shift+Enter breaks the line), the message
// being replied to, and the poll form above it; in a tribe, its readers see why they cannot write.
// What is typed is kept as the channel's draft (IndexedDB) until sent; what is sent goes through
// the outbox, so a message written offline waits "en attente" and leaves on reconnect.
import { h, replace } from '../../dom.js';
import { formatSize, t } from '../../i18n.js';
import { fold, mentionQuery, mentionsIn } from '../../rich-text.js';
import { focusComposer } from './context.js';
import { snippet } from './history.js';
import { pollForm } from './poll-form.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */
/** @typedef {import('./context.js').StoredMessage} StoredMessage */

/**
 * @param {ChannelContext} ctx
 * @param {(messageId: string) => StoredMessage | undefined} findMessage
 */
export function createComposer(ctx, findMessage) {
  const box = h('div', { class: 'composer-box' });
  /** @type {string | null} */
  let replyTo = null;
  let pollOpen = false;

  /** Change what the composer shows, render it, and focus where the member continues. */
  const change = (/** @type {{replyTo?: string | null, pollOpen?: boolean}} */ what, focusPoll = false) => {
    if (what.replyTo !== undefined) replyTo = what.replyTo;
    if (what.pollOpen !== undefined) pollOpen = what.pollOpen;
    render();
    if (focusPoll) document.getElementById('poll-question')?.focus();
    else focusComposer();
  };

  function render() {
    if (!ctx.mayPost()) {
      replace(box, tribeNotice());
      return;
    }
    const replying = replyTo ? findMessage(replyTo) : null;
    replace(box,
      pollOpen ? pollForm(ctx, () => change({ pollOpen: false })) : null,
      composerForm(ctx, {
        replyTo,
        pollOpen,
        replyBanner: replying ? replyBanner(ctx, replying, () => change({ replyTo: null })) : null,
        onSent: () => change({ replyTo: null }),
        onEscape: () => change({ replyTo: null }),
        onTogglePoll: () => change({ pollOpen: !pollOpen }, !pollOpen),
      }));
  }

  return {
    element: box,
    render,
    /** Render again if this member's right to write changed (a role given or taken). */
    renderIfRoleChanged() {
      if (ctx.mayPost() !== !box.querySelector('#composer-notice')) render();
    },
    /** @param {string} messageId the message to answer */
    replyTo: (messageId) => change({ replyTo: messageId, pollOpen: false }),
  };
}

const NOTICE_KEY = 'bocage.tribe_notice';

/** Why a tribe's reader has no text box: folded to its title once read, and remembered folded. */
function tribeNotice() {
  let folded = false;
  try {
    folded = globalThis.localStorage?.getItem(NOTICE_KEY) === 'folded';
  } catch {
    // storage unavailable: shown in full
  }
  const notice = h('details', { class: 'notice tribe-notice', id: 'composer-notice', open: !folded },
    h('summary', null, h('strong', null, t('composer.tribe_title'))),
    h('p', null, t('composer.tribe_body')));
  notice.addEventListener('toggle', () => {
    try {
      globalThis.localStorage?.setItem(NOTICE_KEY, notice.open ? 'open' : 'folded');
    } catch {
      // not remembered, still folded
    }
  });
  return notice;
}

/**
 * @param {ChannelContext} ctx
 * @param {StoredMessage} replying
 * @param {() => void} cancel
 */
function replyBanner(ctx, replying, cancel) {
  return h('div', { class: 'replying' },
    h('span', null, t('composer.replying_to', { name: ctx.nameOf(replying.sender_member) }), ' ', h('q', null, snippet(replying))),
    h('button', { type: 'button', class: 'small', onClick: cancel }, t('composer.cancel_reply')));
}

/**
 * @typedef {object} ComposerOptions
 * @property {string | null} replyTo
 * @property {boolean} pollOpen
 * @property {HTMLElement | null} replyBanner
 * @property {() => void} onSent
 * @property {() => void} onEscape cancels the reply (when there is one)
 * @property {() => void} onTogglePoll
 */

/**
 * @param {ChannelContext} ctx
 * @param {ComposerOptions} options
 */
function composerForm(ctx, options) {
  const status = h('p', { class: 'form-status', role: 'alert' });
  const text = composerText(() => form.requestSubmit(), options.replyTo ? options.onEscape : null);
  const store = ctx.app.store;
  store.draft(ctx.channelId).then((draft) => {
    if (draft && !text.value) text.value = draft;
  }).catch(() => null);
  text.addEventListener('input', () => store.saveDraft(ctx.channelId, text.value).catch(() => null));
  const suggestions = mentionSuggestions(ctx, text);
  const send = h('button', { type: 'submit', class: 'primary' }, t('composer.send'));
  const attachment = attachmentPicker(ctx);
  const submit = async () => {
    const value = text.value.trim();
    if (attachment.file()) return submitFile(value);
    if (!value) return;
    send.disabled = true;
    status.textContent = '';
    const mentions = mentionsIn(value, await channelMembers(ctx).catch(() => []));
    const written = ctx.m.write(ctx.channelId, value, { replyTo: options.replyTo, mentions });
    text.value = ''; // kept in the outbox from here on, shown "en attente" until sent
    await store.saveDraft(ctx.channelId, '').catch(() => null);
    try {
      await written;
      options.onSent();
    } catch (err) {
      text.value = value; // refused by the server: the text comes back to be changed
      await store.saveDraft(ctx.channelId, value).catch(() => null);
      status.textContent = ctx.app.errorText(err);
    }
    send.disabled = false;
  };
  /** A file goes at once (no outbox: its upload needs the network), its text beside it. */
  const submitFile = async (/** @type {string} */ value) => {
    send.disabled = true;
    status.textContent = t('file.sending');
    try {
      const mentions = value ? mentionsIn(value, await channelMembers(ctx).catch(() => [])) : [];
      await attachment.send(value, { replyTo: options.replyTo, mentions });
      text.value = '';
      await store.saveDraft(ctx.channelId, '').catch(() => null);
      status.textContent = '';
      options.onSent();
    } catch (err) {
      status.textContent = err instanceof Error && err.name === 'UploadCancelled'
        ? t('file.cancelled')
        : t('file.not_sent', { reason: ctx.app.errorText(err) });
    }
    send.disabled = false;
  };
  const form = h('form', {
    class: 'composer',
    onSubmit: (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      return submit();
    },
  },
  options.replyBanner,
  attachment.line,
  h('label', { for: 'composer-text', class: 'visually-hidden' }, t('composer.label')),
  h('div', { class: 'composer-row' },
    suggestions.element,
    text,
    send,
    attachment.button,
    h('button', { type: 'button', 'aria-expanded': options.pollOpen ? 'true' : 'false', 'aria-controls': 'poll-form', onClick: options.onTogglePoll }, t('composer.poll'))),
  h('p', { id: 'composer-hint', class: 'hint' }, t('composer.hint')),
  status);
  form.addEventListener('dragover', (e) => e.preventDefault());
  form.addEventListener('drop', (e) => {
    const dropped = e.dataTransfer?.files?.[0];
    if (!dropped) return;
    e.preventDefault();
    attachment.pick(dropped);
  });
  return form;
}

/**
 * "Joindre un fichier": the file picked (or dropped on the composer) shown above the text box
 * with its size and "Retirer", and how to send it.
 * @param {ChannelContext} ctx
 */
function attachmentPicker(ctx) {
  /** @type {File | null} */
  let picked = null;
  const input = h('input', { type: 'file', id: 'composer-file', class: 'visually-hidden', tabindex: -1 });
  const line = h('div', { class: 'attachment', hidden: true });
  /** @type {AbortController | null} while the file goes up */
  let sending = null;
  const bar = h('progress', { max: 100, value: 0, 'aria-label': t('file.progress') });
  const pick = (/** @type {File | null} */ file) => {
    picked = file;
    if (!file) {
      input.value = '';
      line.hidden = true;
      replace(line);
      return;
    }
    line.hidden = false;
    bar.value = 0;
    replace(line,
      h('span', { class: 'file-icon', 'aria-hidden': 'true' }, '📎'),
      h('span', { class: 'file-name' }, file.name),
      h('span', { class: 'file-size' }, ` · ${formatSize(file.size)}`),
      bar,
      removal);
  };
  const removal = h('button', { type: 'button', class: 'small', onClick: () => (sending ? sending.abort() : pick(null)) }, t('file.remove'));
  input.addEventListener('change', () => pick(input.files?.[0] || null));
  const button = h('button', { type: 'button', 'aria-controls': 'composer-file', onClick: () => input.click() },
    h('span', { 'aria-hidden': 'true' }, '📎 '), t('file.attach'));
  return {
    line,
    button: h('span', { class: 'attach' }, input, button),
    pick,
    file: () => picked,
    /** @param {string} text @param {{replyTo?: string | null, mentions?: string[]}} extra */
    async send(text, extra) {
      if (!picked) return;
      const { prepareFile, sendFile } = await import('../../files.js');
      sending = new AbortController();
      removal.textContent = t('file.cancel');
      const progress = {
        signal: sending.signal,
        onProgress: (/** @type {number} */ done, /** @type {number} */ total) => {
          bar.value = Math.round((100 * done) / Math.max(1, total));
        },
      };
      try {
        const side = (await ctx.m.api.get('/me').catch(() => null))?.org?.photo_max_side;
        const prepared = await prepareFile(picked, picked.name, picked.type || 'application/octet-stream', side);
        await sendFile(ctx.m, ctx.channelId, prepared, text, extra, progress);
      } finally {
        sending = null;
        removal.textContent = t('file.remove');
      }
      pick(null);
    },
  };
}

/**
 * @param {() => void} submit
 * @param {(() => void) | null} onEscape
 * @returns {HTMLTextAreaElement}
 */
function composerText(submit, onEscape) {
  return h('textarea', {
    id: 'composer-text',
    rows: 2,
    maxlength: 20000,
    placeholder: t('composer.placeholder'),
    'aria-describedby': 'composer-hint',
    onKeydown: (/** @type {KeyboardEvent} */ e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
      if (e.key === 'Escape' && onEscape) onEscape();
    },
  });
}

/**
 * The channel's other members with a name: who "@" suggests and who a text may mention.
 * @param {ChannelContext} ctx
 * @returns {Promise<import('../../rich-text.js').Mentionable[]>}
 */
async function channelMembers(ctx) {
  const roster = await ctx.m.roster(ctx.channelId);
  return [...roster.members]
    .filter((id) => id !== ctx.m.memberId)
    .map((memberId) => ({ memberId, name: ctx.m.memberName(memberId) || '' }))
    .filter((x) => x.name);
}

const MAX_SUGGESTIONS = 6;

/**
 * "@" in the text box lists the channel's members whose name matches what follows it (arrows
 * move, Enter or Tab picks, Escape closes); picking writes "@Name " in the text.
 * @param {ChannelContext} ctx
 * @param {HTMLTextAreaElement} text
 */
function mentionSuggestions(ctx, text) {
  const list = h('ul', { id: 'mention-list', role: 'listbox', class: 'mention-list', hidden: true, 'aria-label': t('composer.mention_label') });
  /** @type {import('../../rich-text.js').Mentionable[]} */
  let shown = [];
  let active = 0;
  text.setAttribute('aria-autocomplete', 'list');
  text.setAttribute('aria-controls', 'mention-list');
  const close = () => {
    shown = [];
    list.hidden = true;
    text.removeAttribute('aria-activedescendant');
  };
  const pick = (/** @type {import('../../rich-text.js').Mentionable} */ member) => {
    const typed = mentionQuery(text.value, text.selectionStart);
    if (!typed) return close();
    const after = text.value.slice(text.selectionStart);
    const inserted = `@${member.name} `;
    text.value = text.value.slice(0, typed.start) + inserted + after;
    const caret = typed.start + inserted.length;
    text.setSelectionRange(caret, caret);
    close();
    text.dispatchEvent(new Event('input')); // the draft keeps it
    text.focus();
  };
  const render = () => {
    if (!shown.length) return close();
    active = Math.min(active, shown.length - 1);
    replace(list, shown.map((member, i) => h('li', {
      id: `mention-${i}`,
      role: 'option',
      class: i === active ? 'active' : null,
      'aria-selected': i === active ? 'true' : 'false',
      onMousedown: (/** @type {MouseEvent} */ e) => {
        e.preventDefault(); // the text box keeps the focus and the caret
        pick(member);
      },
    }, `@${member.name}`)));
    list.hidden = false;
    text.setAttribute('aria-activedescendant', `mention-${active}`);
  };
  /** The roster, asked once per "@" typed (not on every key after it). */
  let members = /** @type {Promise<import('../../rich-text.js').Mentionable[]> | null} */ (null);
  text.addEventListener('input', async () => {
    const typed = mentionQuery(text.value, text.selectionStart);
    if (!typed) {
      members = null; // the next "@" asks again: someone may have joined since
      return close();
    }
    const wanted = fold(typed.query);
    members ||= channelMembers(ctx).catch(() => []);
    const named = await members;
    shown = named.filter((x) => fold(x.name).includes(wanted)).sort((a, b) => a.name.localeCompare(b.name)).slice(0, MAX_SUGGESTIONS);
    render();
  });
  text.addEventListener('blur', close);
  // Before the text box's own keys (Enter sends): while the list is open, keys are its.
  text.addEventListener('keydown', (e) => {
    if (list.hidden || !shown.length) return;
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (e.key in moves) {
      active = (active + moves[/** @type {'ArrowDown' | 'ArrowUp'} */ (e.key)] + shown.length) % shown.length;
      render();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      pick(shown[active]);
    } else if (e.key === 'Escape') {
      close();
    } else {
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
  }, { capture: true });
  return { element: list };
}
