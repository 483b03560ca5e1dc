// @ts-check
// Web Push on this device (docs/protocol.md, "Web Push"): the person opts in ("Recevoir les
// notifications"), the browser subscribes with the server's VAPID key, and the device registers
// its subscription with the server, with the channels it muted. What the service worker needs to
// show a push without asking the server anything (sw.js) is kept in IndexedDB under 'push': the
// notification's title in the person's language and the channels' names as this device shows
// them. The push itself carries a channel id only, sealed for this device.
import { t } from './i18n.js';

/** @typedef {{enabled: boolean, muted: string[], mentionsOnly: string[], title: string, fallback: string, names: Record<string, string>}} PushPrefs */

const KEY = 'push';

/** Whether this browser can receive Web Push at all (a secure origin, a service worker). */
export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in globalThis && 'Notification' in globalThis;
}

/** @returns {Promise<PushPrefs>} */
export async function pushPrefs(store) {
  const saved = await store.get(KEY).catch(() => null);
  return { enabled: false, muted: [], mentionsOnly: [], title: '', fallback: '', names: {}, ...(saved || {}) };
}

/** The channels' names as this device shows them, for the service worker's notification. */
function namesOf(messenger) {
  return Object.fromEntries([...messenger.channels.values()].map((c) => [c.channel_id, messenger.channelName(c)]));
}

async function save(messenger, prefs) {
  /** @type {PushPrefs} */
  const kept = {
    ...prefs,
    title: t('live.new_in', { channel: '{channel}' }),
    fallback: t('push.fallback_title'),
    names: namesOf(messenger),
  };
  await messenger.store.put(KEY, kept);
  return kept;
}

function base64urlToBytes(text) {
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

/** Register (again) this device's subscription with the channels it muted. */
async function register(messenger, subscription, muted) {
  const json = subscription.toJSON();
  await messenger.api.request('PUT', `/devices/${messenger.deviceId}/push`, {
    body: { endpoint: json.endpoint, keys: json.keys, muted },
  });
}

/**
 * The opt-in, on the person's click: permission, subscription, registration. Returns 'on',
 * 'denied' (permission refused), 'unavailable' (this server sends no pushes) or throws.
 */
export async function enablePush(messenger) {
  const { public_key: publicKey } = await messenger.api.get('/push');
  if (!publicKey) return 'unavailable';
  if ((await Notification.requestPermission()) !== 'granted') return 'denied';
  const registration = await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true, // every push shows a notification: the browsers require it
    applicationServerKey: base64urlToBytes(publicKey),
  });
  const prefs = await pushPrefs(messenger.store);
  await register(messenger, subscription, prefs.muted);
  await save(messenger, { ...prefs, enabled: true });
  return 'on';
}

/** Stop pushes to this device: the browser's subscription and the server's copy both go. */
export async function disablePush(messenger) {
  const registration = await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.getSubscription();
  await subscription?.unsubscribe();
  await messenger.api.request('DELETE', `/devices/${messenger.deviceId}/push`);
  await save(messenger, { ...(await pushPrefs(messenger.store)), enabled: false });
}

/** Mute or unmute one channel; the server learns the new list when pushes are on. */
export async function setMuted(messenger, channelId, muted) {
  const prefs = await pushPrefs(messenger.store);
  const list = prefs.muted.filter((id) => id !== channelId).concat(muted ? [channelId] : []);
  if (prefs.enabled) {
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.getSubscription();
    if (subscription) await register(messenger, subscription, list);
  }
  return save(messenger, { ...prefs, muted: list });
}

/**
 * "@mention me only" in one channel, or every message again: this member's choice, signed and
 * posted (docs/protocol.md, section 17); the server then wakes this member's devices there only
 * for a message whose sender names them. Kept here too, to show the choice.
 */
export async function setMentionsOnly(messenger, channelId, mentionsOnly) {
  await messenger.setMentionsOnly(channelId, mentionsOnly);
  return keepMentionsOnly(messenger, channelId, mentionsOnly);
}

/**
 * This member's own choice as the server serves it, verified (it may have been made on another
 * device): kept here and returned; the prefs as they were when it cannot be read.
 */
export async function refreshMentionsOnly(messenger, channelId) {
  try {
    const quiet = await messenger.mentionsOnlyMembers(channelId);
    return keepMentionsOnly(messenger, channelId, quiet.has(messenger.device.member_id));
  } catch (err) {
    console.warn('notify: this member\'s choice could not be read', err);
    return pushPrefs(messenger.store);
  }
}

async function keepMentionsOnly(messenger, channelId, mentionsOnly) {
  const prefs = await pushPrefs(messenger.store);
  const list = prefs.mentionsOnly.filter((id) => id !== channelId).concat(mentionsOnly ? [channelId] : []);
  return save(messenger, { ...prefs, mentionsOnly: list });
}

/** Keep the names the service worker shows in step with the channel list (after each load). */
export async function rememberChannelNames(messenger) {
  const prefs = await pushPrefs(messenger.store);
  if (prefs.enabled) await save(messenger, prefs);
}
