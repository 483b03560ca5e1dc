// @ts-check
// What draws a person back to the app: the unread count in the tab title ("(3) Bocage") and on the
// installed app's icon (Badging API where the browser has it), and a notification from the page
// when it is hidden and a message arrives. The notification names the channel, never the sender
// nor the text: it may show on a locked phone's screen. Web Push (the page closed) is not here:
// the service worker's notificationclick already opens the channel for both.
import { t } from './i18n.js';

/**
 * Whether a message (opened now, or kept and judged again) is news to its reader: opened, or
 * waiting for its sender's key (a retry may open it); one whose sender is refused (14.2, 15) or
 * that did not verify never is, neither as an unread message nor as a notification.
 * @param {{verified?: boolean, error?: string|null}} m
 */
export function isNews(m) {
  return Boolean(m.verified) || m.error === 'no_key';
}

/** Unread messages over every channel the messenger holds. */
export function unreadTotal(messenger) {
  return messenger ? [...messenger.channels.values()].reduce((n, c) => n + (c.unread || 0), 0) : 0;
}

/** The tab title for a screen title, with the unread count first when there is one. */
export function titleWithCount(screenTitle, unread) {
  const base = screenTitle ? `${screenTitle} · Bocage` : 'Bocage';
  return unread > 0 ? `(${unread}) ${base}` : base;
}

/** The app icon's badge; browsers without the Badging API (or refusing it) just keep none. */
export function setBadge(unread) {
  const nav = /** @type {any} */ (globalThis.navigator);
  if (!nav?.setAppBadge) return;
  const done = unread > 0 ? nav.setAppBadge(unread) : nav.clearAppBadge();
  done?.catch?.(() => null);
}

/** Whether asking for notification permission makes sense: supported and not yet answered. */
export function mayAskPermission() {
  return 'Notification' in globalThis && Notification.permission === 'default';
}

/** Ask on the person's click (browsers ignore or penalise asking without one). */
export async function askPermission() {
  if (!('Notification' in globalThis)) return 'denied';
  return Notification.requestPermission();
}

/** The notification for a new message in a channel: its name only, one per channel (tag). */
export function notificationFor(channelName, channelId) {
  return {
    title: t('live.new_in', { channel: channelName }),
    options: { tag: `channel:${channelId}`, icon: 'icons/icon-192.png', badge: 'icons/icon-192.png', data: { channelId } },
  };
}

/**
 * Notify of someone else's message when the page is hidden and the permission granted: through
 * the service worker when there is one (the only way on Android), else from the page.
 */
export async function notifyHidden(channelName, channelId) {
  if (document.visibilityState !== 'hidden' || !('Notification' in globalThis) || Notification.permission !== 'granted') return false;
  const { title, options } = notificationFor(channelName, channelId);
  const registration = await navigator.serviceWorker?.getRegistration().catch(() => null);
  if (registration) {
    await registration.showNotification(title, options);
  } else {
    const shown = new Notification(title, options);
    shown.onclick = () => {
      globalThis.focus();
      location.hash = `#/c/${encodeURIComponent(channelId)}`;
    };
  }
  return true;
}
