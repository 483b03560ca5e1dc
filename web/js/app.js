// @ts-check
// Bocage in the browser: boot, routes (#/...), the top bar, and the shared context views use.
import './theme.js'; // first: the page is painted in the chosen theme
import { setBadge, titleWithCount, unreadTotal } from './attention.js';
import { DeviceStore } from './db.js';
import { h, replace, focus } from './dom.js';
import { LANGUAGES, lang, setLang, t } from './i18n.js';
import { Messenger } from './messenger.js';
import { registerServiceWorker } from './pwa.js';
import { rememberChannelNames } from './push.js';
import { renderActivation } from './ui/activate.js';
import { membershipEventText, renderTrustNotices } from './ui/trust-notices.js';

const PURGE_EVERY = 60_000;
const PHONE = globalThis.matchMedia('(max-width: 760px)'); // style.css's phone layout

export const app = {
  store: null,
  device: null,
  messenger: null,
  route: { name: 'home', params: {} },
  view: null, // the current view's {event(type, detail), dispose()} hooks
  screenTitle: '', // the current view's title; the tab shows it after the unread count

  /** Where public calls (impact) go: this device's server, else the app's own origin. */
  server() {
    return this.device?.server || globalThis.location.origin;
  },

  isAdmin() {
    return ['owner', 'admin'].includes(this.messenger?.device.role || this.device?.role);
  },

  /** A public tribe's follower (docs/protocol.md, 16): their tribes, reactions, votes; no more. */
  isFollower() {
    return (this.messenger?.device.role || this.device?.role) === 'follower';
  },

  /** A guest (docs/protocol.md, 21): the channels they were added to; no directory, no new channel. */
  isGuest() {
    return (this.messenger?.device.role || this.device?.role) === 'guest';
  },

  navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },

  toast(message, kind = 'info') {
    const el = document.getElementById('toast');
    replace(el, message ? h('p', { class: `toast-body ${kind}`, onClick: () => replace(el) }, message) : null);
    clearTimeout(this.toastTimer);
    if (message) this.toastTimer = setTimeout(() => replace(el), kind === 'error' ? 9000 : 4000);
  },

  announce(message) {
    const el = document.getElementById('announcer');
    el.textContent = '';
    setTimeout(() => {
      el.textContent = message;
    }, 50);
  },

  errorText(err) {
    if (!err) return t('error.generic');
    if (err.status === 0) return t('error.network');
    const known = `error.${err.code}`;
    const text = t(known);
    if (text !== known) return text;
    if (err.status === 403) return t('error.forbidden');
    return err.detail || err.message || t('error.generic');
  },

  /** Start messaging for an activated device: the socket, the channels, the purge timer. */
  async startDevice(device) {
    this.device = device;
    if (this.messenger) this.messenger.stop();
    const messenger = new Messenger(this.store, device);
    this.messenger = messenger;
    await messenger.init();
    await messenger.loadCachedChannels(); // what the device knew: the app starts offline too
    for (const type of ['message', 'channels', 'roster', 'status', 'revoked', 'error', 'warnings', 'membership', 'outbox']) {
      messenger.addEventListener(type, (e) => onMessengerEvent(type, /** @type {CustomEvent} */ (e).detail));
    }
    messenger.addEventListener('call', (e) => {
      // Calls load on first use (a ring, or the call button): the first screen stays light.
      const frame = /** @type {CustomEvent} */ (e).detail;
      import('./call/call-ui.js').then((calls) => calls.onCallFrame(this, frame)).catch((err) => this.toast(this.errorText(err), 'error'));
    });
    messenger.loadChannels().catch(() => null);
    messenger.loadDirectory().catch(() => null);
    messenger.api.get('/me').then((me) => this.setOrgName(me.org.name)).catch(() => null); // renamed meanwhile?
    messenger.connect();
  },

  /** The organisation's name as this device shows it (an admin may rename it: PUT /org). */
  async setOrgName(name) {
    if (!this.device || !name || name === this.device.org_name) return;
    this.device = { ...this.device, org_name: name };
    if (this.messenger) this.messenger.device.org_name = name;
    await this.store.saveDevice(this.device);
    renderTopbar();
  },

  async forgetDevice() {
    if (this.messenger) this.messenger.stop();
    this.messenger = null;
    this.device = null;
    await this.store.wipe();
    this.store = await DeviceStore.open();
  },
};

function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const params = Object.fromEntries(new URLSearchParams(query));
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'activate') return { name: 'activate', params };
  if (parts[0] === 'join') return { name: 'join', params };
  if (parts[0] === 'c' && parts[1]) return { name: 'channel', params: { channelId: parts[1], messageId: parts[2] || null } };
  if (parts[0] === 'admin') return { name: 'admin', params: { section: parts[1] || null } };
  // A partner invitation's link (22.2) opens the console, the link's content in the accept form.
  // Its fragment holds the ticket's secret: it leaves the address bar and the history at once,
  // whoever opened it (a member, a browser still to activate), kept in memory for an admin.
  if (parts[0] === 'partner') {
    app.partnerLink = location.href;
    history.replaceState(null, '', `${location.pathname}${location.search}#/admin/partners`);
    return { name: 'admin', params: { section: 'partners' } };
  }
  if (parts[0] === 'card') return { name: 'card', params }; // a member's card for partners (22.6)
  if (parts[0] === 'impact') return { name: 'impact', params };
  if (parts[0] === 'device') return { name: 'device', params };
  if (parts[0] === 'verify' && parts[1]) return { name: 'verify', params: { memberId: parts[1] } };
  if (parts[0] === 'new') return { name: 'new-channel', params };
  return { name: 'home', params };
}

/**
 * The channels and conversations, loaded once a device exists: a first visit opens the
 * activation screen, and the service worker has the rest by the time it is needed.
 */
function messagesScreen() {
  return import('./ui/messages.js');
}

function onMessengerEvent(type, detail) {
  if (type === 'revoked') {
    app.announce(t('device.revoked'));
    renderTopbar();
    render();
    return;
  }
  if (type === 'status') renderTopbar();
  if (type === 'warnings') renderTrustNotices(app);
  if (type === 'membership') {
    // Someone else changed a channel's members: everyone in it is told, from the signed log.
    const name = app.messenger?.channelName(app.messenger.channel(detail.channelId)) || '';
    const others = detail.events.filter((e) => e.by_member !== app.messenger?.memberId);
    if (others.length) app.toast(others.map((e) => membershipEventText(app, name, e)).join(' '));
  }
  if (type === 'error' && detail) app.toast(app.errorText(detail), 'error');
  if (type === 'channels') {
    renderTopbar();
    if (app.messenger) rememberChannelNames(app.messenger).catch(() => null); // for the service worker's pushes
  }
  if (type === 'message') messagesScreen().then((m) => m.messagesEvent(app, type, detail), () => null);
  if (app.view?.event) app.view.event(type, detail);
}

function navLink(hash, label, current, short = null) {
  // On a phone a short label shows; the full one stays the link's accessible name.
  const text = short
    ? [h('span', { class: 'label-long' }, label), h('span', { class: 'label-short', 'aria-hidden': 'true' }, short)]
    : label;
  return h('a', { href: hash, class: 'nav-link', 'aria-current': current ? 'page' : null }, text);
}

export function renderTopbar() {
  const bar = document.getElementById('topbar');
  const route = app.route.name;
  const m = app.messenger;
  const unread = unreadTotal(m);
  document.title = titleWithCount(app.screenTitle, unread);
  setBadge(unread);
  const langSelect = h(
    'select',
    {
      id: 'lang-select',
      class: 'lang-select',
      onChange: async (e) => {
        await setLang(e.target.value);
        renderTopbar();
        render({ keepFocus: true });
        document.getElementById('lang-select')?.focus();
      },
    },
    // On a phone the closed menu shows the code (FR), so the bar keeps to one row.
    LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === lang(), lang: l.code, title: l.name }, PHONE.matches ? l.code.toUpperCase() : l.name)),
  );
  const links = [];
  if (app.device) {
    links.push(
      navLink(
        '#/',
        [t('nav.messages'), unread ? h('span', { class: 'badge count', 'aria-label': t('channels.unread', { count: unread }) }, String(unread)) : null],
        route === 'home' || route === 'channel' || route === 'new-channel',
      ),
    );
    if (app.isAdmin()) links.push(navLink('#/admin', t('nav.admin'), route === 'admin', t('nav.admin_short')));
  }
  links.push(navLink('#/impact', t('nav.impact'), route === 'impact'));
  if (app.device) links.push(navLink('#/device', t('nav.device'), route === 'device', t('nav.device_short')));
  const status = !app.device
    ? null
    : m?.replaced && !m.revoked
      ? h('button', { type: 'button', class: ['conn', 'offline'], title: t('status.replaced_hint'), onClick: () => m.resume() }, t('status.replaced'))
      : h(
          'span',
          { class: ['conn', m?.online ? 'online' : 'offline'], title: m?.online ? t('status.online_hint') : t('status.offline_hint') },
          m?.revoked ? t('status.revoked') : m?.online ? t('status.online') : t('status.offline'),
        );
  replace(
    bar,
    h(
      'div',
      { class: 'brand' },
      h('img', { src: 'icon.svg', alt: '', width: 28, height: 28 }),
      h('span', { class: 'brand-name' }, 'Bocage'),
      app.device ? h('span', { class: 'org-name' }, app.device.org_name || '') : null,
    ),
    h('nav', { 'aria-label': t('nav.label') }, h('ul', { class: 'nav' }, links.map((l) => h('li', null, l)))),
    h(
      'div',
      { class: 'topbar-tools' },
      status,
      h('label', { for: 'lang-select', class: 'visually-hidden' }, t('nav.language')),
      langSelect,
    ),
  );
  const skip = document.getElementById('skip-link');
  skip.textContent = t('nav.skip');
}

let rendering = 0;
export async function render({ keepFocus = false } = {}) {
  const ticket = ++rendering;
  const focusedBefore = document.activeElement;
  app.route = parseRoute();
  if (app.view?.dispose) app.view.dispose();
  app.view = null;
  renderTopbar();
  const main = document.getElementById('main');
  const route = app.route;
  const messaging = Boolean(app.device) && ['home', 'channel', 'new-channel'].includes(route.name);
  document.body.classList.toggle('fill', messaging);
  let view;
  // The screens a first visit does not open (the console, impact and its charts, the QR code
  // library) load on first use: the first load stays light; the service worker keeps them all.
  if (route.name === 'activate') {
    view = await renderActivation(app, main, route.params);
  } else if (route.name === 'join') {
    view = await (await import('./ui/join.js')).renderJoin(app, main, route.params);
  } else if (route.name === 'impact') {
    view = await (await import('./ui/impact.js')).renderImpact(app, main);
  } else if (!app.device) {
    view = await renderActivation(app, main, {});
  } else if (app.messenger?.revoked && route.name !== 'device') {
    view = renderRevoked(main);
  } else if (route.name === 'admin') {
    view = await (await import('./ui/admin.js')).renderAdmin(app, main, route.params);
  } else if (route.name === 'device') {
    view = await (await import('./ui/device.js')).renderDevice(app, main);
  } else if (route.name === 'card') {
    view = await (await import('./ui/card.js')).renderCard(app, main, route.params);
  } else if (route.name === 'verify') {
    view = await (await import('./ui/verify.js')).renderVerify(app, main, route.params);
  } else {
    view = await (await messagesScreen()).renderMessages(app, main, route);
  }
  if (ticket !== rendering) {
    view?.dispose?.();
    return;
  }
  app.view = view || null;
  if (!keepFocus) window.scrollTo(0, 0); // a new screen starts at its top, wherever the last one was
  renderTrustNotices(app);
  // Focus goes to the new screen, unless the person already moved it there while it loaded.
  const active = document.activeElement;
  const moved = active && active !== focusedBefore && active !== document.body && active !== main && active.isConnected;
  if (!keepFocus && !moved) focus(main.querySelector('[data-autofocus]') || main.querySelector('h1') || main);
  app.screenTitle = view?.title || '';
  document.title = titleWithCount(app.screenTitle, unreadTotal(app.messenger));
}

function renderRevoked(main) {
  replace(
    main,
    h('section', { class: 'card narrow', 'aria-labelledby': 'revoked-title' },
      h('h1', { id: 'revoked-title' }, t('device.revoked_title')),
      h('p', null, t('device.revoked')),
      h('p', null, t('device.revoked_next')),
      h('p', { class: 'actions' }, h('a', { class: 'button primary', href: '#/device' }, t('device.revoked_forget')))),
  );
  return { title: t('device.revoked_title') };
}

async function boot() {
  await setLang(lang()).catch(() => null); // French stands if the other dictionary cannot load
  document.getElementById('skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    focus(document.getElementById('main'));
  });
  if (!globalThis.nacl) {
    replace(document.getElementById('main'), h('p', { class: 'notice error' }, t('error.no_nacl')));
    return;
  }
  try {
    app.store = await DeviceStore.open();
  } catch {
    replace(document.getElementById('main'), h('p', { class: 'notice error' }, t('error.no_storage')));
    return;
  }
  registerServiceWorker();
  const device = await app.store.device();
  if (device) await app.startDevice(device);
  await app.store.purgeExpired().catch(() => 0);
  setInterval(async () => {
    const gone = await app.store.purgeExpired().catch(() => 0);
    if (gone && app.view?.event) app.view.event('purged', gone);
  }, PURGE_EVERY);
  window.addEventListener('hashchange', () => render());
  PHONE.addEventListener('change', () => renderTopbar());
  window.addEventListener('online', () => app.messenger?.connect());
  // A tab whose connection a newer one replaced (docs/protocol.md, 9) reconnects when the user returns to it.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') app.messenger?.resume();
  });
  await render();
}

boot();
