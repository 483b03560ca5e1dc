// @ts-check
// A member's standing on this device, as a badge (the members lists show it): apart from the
// verification screen (verify.js), which loads with its QR code library only when opened.
import { h } from '../dom.js';
import { t } from '../i18n.js';

/** The member's standing, as a badge: verified, key changed, vouched only, or certified. */
export function badge(m, memberId) {
  const safety = m.trust.safety(memberId);
  if (!safety) return null;
  if (safety.changed) return h('span', { class: 'trust-badge changed' }, '⚠ ', t('verify.changed'));
  if (safety.verified) return h('span', { class: 'trust-badge verified' }, '✔ ', t('verify.verified'));
  if (safety.vouched_only) return h('span', { class: 'trust-badge vouched' }, t('verify.vouched'));
  return h('span', { class: 'trust-badge' }, t('verify.not_verified'));
}
