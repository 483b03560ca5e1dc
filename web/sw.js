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

// A click on a notification (the page's "Nouveau message dans <channel>", tag channel:<id>,
// data.channelId) opens that channel: in the app's window if one is open, else a new one. This is
// the hook Web Push will use too: its 'push' listener opens the payload on the device and shows
// the same notification (attention.js: notificationFor) through sw.registration.showNotification.
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
