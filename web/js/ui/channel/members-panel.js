// @ts-check
// Who is in the channel: the roster, leaving, and for its managers removing and adding members.
import { h, field, replace } from '../../dom.js';
import { t } from '../../i18n.js';
import { membershipEventText } from '../trust-notices.js';
import { badge } from '../trust-badge.js';

/** @typedef {import('./context.js').ChannelContext} ChannelContext */

/** @param {ChannelContext} ctx */
export function createMembersPanel(ctx) {
  const panel = h('div', { class: 'members-panel', id: 'members-panel', hidden: true });
  let open = false;

  async function render() {
    panel.hidden = !open;
    if (!open) return;
    replace(panel, h('p', null, t('common.loading')));
    let roster;
    try {
      roster = await ctx.m.roster(ctx.channelId, { fresh: true });
      await ctx.m.loadDirectory(); // people activated since the app started
    } catch (err) {
      replace(panel, h('p', { class: 'form-status' }, ctx.app.errorText(err)));
      return;
    }
    const rows = [...roster.members]
      .map((id) => ({ id, name: ctx.m.memberName(id) || id }))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(({ id, name }) => memberRow(ctx, id, name, render));
    replace(
      panel,
      h('h2', { tabindex: '-1' }, t('channel.members_title', { count: roster.members.size })),
      h('ul', { class: 'member-list' }, rows),
      history(ctx),
      ctx.mayManage() && ctx.channel().kind !== 'direct' ? addMemberForm(ctx, roster.members, async () => {
        await render();
        panel.querySelector('select')?.focus();
      }) : null,
      ctx.mayManage() && ctx.channel().kind !== 'direct' ? partnerCardForm(ctx, render) : null,
      ctx.mayManage() && ctx.channel().kind === 'tribe' ? publicLink(ctx) : null,
    );
  }

  return {
    element: panel,
    get open() {
      return open;
    },
    render,
    /** Show or hide the panel; once shown, focus its heading. */
    toggle() {
      open = !open;
      render().then(() => {
        if (open) panel.querySelector('h2')?.focus();
      });
    },
  };
}

/** The channel's membership changes, as verified from the signed log (newest first). */
function history(ctx) {
  const events = ctx.m.trust.history(ctx.channelId);
  if (!events.length) return null;
  const name = ctx.m.channelName(ctx.m.channel(ctx.channelId));
  return h('details', { class: 'member-history' },
    h('summary', null, t('channel.history_title')),
    h('ol', { reversed: true }, [...events].reverse().map((e) => h('li', null, membershipEventText(ctx.app, name, e)))));
}

/**
 * @param {ChannelContext} ctx
 * @param {string} id
 * @param {string} name
 * @param {() => void} refresh
 */
function memberRow(ctx, id, name, refresh) {
  const { app, m } = ctx;
  const me = id === m.memberId;
  const direct = ctx.channel().kind === 'direct';
  const remove = async () => {
    try {
      await m.removeMember(ctx.channelId, id);
      app.toast(me ? t('channel.left') : t('channel.removed', { name }));
      if (me) app.navigate('#/');
      else refresh();
    } catch (err) {
      app.toast(app.errorText(err), 'error');
    }
  };
  // A guest (protocol 21) is marked as the console marks them, from the role this device
  // verified (the ticket's side), never from the server's listing alone.
  const guest = m.trust.view?.role(id) === 'guest';
  return h('li', null,
    h('span', null, name, me ? ` (${t('channel.you')})` : ''),
    guest ? [' ', h('span', { class: 'role-tag' }, t('role.guest'))] : null,
    me ? null : [' ', badge(m, id), ' ', h('a', { href: `#/verify/${id}`, class: 'small' }, t('verify.open'))],
    me || direct ? null : [' ', directButton(app, id)],
    (ctx.mayManage() || me) && !direct
      ? h('button', { type: 'button', class: 'small danger-outline', onClick: remove }, me ? t('channel.leave') : t('channel.remove', { name }))
      : null);
}

/**
 * "Message direct": open (or create) the one-to-one conversation with this member.
 * @param {import('./context.js').App} app
 * @param {string} memberId
 */
export function directButton(app, memberId) {
  return h('button', { type: 'button', class: 'small', onClick: async () => {
    try {
      const opened = await app.messenger.openDirect(memberId);
      app.navigate(`#/c/${opened.channel_id}`);
    } catch (err) {
      app.toast(app.errorText(err), 'error');
    }
  } }, t('channel.message_direct'));
}

/**
 * @param {ChannelContext} ctx
 * @param {Set<string>} members those already in
 * @param {() => Promise<void>} added
 */
function addMemberForm(ctx, members, added) {
  const { app, m } = ctx;
  const candidates = [...m.directory.members.values()].filter((x) => x.status === 'active').sort((a, b) => a.display_name.localeCompare(b.display_name));
  const who = h('select', null, candidates.map((c) => h('option', { value: c.member_id }, c.display_name + (members.has(c.member_id) ? ` (${t('channel.already_in')})` : ''))));
  const role = h('select', null,
    h('option', { value: 'member' }, ctx.channel().kind === 'tribe' ? t('channel.role_reader') : t('channel.role_member')),
    h('option', { value: 'author' }, t('channel.role_author_option')));
  const status = h('p', { class: 'form-status', role: 'alert' });
  const submit = async () => {
    try {
      await m.addMember(ctx.channelId, who.value, role.value);
      app.toast(t('channel.added', { name: m.memberName(who.value) || who.value }));
      await added();
    } catch (err) {
      status.textContent = app.errorText(err);
    }
  };
  return h('form', {
    class: 'inline-form',
    onSubmit: (/** @type {SubmitEvent} */ e) => {
      e.preventDefault();
      return submit();
    },
  },
  h('h3', null, t('channel.add_title')),
  h('div', { class: 'row' }, field(t('channel.add_who'), who), field(t('channel.add_role'), role), h('button', { type: 'submit', class: 'primary' }, t('channel.add_submit'))),
  status);
}

/**
 * "Add a partner's member": their contact card's link pasted (22.6), checked by this device
 * against the server's listing of that one member, then the signed `add`.
 * @param {ChannelContext} ctx
 * @param {() => Promise<void>} added
 */
function partnerCardForm(ctx, added) {
  const { app, m } = ctx;
  const link = h('input', { type: 'text', class: 'mono', id: 'partner-card', autocomplete: 'off' });
  const status = h('p', { class: 'form-status', role: 'alert' });
  const submit = async () => {
    status.textContent = '';
    try {
      const checked = await m.addFromCard(ctx.channelId, link.value);
      app.toast(t('channel.added', { name: checked.display_name }));
      await added();
    } catch (err) {
      status.textContent = app.errorText(err);
    }
  };
  return h('form', { class: 'inline-form partner-card-form', onSubmit: (/** @type {SubmitEvent} */ e) => {
    e.preventDefault();
    return submit();
  } },
  h('h3', null, t('card.paste_title')),
  h('p', { class: 'hint' }, t('card.paste_hint')),
  h('div', { class: 'row' }, field(t('card.paste_label'), link), h('button', { type: 'submit' }, t('card.paste_submit'))),
  status);
}

/**
 * A tribe's join link for its managers, loaded when first shown: its QR code library stays off
 * the first screen's weight.
 * @param {ChannelContext} ctx
 */
function publicLink(ctx) {
  const slot = h('div', { class: 'public-link-slot' });
  import('./public-link.js').then(
    (module) => slot.replaceWith(module.publicLinkSection(ctx)),
    (err) => slot.append(h('p', { class: 'form-status' }, ctx.app.errorText(err))),
  );
  return slot;
}
