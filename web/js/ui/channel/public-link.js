// @ts-check
// A tribe made public (docs/protocol.md, 16): for its managers, the join link citizens scan from
// a poster, its QR code, how many follow the tribe, and revoking the link. The link's secret half
// is made and kept on this device; the server never has it.
import { h, field, replace } from '../../dom.js';
import { formatDate, t } from '../../i18n.js';
import { qrSvg } from '../../qr.js';
import { posterPdf, posterSvg } from '../../poster.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */

/**
 * @param {ChannelContext} ctx
 * @returns {HTMLElement}
 */
export function publicLinkSection(ctx) {
  const box = h('section', { class: 'public-link stack', 'aria-labelledby': 'public-link-title' });
  const show = async () => {
    try {
      render(ctx, box, await ctx.m.joinLink(ctx.channelId), show);
    } catch (err) {
      replace(box, title(), h('p', { class: 'form-status' }, ctx.app.errorText(err)));
    }
  };
  replace(box, title(), h('p', null, t('common.loading')));
  show();
  return box;
}

const title = () => h('h3', { id: 'public-link-title', tabindex: '-1' }, t('public.title'));

/**
 * @param {ChannelContext} ctx
 * @param {HTMLElement} box
 * @param {any} status the link's status, null when the tribe is not public
 * @param {() => Promise<void>} again
 */
function render(ctx, box, status, again) {
  const act = (/** @type {() => Promise<unknown>} */ work, /** @type {string} */ done) => async () => {
    try {
      await work();
      ctx.app.toast(done);
      await again();
      /** @type {HTMLElement | null} */ (box.querySelector('h3'))?.focus();
    } catch (err) {
      ctx.app.toast(ctx.app.errorText(err), 'error');
    }
  };
  const publish = h('button', { type: 'button', class: status && !status.revoked ? 'small' : 'small primary', onClick: act(() => ctx.m.publishTribe(ctx.channelId), t('public.published')) },
    status && !status.revoked ? t('public.replace') : t('public.publish'));
  if (!status || status.revoked) {
    replace(box, title(), h('p', null, t(status ? 'public.revoked_lead' : 'public.lead')), status ? followers(status) : null, h('div', { class: 'actions' }, publish));
    return;
  }
  const revoke = h('button', { type: 'button', class: 'small danger-outline', onClick: act(() => ctx.m.revokeJoinLink(ctx.channelId), t('public.revoked')) }, t('public.revoke'));
  replace(box, title(),
    followers(status),
    h('p', { class: 'hint' }, t('public.valid_until', { date: formatDate(status.expires_at) })),
    status.join_url ? linkView(ctx, status.join_url) : h('p', null, t('public.elsewhere')),
    h('div', { class: 'actions' }, publish, revoke),
    historyChoice(ctx));
}

const HISTORY_CHOICES = [0, 1, 3, 7, 14, 30];

/**
 * How many recent days new followers read (section 23): the choice this device verified, and a
 * manager's change, signed here; the authors' devices verify it before sharing anything older.
 * @param {ChannelContext} ctx
 */
function historyChoice(ctx) {
  const status = h('p', { class: 'form-status', role: 'status' });
  const select = h('select', { id: 'recent-history', disabled: true, onChange: async () => {
    select.disabled = true;
    try {
      const days = await ctx.m.setRecentHistory(ctx.channelId, Number(select.value));
      select.value = String(days);
      ctx.app.toast(t('public.history_set'));
    } catch (err) {
      status.textContent = ctx.app.errorText(err);
    } finally {
      select.disabled = false;
    }
  } }, HISTORY_CHOICES.map((days) => h('option', { value: String(days) }, days ? t('public.history_days', { count: days }) : t('public.history_none'))));
  ctx.m.recentHistoryDays(ctx.channelId).then(
    (days) => {
      select.value = String(days);
      select.disabled = false;
    },
    (err) => {
      status.textContent = ctx.app.errorText(err);
    },
  );
  return h('div', { class: 'stack' }, field(t('public.history_label'), select), h('p', { class: 'hint' }, t('public.history_hint')), status);
}

/** @param {any} status */
function followers(status) {
  return h('p', { class: 'public-followers' }, t('public.followers', { count: status.followers }));
}

/**
 * The link, its QR code, the A4 poster as PDF (to print as is) and as SVG (to edit), and the QR
 * code alone as an SVG file.
 * @param {ChannelContext} ctx
 * @param {string} url
 */
function linkView(ctx, url) {
  const name = ctx.m.channelName(ctx.channel());
  const code = qrSvg(url, t('public.qr_label', { channel: name }));
  const file = new Blob([new XMLSerializer().serializeToString(code)], { type: 'image/svg+xml' });
  const download = h('a', { class: 'button small', href: URL.createObjectURL(file), download: `${name} - QR.svg` }, t('public.download_qr'));
  const orgName = ctx.app.device.org_name || '';
  const pdf = new Blob([posterPdf(orgName, name, url)], { type: 'application/pdf' });
  const printPdf = h('a', { class: 'button small', href: URL.createObjectURL(pdf), download: `${name} - affiche A4.pdf` }, t('public.download_poster_pdf'));
  const poster = new Blob([posterSvg(orgName, name, url)], { type: 'image/svg+xml' });
  const print = h('a', { class: 'button small', href: URL.createObjectURL(poster), download: `${name} - affiche A4.svg` }, t('public.download_poster'));
  const link = h('input', { type: 'text', readOnly: true, value: url, class: 'mono', id: 'join-url' });
  return h('div', { class: 'invitation-grid' },
    h('div', { class: 'qr-box' }, code),
    h('div', { class: 'stack' },
      h('p', null, t('public.scan')),
      field(t('public.link'), link),
      h('div', { class: 'actions' }, printPdf, print, download)));
}
