// @ts-check
// A channel's header: its name and kind, what the kind means, this member's role, how long
// messages are kept, the button that shows who is in it, and (with Web Push on) its mute switch
// and, for a member of a tribe or group, "Seulement les mentions".
import { h, replace } from '../../dom.js';
import { formatDays, t } from '../../i18n.js';
import { pushPrefs, refreshMentionsOnly, setMentionsOnly, setMuted } from '../../push.js';
import { kindIcon, kindLabel } from './context.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */

/**
 * @param {ChannelContext} ctx
 * @param {HTMLElement} head
 * @param {{retention: number | null, membersOpen: boolean, onToggleMembers: () => void}} shown
 */
export function renderHead(ctx, head, { retention, membersOpen, onToggleMembers }) {
  const channel = ctx.channel();
  const isTribe = channel.kind === 'tribe';
  const follower = ctx.m.isFollower();
  const role = t(follower ? 'channel.role_follower' : channel.my_role === 'author' ? 'channel.role_author' : 'channel.role_member');
  replace(
    head,
    h('a', { class: 'back-link', href: '#/' }, '← ', t('channels.title')),
    h('div', { class: 'channel-title-row' },
      h('h1', { id: 'channel-title' }, h('span', { 'aria-hidden': 'true' }, `${kindIcon(channel.kind)} `), ctx.m.channelName(channel)),
      // A follower sees no member directory (16.3): no members button.
      follower ? null : h('button', {
        type: 'button',
        class: 'small',
        'aria-expanded': membersOpen ? 'true' : 'false',
        'aria-controls': 'members-panel',
        onClick: onToggleMembers,
      }, t('channel.members_button')),
      isTribe ? null : callButton(ctx),
      follower || channel.kind === 'direct' ? null : mentionsSwitch(ctx),
      muteSwitch(ctx),
    ),
    h('p', { class: 'channel-meta' },
      h('span', { class: ['kind-badge', channel.kind] }, kindLabel(channel.kind)),
      ' ',
      h('span', null, isTribe ? t('channel.tribe_rule') : t('channel.group_rule')),
      ' · ',
      h('span', null, t('channel.your_role', { role })),
      retention ? [' · ', h('span', null, t('channel.retention', { duration: formatDays(retention) }))] : null,
    ),
  );
}

/**
 * Call the channel's other devices; the call code loads on the first click (first screen's weight),
 * and a plan without calls says why (the ICE route's 403).
 * @param {ChannelContext} ctx
 */
function callButton(ctx) {
  const start = () => import('../../call/call-ui.js').then((calls) => calls.startCall(ctx.app, ctx.channelId));
  return h('button', { type: 'button', class: 'small call-button', onClick: () => start().catch((err) => ctx.app.toast(ctx.app.errorText(err), 'error')) }, t('channel.call_button'));
}

/**
 * Mute or unmute this channel's notifications: shown once Web Push is on for this device.
 * @param {ChannelContext} ctx
 */
function muteSwitch(ctx) {
  const button = h('button', { type: 'button', class: 'small', hidden: true });
  const show = (prefs) => {
    const muted = prefs.muted.includes(ctx.channelId);
    button.hidden = !prefs.enabled;
    button.textContent = t(muted ? 'push.unmute' : 'push.mute');
    button.setAttribute('aria-pressed', muted ? 'true' : 'false');
    button.onclick = async () => {
      try {
        show(await setMuted(ctx.m, ctx.channelId, !muted));
        ctx.app.toast(t(muted ? 'push.unmuted' : 'push.muted'));
      } catch (err) {
        ctx.app.toast(ctx.app.errorText(err), 'error');
      }
    };
  };
  pushPrefs(ctx.m.store).then(show, () => null);
  return button;
}

/**
 * Be woken here only when mentioned, or by every message: signed by this device and posted, so
 * the member's other devices follow it too (docs/protocol.md, section 17).
 * @param {ChannelContext} ctx
 */
function mentionsSwitch(ctx) {
  const button = h('button', { type: 'button', class: 'small', hidden: true });
  const show = (prefs) => {
    const only = prefs.mentionsOnly.includes(ctx.channelId);
    button.hidden = !prefs.enabled;
    button.textContent = t(only ? 'push.all_messages' : 'push.mentions_only');
    button.setAttribute('aria-pressed', only ? 'true' : 'false');
    button.onclick = async () => {
      try {
        show(await setMentionsOnly(ctx.m, ctx.channelId, !only));
        ctx.app.toast(t(only ? 'push.mentions_only_off' : 'push.mentions_only_on'));
      } catch (err) {
        ctx.app.toast(ctx.app.errorText(err), 'error');
      }
    };
  };
  let clicked = false; // a choice made here wins over an answer still on its way
  button.addEventListener('click', () => { clicked = true; });
  pushPrefs(ctx.m.store).then((prefs) => {
    show(prefs);
    if (!prefs.enabled) return null;
    return refreshMentionsOnly(ctx.m, ctx.channelId).then((fresh) => { if (!clicked) show(fresh); }); // chosen elsewhere?
  }, () => null);
  return button;
}
