// @ts-check
// Activation: the code arrives in the URL fragment (never sent to a server); the keys are made
// here, kept in IndexedDB before the call (a retry with the same keys converges), and the device
// proves it holds its signing key.
import { Api } from '../api.js';
import { h, field, replace } from '../dom.js';
import { t } from '../i18n.js';
import { activationProofMessage, b64e, codeHash, deviceIdFor, generateDeviceKeys, nacl, normaliseCode, parseActivation } from '../wire.js';

function defaultDeviceName() {
  const ua = navigator.userAgent;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chromium' : /Safari\//.test(ua) ? 'Safari' : t('activate.browser');
  return os ? `${browser} (${os})` : browser;
}

function hostOf(server) {
  try {
    return new URL(server).host;
  } catch {
    return server;
  }
}

async function activate(app, { code, server, displayName, deviceName }) {
  const pendingKey = `pending:${await codeHash(code)}`;
  let keys = await app.store.get(pendingKey);
  if (!keys) {
    keys = generateDeviceKeys();
    await app.store.put(pendingKey, keys); // before the call: a retry reuses the same keys
  }
  const boxPublicKey = b64e(keys.boxPublicKey);
  const proof = nacl().sign.detached(await activationProofMessage(code, boxPublicKey), keys.signSecretKey);
  const body = {
    code,
    sign_public_key: b64e(keys.signPublicKey),
    box_public_key: boxPublicKey,
    proof: b64e(proof),
    device_name: deviceName.slice(0, 120),
  };
  if (displayName) body.display_name = displayName.slice(0, 120);
  const result = await new Api(server).request('POST', '/activate', { body });
  const deviceId = await deviceIdFor(keys.signPublicKey);
  if (result.device_id !== deviceId) throw new Error('the server registered another device id');
  const device = {
    server,
    org_id: result.org_id,
    org_name: result.org_name,
    member_id: result.member_id,
    device_id: deviceId,
    role: result.role,
    display_name: result.display_name,
    device_name: body.device_name,
    activated_at: Math.floor(Date.now() / 1000),
    ...keys,
  };
  await app.store.saveDevice(device);
  await app.store.delete(pendingKey);
  return device;
}

export async function renderActivation(app, main, params) {
  const fromLink = params.code ? { code: params.code, server: (params.server || location.origin).replace(/\/+$/, '') } : null;

  if (app.device) {
    replace(
      main,
      h(
        'section',
        { class: 'card narrow', 'aria-labelledby': 'act-title' },
        h('h1', { id: 'act-title' }, t('activate.already_title')),
        h('p', null, t('activate.already_body', { name: app.device.display_name, org: app.device.org_name })),
        fromLink ? h('p', { class: 'hint' }, t('activate.already_hint')) : null,
        h('p', { class: 'actions' }, h('a', { class: 'button primary', href: '#/' }, t('activate.open_messages'))),
      ),
    );
    if (fromLink) history.replaceState(null, '', `${location.pathname}#/activate`); // drop the code
    return { title: t('activate.title') };
  }

  const status = h('p', { class: 'form-status', role: 'alert' });
  const nameInput = h('input', { type: 'text', name: 'display_name', autocomplete: 'name', maxlength: 120 });
  const deviceInput = h('input', { type: 'text', name: 'device_name', value: defaultDeviceName(), maxlength: 120, required: true });
  const linkInput = fromLink ? null : h('input', { type: 'text', name: 'link', required: true, autocomplete: 'off', spellcheck: 'false', 'data-autofocus': '' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('activate.submit'));

  const form = h(
    'form',
    {
      class: 'stack',
      novalidate: true,
      onSubmit: async (e) => {
        e.preventDefault();
        let target = fromLink;
        if (!target) {
          const parsed = parseActivation(linkInput.value);
          if (!parsed || !normaliseCode(parsed.code)) {
            status.textContent = t('activate.bad_link');
            linkInput.setAttribute('aria-invalid', 'true');
            linkInput.focus();
            return;
          }
          target = { code: parsed.code, server: parsed.server || location.origin };
        }
        if (!deviceInput.value.trim()) {
          status.textContent = t('activate.need_device_name');
          deviceInput.focus();
          return;
        }
        submit.disabled = true;
        status.textContent = t('activate.working');
        try {
          const device = await activate(app, {
            code: target.code,
            server: target.server,
            displayName: nameInput.value.trim(),
            deviceName: deviceInput.value.trim(),
          });
          await app.startDevice(device);
          app.toast(t('activate.done', { name: device.display_name, org: device.org_name }));
          location.replace(`${location.pathname}#/`); // the code leaves the address bar and history
        } catch (err) {
          submit.disabled = false;
          const key = { 404: 'activate.unknown', 409: 'activate.used', 410: 'activate.expired' }[err.status];
          status.textContent = key ? t(key) : app.errorText(err);
        }
      },
    },
    fromLink
      ? h('p', { class: 'server-line' }, t('activate.server', { host: hostOf(fromLink.server) }))
      : field(t('activate.link_label'), linkInput, t('activate.link_hint')),
    field(t('activate.name_label'), nameInput, t('activate.name_hint')),
    field(t('activate.device_label'), deviceInput, t('activate.device_hint')),
    h('div', { class: 'actions' }, submit),
    status,
  );

  replace(
    main,
    h(
      'section',
      { class: 'card narrow', 'aria-labelledby': 'act-title' },
      h('h1', { id: 'act-title' }, fromLink ? t('activate.title') : t('activate.welcome')),
      h('p', { class: 'lead' }, fromLink ? t('activate.lead_link') : t('activate.lead_code')),
      form,
      h('p', { class: 'hint keys-note' }, '🔒 ', t('activate.keys_note')),
    ),
  );
  if (fromLink) nameInput.setAttribute('data-autofocus', '');
  return { title: t('activate.title') };
}
