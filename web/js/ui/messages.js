// @ts-check
// The messaging page: the list of channels (and the form that creates one) beside the open
// channel, whose parts live in ui/channel/.
import { askPermission, isNews, mayAskPermission, notifyHidden } from '../attention.js';
import { enablePush, pushSupported } from '../push.js';
import { h, field, replace, replaceKeeping } from '../dom.js';
import { formatDate, formatDateTime, formatTime, t } from '../i18n.js';
import { lastShown, MIN_QUERY, searchMessages } from '../search.js';
import { channelView } from './channel/channel-view.js';
import { kindIcon, kindLabel } from './channel/context.js';
import { SHOWN_KINDS } from './channel/history.js';
import { directButton } from './channel/members-panel.js';

/** @typedef {import('../search.js').Found} Found */

/** How many of a channel's newest messages its preview looks through (for edits and deletions). */
const PREVIEW_WINDOW = 50;
const SEARCH_DELAY_MS = 200;

/** Global reactions to messenger events (whatever view is shown): announce other channels. */
export function messagesEvent(app, type, detail) {
  if (type !== 'message' || !detail || detail.sender_device === app.messenger?.deviceId) return;
  if (!SHOWN_KINDS.has(detail.kind) || !isNews(detail)) return;
  const open = app.route.name === 'channel' && app.route.params.channelId === detail.channel_id;
  const channel = app.messenger.channel(detail.channel_id);
  if (!channel) return;
  const name = app.messenger.channelName(channel);
  if (!open) app.announce(t('live.new_in', { channel: name }));
  notifyHidden(name, channel.channel_id).catch(() => null); // only when the page is hidden
}

/**
 * "Activer les notifications": the permission is asked on this click, never unprompted. Where
 * the browser and the server do Web Push, this is the same opt-in as on "Cet appareil" (the
 * app closed still notifies); otherwise notifications come from the open page only.
 */
function notifyButton(app, onAnswer) {
  if (!mayAskPermission()) return null;
  const turnOn = async () => {
    const pushed = pushSupported() ? await enablePush(app.messenger).catch(() => 'failed') : 'unsupported';
    if (pushed !== 'on' && pushed !== 'denied') await askPermission();
    onAnswer();
  };
  return h('button', { type: 'button', class: 'small', onClick: () => turnOn().catch(onAnswer) }, t('channels.notify'));
}

/**
 * Each channel's last shown message, from what this device keeps (readable offline). A
 * channel's is read again only when its cached messages or what judges their senders changed
 * (or it expired): a live
 * message re-renders the list, and re-reading every channel then cost one IndexedDB walk each.
 * @param {Map<string, { version: string, found: Found | null }>} cache kept by the caller
 * @returns {Promise<Map<string, Found | null>>}
 */
async function channelPreviews(app, cache) {
  const ids = [...app.messenger.channels.keys()];
  const now = Date.now() / 1000;
  await Promise.all(ids.map(async (id) => {
    const version = `${app.store.version(id)}/${app.messenger.trust.version}`; // a verdict may change with either
    const kept = cache.get(id);
    if (kept && kept.version === version && !(kept.found && kept.found.msg.expires_at <= now)) return;
    const found = await app.store.recentMessages(id, PREVIEW_WINDOW).then((kept) => app.messenger.judgeCached(kept)).then(lastShown, () => null);
    cache.set(id, { version, found });
  }));
  return new Map(ids.map((id) => [id, cache.get(id)?.found ?? null]));
}

/** Today: the time; before: the date (the title has both). @param {number} when seconds */
function shortWhen(when) {
  const sameDay = new Date(when * 1000).toDateString() === new Date().toDateString();
  return h('time', { class: 'channel-when', datetime: new Date(when * 1000).toISOString(), title: formatDateTime(when) }, sameDay ? formatTime(when) : formatDate(when));
}

/** "Name : text" under the channel's name; a message this device cannot open says so. */
function previewLine(app, found) {
  const m = app.messenger;
  const who = found.msg.sender_member === m.memberId ? t('channel.you') : m.memberName(found.msg.sender_member) || t('channel.someone');
  const text = found.msg.verified ? found.text : t('message.no_key');
  return h('span', { class: 'channel-preview', id: `preview-${found.msg.channel_id}` }, `${who} : ${text}`);
}

/**
 * Channels with news first (newest message on top), then by name.
 * @param {Map<string, Found | null>} previews
 */
function channelList(app, currentId, previews) {
  const m = app.messenger;
  const whenOf = (c) => previews.get(c.channel_id)?.when ?? (c.latest_seq > 0 ? 1 : 0);
  const channels = [...m.channels.values()].sort((a, b) => whenOf(b) - whenOf(a) || m.channelName(a).localeCompare(m.channelName(b)));
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
              {
                href: `#/c/${c.channel_id}`,
                class: 'channel-link',
                'aria-current': c.channel_id === currentId ? 'page' : null,
                // named by the channel alone: the preview is its description, not its name
                'aria-label': [m.channelName(c), kindLabel(c.kind), c.unread ? `${c.unread} ${t('channels.unread_word', { count: c.unread })}` : null].filter(Boolean).join(', '),
                'aria-describedby': previews.get(c.channel_id) ? `preview-${c.channel_id}` : null,
              },
              h('span', { class: 'channel-icon', 'aria-hidden': 'true' }, kindIcon(c.kind)),
              h('span', { class: 'channel-text' },
                h('span', { class: 'channel-name' }, m.channelName(c)),
                h('span', { class: 'visually-hidden' }, `, ${kindLabel(c.kind)}`),
                previews.get(c.channel_id) ? previewLine(app, previews.get(c.channel_id)) : null),
              previews.get(c.channel_id) ? shortWhen(previews.get(c.channel_id).when) : null,
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

/**
 * "Rechercher": the messages this device keeps whose text holds the words typed, newest
 * first, each a link to the message in its channel. Nothing is asked of the server.
 * @param {() => void} onChange the aside renders again (results in place of the channel list)
 */
function searchBox(app, onChange) {
  const input = h('input', { type: 'search', id: 'message-search', autocomplete: 'off', placeholder: t('search.placeholder') });
  let query = '';
  let timer = 0;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => {
      query = input.value.trim();
      onChange();
    }, SEARCH_DELAY_MS);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !input.value) return;
    input.value = '';
    query = '';
    onChange();
  });
  const form = h('form', { role: 'search', class: 'search-form', onSubmit: (e) => e.preventDefault() },
    h('label', { for: 'message-search', class: 'visually-hidden' }, t('search.label')), input);
  /** The messages searched, read (and their senders judged, 14.2) again only after the device's cache changed. */
  let kept = { writes: '', messages: /** @type {any[]} */ ([]) };
  const cached = async () => {
    const writes = `${app.store.writes}/${app.messenger.trust.version}`;
    if (kept.writes !== writes) kept = { writes, messages: await app.messenger.judgeCached(await app.store.allMessages()) };
    const now = Date.now() / 1000;
    return kept.messages.filter((msg) => !(msg.expires_at <= now));
  };
  const results = async () => {
    const found = searchMessages(await cached(), query);
    const m = app.messenger;
    const status = h('p', { class: 'search-status', role: 'status' }, found.length ? t('search.count', { count: found.length }) : t('search.none', { query }));
    return h('div', { class: 'search-results' }, status,
      found.length ? h('ul', { class: 'channel-list' }, found.map(({ msg, text, when }) => {
        const channel = m.channel(msg.channel_id);
        const who = msg.sender_member === m.memberId ? t('channel.you') : m.memberName(msg.sender_member) || t('channel.someone');
        return h('li', null, h('a', { href: `#/c/${msg.channel_id}/${msg.message_id}`, class: 'channel-link search-hit' },
          h('span', { class: 'channel-text' },
            h('span', { class: 'channel-name' }, channel ? m.channelName(channel) : t('search.unknown_channel')),
            h('span', { class: 'channel-preview' }, `${who} : ${text}`)),
          shortWhen(when)));
      })) : null);
  };
  return { form, searching: () => query.length >= MIN_QUERY, results };
}

export async function renderMessages(app, main, route) {
  const m = app.messenger;
  const channelId = route.name === 'channel' ? route.params.channelId : null;
  const aside = h('aside', { class: 'channels-pane', 'aria-labelledby': 'channels-title' });
  const pane = h('section', { class: 'channel-pane' });
  const layout = h('div', { class: ['messaging', channelId ? 'has-channel' : 'no-channel'] }, aside, pane);
  replace(main, layout);

  /** @type {Map<string, { version: string, found: Found | null }>} */
  const previewCache = new Map();
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
  // Renders overlap (a live update while the previews are judged): one that finishes after a
  // newer one painted is dropped, so an older one never puts back what a newer one changed, and
  // steady traffic still paints (each render that finishes first does).
  let renders = 0;
  let painted = 0;
  let toggled = false; // the form was opened or closed: focus goes to it, or back to its button
  const renderAside = async () => {
    const ticket = ++renders;
    const newButton = h(
      'button',
      { type: 'button', class: 'small new-channel-toggle', 'aria-expanded': creating ? 'true' : 'false', onClick: () => {
        creating = !creating;
        if (!creating) form = null;
        toggled = true;
        renderAside();
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
    // A follower (16.3): their town's public tribes only; no channel to create, no directory.
    // A guest (21) neither: they talk where they were added.
    const follower = app.isFollower();
    const leave = follower ? h('a', { class: 'button small', href: '#/device' }, t('follower.leave')) : null;
    const directs = directing ? await directList(app).catch((err) => h('p', { class: 'form-status' }, app.errorText(err))) : null;
    const found = search.searching() ? await search.results() : null;
    const previews = found ? null : await channelPreviews(app, previewCache).catch(() => new Map());
    if (ticket < painted) return;
    painted = ticket;
    // The kept forms stay in the page: moving a field out and back would blur it mid-typing.
    replaceKeeping(
      aside,
      h('div', { class: 'pane-head' }, h(channelId ? 'h2' : 'h1', { id: 'channels-title' }, t('channels.title')), notifyButton(app, renderAside), follower ? leave : app.isGuest() ? null : [newButton, directToggle]),
      search.form, // kept, like the creation form: typing goes on while messages arrive
      directs,
      creating ? creationForm() : null, // a live update re-renders the list, not the form
      found || channelList(app, channelId, previews || new Map()),
    );
    if (!toggled) return;
    toggled = false;
    /** @type {HTMLElement | null | undefined} */
    const next = creating ? form?.querySelector('input') : aside.querySelector('.new-channel-toggle');
    next?.focus();
  };
  const search = searchBox(app, () => renderAside());
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
  const view = await channelView(app, pane, channelId, route.params.messageId || null);
  // Events are forwarded once this returns: what the channel's start changed (its catch-up, its
  // kept messages judged again) shows in the list now.
  renderAside().catch(() => null);
  return {
    title: view.title,
    event(type, detail) {
      if (type === 'channels') renderAside();
      view.event(type, detail);
    },
    dispose: view.dispose,
  };
}
