// @ts-check
// The messaging page: the list of channels (and the form that creates one) beside the open
// channel, whose parts live in ui/channel/.
import { askPermission, mayAskPermission, notifyHidden } from '../attention.js';
import { h, field, replace } from '../dom.js';
import { t } from '../i18n.js';
import { channelView } from './channel/channel-view.js';
import { kindIcon, kindLabel } from './channel/context.js';
import { SHOWN_KINDS } from './channel/history.js';
import { directButton } from './channel/members-panel.js';

/** Global reactions to messenger events (whatever view is shown): announce other channels. */
export function messagesEvent(app, type, detail) {
  if (type !== 'message' || !detail || detail.sender_device === app.messenger?.deviceId) return;
  if (!SHOWN_KINDS.has(detail.kind)) return;
  const open = app.route.name === 'channel' && app.route.params.channelId === detail.channel_id;
  const channel = app.messenger.channel(detail.channel_id);
  if (!channel) return;
  const name = app.messenger.channelName(channel);
  if (!open) app.announce(t('live.new_in', { channel: name }));
  notifyHidden(name, channel.channel_id).catch(() => null); // only when the page is hidden
}

/** "Activer les notifications": the permission is asked on this click, never unprompted. */
function notifyButton(onAnswer) {
  if (!mayAskPermission()) return null;
  return h('button', { type: 'button', class: 'small', onClick: () => askPermission().then(onAnswer, onAnswer) }, t('channels.notify'));
}

function channelList(app, currentId) {
  const m = app.messenger;
  const channels = [...m.channels.values()].sort((a, b) => Number(b.latest_seq > 0) - Number(a.latest_seq > 0) || m.channelName(a).localeCompare(m.channelName(b)));
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
              h('span', { class: 'channel-icon', 'aria-hidden': 'true' }, kindIcon(c.kind)),
              h('span', { class: 'channel-name' }, m.channelName(c)),
              h('span', { class: 'visually-hidden' }, `, ${kindLabel(c.kind)}`),
              c.unread ? h('span', { class: 'badge count' }, String(c.unread), h('span', { class: 'visually-hidden' }, ` ${t('channels.unread_word', { count: c.unread })}`)) : null,
            ),
          ),
        ),
      )
    : h('p', { class: 'empty' }, t('channels.none'));
  return list;
}

/** The organisation's members, each with "Message direct" (section 14.1). */
async function directList(app) {
  const m = app.messenger;
  const directory = m.directory || (await m.loadDirectory());
  const others = [...directory.members.values()]
    .filter((x) => x.status === 'active' && x.member_id !== m.memberId)
    .sort((a, b) => a.display_name.localeCompare(b.display_name));
  return h('div', { class: 'stack direct-list' },
    h('h2', null, t('channels.direct_title')),
    h('ul', { class: 'member-list' }, others.map((x) => h('li', null, h('span', null, m.memberName(x.member_id) || x.display_name), ' ', directButton(app, x.member_id)))));
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
  let directing = false;
  /** @type {HTMLElement | null} the open form, kept across re-renders so typing is never lost */
  let form = null;
  const creationForm = () => {
    form ||= newChannelForm(app, (created) => {
      creating = false;
      form = null;
      if (created) app.navigate(`#/c/${created}`);
      else renderAside();
    });
    return form;
  };
  const renderAside = async () => {
    const newButton = h(
      'button',
      { type: 'button', class: 'small', 'aria-expanded': creating ? 'true' : 'false', onClick: () => {
        creating = !creating;
        if (!creating) form = null;
        renderAside();
        aside.querySelector(creating ? 'input' : 'button')?.focus();
      } },
      t('channels.new'),
    );
    const directToggle = h(
      'button',
      { type: 'button', class: 'small', 'aria-expanded': directing ? 'true' : 'false', onClick: () => {
        directing = !directing;
        renderAside();
      } },
      t('channel.message_direct'),
    );
    const directs = directing ? await directList(app).catch((err) => h('p', { class: 'form-status' }, app.errorText(err))) : null;
    replace(
      aside,
      h('div', { class: 'pane-head' }, h(channelId ? 'h2' : 'h1', { id: 'channels-title' }, t('channels.title')), notifyButton(renderAside), newButton, directToggle),
      directs,
      creating ? creationForm() : null, // a live update re-renders the list, not the form
      channelList(app, channelId),
    );
  };
  await renderAside();
  if (!m.channels.size) await m.loadChannels().catch(() => null);
  await renderAside();

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
