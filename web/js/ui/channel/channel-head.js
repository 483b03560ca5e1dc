// @ts-check
// A channel's header: its name and kind, what the kind means, this member's role, how long
// messages are kept, and the button that shows who is in it.
import { h, replace } from '../../dom.js';
import { formatDays, t } from '../../i18n.js';
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
  const role = channel.my_role === 'author' ? t('channel.role_author') : t('channel.role_member');
  replace(
    head,
    h('a', { class: 'back-link', href: '#/' }, '← ', t('channels.title')),
    h('div', { class: 'channel-title-row' },
      h('h1', { id: 'channel-title' }, h('span', { 'aria-hidden': 'true' }, `${kindIcon(channel.kind)} `), ctx.m.channelName(channel)),
      h('button', {
        type: 'button',
        class: 'small',
        'aria-expanded': membersOpen ? 'true' : 'false',
        'aria-controls': 'members-panel',
        onClick: onToggleMembers,
      }, t('channel.members_button')),
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
