// @ts-check
// A poll in the conversation: its options with their counts, this member's vote (or the choice
// not yet sent, kept across live updates), and closing it for its author and managers.
import { h } from '../../dom.js';
import { formatDateTime, t } from '../../i18n.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */
/** @typedef {import('./context.js').StoredMessage} StoredMessage */
/** @typedef {ReturnType<typeof import('../../polls.js').tally> & {unverified?: boolean}} PollResult `unverified`: counted on the kept state, the log served not verifying */
/** @typedef {Map<string, number[]>} PendingChoices poll id -> the options ticked, not yet sent */

/**
 * @param {ChannelContext} ctx
 * @param {StoredMessage} msg the poll
 * @param {PollResult} result its tally
 * @param {PendingChoices} pending
 */
export function pollCard(ctx, msg, result, pending) {
  const id = msg.message_id;
  const sent = result.votes_by[ctx.m.memberId] || [];
  const name = `poll-${id}`;
  const legendId = `poll-q-${id}`;
  const type = result.multiple ? 'checkbox' : 'radio';
  const options = result.options.map((o) => pollOption(ctx, result, o, { name, type, sent, chosen: pending.get(id) || sent, onPick: () => {
    pending.set(id, picked(document, name)); // survives live updates until sent
  } }));
  const form = h('form', {
    class: 'poll',
    'aria-labelledby': legendId,
    onSubmit: async (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      await vote(ctx, id, picked(form, name), pending);
    },
  },
  h('p', { class: 'poll-label', id: legendId }, h('span', { class: 'poll-tag' }, t('poll.tag')), ' ', result.question),
  h('div', { class: 'poll-options', role: type === 'radio' ? 'radiogroup' : 'group', 'aria-labelledby': legendId }, options),
  pollMeta(ctx, result, sent),
  result.unverified ? h('p', { class: 'poll-warning', role: 'note' }, t('poll.unverified_members')) : null,
  result.closed ? null : pollActions(ctx, msg, sent));
  return form;
}

/**
 * @param {ParentNode} within
 * @param {string} name the poll's inputs' name
 */
function picked(within, name) {
  return [.../** @type {NodeListOf<HTMLInputElement>} */ (within.querySelectorAll(`input[name="${name}"]:checked`))].map((i) => Number(i.value));
}

/**
 * @param {ChannelContext} ctx
 * @param {string} pollId
 * @param {number[]} choices
 * @param {PendingChoices} pending
 */
async function vote(ctx, pollId, choices, pending) {
  const { app } = ctx;
  if (!choices.length) {
    app.toast(t('poll.choose_first'), 'error');
    return;
  }
  try {
    await ctx.m.vote(ctx.channelId, pollId, choices);
    pending.delete(pollId);
    app.toast(t('poll.voted'));
  } catch (err) {
    app.toast(app.errorText(err), 'error');
  }
}

/**
 * @param {ChannelContext} ctx
 * @param {PollResult} result
 * @param {PollResult['options'][number]} o
 * @param {{name: string, type: string, sent: number[], chosen: number[], onPick: () => void}} how
 */
function pollOption(ctx, result, o, { name, type, sent, chosen, onPick }) {
  const inputId = `${name}-${o.index}`;
  const total = result.voters;
  const percent = total ? Math.round((o.votes / total) * 100) : 0;
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${percent}%`;
  return h('div', { class: ['poll-option', sent.includes(o.index) ? 'chosen' : null] },
    h('div', { class: 'poll-choice' },
      h('input', {
        type, name, id: inputId, value: String(o.index), 'data-key': `opt-${o.index}`,
        checked: chosen.includes(o.index), disabled: result.closed, onChange: onPick,
      }),
      h('label', { for: inputId }, o.option)),
    h('span', { class: 'poll-bar', 'aria-hidden': 'true' }, fill),
    h('span', { class: 'poll-count' },
      t('poll.votes', { count: o.votes }),
      split(ctx, result) ? ` · ${apart(o.votes, result.follower_counts[o.index])}` : '',
      total ? ` · ${percent} %` : ''),
    o.voter_ids?.length ? h('p', { class: 'poll-voters' }, o.voter_ids.map((id) => ctx.nameOf(id)).join(', ')) : null);
}

/**
 * Whether to show members' and followers' votes apart: when followers voted (a public tribe, 16.3),
 * on a member's device; a follower's own tally counts no other follower (their votes are sealed
 * to members only), so it keeps the plain totals.
 * @param {ChannelContext} ctx
 * @param {PollResult} result
 */
function split(ctx, result) {
  return result.follower_voters > 0 && !ctx.m.isFollower();
}

/**
 * "3 membres, 9 abonnés": the part of `total` that is members' and followers'.
 * @param {number} total
 * @param {number} followers
 */
function apart(total, followers) {
  return `${t('poll.members', { count: total - followers })}, ${t('poll.followers', { count: followers })}`;
}

/**
 * @param {ChannelContext} ctx
 * @param {PollResult} result
 * @param {number[]} sent this member's vote
 */
function pollMeta(ctx, result, sent) {
  const state = result.closed
    ? h('strong', null, t('poll.closed'))
    : result.closes_at ? t('poll.closes_on', { date: formatDateTime(result.closes_at) }) : t('poll.open');
  const voters = t('poll.voters', { count: result.voters });
  return h('p', { class: 'poll-meta' },
    split(ctx, result)
      ? [t('poll.voters_apart', { voters, apart: apart(result.voters, result.follower_voters) }), ' · ', t('poll.one_per_device')]
      : voters,
    ' · ',
    state,
    result.multiple ? [' · ', t('poll.multiple_short')] : null,
    [' · ', t(result.show_voters ? 'poll.voters_shown' : 'poll.voters_hidden')],
    sent.length ? [' · ', t('poll.your_vote', { choice: sent.map((i) => result.options[i].option).join(', ') })] : null);
}

/**
 * @param {ChannelContext} ctx
 * @param {StoredMessage} msg
 * @param {number[]} sent
 */
function pollActions(ctx, msg, sent) {
  const { app } = ctx;
  const mayClose = msg.sender_member === ctx.m.memberId || ctx.mayManage();
  const close = async () => {
    try {
      await ctx.m.closePoll(ctx.channelId, msg.message_id);
      app.toast(t('poll.closed_done'));
    } catch (err) {
      app.toast(app.errorText(err), 'error');
    }
  };
  return h('div', { class: 'actions' },
    h('button', { type: 'submit', class: 'primary small', 'data-key': 'vote' }, sent.length ? t('poll.change_vote') : t('poll.vote')),
    mayClose ? h('button', { type: 'button', class: 'small', 'data-key': 'close-poll', onClick: close }, t('poll.close')) : null);
}
