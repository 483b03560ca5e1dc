// Channels and a channel: live messages, replies, reactions, delete for everyone, polls.
import { h, field, replace, focus, newId } from '../dom.js';
import { formatDate, formatDays, formatTime, formatDateTime, t } from '../i18n.js';
import { PollError, MAX_OPTIONS, tally } from '../polls.js';

const REACTIONS = [
  ['👍', 'reaction.thumbs'],
  ['❤️', 'reaction.heart'],
  ['😂', 'reaction.laugh'],
  ['😮', 'reaction.wow'],
  ['🙏', 'reaction.thanks'],
  ['🌳', 'reaction.tree'],
];
const SHOWN_KINDS = new Set(['message', 'poll']);
const CLOSES = [
  ['', 'poll.closes_never'],
  ['1', 'poll.closes_1d'],
  ['7', 'poll.closes_7d'],
  ['30', 'poll.closes_30d'],
];

/** Global reactions to messenger events (whatever view is shown): announce other channels. */
export function messagesEvent(app, type, detail) {
  if (type !== 'message' || !detail || detail.sender_device === app.messenger?.deviceId) return;
  if (!SHOWN_KINDS.has(detail.kind)) return;
  const open = app.route.name === 'channel' && app.route.params.channelId === detail.channel_id;
  if (!open) {
    const channel = app.messenger.channel(detail.channel_id);
    if (channel) app.announce(t('live.new_in', { channel: channel.name }));
  }
}

function kindLabel(channel) {
  return channel.kind === 'tribe' ? t('channel.tribe') : t('channel.group');
}

function channelList(app, currentId) {
  const m = app.messenger;
  const channels = [...m.channels.values()].sort((a, b) => (b.latest_seq > 0) - (a.latest_seq > 0) || a.name.localeCompare(b.name));
  const list = channels.length
    ? h(
        'ul',
        { class: 'channel-list' },
        channels.map((c) =>
          h(
            'li',
            null,
            h(
              'a',
              { href: `#/c/${c.channel_id}`, class: 'channel-link', 'aria-current': c.channel_id === currentId ? 'page' : null },
              h('span', { class: 'channel-icon', 'aria-hidden': 'true' }, c.kind === 'tribe' ? '📢' : '👥'),
              h('span', { class: 'channel-name' }, c.name),
              h('span', { class: 'visually-hidden' }, `, ${kindLabel(c)}`),
              c.unread ? h('span', { class: 'badge count' }, String(c.unread), h('span', { class: 'visually-hidden' }, ` ${t('channels.unread_word', { count: c.unread })}`)) : null,
            ),
          ),
        ),
      )
    : h('p', { class: 'empty' }, t('channels.none'));
  return list;
}

function newChannelForm(app, onDone) {
  const name = h('input', { type: 'text', maxlength: 120, required: true, 'data-autofocus': '' });
  const kind = h(
    'select',
    null,
    h('option', { value: 'group' }, t('channel.group_option')),
    app.isAdmin() ? h('option', { value: 'tribe' }, t('channel.tribe_option')) : null,
  );
  const status = h('p', { class: 'form-status', role: 'alert' });
  const form = h(
    'form',
    {
      class: 'stack new-channel',
      onSubmit: async (e) => {
        e.preventDefault();
        if (!name.value.trim()) {
          status.textContent = t('channel.need_name');
          name.focus();
          return;
        }
        try {
          const created = await app.messenger.createChannel(kind.value, name.value.trim());
          onDone(created.channel_id);
        } catch (err) {
          status.textContent = app.errorText(err);
        }
      },
    },
    h('h2', null, t('channel.new_title')),
    field(t('channel.name_label'), name),
    field(t('channel.kind_label'), kind, app.isAdmin() ? t('channel.kind_hint_admin') : t('channel.kind_hint')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('channel.create')), h('button', { type: 'button', onClick: () => onDone(null) }, t('common.cancel'))),
    status,
  );
  return form;
}

export async function renderMessages(app, main, route) {
  const m = app.messenger;
  const channelId = route.name === 'channel' ? route.params.channelId : null;
  const aside = h('aside', { class: 'channels-pane', 'aria-labelledby': 'channels-title' });
  const pane = h('section', { class: 'channel-pane' });
  const layout = h('div', { class: ['messaging', channelId ? 'has-channel' : 'no-channel'] }, aside, pane);
  replace(main, layout);

  let creating = route.name === 'new-channel';
  const renderAside = () => {
    const newButton = h(
      'button',
      { type: 'button', class: 'small', 'aria-expanded': creating ? 'true' : 'false', onClick: () => {
        creating = !creating;
        renderAside();
        aside.querySelector(creating ? 'input' : 'button')?.focus();
      } },
      t('channels.new'),
    );
    replace(
      aside,
      h('div', { class: 'pane-head' }, h(channelId ? 'h2' : 'h1', { id: 'channels-title' }, t('channels.title')), newButton),
      creating
        ? newChannelForm(app, (created) => {
            creating = false;
            if (created) app.navigate(`#/c/${created}`);
            else renderAside();
          })
        : null,
      channelList(app, channelId),
    );
  };
  renderAside();
  if (!m.channels.size) await m.loadChannels().catch(() => null);
  renderAside();

  if (!channelId) {
    replace(
      pane,
      h('div', { class: 'placeholder' }, h('p', null, m.channels.size ? t('channels.pick') : t('channels.empty_help'))),
    );
    return {
      title: t('channels.title'),
      event(type) {
        if (type === 'channels') renderAside();
      },
    };
  }
  const view = await channelView(app, pane, channelId);
  return {
    title: view.title,
    event(type, detail) {
      if (type === 'channels') renderAside();
      view.event(type, detail);
    },
    dispose: view.dispose,
  };
}

async function channelView(app, pane, channelId) {
  const m = app.messenger;
  let channel = m.channel(channelId);
  if (!channel) {
    await m.loadChannels().catch(() => null);
    channel = m.channel(channelId);
  }
  if (!channel) {
    replace(pane, h('div', { class: 'placeholder' }, h('h1', null, t('channel.not_found')), h('p', null, h('a', { href: '#/' }, t('channel.back')))));
    return { title: t('channel.not_found'), event() {}, dispose() {} };
  }

  const state = {
    messages: [],
    replyTo: null,
    pollOpen: false,
    membersOpen: false,
    items: new Map(), // message_id -> li
    retention: null,
    first: true,
    offline: false,
    ui: { picker: null, confirm: null, pending: new Map() },
    emptyItem: null,
  };
  const list = h('ol', { class: 'messages', 'aria-label': t('channel.messages_label'), 'aria-describedby': 'messages-help' });
  const help = h('p', { id: 'messages-help', class: 'visually-hidden' }, t('channel.messages_help'));
  const scroller = h('div', { class: 'messages-scroll', role: 'region', tabindex: '0', 'aria-label': t('channel.messages_label') }, help, list);
  const head = h('header', { class: 'channel-head' });
  const membersPanel = h('div', { class: 'members-panel', id: 'members-panel', hidden: true });
  const composerBox = h('div', { class: 'composer-box' });
  const offlineNote = h('p', { class: 'offline-note', hidden: true, role: 'status' }, t('channel.offline'));
  replace(pane, head, membersPanel, offlineNote, scroller, composerBox);

  const mayManage = () => m.mayManage(m.channel(channelId) || channel);
  const myName = (memberId) => (memberId === m.memberId ? t('channel.you') : m.memberName(memberId) || t('channel.someone'));

  function renderHead() {
    channel = m.channel(channelId) || channel;
    const isTribe = channel.kind === 'tribe';
    const role = channel.my_role === 'author' ? t('channel.role_author') : t('channel.role_member');
    replace(
      head,
      h('a', { class: 'back-link', href: '#/' }, '← ', t('channels.title')),
      h('div', { class: 'channel-title-row' },
        h('h1', { id: 'channel-title' }, h('span', { 'aria-hidden': 'true' }, isTribe ? '📢 ' : '👥 '), channel.name),
        h('button', {
          type: 'button',
          class: 'small',
          'aria-expanded': state.membersOpen ? 'true' : 'false',
          'aria-controls': 'members-panel',
          onClick: () => {
            state.membersOpen = !state.membersOpen;
            renderMembers().then(() => {
              if (state.membersOpen) membersPanel.querySelector('h2')?.focus();
            });
            renderHead();
            head.querySelector('[aria-controls="members-panel"]')?.focus();
          },
        }, t('channel.members_button')),
      ),
      h('p', { class: 'channel-meta' },
        h('span', { class: ['kind-badge', channel.kind] }, kindLabel(channel)),
        ' ',
        h('span', null, isTribe ? t('channel.tribe_rule') : t('channel.group_rule')),
        ' · ',
        h('span', null, t('channel.your_role', { role })),
        state.retention ? [' · ', h('span', null, t('channel.retention', { duration: formatDays(state.retention) }))] : null,
      ),
    );
  }

  async function renderMembers() {
    membersPanel.hidden = !state.membersOpen;
    if (!state.membersOpen) return;
    replace(membersPanel, h('p', null, t('common.loading')));
    let roster;
    try {
      roster = await m.roster(channelId, { fresh: true });
      await m.loadDirectory(); // people activated since the app started
    } catch (err) {
      replace(membersPanel, h('p', { class: 'form-status' }, app.errorText(err)));
      return;
    }
    const ids = [...roster.members];
    const rows = ids
      .map((id) => ({ id, name: m.memberName(id) || id }))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(({ id, name }) =>
        h('li', null,
          h('span', null, name, id === m.memberId ? ` (${t('channel.you')})` : ''),
          mayManage() || id === m.memberId
            ? h('button', {
                type: 'button',
                class: 'small danger-outline',
                onClick: async () => {
                  try {
                    await m.removeMember(channelId, id);
                    app.toast(id === m.memberId ? t('channel.left') : t('channel.removed', { name }));
                    if (id === m.memberId) app.navigate('#/');
                    else renderMembers();
                  } catch (err) {
                    app.toast(app.errorText(err), 'error');
                  }
                },
              }, id === m.memberId ? t('channel.leave') : t('channel.remove', { name }))
            : null,
        ),
      );
    let addForm = null;
    if (mayManage()) {
      const candidates = [...m.directory.members.values()].filter((x) => x.status === 'active').sort((a, b) => a.display_name.localeCompare(b.display_name));
      const who = h('select', null, candidates.map((c) => h('option', { value: c.member_id }, c.display_name + (roster.members.has(c.member_id) ? ` (${t('channel.already_in')})` : ''))));
      const role = h('select', null,
        h('option', { value: 'member' }, channel.kind === 'tribe' ? t('channel.role_reader') : t('channel.role_member')),
        h('option', { value: 'author' }, t('channel.role_author_option')));
      const status = h('p', { class: 'form-status', role: 'alert' });
      addForm = h('form', {
        class: 'inline-form',
        onSubmit: async (e) => {
          e.preventDefault();
          try {
            await m.addMember(channelId, who.value, role.value);
            app.toast(t('channel.added', { name: m.memberName(who.value) || who.value }));
            await renderMembers();
            membersPanel.querySelector('select')?.focus();
          } catch (err) {
            status.textContent = app.errorText(err);
          }
        },
      },
      h('h3', null, t('channel.add_title')),
      h('div', { class: 'row' }, field(t('channel.add_who'), who), field(t('channel.add_role'), role), h('button', { type: 'submit', class: 'primary' }, t('channel.add_submit'))),
      status);
    }
    replace(
      membersPanel,
      h('h2', { tabindex: '-1' }, t('channel.members_title', { count: ids.length })),
      h('ul', { class: 'member-list' }, rows),
      addForm,
    );
  }

  // -- the composer ----------------------------------------------------------------------------

  function renderComposer() {
    channel = m.channel(channelId) || channel;
    if (!m.mayPost(channel)) {
      replace(
        composerBox,
        h('p', { class: 'notice tribe-notice', id: 'composer-notice' }, h('strong', null, t('composer.tribe_title')), ' ', t('composer.tribe_body')),
      );
      return;
    }
    const status = h('p', { class: 'form-status', role: 'alert' });
    const text = h('textarea', {
      id: 'composer-text',
      rows: 2,
      maxlength: 20000,
      placeholder: t('composer.placeholder'),
      'aria-describedby': 'composer-hint',
      onKeydown: (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          form.requestSubmit();
        }
        if (e.key === 'Escape' && state.replyTo) {
          state.replyTo = null;
          renderComposer();
          document.getElementById('composer-text')?.focus();
        }
      },
    });
    const send = h('button', { type: 'submit', class: 'primary' }, t('composer.send'));
    const replying = state.replyTo ? state.messages.find((x) => x.message_id === state.replyTo) : null;
    const form = h(
      'form',
      {
        class: 'composer',
        onSubmit: async (e) => {
          e.preventDefault();
          const value = text.value.trim();
          if (!value) return;
          send.disabled = true;
          status.textContent = '';
          try {
            await m.sendText(channelId, value, state.replyTo);
            text.value = '';
            state.replyTo = null;
            renderComposer();
            document.getElementById('composer-text')?.focus();
          } catch (err) {
            status.textContent = app.errorText(err);
            send.disabled = false;
          }
        },
      },
      replying
        ? h('div', { class: 'replying' },
            h('span', null, t('composer.replying_to', { name: myName(replying.sender_member) }), ' ', h('q', null, snippet(replying))),
            h('button', { type: 'button', class: 'small', onClick: () => {
              state.replyTo = null;
              renderComposer();
              document.getElementById('composer-text')?.focus();
            } }, t('composer.cancel_reply')))
        : null,
      h('label', { for: 'composer-text', class: 'visually-hidden' }, t('composer.label')),
      h('div', { class: 'composer-row' },
        text,
        send,
        h('button', {
          type: 'button',
          'aria-expanded': state.pollOpen ? 'true' : 'false',
          'aria-controls': 'poll-form',
          onClick: () => {
            state.pollOpen = !state.pollOpen;
            renderComposer();
            (state.pollOpen ? document.getElementById('poll-question') : document.getElementById('composer-text'))?.focus();
          },
        }, t('composer.poll')),
      ),
      h('p', { id: 'composer-hint', class: 'hint' }, t('composer.hint')),
      status,
    );
    replace(composerBox, state.pollOpen ? pollForm() : null, form);
  }

  function pollForm() {
    const question = h('input', { id: 'poll-question', type: 'text', maxlength: 500, required: true });
    const optionsBox = h('ol', { class: 'poll-options-edit' });
    const multiple = h('input', { type: 'checkbox', id: newId('multi') });
    const closes = h('select', null, CLOSES.map(([v, k]) => h('option', { value: v }, t(k))));
    const status = h('p', { class: 'form-status', role: 'alert' });
    const addOption = (value = '') => {
      const index = optionsBox.children.length + 1;
      const input = h('input', { type: 'text', maxlength: 200, value, class: 'poll-option-input' });
      const li = h('li', null, field(t('poll.option_label', { n: index }), input),
        h('button', { type: 'button', class: 'small', 'aria-label': t('poll.remove_option', { n: index }), onClick: () => {
          if (optionsBox.children.length > 2) {
            li.remove();
            renumber();
            optionsBox.querySelector('input')?.focus();
          }
        } }, '✕'));
      optionsBox.append(li);
      return input;
    };
    const renumber = () => {
      [...optionsBox.children].forEach((li, i) => {
        li.querySelector('label').textContent = t('poll.option_label', { n: i + 1 });
        li.querySelector('button').setAttribute('aria-label', t('poll.remove_option', { n: i + 1 }));
      });
    };
    addOption();
    addOption();
    return h('form', {
      id: 'poll-form',
      class: 'poll-form stack',
      onSubmit: async (e) => {
        e.preventDefault();
        const options = [...optionsBox.querySelectorAll('input')].map((i) => i.value.trim()).filter(Boolean);
        const days = Number(closes.value || 0);
        const closesAt = days ? Math.floor(Date.now() / 1000) + days * 86400 : null;
        try {
          await m.createPoll(channelId, question.value, options, { multiple: multiple.checked, closesAt });
          state.pollOpen = false;
          renderComposer();
          app.toast(t('poll.created'));
          document.getElementById('composer-text')?.focus();
        } catch (err) {
          status.textContent = err instanceof PollError ? t(`poll.error_${err.message}`) : app.errorText(err);
        }
      },
      onKeydown: (e) => {
        if (e.key === 'Escape') {
          state.pollOpen = false;
          renderComposer();
          document.getElementById('composer-text')?.focus();
        }
      },
    },
    h('h2', null, t('poll.new_title')),
    field(t('poll.question_label'), question),
    optionsBox,
    h('button', { type: 'button', class: 'small', onClick: () => {
      if (optionsBox.children.length < MAX_OPTIONS) addOption().focus();
    } }, t('poll.add_option')),
    h('div', { class: 'check' }, multiple, h('label', { for: multiple.id }, t('poll.multiple'))),
    field(t('poll.closes_label'), closes),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, t('poll.publish')),
      h('button', { type: 'button', onClick: () => {
        state.pollOpen = false;
        renderComposer();
        document.getElementById('composer-text')?.focus();
      } }, t('common.cancel'))),
    status);
  }

  // -- messages --------------------------------------------------------------------------------

  function snippet(message) {
    if (!message) return t('message.unavailable');
    if (message.deleted) return t('message.deleted');
    if (message.kind === 'poll') return message.content?.question || '';
    const text = message.content?.text || '';
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  }

  function derive(messages) {
    const deleted = new Set();
    const reactions = new Map(); // target -> emoji -> member -> {seq, remove}
    for (const msg of messages) {
      if (msg.deleted) deleted.add(msg.message_id);
      if (!msg.verified) continue;
      if (msg.kind === 'delete' && msg.content?.target) deleted.add(msg.content.target);
      if (msg.kind === 'reaction' && msg.content?.target && typeof msg.content.emoji === 'string' && msg.content.emoji.length <= 16) {
        const byEmoji = reactions.get(msg.content.target) || new Map();
        const byMember = byEmoji.get(msg.content.emoji) || new Map();
        const prev = byMember.get(msg.sender_member);
        if (!prev || prev.seq < msg.seq) byMember.set(msg.sender_member, { seq: msg.seq, remove: Boolean(msg.content.remove) });
        byEmoji.set(msg.content.emoji, byMember);
        reactions.set(msg.content.target, byEmoji);
      }
    }
    return { deleted, reactions };
  }

  // Each message is rebuilt only when what it shows changed (its signature), so an open reaction
  // picker, a confirmation or a poll choice not yet sent survive live updates; the focused
  // control is found again by its data-key when its message is rebuilt.
  function reactionSummary(msg, reactions) {
    const byEmoji = reactions.get(msg.message_id);
    if (!byEmoji) return [];
    const summary = [];
    for (const [emoji, byMember] of byEmoji) {
      const who = [...byMember].filter(([, v]) => !v.remove).map(([id]) => id).sort();
      if (who.length) summary.push([emoji, who]);
    }
    return summary;
  }

  function reactionChips(msg, summary) {
    if (!summary.length) return null;
    return h('div', { class: 'reactions' }, summary.map(([emoji, who]) => {
      const mine = who.includes(m.memberId);
      const names = who.map(myName).join(', ');
      return h('button', {
        type: 'button',
        class: ['chip', mine ? 'mine' : null],
        'data-key': `chip-${emoji}`,
        'aria-pressed': mine ? 'true' : 'false',
        'aria-label': t('reaction.chip', { emoji, count: who.length, names }),
        title: names,
        onClick: () => doReact(msg, emoji, mine),
      }, `${emoji} ${who.length}`);
    }));
  }

  async function doReact(msg, emoji, remove) {
    try {
      await m.react(channelId, msg.message_id, emoji, remove);
    } catch (err) {
      app.toast(app.errorText(err), 'error');
    }
  }

  function setUi(key, value, messageId, focusKey) {
    state.ui[key] = value;
    renderList();
    const li = document.getElementById(`msg-${messageId}`);
    focus(li?.querySelector(`[data-key="${focusKey}"]`));
  }

  function messageActions(msg) {
    const id = msg.message_id;
    const canDelete = msg.sender_member === m.memberId || mayManage();
    const pickerOpen = state.ui.picker === id;
    const confirming = state.ui.confirm === id;
    const actions = h('div', { class: 'msg-actions' });
    if (m.mayPost(m.channel(channelId) || channel) && msg.kind === 'message') {
      actions.append(h('button', { type: 'button', class: 'link', 'data-key': 'reply', onClick: () => {
        state.replyTo = id;
        state.pollOpen = false;
        renderComposer();
        document.getElementById('composer-text')?.focus();
      } }, t('message.reply')));
    }
    actions.append(h('button', {
      type: 'button',
      class: 'link',
      'data-key': 'react',
      'aria-expanded': pickerOpen ? 'true' : 'false',
      onClick: () => setUi('picker', pickerOpen ? null : id, id, pickerOpen ? 'react' : `emoji-${REACTIONS[0][0]}`),
    }, t('message.react')));
    if (canDelete && !confirming) {
      actions.append(h('button', { type: 'button', class: 'link danger-text', 'data-key': 'delete', onClick: () => setUi('confirm', id, id, 'delete-yes') }, t('message.delete')));
    }
    if (canDelete && confirming) {
      actions.append(h('span', { class: 'confirm' },
        h('span', null, t('message.delete_confirm')),
        h('button', { type: 'button', class: 'small danger', 'data-key': 'delete-yes', onClick: async () => {
          try {
            await m.deleteForEveryone(channelId, id);
            state.ui.confirm = null;
            app.toast(t('message.deleted_done'));
            focus(document.getElementById('composer-text') || list);
          } catch (err) {
            app.toast(app.errorText(err), 'error');
          }
        } }, t('message.delete_yes')),
        h('button', { type: 'button', class: 'small', 'data-key': 'delete-no', onClick: () => setUi('confirm', null, id, 'delete') }, t('common.cancel'))));
    }
    const picker = pickerOpen
      ? h('div', { class: 'reaction-picker', role: 'group', 'aria-label': t('reaction.pick') },
          REACTIONS.map(([emoji, key]) => h('button', {
            type: 'button',
            class: 'emoji',
            'data-key': `emoji-${emoji}`,
            'aria-label': t('reaction.with', { name: t(key) }),
            onClick: () => {
              setUi('picker', null, id, 'react');
              doReact(msg, emoji, false);
            },
            onKeydown: (e) => {
              if (e.key === 'Escape') setUi('picker', null, id, 'react');
            },
          }, emoji)))
      : null;
    return [actions, picker];
  }

  function pollCard(msg, result) {
    const id = msg.message_id;
    const sent = result.votes_by[m.memberId] || [];
    const chosen = state.ui.pending.get(id) || sent;
    const type = result.multiple ? 'checkbox' : 'radio';
    const name = `poll-${id}`;
    const total = result.voters;
    const legendId = `poll-q-${id}`;
    const options = result.options.map((o) => {
      const inputId = `${name}-${o.index}`;
      const percent = total ? Math.round((o.votes / total) * 100) : 0;
      const fill = h('span', { class: 'fill' });
      fill.style.width = `${percent}%`;
      return h('div', { class: ['poll-option', sent.includes(o.index) ? 'chosen' : null] },
        h('div', { class: 'poll-choice' },
          h('input', {
            type, name, id: inputId, value: String(o.index), 'data-key': `opt-${o.index}`,
            checked: chosen.includes(o.index), disabled: result.closed,
            onChange: () => {
              const picked = [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => Number(i.value));
              state.ui.pending.set(id, picked); // survives live updates until sent
            },
          }),
          h('label', { for: inputId }, o.option)),
        h('span', { class: 'poll-bar', 'aria-hidden': 'true' }, fill),
        h('span', { class: 'poll-count' }, t('poll.votes', { count: o.votes }), total ? ` · ${percent} %` : ''));
    });
    const mayClose = !result.closed && (msg.sender_member === m.memberId || mayManage());
    const form = h('form', {
      class: 'poll',
      'aria-labelledby': legendId,
      onSubmit: async (e) => {
        e.preventDefault();
        const choices = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => Number(i.value));
        if (!choices.length) {
          app.toast(t('poll.choose_first'), 'error');
          return;
        }
        try {
          await m.vote(channelId, id, choices);
          state.ui.pending.delete(id);
          app.toast(t('poll.voted'));
        } catch (err) {
          app.toast(app.errorText(err), 'error');
        }
      },
    },
    h('p', { class: 'poll-label', id: legendId }, h('span', { class: 'poll-tag' }, t('poll.tag')), ' ', result.question),
    h('div', { class: 'poll-options', role: type === 'radio' ? 'radiogroup' : 'group', 'aria-labelledby': legendId }, options),
    h('p', { class: 'poll-meta' },
      t('poll.voters', { count: total }),
      ' · ',
      result.closed ? h('strong', null, t('poll.closed')) : result.closes_at ? t('poll.closes_on', { date: formatDateTime(result.closes_at) }) : t('poll.open'),
      result.multiple ? [' · ', t('poll.multiple_short')] : null,
      sent.length ? [' · ', t('poll.your_vote', { choice: sent.map((i) => result.options[i].option).join(', ') })] : null),
    result.closed ? null : h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary small', 'data-key': 'vote' }, sent.length ? t('poll.change_vote') : t('poll.vote')),
      mayClose ? h('button', { type: 'button', class: 'small', 'data-key': 'close-poll', onClick: async () => {
        try {
          await m.closePoll(channelId, id);
          app.toast(t('poll.closed_done'));
        } catch (err) {
          app.toast(app.errorText(err), 'error');
        }
      } }, t('poll.close')) : null));
    return form;
  }

  let members = null;

  /** What a message shows, as data: equal signatures mean the element can stay as it is. */
  function describe(msg, messages, derived, byId) {
    const view = {
      msg,
      reactions: msg.verified ? reactionSummary(msg, derived.reactions) : [],
      poll: null,
      quote: null,
    };
    if (msg.verified && msg.kind === 'poll') {
      try {
        view.poll = tally(messages, msg.message_id, members, Date.now() / 1000);
      } catch {
        view.poll = null;
      }
    }
    if (msg.verified && msg.content?.reply_to) {
      const quoted = byId.get(msg.content.reply_to);
      view.quote = {
        name: quoted ? myName(quoted.sender_member) : t('channel.someone'),
        text: derived.deleted.has(msg.content.reply_to) ? t('message.deleted') : snippet(quoted),
      };
    }
    const id = msg.message_id;
    view.signature = JSON.stringify([
      msg.seq, msg.verified, msg.error, msg.content, msg.expires_at, m.memberName(msg.sender_member),
      view.reactions, view.poll, view.quote, state.ui.picker === id, state.ui.confirm === id,
      m.mayPost(m.channel(channelId) || channel), mayManage(),
    ]);
    return view;
  }

  function messageItem(view) {
    const { msg } = view;
    const mine = msg.sender_member === m.memberId;
    const sender = myName(msg.sender_member);
    const when = msg.sent_at_ms ? Math.floor(msg.sent_at_ms / 1000) : msg.stored_at;
    const headId = `h-${msg.message_id}`;
    const body = [];
    if (!msg.verified) {
      body.push(h('p', { class: 'unreadable' }, msg.error === 'forged' ? t('message.forged') : t('message.no_key')));
    } else if (msg.kind === 'poll') {
      body.push(view.poll ? pollCard(msg, view.poll) : h('p', { class: 'unreadable' }, t('poll.error_no_poll')));
    } else {
      if (view.quote) {
        body.push(h('blockquote', { class: 'quote' },
          h('span', { class: 'quote-who' }, t('message.in_reply_to', { name: view.quote.name })), ' ', h('span', null, view.quote.text)));
      }
      body.push(h('p', { class: 'text' }, String(msg.content?.text ?? '')));
    }
    const [actions, picker] = msg.verified ? messageActions(msg) : [null, null];
    const li = h('li', { class: ['msg', mine ? 'mine' : null, msg.kind === 'poll' ? 'is-poll' : null], id: `msg-${msg.message_id}` },
      h('article', { 'aria-labelledby': headId },
        h('header', { class: 'msg-head', id: headId },
          h('strong', { class: 'who' }, sender),
          ' ',
          h('time', { datetime: new Date(when * 1000).toISOString(), title: formatDateTime(when) }, formatTime(when))),
        body,
        reactionChips(msg, view.reactions),
        h('footer', { class: 'msg-foot' },
          msg.expires_at ? h('span', { class: 'expiry' }, t('message.expires', { date: formatDate(msg.expires_at) })) : null,
          actions),
        picker));
    li.signature = view.signature;
    return li;
  }

  function foldedItem(entry, signature) {
    const li = h('li', { class: 'msg folded', id: `msg-${entry.key}` },
      h('p', { class: 'unreadable' }, t('message.no_key_many', { count: entry.folded.length })));
    li.signature = signature;
    return li;
  }

  function renderList() {
    const messages = state.messages;
    const derived = derive(messages);
    const byId = new Map(messages.map((x) => [x.message_id, x]));
    const shown = messages.filter((x) => SHOWN_KINDS.has(x.kind) && !derived.deleted.has(x.message_id));
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const active = document.activeElement;
    const activeLi = active && list.contains(active) ? active.closest('li') : null;
    const activeKey = active?.getAttribute?.('data-key');
    // Runs of messages this device cannot read (sent before it joined) fold into one line.
    const entries = [];
    for (const msg of shown) {
      const last = entries[entries.length - 1];
      if (msg.error === 'no_key' && last?.folded) last.folded.push(msg);
      else if (msg.error === 'no_key') entries.push({ key: `fold-${msg.seq}`, folded: [msg] });
      else entries.push({ key: msg.message_id, msg });
    }
    const items = new Map();
    const wanted = entries.map((entry) => {
      const existing = state.items.get(entry.key);
      let node;
      if (entry.folded) {
        const signature = `fold:${entry.folded.length}`;
        node = existing && existing.signature === signature ? existing : foldedItem(entry, signature);
      } else {
        const view = describe(entry.msg, messages, derived, byId);
        node = existing && existing.signature === view.signature ? existing : messageItem(view);
      }
      items.set(entry.key, node);
      return node;
    });
    state.items = items;
    const nodes = wanted.length ? wanted : [state.emptyItem || (state.emptyItem = h('li', { class: 'empty' }, t('channel.empty')))];
    nodes.forEach((node, i) => {
      if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
    });
    while (list.children.length > nodes.length) list.lastElementChild.remove();
    if (activeLi && !activeLi.isConnected) {
      const again = document.getElementById(activeLi.id);
      focus((activeKey && again?.querySelector(`[data-key="${activeKey}"]`)) || again?.querySelector('button, input') || list);
    }
    if (state.first || atBottom) scroller.scrollTop = scroller.scrollHeight;
    state.first = false;
  }

  let refreshTimer = null;
  async function refresh() {
    let cached = await app.store.messages(channelId);
    if (state.retention) {
      // A shortened retention holds on the device at once, as the server's reads do.
      const limit = state.retention * 86400;
      const capped = cached.filter((x) => x.stored_at && x.stored_at + limit < (x.expires_at || Infinity));
      if (capped.length) {
        await app.store.putMessages(capped.map((x) => ({ ...x, expires_at: x.stored_at + limit })));
        await app.store.purgeExpired();
        cached = await app.store.messages(channelId);
      }
    }
    cached.sort((a, b) => a.seq - b.seq);
    state.messages = cached;
    try {
      members = (await m.roster(channelId)).members;
    } catch {
      members = members || new Set(cached.map((x) => x.sender_member));
    }
    renderList();
  }
  const scheduleRefresh = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 40);
  };

  let catchTimer = null;
  async function catchUp() {
    try {
      await m.catchUp(channelId);
      if (await m.retryUnreadable(channelId)) scheduleRefresh();
      state.offline = false;
    } catch (err) {
      state.offline = err.status === 0;
      if (err.status === 403 || err.status === 404) app.toast(app.errorText(err), 'error');
    }
    offlineNote.hidden = !state.offline;
    await refresh();
    scheduleKeyRetry();
  }
  const scheduleCatchUp = () => {
    clearTimeout(catchTimer);
    catchTimer = setTimeout(catchUp, 300);
  };

  // Messages without a key yet: their senders share it when they learn of this device (a live
  // event on their side), so look again a few times while the channel is open.
  let retryTimer = null;
  const RETRY_AFTER = [2000, 6000, 15000];
  function scheduleKeyRetry(attempt = 0) {
    clearTimeout(retryTimer);
    if (attempt >= RETRY_AFTER.length || !state.messages.some((x) => x.error === 'no_key')) return;
    retryTimer = setTimeout(async () => {
      try {
        if (await m.retryUnreadable(channelId)) await refresh();
      } catch {
        // offline: the next catch-up tries again
      }
      scheduleKeyRetry(attempt + 1);
    }, RETRY_AFTER[attempt]);
  }

  const retention = m.api.get(`/channels/${channelId}/retention`).catch(() => null);
  renderHead();
  renderComposer();
  await refresh(); // from the device's cache first: readable offline
  state.retention = (await retention)?.retention_days || null;
  renderHead();
  if (state.retention) await refresh(); // a shortened retention hides older messages at once
  await catchUp();

  return {
    title: channel.name,
    event(type, detail) {
      if (type === 'message' && detail?.channel_id === channelId) {
        scheduleRefresh();
        scheduleCatchUp(); // moves this device's read cursor (unread counts), fills any gap
        if (detail.sender_device !== m.deviceId) {
          if (SHOWN_KINDS.has(detail.kind) && detail.verified) {
            const who = myName(detail.sender_member);
            app.announce(detail.kind === 'poll' ? t('live.new_poll', { name: who, question: detail.content.question }) : t('live.new_message', { name: who, text: detail.content.text }));
          }
        }
      } else if (type === 'channels') {
        if (!m.channel(channelId)) {
          app.toast(t('channel.gone'), 'error');
          app.navigate('#/');
          return;
        }
        renderHead();
        renderComposerIfRoleChanged();
      } else if (type === 'roster' && detail === channelId) {
        if (state.membersOpen) renderMembers();
        scheduleRefresh();
      } else if (type === 'status' && detail?.online) {
        scheduleCatchUp();
      } else if (type === 'purged') {
        scheduleRefresh();
      }
    },
    dispose() {
      clearTimeout(refreshTimer);
      clearTimeout(catchTimer);
      clearTimeout(retryTimer);
    },
  };

  function renderComposerIfRoleChanged() {
    const may = m.mayPost(m.channel(channelId));
    const shows = !composerBox.querySelector('#composer-notice');
    if (may !== shows) renderComposer();
  }
}
