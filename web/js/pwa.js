// @ts-check
// The installable app: registers the service worker (sw.js, scope /app/), and when a new version
// has installed and waits, says so ("Nouvelle version disponible"): it takes over on the next
// start, or now if the person reloads from the notice. A notification click (sw.js) opens its
// channel here.
import { h, replace } from './dom.js';
import { t } from './i18n.js';

/** @param {ServiceWorkerRegistration} registration */
function showUpdate(registration) {
  const notice = document.getElementById('update-notice');
  if (!notice || !registration.waiting || !navigator.serviceWorker.controller) return; // a first install is no update
  replace(
    notice,
    h('p', null, t('pwa.update_ready')),
    h('button', { type: 'button', class: 'small', onClick: () => registration.waiting?.postMessage({ type: 'skip-waiting' }) }, t('pwa.update_now')),
  );
  notice.hidden = false;
}

export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  const sw = navigator.serviceWorker;
  sw.addEventListener('message', (event) => {
    if (event.data?.type === 'open' && typeof event.data.hash === 'string' && event.data.hash.startsWith('#/')) location.hash = event.data.hash;
  });
  let reloading = false;
  const hadController = Boolean(sw.controller);
  sw.addEventListener('controllerchange', () => {
    // The waiting version took over (the person chose it): start again on it, once.
    if (hadController && !reloading) {
      reloading = true;
      location.reload();
    }
  });
  try {
    const registration = await sw.register('sw.js');
    showUpdate(registration);
    registration.addEventListener('updatefound', () => {
      const installing = registration.installing;
      installing?.addEventListener('statechange', () => {
        if (installing.state === 'installed') showUpdate(registration);
      });
    });
    return registration;
  } catch {
    return null; // e.g. a non-secure origin: the app still runs, online only
  }
}
