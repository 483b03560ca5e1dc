// @ts-check
// Reactions under a message: the chips that count them (press one to add or take back yours) and
// the picker of the six emoji a member can react with.
import { h } from '../../dom.js';
import { t } from '../../i18n.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */
/** @typedef {import('./context.js').StoredMessage} StoredMessage */
/** @typedef {import('./history.js').ReactionCount} ReactionCount */
/** @typedef {(msg: StoredMessage, emoji: string, remove: boolean) => void} React */

export const REACTIONS = [
  ['👍', 'reaction.thumbs'],
  ['❤️', 'reaction.heart'],
  ['😂', 'reaction.laugh'],
  ['😮', 'reaction.wow'],
  ['🙏', 'reaction.thanks'],
  ['🌳', 'reaction.tree'],
];
/** The data-key of the picker's first emoji, where focus goes when it opens. */
export const FIRST_EMOJI = `emoji-${REACTIONS[0][0]}`;

/**
 * @param {ChannelContext} ctx
 * @param {StoredMessage} msg
 * @param {ReactionCount[]} summary
 * @param {React} react
 */
export function reactionChips(ctx, msg, summary, react) {
  if (!summary.length) return null;
  return h('div', { class: 'reactions' }, summary.map(([emoji, who]) => {
    const mine = who.includes(ctx.m.memberId);
    const names = who.map(ctx.nameOf).join(', ');
    return h('button', {
      type: 'button',
      class: ['chip', mine ? 'mine' : null],
      'data-key': `chip-${emoji}`,
      'aria-pressed': mine ? 'true' : 'false',
      'aria-label': t('reaction.chip', { emoji, count: who.length, names }),
      title: names,
      onClick: () => react(msg, emoji, mine),
    }, `${emoji} ${who.length}`);
  }));
}

/**
 * @param {StoredMessage} msg
 * @param {React} react
 * @param {() => void} close closes the picker, focus back on its button
 */
export function reactionPicker(msg, react, close) {
  return h('div', { class: 'reaction-picker', role: 'group', 'aria-label': t('reaction.pick') },
    REACTIONS.map(([emoji, key]) => h('button', {
      type: 'button',
      class: 'emoji',
      'data-key': `emoji-${emoji}`,
      'aria-label': t('reaction.with', { name: t(key) }),
      onClick: () => {
        close();
        react(msg, emoji, false);
      },
      onKeydown: (/** @type {KeyboardEvent} */ e) => {
        if (e.key === 'Escape') close();
      },
    }, emoji)));
}
