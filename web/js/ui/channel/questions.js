// @ts-check
// Questions to the town hall (docs/protocol.md, 20) in a public tribe: a follower's "Poser une
// question" (and their questions with the answers), the managers' inbox with a private answer,
// or one also published in the tribe. Loaded with the first tribe that needs it.
import { h, field, replace } from '../../dom.js';
import { formatDateTime, t } from '../../i18n.js';
import { MAX_TEXT, answer, ask, list } from '../../questions.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */

/** @param {ChannelContext} ctx */
export function createQuestionsPanel(ctx) {
  const follower = ctx.m.isFollower();
  const body = h('div', { class: 'stack questions-body' });
  const panel = h('details', { class: 'questions-panel card', id: 'questions-panel' },
    h('summary', null, t(follower ? 'questions.ask_title' : 'questions.inbox_title')), body);
  const status = h('p', { class: 'form-status', role: 'status' });

  const render = async () => {
    let found;
    try {
      found = await list(ctx.m, ctx.channelId);
    } catch (err) {
      replace(body, h('p', { class: 'form-status' }, ctx.app.errorText(err)));
      return;
    }
    const items = found.length
      ? h('ul', { class: 'question-list' }, found.map((q) => h('li', { class: 'question' }, follower ? mine(q) : inboxItem(q))))
      : h('p', { class: 'empty' }, t(follower ? 'questions.none_mine' : 'questions.none'));
    replace(body, follower ? askForm() : null, status, items);
  };

  const mine = (q) => [
    h('p', { class: 'question-text' }, q.text ?? t('message.no_key')),
    h('p', { class: 'hint' }, formatDateTime(q.asked_at)),
    q.opened_answer
      ? h('p', { class: 'question-answer' }, h('strong', null, t('questions.answer_by', { name: q.opened_answer.by_name || '?' })), ' ', q.opened_answer.text)
      : h('p', { class: 'hint' }, t(q.answered ? 'questions.answer_unverified' : 'questions.waiting')),
  ];

  const inboxItem = (q) => {
    const text = h('textarea', { maxlength: MAX_TEXT, rows: 2 });
    const publish = h('input', { type: 'checkbox' });
    const send = h('button', { type: 'submit', class: 'primary small' }, t('questions.answer_button'));
    return [
      h('p', { class: 'question-text' }, h('strong', null, q.asker_name || t('channel.someone')), ' : ', q.text ?? t('message.no_key')),
      h('p', { class: 'hint' }, formatDateTime(q.asked_at), q.answered ? [' · ', t('questions.answered')] : null),
      q.text
        ? h('form', { class: 'stack answer-form', onSubmit: async (e) => {
            e.preventDefault();
            send.disabled = true;
            try {
              await answer(ctx.m, ctx.channelId, q, text.value, publish.checked);
              ctx.app.toast(t('questions.answer_sent'));
              await render();
            } catch (err) {
              send.disabled = false;
              status.textContent = err instanceof RangeError ? t('questions.length', { max: MAX_TEXT }) : ctx.app.errorText(err);
            }
          } },
          field(t('questions.answer_label'), text),
          h('label', { class: 'check' }, publish, ' ', t('questions.publish')),
          h('div', { class: 'actions' }, send))
        : null,
    ];
  };

  const askForm = () => {
    const text = h('textarea', { maxlength: MAX_TEXT, rows: 3 });
    const send = h('button', { type: 'submit', class: 'primary small' }, t('questions.ask_button'));
    return h('form', { class: 'stack ask-form', onSubmit: async (e) => {
      e.preventDefault();
      send.disabled = true;
      try {
        await ask(ctx.m, ctx.channelId, text.value);
        ctx.app.toast(t('questions.sent'));
        await render();
      } catch (err) {
        send.disabled = false;
        status.textContent = err instanceof RangeError ? t('questions.length', { max: MAX_TEXT }) : ctx.app.errorText(err);
      }
    } },
    h('p', { class: 'hint' }, t('questions.ask_lead')),
    field(t('questions.ask_label'), text),
    h('div', { class: 'actions' }, send));
  };

  panel.addEventListener('toggle', () => {
    if (/** @type {HTMLDetailsElement} */ (panel).open) render();
  });
  return { element: panel };
}
