// @ts-check
// Following a public tribe from its poster (docs/protocol.md, 16.2): the join URL's fragment
// carries the link id, the tribe, the ticket key's seed and the root to pin, never sent to a
// server. The citizen chooses a display name; the keys are made here and kept in IndexedDB
// before the call (a retry sends the same keys and certificate, and converges), as activation.
import { Api } from '../api.js';
import { h, field, replace } from '../dom.js';
import { t } from '../i18n.js';
import { followerCertificate, joinProofMessage } from '../followers.js';
import { b64e, deviceIdFor, generateDeviceKeys, nacl } from '../wire.js';

const JOIN_PARAMS = ['server', 'link', 'org', 'channel', 'ticket', 'root'];

/** @typedef {{server: string, link: string, org: string, channel: string, ticket: string, root: string}} JoinLink */

function hostOf(server) {
  try {
    return new URL(server).host;
  } catch {
    return server;
  }
}

/** The join URL's parameters, or null when one is missing (a truncated scan). */
function joinLink(params) {
  if (!JOIN_PARAMS.every((k) => params[k])) return null;
  const link = /** @type {JoinLink} */ (Object.fromEntries(JOIN_PARAMS.map((k) => [k, String(params[k])])));
  return { ...link, server: link.server.replace(/\/+$/, '') };
}

/**
 * POST /join with these keys: the follower certificate signed with the link's ticket key, and
 * the proof that this device holds its signing key.
 * @param {JoinLink} link
 */
export async function joinWith(link, keys, displayName, deviceName, issuedAt) {
  const boxPublicKey = b64e(keys.boxPublicKey);
  const cert = await followerCertificate(link, keys.signPublicKey, keys.boxPublicKey, displayName, issuedAt);
  const proof = nacl().sign.detached(joinProofMessage(link.link, boxPublicKey), keys.signSecretKey);
  const body = {
    link: link.link,
    sign_public_key: b64e(keys.signPublicKey),
    box_public_key: boxPublicKey,
    proof: b64e(proof),
    follower_cert: cert,
    device_name: deviceName.slice(0, 120),
  };
  const result = await new Api(link.server).request('POST', '/join', { body });
  if (result.device_id !== (await deviceIdFor(keys.signPublicKey)) || result.org_id !== link.org) {
    throw new Error('the server answered for another device or organisation');
  }
  return result;
}

/** @param {JoinLink} link */
async function join(app, link, displayName, deviceName) {
  const pendingKey = `pending-join:${link.link}`;
  let keys = await app.store.get(pendingKey);
  if (!keys) {
    keys = { ...generateDeviceKeys(), issuedAt: Math.floor(Date.now() / 1000) };
    await app.store.put(pendingKey, keys); // before the call: a retry reuses the same keys
  }
  const result = await joinWith(link, keys, displayName, deviceName, keys.issuedAt);
  const device = {
    server: link.server,
    org_id: result.org_id,
    org_name: result.org_name,
    member_id: result.follower_id,
    device_id: result.device_id,
    role: 'follower',
    display_name: result.display_name,
    device_name: deviceName.slice(0, 120),
    activated_at: Math.floor(Date.now() / 1000),
    signSecretKey: keys.signSecretKey,
    signPublicKey: keys.signPublicKey,
    boxSecretKey: keys.boxSecretKey,
    boxPublicKey: keys.boxPublicKey,
    root: link.root, // pinned from the poster's link, never from the server
    server_root: result.root ?? null,
    identity_key: null,
    identitySeed: null,
  };
  await app.store.saveDevice(device);
  await app.store.delete(pendingKey);
  return { device, channelId: result.channel_id };
}

export async function renderJoin(app, main, params) {
  const link = joinLink(params);
  const card = (...children) =>
    replace(main, h('section', { class: 'card narrow', 'aria-labelledby': 'join-title' }, h('h1', { id: 'join-title' }, t('join.title')), ...children));
  if (!link) {
    card(h('p', { class: 'notice error' }, t('join.bad_link')));
    return { title: t('join.title') };
  }
  const status = h('p', { class: 'form-status', role: 'alert' });
  const refusal = (err) => ({ 404: 'join.unknown', 410: 'join.gone', 409: 'join.taken' })[err?.status];

  if (app.device) {
    const m = app.messenger;
    const sameOrg = app.device.org_id === link.org && app.device.root === link.root;
    if (app.device.role !== 'follower' || !sameOrg || !m) {
      card(
        h('p', null, t('join.already', { name: app.device.display_name, org: app.device.org_name })),
        h('p', { class: 'actions' }, h('a', { class: 'button primary', href: '#/' }, t('activate.open_messages'))),
      );
      return { title: t('join.title') };
    }
    // A follower's device follows another public tribe of its town (16.2): the same keys.
    const follow = h('button', { type: 'button', class: 'primary', 'data-autofocus': '', onClick: async () => {
      follow.disabled = true;
      try {
        const keys = { signPublicKey: app.device.signPublicKey, boxPublicKey: app.device.boxPublicKey, signSecretKey: app.device.signSecretKey };
        const result = await joinWith(link, keys, app.device.display_name, app.device.device_name || '', m.api.now());
        await m.loadChannels();
        location.replace(`${location.pathname}#/c/${result.channel_id}`);
      } catch (err) {
        follow.disabled = false;
        status.textContent = refusal(err) ? t(refusal(err)) : app.errorText(err);
      }
    } }, t('join.follow_too'));
    card(h('p', null, t('join.follow_too_lead', { org: app.device.org_name })), h('div', { class: 'actions' }, follow), status);
    return { title: t('join.title') };
  }

  const nameInput = h('input', { type: 'text', name: 'display_name', maxlength: 120, autocomplete: 'nickname', 'data-autofocus': '' });
  const deviceInput = h('input', { type: 'text', name: 'device_name', maxlength: 120, value: t('activate.browser') });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('join.submit'));
  const form = h(
    'form',
    {
      class: 'stack',
      novalidate: true,
      onSubmit: async (e) => {
        e.preventDefault();
        const name = nameInput.value.trim();
        if (!name) {
          status.textContent = t('join.need_name');
          nameInput.setAttribute('aria-invalid', 'true');
          nameInput.focus();
          return;
        }
        submit.disabled = true;
        status.textContent = t('activate.working');
        try {
          const { device, channelId } = await join(app, link, name, deviceInput.value.trim() || t('activate.browser'));
          await app.startDevice(device);
          app.toast(t('join.done', { name: device.display_name, org: device.org_name }));
          location.replace(`${location.pathname}#/c/${channelId}`); // the ticket's seed leaves the address bar
        } catch (err) {
          submit.disabled = false;
          status.textContent = refusal(err) ? t(refusal(err)) : app.errorText(err);
        }
      },
    },
    h('p', { class: 'server-line' }, t('activate.server', { host: hostOf(link.server) })),
    field(t('join.name_label'), nameInput, t('join.name_hint')),
    field(t('activate.device_label'), deviceInput, t('activate.device_hint')),
    h('div', { class: 'actions' }, submit),
    status,
  );
  card(h('p', { class: 'lead' }, t('join.lead')), form, h('p', { class: 'hint keys-note' }, '🔒 ', t('activate.keys_note')));
  return { title: t('join.title') };
}
