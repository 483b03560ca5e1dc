// @ts-check
// Verifying a member (docs/protocol.md, section 15): the safety number both devices compute from
// the two identity keys, a QR code of it for the other to scan, and a field to type (or a camera
// to scan) the number the other device shows. A match marks the member verified on this device;
// an admin verifying someone vouched for by the server only also endorses them for everyone.
import { h, field, replace, focus } from '../dom.js';
import { t } from '../i18n.js';
import { qrSvg } from '../qr.js';
import { badge } from './trust-badge.js';

export async function renderVerify(app, main, params) {
  const m = app.messenger;
  const memberId = params.memberId;
  if (!m.trust.view) await m.loadDirectory().catch(() => null);
  const name = m.memberName(memberId) || memberId;
  const page = h('div', { class: 'page verify' });
  replace(main, page);
  const back = h('p', null, h('a', { href: '#/' }, t('verify.back')));
  if (memberId === m.memberId) {
    replace(page, h('h1', null, t('verify.title', { name })), h('p', null, t('verify.self')), back);
    return { title: t('verify.title', { name }) };
  }
  const safety = m.trust.safety(memberId);
  if (!safety) {
    replace(page, h('h1', null, t('verify.title', { name })), h('p', { class: 'notice error' }, t('verify.unknown')), back);
    return { title: t('verify.title', { name }) };
  }
  const status = h('p', { class: 'form-status', role: 'alert' });
  const input = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false', class: 'mono', id: 'verify-input' });
  const confirm = async (text) => {
    const result = await m.trust.confirm(memberId, text);
    if (result !== 'ok') {
      status.textContent = t(`verify.${result}`);
      input.setAttribute('aria-invalid', 'true');
      return;
    }
    let endorsed = false;
    if (app.isAdmin() && safety.vouched_only) endorsed = await m.endorse(memberId).then(() => true, () => false);
    else await m.loadDirectory().catch(() => null); // the verified key now counts
    app.toast(endorsed ? `${t('verify.ok', { name })} ${t('verify.endorsed')}` : t('verify.ok', { name }));
    await renderVerify(app, main, params);
    focus(main.querySelector('h1'));
  };
  const scanner = h('div', { class: 'scanner' });
  replace(page,
    h('h1', null, t('verify.title', { name }), ' ', badge(m, memberId)),
    h('p', { class: 'lead' }, t('verify.lead', { name })),
    h('section', { class: 'card', 'aria-labelledby': 'verify-number' },
      h('h2', { id: 'verify-number' }, t('verify.number_label', { name })),
      h('p', { class: 'safety-number mono', 'aria-label': safety.number }, safety.number.split(' ').map((g) => h('span', null, g))),
      h('div', { class: 'qr-box' }, qrSvg(safety.payload, t('verify.qr_label', { name }))),
      h('p', { class: 'hint' }, t('verify.qr_hint', { name }))),
    h('section', { class: 'card', 'aria-labelledby': 'verify-theirs' },
      h('h2', { id: 'verify-theirs' }, t('verify.compare_title')),
      h('form', { class: 'stack', onSubmit: (e) => {
        e.preventDefault();
        confirm(input.value);
      } },
        field(t('verify.input_label', { name }), input, t('verify.input_hint')),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', class: 'primary' }, t('verify.confirm')),
          scanButton(scanner, status, confirm)),
        scanner,
        status)),
    back);
  return { title: t('verify.title', { name }) };
}

/** Scanning with the camera where the browser reads QR codes (BarcodeDetector); typing always works. */
function scanButton(scanner, status, confirm) {
  const Detector = /** @type {any} */ (globalThis).BarcodeDetector;
  if (!Detector || !navigator.mediaDevices?.getUserMedia) {
    return h('span', { class: 'hint' }, t('verify.scan_unavailable'));
  }
  let stream = null;
  const stop = () => {
    for (const track of stream?.getTracks() || []) track.stop();
    stream = null;
    replace(scanner);
  };
  return h('button', { type: 'button', onClick: async () => {
    if (stream) return stop();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    } catch {
      status.textContent = t('verify.scan_unavailable');
      return;
    }
    const video = h('video', { autoplay: true, muted: true, playsinline: true, class: 'scan-video' });
    video.srcObject = stream;
    replace(scanner, video, h('button', { type: 'button', onClick: stop }, t('verify.scan_stop')));
    const detector = new Detector({ formats: ['qr_code'] });
    const tick = async () => {
      if (!stream) return;
      const codes = await detector.detect(video).catch(() => []);
      if (codes.length) {
        stop();
        await confirm(codes[0].rawValue);
      } else {
        setTimeout(tick, 300);
      }
    };
    tick();
  } }, t('verify.scan'));
}
