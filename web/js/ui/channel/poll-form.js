// @ts-check
// The form that publishes a poll: a question, two to twenty options, one choice or several, and
// when it closes.
import { h, field, newId } from '../../dom.js';
import { t } from '../../i18n.js';
import { PollError, MAX_OPTIONS } from '../../polls.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */

const CLOSES = [
  ['', 'poll.closes_never'],
  ['1', 'poll.closes_1d'],
  ['7', 'poll.closes_7d'],
  ['30', 'poll.closes_30d'],
];
const MIN_SHOWN = 2;
const DAY = 86400;

/**
 * @param {ChannelContext} ctx
 * @param {() => void} close hides the form (published or cancelled), focus back on the composer
 */
export function pollForm(ctx, close) {
  const question = h('input', { id: 'poll-question', type: 'text', maxlength: 500, required: true });
  const options = optionList();
  const multiple = h('input', { type: 'checkbox', id: newId('multi') });
  const showVoters = h('input', { type: 'checkbox', id: newId('voters'), 'aria-describedby': 'poll-voters-hint' });
  const closes = h('select', null, CLOSES.map(([v, k]) => h('option', { value: v }, t(k))));
  const status = h('p', { class: 'form-status', role: 'alert' });
  const publish = async () => {
    const days = Number(closes.value || 0);
    const closesAt = days ? Math.floor(Date.now() / 1000) + days * DAY : null;
    try {
      await ctx.m.createPoll(ctx.channelId, question.value, options.values(), { multiple: multiple.checked, closesAt, showVoters: showVoters.checked });
      ctx.app.toast(t('poll.created'));
      close();
    } catch (err) {
      status.textContent = err instanceof PollError ? t(`poll.error_${err.message}`) : ctx.app.errorText(err);
    }
  };
  return h('form', {
    id: 'poll-form',
    class: 'poll-form stack',
    onSubmit: (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      return publish();
    },
    onKeydown: (/** @type {KeyboardEvent} */ e) => {
      if (e.key === 'Escape') close();
    },
  },
  h('h2', null, t('poll.new_title')),
  field(t('poll.question_label'), question),
  options.element,
  h('button', { type: 'button', class: 'small', onClick: () => options.add()?.focus() }, t('poll.add_option')),
  h('div', { class: 'check' }, multiple, h('label', { for: multiple.id }, t('poll.multiple'))),
  h('div', { class: 'check' }, showVoters, h('label', { for: showVoters.id }, t('poll.show_voters'))),
  h('p', { class: 'hint', id: 'poll-voters-hint' }, t('poll.show_voters_hint')),
  field(t('poll.closes_label'), closes),
  h('div', { class: 'actions' },
    h('button', { type: 'submit', class: 'primary' }, t('poll.publish')),
    h('button', { type: 'button', onClick: close }, t('common.cancel'))),
  status);
}

/** The options being written: numbered fields, each removable while more than two remain. */
function optionList() {
  const box = h('ol', { class: 'poll-options-edit' });
  const renumber = () => {
    [...box.children].forEach((li, i) => {
      li.querySelector('label').textContent = t('poll.option_label', { n: i + 1 });
      li.querySelector('button').setAttribute('aria-label', t('poll.remove_option', { n: i + 1 }));
    });
  };
  const add = () => {
    const index = box.children.length + 1;
    const input = h('input', { type: 'text', maxlength: 200, value: '', class: 'poll-option-input' });
    const li = h('li', null, field(t('poll.option_label', { n: index }), input),
      h('button', { type: 'button', class: 'small', 'aria-label': t('poll.remove_option', { n: index }), onClick: () => {
        if (box.children.length > MIN_SHOWN) {
          li.remove();
          renumber();
          box.querySelector('input')?.focus();
        }
      } }, '✕'));
    box.append(li);
    return input;
  };
  for (let i = 0; i < MIN_SHOWN; i += 1) add();
  return {
    element: box,
    /** A new empty option, unless there are as many as a poll may have. */
    add: () => (box.children.length < MAX_OPTIONS ? add() : null),
    /** @returns {string[]} the options written, trimmed, blanks left out */
    values: () => [.../** @type {NodeListOf<HTMLInputElement>} */ (box.querySelectorAll('input'))].map((i) => i.value.trim()).filter(Boolean),
  };
}
