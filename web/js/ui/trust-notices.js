// @ts-check
// What the trust checks refused, shown where it cannot be missed (docs/protocol.md, section 15):
// a notice above every screen listing the warnings in the reader's language, and, when a member
// this person verified has a new identity key, a modal dialog that must be answered.
import { h, replace } from '../dom.js';
import { t } from '../i18n.js';

const SHOWN = 3;

/** The notice's container, just above the main area (created once). */
function container() {
  let el = document.getElementById('trust-notices');
  if (!el) {
    el = h('section', { id: 'trust-notices', class: 'trust-notices', 'aria-live': 'polite', 'aria-label': t('trust.title') });
    document.getElementById('main').before(el);
  }
  return el;
}

function nameOf(app, memberId) {
  return (memberId && app.messenger?.memberName(memberId)) || t('trust.someone');
}

/** A verified membership-log entry in words: "X a rejoint « C », ajouté par Y". */
export function membershipEventText(app, channelName, e) {
  const vars = { name: nameOf(app, e.member_id), by: nameOf(app, e.by_member), channel: channelName, role: t(`channel.event_role_${e.role}`) };
  const key = e.op === 'add' && e.by_member === e.member_id ? 'add_self' : e.op;
  return t(`channel.event_${key}`, vars);
}

export function warningText(app, w) {
  const key = `trust.warning.${w.code}`;
  const text = t(key, { name: nameOf(app, w.member_id) });
  return text === key ? w.message : text;
}

/** Render the current warnings (none: the notice disappears). */
export function renderTrustNotices(app) {
  const el = container();
  const warnings = app.messenger ? [...app.messenger.trust.warnings.values()] : [];
  if (!warnings.length) {
    replace(el);
    el.hidden = true;
    return;
  }
  el.hidden = false;
  const items = warnings.slice(0, SHOWN).map((w) =>
    h('li', { class: 'trust-warning', 'data-code': w.code },
      h('span', null, warningText(app, w)),
      w.member_id && w.member_id !== app.messenger.memberId
        ? [' ', h('a', { href: `#/verify/${w.member_id}` }, t('trust.verify_link', { name: nameOf(app, w.member_id) }))]
        : null,
      ' ',
      h('button', { type: 'button', class: 'small', onClick: () => app.messenger.trust.dismiss(w) }, t('trust.dismiss'))));
  const more = warnings.length - SHOWN;
  replace(el,
    h('div', { class: 'notice warning', role: 'alert' },
      h('h2', { class: 'notice-title' }, '⚠ ', t('trust.title')),
      h('ul', null, items),
      more > 0 ? h('p', null, t('trust.more', { count: more })) : null));
  const blocking = warnings.find((w) => w.code === 'identity_changed' && w.verified);
  if (blocking) showBlocking(app, blocking);
}

/** A verified member's key changed: a modal dialog, answered before anything else. */
function showBlocking(app, w) {
  const id = `blocking-${w.member_id}`;
  if (document.getElementById(id) || app.acknowledged?.has(id)) return;
  const name = nameOf(app, w.member_id);
  const close = (go) => {
    dialog.close();
    dialog.remove();
    app.acknowledged = app.acknowledged || new Set();
    app.acknowledged.add(id);
    if (go) app.navigate(`#/verify/${w.member_id}`);
  };
  const dialog = /** @type {HTMLDialogElement} */ (
    h('dialog', { id, class: 'blocking-warning', role: 'alertdialog', 'aria-labelledby': `${id}-title`, 'aria-describedby': `${id}-body` },
      h('h2', { id: `${id}-title` }, '⚠ ', t('trust.blocking_title', { name })),
      h('p', { id: `${id}-body` }, t('trust.blocking_body', { name })),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onClick: () => close(true) }, t('trust.blocking_verify')),
        h('button', { type: 'button', onClick: () => close(false) }, t('trust.blocking_later'))))
  );
  dialog.addEventListener('cancel', (e) => e.preventDefault()); // Escape does not dismiss it
  document.body.append(dialog);
  dialog.showModal();
}
