// @ts-check
// This device: who it is, linking another device (a QR code), forgetting this one.
import { h, replace, focus, field } from '../dom.js';
import { formatDate, t } from '../i18n.js';
import { chooseTheme, chosenTheme, THEMES } from '../theme.js';
import { showInvitation } from './admin.js';
import { disablePush, enablePush, pushPrefs, pushSupported } from '../push.js';

const PUSH_OUTCOMES = { on: 'push.on', denied: 'push.denied', unavailable: 'push.unavailable' };

/** The opt-in for Web Push: a clear button, what it does, and where it stands on this device. */
async function renderPush(app, section) {
  const m = app.messenger;
  const status = h('p', { class: 'push-status', role: 'status' });
  const button = h('button', { type: 'button', class: 'primary' });
  const show = async (key = null) => {
    const { enabled } = await pushPrefs(m.store);
    status.textContent = t(key || (enabled ? 'push.on' : 'push.off'));
    button.textContent = t(enabled ? 'push.disable' : 'push.enable');
    button.className = enabled ? '' : 'primary';
    button.onclick = async () => {
      button.disabled = true;
      try {
        if (enabled) {
          await disablePush(m);
          await show();
        } else {
          await show(PUSH_OUTCOMES[await enablePush(m)]);
        }
      } catch (err) {
        status.textContent = t('push.failed', { error: err?.message || String(err) });
      } finally {
        button.disabled = false;
      }
    };
  };
  replace(
    section,
    h('h2', { id: 'device-push' }, t('push.title')),
    h('p', null, t('push.lead')),
    pushSupported() ? h('div', { class: 'actions' }, button) : null,
    status,
  );
  if (pushSupported()) await show();
  else status.textContent = t('push.unsupported');
}

export async function renderDevice(app, main) {
  const d = app.messenger?.device || app.device;
  const linkResult = h('div', { class: 'invite-result' });
  const revoked = app.messenger?.revoked;
  const forget = h('div', { class: 'confirmable' });
  const askForget = () => replace(forget, h('button', { type: 'button', class: 'danger-outline', onClick: () => {
    replace(forget, h('p', null, t('device.forget_confirm_text')),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'danger', onClick: async () => {
          await app.forgetDevice();
          app.toast(t('device.forgotten'));
          app.navigate('#/');
        } }, t('device.forget_yes')),
        h('button', { type: 'button', onClick: () => {
          askForget();
          forget.querySelector('button').focus();
        } }, t('common.cancel'))));
    /** @type {HTMLElement} */ (forget.querySelector('.danger')).focus();
  } }, t('device.forget')));
  askForget();
  const follower = d.role === 'follower';
  const push = h('section', { class: 'card', 'aria-labelledby': 'device-push' });
  replace(
    main,
    h('div', { class: 'page' },
      h('h1', null, t('device.title')),
      revoked ? h('p', { class: 'notice error' }, t('device.revoked')) : null,
      h('section', { class: 'card', 'aria-labelledby': 'device-who' },
        h('h2', { id: 'device-who' }, t('device.identity')),
        h('dl', { class: 'facts' },
          h('dt', null, t('device.name')), h('dd', null, d.display_name),
          h('dt', null, t('device.org')), h('dd', null, d.org_name),
          h('dt', null, t('device.role')), h('dd', null, t(`role.${d.role}`)),
          h('dt', null, t('device.device')), h('dd', null, d.device_name || '—', ' ', h('code', null, d.device_id)),
          h('dt', null, t('device.activated')), h('dd', null, d.activated_at ? formatDate(d.activated_at) : '—'),
          h('dt', null, t('device.server')), h('dd', null, h('code', null, d.server))),
        h('p', { class: 'hint' }, t('device.keys_note'))),
      revoked || follower ? null : h('section', { class: 'card', 'aria-labelledby': 'device-link' },
        h('h2', { id: 'device-link' }, t('device.link_title')),
        h('p', null, t('device.link_lead')),
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onClick: async () => {
          try {
            const invitation = await app.messenger.linkDevice();
            showInvitation(app, linkResult, invitation, null);
            focus(linkResult.querySelector('h3'));
          } catch (err) {
            app.toast(app.errorText(err), 'error');
          }
        } }, t('device.link_button'))),
        linkResult),
      revoked || follower || d.role === 'guest' ? null : h('section', { class: 'card', 'aria-labelledby': 'device-card' },
        h('h2', { id: 'device-card' }, t('card.title')),
        h('p', null, t('card.device_lead')),
        h('div', { class: 'actions' }, h('a', { class: 'button', href: '#/card' }, t('card.open')))),
      revoked ? null : push,
      displaySettings(),
      follower && !revoked ? leaveSection(app) : h('section', { class: 'card', 'aria-labelledby': 'device-forget' },
        h('h2', { id: 'device-forget' }, t('device.forget_title')),
        h('p', null, t('device.forget_lead')),
        forget)),
  );
  if (!revoked && app.messenger) await renderPush(app, push);
  return { title: t('device.title') };
}

/** "Affichage": light, dark, or as the device is set (kept on this device only). */
function displaySettings() {
  const current = chosenTheme();
  const select = h('select', { onChange: (/** @type {Event} */ e) => chooseTheme(/** @type {any} */ (e.target).value) },
    THEMES.map((x) => h('option', { value: x, selected: x === current }, t(`theme.${x}`))));
  return h('section', { class: 'card', 'aria-labelledby': 'device-display' },
    h('h2', { id: 'device-display' }, t('device.display_title')),
    field(t('theme.label'), select));
}

/**
 * "Quitter" for a public tribe's follower (docs/protocol.md, 16.3): the server deletes the
 * follower, their device and the keys sealed to it; then this browser forgets everything.
 */
function leaveSection(app) {
  const box = h('div', { class: 'confirmable' });
  const ask = () =>
    replace(box, h('button', { type: 'button', class: 'danger-outline', onClick: () => {
      replace(box, h('p', null, t('follower.leave_confirm')),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'danger', onClick: async () => {
            try {
              await app.messenger.leaveAsFollower();
            } catch (err) {
              app.toast(app.errorText(err), 'error');
              return;
            }
            await app.forgetDevice();
            app.toast(t('follower.left'));
            app.navigate('#/');
          } }, t('follower.leave_yes')),
          h('button', { type: 'button', onClick: () => ask() }, t('common.cancel'))));
      /** @type {HTMLElement} */ (box.querySelector('.danger')).focus();
    } }, t('follower.leave')));
  ask();
  return h('section', { class: 'card', 'aria-labelledby': 'follower-leave' },
    h('h2', { id: 'follower-leave' }, t('follower.leave_title')),
    h('p', null, t('follower.leave_lead')),
    box);
}
