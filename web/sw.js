// @ts-check
/// <reference lib="webworker" />
// The service worker: the app shell (every file under /app/, its pinned vendor files included)
// precached at install, so the app starts without a network and reads its messages from
// IndexedDB. A new version (any file changed: the server stamps BUILD below, as does
// `make web-dist`) installs beside the running one and waits: it takes over on the next start,
// or at once when the person accepts the page's "Nouvelle version disponible" notice. The API and
// the WebSocket are never cached: only GETs of the shell's own files are answered here.

const BUILD = { version: 'dev', files: [] };
const CACHE = `bocage-shell-${BUILD.version}`;
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

sw.addEventListener('install', (event) => {
  // 'no-cache': each file revalidated (a 304 is cheap), never a stale copy under a new version.
  const requests = BUILD.files.map((file) => new Request(file, { cache: 'no-cache' }));
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(requests)));
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name.startsWith('bocage-shell-') && name !== CACHE) await caches.delete(name);
      await sw.clients.claim(); // the first install controls the page already open
    })(),
  );
});

sw.addEventListener('message', (event) => {
  if (event.data?.type === 'skip-waiting') sw.skipWaiting();
});

/** The shell file a GET asks for, as its precache key; null for anything else (API, WebSocket). */
function shellKey(request) {
  const url = new URL(request.url);
  const scope = new URL(sw.registration.scope);
  if (request.method !== 'GET' || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return null;
  if (request.mode === 'navigate') return 'index.html'; // the app's routes live in the fragment
  const relative = url.pathname.slice(scope.pathname.length);
  return BUILD.files.includes(relative) ? relative : null;
}

sw.addEventListener('fetch', (event) => {
  const key = shellKey(event.request);
  if (!key) return;
  event.respondWith(
    (async () => {
      const cached = await caches.match(key, { cacheName: CACHE });
      return cached || fetch(event.request);
    })(),
  );
});

// A click on a notification (the page's or a push's "Nouveau message dans <channel>", tag
// channel:<id>, data.channelId) opens that channel: in the app's window if one is open, else a new one.
sw.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const channelId = event.notification.data?.channelId;
  const hash = channelId ? `#/c/${encodeURIComponent(channelId)}` : '#/';
  event.waitUntil(
    (async () => {
      const windows = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
      if (windows.length) {
        windows[0].postMessage({ type: 'open', hash });
        await windows[0].focus();
      } else {
        await sw.clients.openWindow(new URL(`./${hash}`, sw.registration.scope).href);
      }
    })(),
  );
});

// Web Push (docs/protocol.md, "Web Push"): the push service hands over a payload sealed for this
// device, which the browser has already opened: a channel id, nothing else. The notification
// names the channel as this device knows it (push.js keeps the names and the title in the
// person's language in IndexedDB), never anything the server wrote: no text, no sender.

/** The page's push preferences (push.js), read from the app's IndexedDB; null if none yet. */
function pushPrefs() {
  return new Promise((resolve) => {
    const open = indexedDB.open('bocage');
    open.onerror = () => resolve(null);
    open.onsuccess = () => {
      const db = open.result;
      try {
        const get = db.transaction('kv').objectStore('kv').get('push');
        get.onsuccess = () => resolve(get.result || null);
        get.onerror = () => resolve(null);
      } catch {
        resolve(null); // no store yet: a push before the app ever ran
      } finally {
        db.close();
      }
    };
  });
}

/** The channel id a push names, or null for anything else (an unreadable or foreign payload). */
function pushedChannel(data) {
  try {
    const payload = data?.json();
    return typeof payload?.channel_id === 'string' && payload.channel_id.length <= 64 ? payload.channel_id : null;
  } catch {
    return null;
  }
}

sw.addEventListener('push', (event) => {
  event.waitUntil(
    (async () => {
      const channelId = pushedChannel(event.data);
      const prefs = await pushPrefs();
      const name = channelId && prefs?.names?.[channelId];
      const title = name && prefs?.title ? prefs.title.replace('{channel}', name) : prefs?.fallback || 'Nouveau message';
      await sw.registration.showNotification(title, {
        tag: channelId ? `channel:${channelId}` : 'bocage',
        icon: 'icons/icon-192.png',
        badge: 'icons/icon-192.png',
        data: channelId ? { channelId } : {},
      });
    })(),
  );
});
