// @ts-check
// Activation: the code, the ticket's secret and the root to pin arrive in the URL fragment
// (never sent to a server: docs/protocol.md 13.4). The keys (and, on a member's first device,
// the identity key) are made here and kept in IndexedDB before the call, with the certificates'
// time, so a retry sends the same certificates and converges.
import { Api } from '../api.js';
import { activationCertificates, fingerprint } from '../certs.js';
import { h, field, replace } from '../dom.js';
import { t } from '../i18n.js';
import { activationProofMessage, b64e, codeHash, deviceIdFor, generateDeviceKeys, nacl, normaliseCode, parseActivation, randomBytes } from '../wire.js';

const LINK_PARAMS = ['org', 'member', 'ticket', 'root', 'ik', 'name'];

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

/** org, member, ticket, root, ik and the admin's name from a pasted activation URL's fragment (13.4). */
function linkParams(text) {
  try {
    const fragment = new URL(text).hash.replace(/^#/, '');
    const params = new URLSearchParams(fragment.slice(fragment.indexOf('?') + 1));
    return Object.fromEntries(LINK_PARAMS.map((k) => [k, params.get(k) || null]));
  } catch {
    return {};
  }
}

/** What kind of activation the fragment describes (13.4): only a device link needs no name. */
const isDeviceLink = (link) => Boolean(link.ticket && link.ik);

async function activate(app, { code, server, link, displayName, deviceName }) {
  const pendingKey = `pending:${await codeHash(code)}`;
  let keys = await app.store.get(pendingKey);
  if (!keys) {
    keys = { ...generateDeviceKeys(), identitySeed: randomBytes(32), issuedAt: Math.floor(Date.now() / 1000) };
    await app.store.put(pendingKey, keys); // before the call: a retry reuses the same keys
  }
  const boxPublicKey = b64e(keys.boxPublicKey);
  const deviceId = await deviceIdFor(keys.signPublicKey);
  const name = isDeviceLink(link) ? '' : (link.name || displayName).slice(0, 120); // the admin's name stands
  const certs = activationCertificates(
    link,
    { device_id: deviceId, sign_public_key: b64e(keys.signPublicKey), box_public_key: boxPublicKey },
    name,
    keys.issuedAt,
    keys.identitySeed,
  );
  const proof = nacl().sign.detached(await activationProofMessage(code, boxPublicKey), keys.signSecretKey);
  const body = {
    code,
    sign_public_key: b64e(keys.signPublicKey),
    box_public_key: boxPublicKey,
    proof: b64e(proof),
    device_name: deviceName.slice(0, 120),
    member_cert: certs.member_cert,
    device_cert: certs.device_cert,
  };
  if (name) body.display_name = name;
  const result = await new Api(server).request('POST', '/activate', { body });
  if (result.device_id !== deviceId) throw new Error('the server registered another device id');
  // The root is pinned from the fragment, never from the server; the first owner pins their own.
  const root = link.root || (await fingerprint(certs.identity_key));
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
    signSecretKey: keys.signSecretKey,
    signPublicKey: keys.signPublicKey,
    boxSecretKey: keys.boxSecretKey,
    boxPublicKey: keys.boxPublicKey,
    root,
    server_root: result.root ?? null,
    identity_key: certs.identity_key,
    identitySeed: certs.identitySeed, // the member's identity key: on their first device only
  };
  await app.store.saveDevice(device);
  await app.store.delete(pendingKey);
  return device;
}

export async function renderActivation(app, main, params) {
  const fromLink = params.code
    ? { code: params.code, server: (params.server || location.origin).replace(/\/+$/, ''), link: Object.fromEntries(LINK_PARAMS.map((k) => [k, params[k] || null])) }
    : null;

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
  const nameHint = h('span', null, t('activate.name_hint'));
  /** The name an admin chose travels in the link and stands (13.5): shown, not editable. */
  const lockName = (/** @type {string|null|undefined} */ chosen) => {
    nameInput.readOnly = Boolean(chosen);
    if (chosen) nameInput.value = chosen;
    nameHint.textContent = t(chosen ? 'activate.name_locked' : 'activate.name_hint');
  };
  lockName(fromLink?.link.name);
  const deviceInput = h('input', { type: 'text', name: 'device_name', value: defaultDeviceName(), maxlength: 120, required: true });
  const linkInput = fromLink ? null : h('input', { type: 'text', name: 'link', required: true, autocomplete: 'off', spellcheck: 'false', 'data-autofocus': '' });
  linkInput?.addEventListener('input', () => {
    const named = linkParams(linkInput.value.trim()).name;
    if (named || nameInput.readOnly) lockName(named);
  });
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
          target = { code: parsed.code, server: parsed.server || location.origin, link: linkParams(linkInput.value.trim()) };
        }
        if (!target.link.org || !target.link.member || (target.link.ticket && !target.link.root)) {
          status.textContent = t('activate.need_full_link');
          linkInput?.focus();
          return;
        }
        if (!isDeviceLink(target.link) && !target.link.name && !nameInput.value.trim()) {
          status.textContent = t('activate.need_name');
          nameInput.setAttribute('aria-invalid', 'true');
          nameInput.focus();
          return;
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
            link: target.link,
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
    fromLink && isDeviceLink(fromLink.link) ? null : field(t('activate.name_label'), nameInput, nameHint),
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
  if (fromLink && !nameInput.readOnly) nameInput.setAttribute('data-autofocus', '');
  return { title: t('activate.title') };
}
