// @ts-check
// A member's contact card for partners (docs/protocol.md, 22.6): there is no directory across
// organisations, so a member of B hands this link (or its QR code) to A's group manager, whose
// device checks it against the server's listing of that one member before adding them.
// `#/card`: my card; `#/card?org=&member=&name=&fp=`: a partner's card opened, "add to which group?".
import { h, field, replace } from '../dom.js';
import { t } from '../i18n.js';

/** The app's own address, which the card's link opens (`…/app`). */
function appUrl() {
  return `${location.origin}${location.pathname.replace(/\/+$/, '')}`;
}

export async function renderCard(app, main, params) {
  return params.member ? renderOpened(app, main, params) : renderMine(app, main);
}

async function renderMine(app, main) {
  const body = h('div', { class: 'stack' }, h('p', null, t('common.loading')));
  replace(main, h('div', { class: 'page' },
    h('h1', null, t('card.title')),
    h('section', { class: 'card stack', 'aria-labelledby': 'card-lead' },
      h('p', { id: 'card-lead' }, t('card.lead')),
      body)));
  try {
    const card = await app.messenger.myCard(appUrl());
    const { qrSvg } = await import('../qr.js'); // the QR library loads on first use
    const link = h('input', { type: 'text', readOnly: true, value: card.url, class: 'mono', id: 'card-url' });
    const copy = h('button', { type: 'button', class: 'small', onClick: async () => {
      await navigator.clipboard.writeText(card.url).then(() => app.toast(t('card.copied')), () => link.select());
    } }, t('card.copy'));
    replace(body, h('div', { class: 'invitation-grid' },
      h('div', { class: 'qr-box' }, qrSvg(card.url, t('card.qr_label', { name: card.name }))),
      h('div', { class: 'stack' },
        field(t('card.link'), link),
        h('div', { class: 'actions' }, copy),
        h('p', { class: 'hint' }, t('card.fingerprint'), ' ', h('code', null, card.fingerprint)))));
  } catch (err) {
    replace(body, h('p', { class: 'form-status' }, app.errorText(err)));
  }
  return { title: t('card.title') };
}

/** A partner's card opened in the app: checked first, then "add to which group?". */
async function renderOpened(app, main, params) {
  const m = app.messenger;
  const text = location.href;
  const status = h('p', { class: 'form-status', role: 'alert' });
  const body = h('div', { class: 'stack' }, h('p', null, t('card.checking', { name: params.name || params.member })));
  replace(main, h('div', { class: 'page' },
    h('h1', null, t('card.add_title')),
    h('section', { class: 'card stack' }, body, status)));
  let checked;
  try {
    checked = await m.checkCard(text);
  } catch (err) {
    replace(body);
    status.textContent = app.errorText(err);
    return { title: t('card.add_title') };
  }
  await m.loadChannels().catch(() => null); // a link opened as the app starts: the list may not be in yet
  const groups = [...m.channels.values()]
    .filter((c) => c.kind !== 'direct' && (!c.org_id || c.org_id === m.device.org_id) && m.mayManage(c))
    .sort((a, b) => m.channelName(a).localeCompare(m.channelName(b)));
  if (!groups.length) {
    replace(body, h('p', null, t('card.verified', { name: checked.display_name })), h('p', null, t('card.no_group')));
    return { title: t('card.add_title') };
  }
  const which = h('select', null, groups.map((c) => h('option', { value: c.channel_id }, m.channelName(c))));
  const submit = async () => {
    try {
      await m.addFromCard(which.value, text);
      app.toast(t('channel.added', { name: checked.display_name }));
      app.navigate(`#/c/${which.value}`);
    } catch (err) {
      status.textContent = app.errorText(err);
    }
  };
  replace(body,
    h('p', null, t('card.verified', { name: checked.display_name })),
    h('form', { class: 'inline-form', onSubmit: (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      return submit();
    } },
    h('div', { class: 'row' }, field(t('card.which_group'), which), h('button', { type: 'submit', class: 'primary' }, t('channel.add_submit')))));
  return { title: t('card.add_title') };
}
