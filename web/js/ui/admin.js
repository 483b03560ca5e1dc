// @ts-check
// The admin console: invitations with a QR code, members and devices, retention, plan and
// invoices, the pilot report, the journal (audit log). Shown to owners and admins only (the server refuses others anyway).
import { h, field, replace, focus } from '../dom.js';
import { formatDate, formatDateTime, formatDays, formatMass, formatMoney, formatMonth, formatNumber, formatSize, t } from '../i18n.js';
import { qrSvg } from '../qr.js';
import { barChart, dataTable, kpi } from '../charts.js';
import { badge } from './trust-badge.js';
import { canonical } from '../certs.js';
import { PartnerRefused, acceptInvitation, awaitsUs, checkPartner, countersignature, invitationLinks, partnerTicket, partnershipEnd, verifiedTicketKey } from '../partners.js';

const SECTIONS = ['invite', 'members', 'partners', 'organisation', 'retention', 'plan', 'report', 'journal'];
const JOURNAL_PRESETS = ['30d', '3m', '6m', '1y', '2y', '5y'];
const RETENTION_PRESETS = ['7d', '30d', '3m', '6m', '1y', '2y', '5y'];
const DAYS = { d: 1, w: 7, m: 30, y: 365 };
const toDays = (d) => Number(d.slice(0, -1)) * DAYS[d.slice(-1)];

/** The roles a member's row offers: a guest stays a guest, a member never becomes one (protocol 21). */
function rolesFor(role, myRole) {
  if (role === 'guest') return ['guest'];
  return ['member', 'admin', 'owner'].filter((r) => r !== 'owner' || myRole === 'owner' || role === 'owner');
}

function roleName(role) {
  return t(`role.${role}`);
}

export async function renderAdmin(app, main, params) {
  if (!app.isAdmin()) {
    replace(main, h('section', { class: 'card narrow' }, h('h1', null, t('admin.title')), h('p', null, t('admin.only_admins'))));
    return { title: t('admin.title') };
  }
  const section = SECTIONS.includes(params.section) ? params.section : 'invite';
  const body = h('div', { class: 'admin-body' });
  replace(
    main,
    h('div', { class: 'page admin' },
      h('h1', null, t('admin.title')),
      h('nav', { class: 'tabs', 'aria-label': t('admin.sections') },
        h('ul', null, SECTIONS.map((s) => h('li', null, h('a', { href: `#/admin/${s}`, 'aria-current': s === section ? 'page' : null }, t(`admin.${s}`)))))),
      body),
  );
  const renderers = { invite: inviteSection, members: membersSection, partners: (a, b) => partnersSection(a, b, takePartnerLink(app)), organisation: organisationSection, retention: retentionSection, plan: planSection, report: reportSection, journal: journalSection };
  await renderers[section](app, body);
  if (params.section) focus(body.querySelector('h2'));
  return { title: t(`admin.${section}`) };
}

function failure(app, el, err) {
  replace(el, h('p', { class: 'notice error' }, app.errorText(err)));
}

// -- invite ------------------------------------------------------------------------------------

async function inviteSection(app, body) {
  const name = h('input', { type: 'text', maxlength: 120, required: true, autocomplete: 'off' });
  const role = h('select', null, ['member', 'admin', 'guest'].map((r) => h('option', { value: r }, roleName(r))));
  const email = h('input', { type: 'email', maxlength: 254, autocomplete: 'off' });
  const status = h('p', { class: 'form-status', role: 'alert' });
  const result = h('div', { class: 'invite-result' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('invite.submit'));
  const form = h('form', {
    class: 'stack',
    onSubmit: async (e) => {
      e.preventDefault();
      status.textContent = '';
      if (!name.value.trim()) {
        status.textContent = t('invite.need_name');
        name.focus();
        return;
      }
      submit.disabled = true;
      try {
        const invitation = await app.messenger.invite(name.value.trim(), role.value, email.value.trim() || null);
        showInvitation(app, result, invitation, name.value.trim());
        form.reset();
        focus(result.querySelector('h3'));
      } catch (err) {
        status.textContent = app.errorText(err);
      } finally {
        submit.disabled = false;
      }
    },
  },
  field(t('invite.name'), name),
  field(t('invite.role'), role, t('invite.role_hint')),
  field(t('invite.email'), email, t('invite.email_hint')),
  h('div', { class: 'actions' }, submit),
  status);
  // Side by side on a desktop: the QR code shows beside the form, without scrolling (1280×800).
  replace(body, h('div', { class: 'invite-layout' }, h('section', { class: 'card', 'aria-labelledby': 'invite-title' }, h('h2', { id: 'invite-title' }, t('admin.invite')), h('p', { class: 'lead' }, t('invite.lead')), form), result));
  name.setAttribute('data-autofocus', '');
}

export function showInvitation(app, el, invitation, name) {
  const url = invitation.activation_url;
  const link = h('input', { type: 'text', readOnly: true, value: url, class: 'mono', id: 'activation-url' });
  const copy = h('button', { type: 'button', onClick: async () => {
    try {
      await navigator.clipboard.writeText(url);
      app.toast(t('invite.copied'));
    } catch {
      link.select();
      app.toast(t('invite.copy_manually'));
    }
  } }, t('invite.copy'));
  replace(el, h('section', { class: 'card invitation', 'aria-labelledby': 'invitation-title' },
    h('h3', { id: 'invitation-title', tabindex: '-1' }, name ? t('invite.ready_for', { name }) : t('invite.ready')),
    h('div', { class: 'invitation-grid' },
      h('div', { class: 'qr-box' }, qrSvg(url, t('invite.qr_label', { name: name || '' }))),
      h('div', { class: 'stack' },
        h('p', null, t('invite.scan')),
        field(t('invite.link'), link),
        h('div', { class: 'actions' }, copy),
        h('p', { class: 'hint' }, t('invite.valid_until', { date: formatDate(invitation.valid_until) })),
        invitation.emailed ? h('p', { class: 'ok' }, t('invite.emailed')) : null,
        invitation.mail_error ? h('p', { class: 'notice error' }, t('invite.mail_error')) : null,
        invitation.emailed || invitation.mail_error ? h('p', { class: 'notice' }, t('invite.email_vouched')) : null,
        h('p', { class: 'hint' }, t('invite.once'))))));
}

// -- members -----------------------------------------------------------------------------------

async function membersSection(app, body) {
  const m = app.messenger;
  const box = h('section', { class: 'card', 'aria-labelledby': 'members-title' }, h('h2', { id: 'members-title' }, t('admin.members')), h('p', null, t('common.loading')));
  replace(body, box);
  let directory;
  try {
    directory = await m.loadDirectory();
  } catch (err) {
    failure(app, box, err);
    return;
  }
  const myRole = m.device.role;
  const members = [...directory.members.values()].sort((a, b) => Number(a.status === 'removed') - Number(b.status === 'removed') || a.display_name.localeCompare(b.display_name));
  const rows = members.map((member) => {
    const isMe = member.member_id === m.memberId;
    // The role the signed ticket and role statements give (protocol 13.8), as the CLI shows it;
    // the server's own `role` only where nothing certifies one, and named where the two differ.
    const certified = member.status === 'removed' ? null : m.trust.view?.role(member.member_id) || null;
    const role = certified || member.role;
    const mayEdit = !isMe && member.status !== 'removed' && (myRole === 'owner' || role !== 'owner');
    const roleSelect = h('select', { 'aria-label': t('members.role_of', { name: member.display_name }), disabled: !mayEdit || role === 'guest', onChange: async (e) => {
      try {
        await m.setRole(member.member_id, e.target.value);
        app.toast(t('members.role_set', { name: member.display_name, role: roleName(e.target.value) }));
      } catch (err) {
        app.toast(app.errorText(err), 'error');
        e.target.value = role;
      }
    } }, rolesFor(role, myRole).map((r) => h('option', { value: r, selected: r === role }, roleName(r))));
    const serverSays = certified && certified !== member.role
      ? h('p', { class: 'hint server-role' }, t('members.server_role', { role: roleName(member.role) }))
      : null;
    const devices = member.devices.length
      ? h('ul', { class: 'device-list' }, member.devices.map((d) => h('li', { class: d.revoked_at ? 'revoked' : null },
          h('span', null, d.name || t('device.unnamed'), ' ', h('code', null, d.device_id), d.device_id === m.deviceId ? ` (${t('members.this_device')})` : ''),
          h('span', { class: 'hint' }, d.revoked_at ? t('members.revoked_on', { date: formatDate(d.revoked_at) }) : t('members.since', { date: formatDate(d.created_at) })),
          !d.revoked_at && d.device_id !== m.deviceId && (myRole === 'owner' || role !== 'owner')
            ? revokeButton(app, d, member, () => membersSection(app, body))
            : null)))
      : h('p', { class: 'hint' }, member.status === 'invited' ? t('members.not_activated') : t('members.no_device'));
    return h('tr', { class: member.status === 'removed' ? 'removed' : null },
      h('th', { scope: 'row' }, m.memberName(member.member_id) || member.display_name, isMe ? ` (${t('channel.you')})` : '',
        !isMe && member.member_cert ? [' ', badge(m, member.member_id), ' ', h('a', { href: `#/verify/${member.member_id}`, class: 'small' }, t('verify.open'))] : null),
      h('td', null, roleSelect, serverSays),
      h('td', null, t(`status.${member.status}`)),
      h('td', null, devices),
      h('td', null, mayEdit ? removeButton(app, member, () => membersSection(app, body)) : null));
  });
  replace(box,
    h('h2', { id: 'members-title' }, t('admin.members')),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'members' },
        h('caption', { class: 'visually-hidden' }, t('admin.members')),
        h('thead', null, h('tr', null, [t('members.name'), t('members.role'), t('members.status'), t('members.devices'), t('members.actions')].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows))));
}

function confirmButton(label, confirmLabel, action) {
  const wrap = h('span', { class: 'confirmable' });
  const start = h('button', { type: 'button', class: 'small danger-outline', onClick: () => {
    replace(wrap, h('span', { class: 'confirm' }, h('button', { type: 'button', class: 'small danger', onClick: action }, confirmLabel),
      h('button', { type: 'button', class: 'small', onClick: () => {
        replace(wrap, start);
        start.focus();
      } }, t('common.cancel'))));
    /** @type {HTMLElement} */ (wrap.querySelector('.danger')).focus();
  } }, label);
  wrap.append(start);
  return wrap;
}

function revokeButton(app, device, member, done) {
  return confirmButton(t('members.revoke', { name: device.name || device.device_id }), t('members.revoke_confirm'), async () => {
    try {
      await app.messenger.revokeDevice(device);
      app.toast(t('members.revoked', { name: member.display_name }));
      await done();
    } catch (err) {
      app.toast(app.errorText(err), 'error');
    }
  });
}

function removeButton(app, member, done) {
  return confirmButton(t('members.remove', { name: member.display_name }), t('members.remove_confirm'), async () => {
    try {
      await app.messenger.removeFromOrg(member.member_id);
      app.toast(t('members.removed', { name: member.display_name }));
      await done();
    } catch (err) {
      app.toast(app.errorText(err), 'error');
    }
  });
}

// -- partners (protocol 22) ----------------------------------------------------------------------

// The partner routes and what this device verifies and keeps of them (protocol 22; the rules are
// partners.js's, loaded with the console only).

/** A partner invitation: its ticket's seed and our root ride only in the code and link shown. */
async function invitePartner(m, allowTribes) {
  const { seed, ticket } = partnerTicket(m.device, allowTribes, m.api.now());
  const answer = await m.api.request('POST', '/partners/invitations', { body: { ticket } });
  return { ...answer, ...invitationLinks(answer, seed, String(m.device.root)) };
}

/** Accept another organisation's code or link: our statement pins the root it carries. */
async function acceptPartner(m, codeOrUrl, allowTribes) {
  const { code, acceptance, statement } = acceptInvitation(m.device, codeOrUrl, m.api.server, allowTribes, m.api.now());
  const answer = await m.api.request('POST', '/partners/accept', { body: { code, acceptance, statement } });
  if (canonical(answer.ours) !== canonical(statement)) throw new PartnerRefused('the server answered with another partnership statement than ours');
  await m.loadDirectory();
  return checkedPartner(m, answer);
}

/**
 * Every partnership as this device verifies it; an admin's device countersigns the acceptances
 * of our invitations that check out (as `bocage partners` does).
 */
async function listPartners(m) {
  await m.loadDirectory();
  const view = m.trust.own;
  if (!view) return [];
  const { partners } = await m.api.get('/partners');
  const found = [];
  for (let entry of partners) {
    if (awaitsUs(entry, view, m.memberId, m.trust.kept.partners || {})) {
      const { statement, warnings } = countersignature(entry, view, m.device, m.api.now());
      m.trust.report(warnings);
      if (statement) entry = await m.api.request('PUT', `/partners/${entry.partner_org_id}`, { body: { statement } });
    }
    found.push(await checkedPartner(m, entry));
  }
  return found;
}

/** End the listed partnership `entry`, naming its invitation as this device verified it (22.7). */
async function endPartner(m, entry) {
  const partnerOrgId = String(entry.partner_org_id);
  await m.loadDirectory();
  const view = m.trust.own;
  if (!view) throw new Error('this device pinned no root: activate it again');
  const ticketKey = verifiedTicketKey(entry, view, m.trust.kept.partners || {});
  const statement = partnershipEnd(m.device, partnerOrgId, ticketKey, m.api.now());
  return checkedPartner(m, await m.api.request('DELETE', `/partners/${partnerOrgId}`, { body: { statement } }));
}

/** One partnership's status in this device's view; what it learnt is kept (an end: rollback). */
async function checkedPartner(m, entry) {
  const view = m.trust.own; // our organisation only: a partner's member never signs for us
  if (!view) throw new Error('this device pinned no root: activate it again');
  const kept = (m.trust.kept.partners ||= {});
  const partnerListing = (orgId) => m.memberPages(`/partners/${orgId}/members`);
  const { entry: checked, warnings } = await checkPartner(entry, { view, ownRoot: String(m.device.root), kept, partnerListing, now: m.api.now() });
  m.trust.report(warnings);
  await m.trust.save();
  await m.trust.share(); // an end seen here (and its date, 22.7) counts at once, as in the Python client
  return checked;
}

/** The partner link this page was opened with (app.js took it out of the address bar), once. */
function takePartnerLink(app) {
  const link = app.partnerLink || '';
  app.partnerLink = null;
  return link;
}

async function partnersSection(app, body, link) {
  const m = app.messenger;
  const list = h('section', { class: 'card', 'aria-labelledby': 'partners-title' }, h('h2', { id: 'partners-title' }, t('admin.partners')), h('p', null, t('common.loading')));
  const shown = h('div', { class: 'partner-invitation' });
  const inviteTribes = h('input', { type: 'checkbox', id: 'partner-invite-tribes' });
  const inviteStatus = h('p', { class: 'form-status', role: 'alert' });
  const inviteButton = h('button', { type: 'submit', class: 'primary' }, t('partners.invite'));
  const inviteForm = h('form', { class: 'stack', onSubmit: async (e) => {
    e.preventDefault();
    inviteStatus.textContent = '';
    inviteButton.disabled = true;
    try {
      showPartnerInvitation(app, shown, await invitePartner(m, inviteTribes.checked));
      focus(shown.querySelector('h3'));
    } catch (err) {
      inviteStatus.textContent = app.errorText(err);
    } finally {
      inviteButton.disabled = false;
    }
  } },
  h('p', { class: 'lead' }, t('partners.invite_lead')),
  h('label', { class: 'check' }, inviteTribes, ' ', t('partners.allow_tribes')),
  h('div', { class: 'actions' }, inviteButton),
  inviteStatus);
  const code = h('textarea', { id: 'partner-code', rows: 3, class: 'mono', autocomplete: 'off', spellcheck: 'false' });
  code.value = link;
  const acceptTribes = h('input', { type: 'checkbox', id: 'partner-accept-tribes' });
  const acceptStatus = h('p', { class: 'form-status', role: 'alert' });
  const acceptButton = h('button', { type: 'submit', class: 'primary' }, t('partners.accept'));
  const acceptForm = h('form', { class: 'stack', onSubmit: async (e) => {
    e.preventDefault();
    acceptStatus.textContent = '';
    if (!code.value.trim()) {
      acceptStatus.textContent = t('partners.need_code');
      code.focus();
      return;
    }
    acceptButton.disabled = true;
    try {
      const accepted = await acceptPartner(m, code.value, acceptTribes.checked);
      code.value = '';
      app.toast(t('partners.accepted', { name: accepted.partner_name || accepted.partner_org_id }));
      await refresh();
    } catch (err) {
      acceptStatus.textContent = app.errorText(err);
    } finally {
      acceptButton.disabled = false;
    }
  } },
  h('p', { class: 'lead' }, t('partners.accept_lead')),
  field(t('partners.code'), code),
  h('label', { class: 'check' }, acceptTribes, ' ', t('partners.allow_tribes')),
  h('div', { class: 'actions' }, acceptButton),
  acceptStatus);
  replace(body, h('div', { class: 'stack' },
    list,
    h('div', { class: 'invite-layout' },
      h('section', { class: 'card', 'aria-labelledby': 'partner-invite-title' }, h('h2', { id: 'partner-invite-title' }, t('partners.invite_title')), inviteForm),
      shown),
    h('section', { class: 'card', 'aria-labelledby': 'partner-accept-title' }, h('h2', { id: 'partner-accept-title' }, t('partners.accept_title')), acceptForm)));

  // Listing countersigns the acceptances of our invitations that check out (as `bocage partners`).
  async function refresh() {
    let partners;
    try {
      partners = await listPartners(m);
    } catch (err) {
      failure(app, list, err);
      return;
    }
    const rows = partners.map((p) => {
      const name = p.partner_name || p.partner_org_id;
      const waiting = p.status === 'pending' && p.side === 'inviter' && p.ours == null;
      return h('tr', { 'data-partner': p.partner_org_id, 'data-status': p.status },
        h('td', null, name, h('div', { class: 'hint mono' }, p.partner_org_id)),
        h('td', null, h('span', { class: `badge partner-${p.status}` }, t(`partners.status_${p.status}`)),
          waiting ? h('div', { class: 'hint' }, t('partners.to_confirm')) : null),
        h('td', null, p.status === 'ended' ? null : confirmButton(t('partners.end', { name }), t('partners.end_confirm'), async () => {
          try {
            await endPartner(m, p);
            app.toast(t('partners.ended', { name }));
            await refresh();
          } catch (err) {
            app.toast(app.errorText(err), 'error');
          }
        })));
    });
    replace(list,
      h('h2', { id: 'partners-title' }, t('admin.partners')),
      h('p', { class: 'lead' }, t('partners.lead')),
      rows.length
        ? h('table', { class: 'data partners' },
          h('caption', { class: 'visually-hidden' }, t('admin.partners')),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('partners.name')), h('th', { scope: 'col' }, t('partners.status')), h('th', { scope: 'col' }, t('partners.actions')))),
          h('tbody', null, rows))
        : h('p', { class: 'hint' }, t('partners.none')));
  }
  await refresh();
  if (link) focus(code);
}

/** The invitation's code, link and QR code: they carry the ticket's secret, shown here only. */
function showPartnerInvitation(app, el, invitation) {
  const copyable = (id, label, value) => {
    const input = h('input', { type: 'text', readOnly: true, value, class: 'mono', id });
    const copy = h('button', { type: 'button', onClick: async () => {
      try {
        await navigator.clipboard.writeText(value);
        app.toast(t('partners.copied'));
      } catch {
        input.select();
        app.toast(t('invite.copy_manually'));
      }
    } }, t('partners.copy', { what: label }));
    return [field(label, input), h('div', { class: 'actions' }, copy)];
  };
  replace(el, h('section', { class: 'card invitation', 'aria-labelledby': 'partner-invitation-title' },
    h('h3', { id: 'partner-invitation-title', tabindex: '-1' }, t('partners.ready')),
    h('div', { class: 'invitation-grid' },
      h('div', { class: 'qr-box' }, qrSvg(invitation.url, t('partners.qr_label'))),
      h('div', { class: 'stack' },
        h('p', null, t('partners.send')),
        ...copyable('partner-invite-code', t('partners.code'), invitation.code),
        ...copyable('partner-invite-url', t('partners.link'), invitation.url),
        h('p', { class: 'hint' }, t('invite.valid_until', { date: formatDate(invitation.expires_at) })),
        h('p', { class: 'hint' }, t('partners.secret'))))));
}

// -- retention ---------------------------------------------------------------------------------

/** The organisation's name, as invitations and every device show it (display only: no signed
 * statement carries it, so renaming touches no key nor certificate). */
async function organisationSection(app, body) {
  const name = h('input', { type: 'text', maxlength: 120, required: true, value: app.device.org_name || '' });
  const status = h('p', { class: 'form-status', role: 'alert' });
  replace(body, h('section', { class: 'card', 'aria-labelledby': 'organisation-title' },
    h('h2', { id: 'organisation-title' }, t('admin.organisation')),
    h('p', null, t('organisation.explain')),
    h('form', { class: 'inline-form', onSubmit: async (e) => {
      e.preventDefault();
      if (!name.value.trim()) {
        status.textContent = t('organisation.need_name');
        name.focus();
        return;
      }
      try {
        const renamed = await app.messenger.api.request('PUT', '/org', { body: { name: name.value.trim() } });
        await app.setOrgName(renamed.org_name);
        status.textContent = '';
        app.toast(t('organisation.saved', { name: renamed.org_name }));
      } catch (err) {
        status.textContent = app.errorText(err);
      }
    } }, h('div', { class: 'row' }, field(t('organisation.label'), name), h('button', { type: 'submit', class: 'primary' }, t('retention.save')))),
    status,
    await photoSizeForm(app)));
}

/** The longest side of the photos the organisation's devices send: a sobriety choice. */
const PHOTO_SIDES = [1024, 1280, 1600, 2048, 3072];

async function photoSizeForm(app) {
  const current = (await app.messenger.api.get('/me').catch(() => null))?.org?.photo_max_side ?? 1600;
  const sides = PHOTO_SIDES.includes(current) ? PHOTO_SIDES : [...PHOTO_SIDES, current].sort((a, b) => a - b);
  const select = h('select', null, sides.map((side) => h('option', { value: String(side), selected: side === current }, t('organisation.photo_side', { side: formatNumber(side) }))));
  const status = h('p', { class: 'form-status', role: 'alert' });
  return h('form', { class: 'inline-form', onSubmit: async (e) => {
    e.preventDefault();
    try {
      const saved = await app.messenger.api.request('PUT', '/org/photos', { body: { max_side: Number(select.value) } });
      status.textContent = t('organisation.photos_saved', { side: formatNumber(saved.photo_max_side) });
    } catch (err) {
      status.textContent = app.errorText(err);
    }
  } },
  h('p', null, t('organisation.photos_explain')),
  h('div', { class: 'row' }, field(t('organisation.photos_label'), select), h('button', { type: 'submit', class: 'primary' }, t('retention.save'))),
  status);
}

async function retentionSection(app, body) {
  const box = h('section', { class: 'card', 'aria-labelledby': 'retention-title' }, h('h2', { id: 'retention-title' }, t('admin.retention')), h('p', null, t('common.loading')));
  replace(body, box);
  let current;
  try {
    current = await app.messenger.api.get('/retention');
  } catch (err) {
    failure(app, box, err);
    return;
  }
  /** @type {[string, number][]} */
  const presets = RETENTION_PRESETS.map((d) => [d, toDays(d)]);
  if (!presets.some(([, days]) => days === current.retention_days)) presets.push([current.retention, current.retention_days]);
  presets.sort((a, b) => a[1] - b[1]);
  const select = h('select', null, presets.map(([d, days]) => h('option', { value: d, selected: days === current.retention_days }, formatDays(days))));
  const status = h('p', { class: 'form-status', role: 'alert' });
  replace(box,
    h('h2', { id: 'retention-title' }, t('admin.retention')),
    h('p', { class: 'lead' }, t('retention.current', { duration: formatDays(current.retention_days) })),
    h('p', null, t('retention.explain')),
    h('form', { class: 'inline-form', onSubmit: async (e) => {
      e.preventDefault();
      try {
        const updated = await app.messenger.api.request('PUT', '/retention', { body: { duration: select.value } });
        app.toast(t('retention.saved', { duration: formatDays(updated.retention_days) }));
        await retentionSection(app, body);
        focus(body.querySelector('h2'));
      } catch (err) {
        status.textContent = app.errorText(err);
      }
    } }, h('div', { class: 'row' }, field(t('retention.label'), select), h('button', { type: 'submit', class: 'primary' }, t('retention.save')))),
    h('p', { class: 'hint' }, t('retention.shorter_warning')),
    status);
}

// -- plan and invoices -------------------------------------------------------------------------

async function planSection(app, body) {
  const box = h('section', { class: 'card', 'aria-labelledby': 'plan-title' }, h('h2', { id: 'plan-title' }, t('admin.plan')), h('p', null, t('common.loading')));
  replace(body, box);
  let plan;
  let invoices;
  let files;
  try {
    [plan, { invoices }, files] = await Promise.all([
      app.messenger.api.get('/plan'),
      app.messenger.api.get('/invoices'),
      app.messenger.api.get('/files/usage'),
    ]);
  } catch (err) {
    failure(app, box, err);
    return;
  }
  const facts = [
    [t('plan.plan'), t(`plan.name_${plan.plan}`)],
    [t('plan.phase'), t(`plan.phase_${plan.phase}`)],
    [t('plan.started'), formatDate(plan.plan_started_at)],
    [t('plan.price'), t('plan.price_value', { price: formatMoney(plan.price_cents_per_user) })],
  ];
  if (plan.pilot_ends_at) facts.push([t('plan.pilot_ends'), t('plan.pilot_ends_value', { date: formatDate(plan.pilot_ends_at), count: plan.days_left })]);
  if (plan.pro_since) facts.push([t('plan.pro_since'), formatDate(plan.pro_since)]);
  // Public tribes' followers are never billed (docs/protocol.md, 16): counted here, apart.
  facts.push([t('plan.followers'), formatNumber(plan.followers)]);
  // Encrypted photos and documents: what they take (uploads under way included) and the limits.
  facts.push([t('plan.files'), t('plan.files_value', { used: formatSize(files.bytes_in_use), quota: formatSize(files.quota_bytes), max: formatSize(files.max_file_bytes) })]);
  let choice = null;
  if (plan.plan === 'pilot') {
    const status = h('p', { class: 'form-status', role: 'alert' });
    const radios = ['convert', 'suspend'].map((c) => h('div', { class: 'check' },
      h('input', { type: 'radio', name: 'pilot-end', id: `pilot-end-${c}`, value: c, checked: plan.pilot_end_choice === c }),
      h('label', { for: `pilot-end-${c}` }, t(`plan.choice_${c}`, { price: formatMoney(plan.price_cents_per_user) }))));
    choice = h('form', { class: 'stack', onSubmit: async (e) => {
      e.preventDefault();
      const picked = e.target.querySelector('input[name="pilot-end"]:checked')?.value;
      try {
        await app.messenger.api.request('PUT', '/plan/pilot-end', { body: { choice: picked } });
        app.toast(t('plan.choice_saved'));
        await planSection(app, body);
      } catch (err) {
        status.textContent = app.errorText(err);
      }
    } }, h('fieldset', null, h('legend', null, t('plan.choice_legend')), radios), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('plan.choice_save'))), status);
  }
  const estimate = plan.month_to_date;
  const estimateBox = estimate
    ? h('dl', { class: 'facts' },
        h('dt', null, t('plan.estimate_users')), h('dd', null, formatNumber(estimate.billable_users)),
        h('dt', null, t('plan.estimate_subtotal')), h('dd', null, formatMoney(estimate.subtotal_cents)),
        h('dt', null, t('plan.estimate_vat')), h('dd', null, formatMoney(estimate.vat_cents)),
        h('dt', null, t('plan.estimate_total')), h('dd', null, h('strong', null, formatMoney(estimate.total_cents))))
    : h('p', null, t('plan.no_estimate'));
  const invoiceTable = invoices.length
    ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('caption', { class: 'visually-hidden' }, t('plan.invoices')),
        h('thead', null, h('tr', null, [t('invoice.reference'), t('invoice.month'), t('invoice.users'), t('invoice.subtotal'), t('invoice.vat'), t('invoice.total')].map((c, i) => h('th', { scope: 'col', class: i > 1 ? 'num' : null }, c)))),
        h('tbody', null, invoices.slice().reverse().map((i) => h('tr', null,
          h('th', { scope: 'row' }, i.reference || '—'),
          h('td', null, formatMonth(i.month)),
          h('td', { class: 'num' }, formatNumber(i.billable_users)),
          h('td', { class: 'num' }, formatMoney(i.subtotal_cents)),
          h('td', { class: 'num' }, formatMoney(i.vat_cents)),
          h('td', { class: 'num' }, formatMoney(i.total_cents)))))))
    : h('p', null, t('plan.no_invoices'));
  replace(box,
    h('h2', { id: 'plan-title' }, t('admin.plan')),
    plan.notice ? h('p', { class: 'notice' }, plan.notice) : null,
    h('dl', { class: 'facts' }, facts.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
    choice,
    h('h3', null, t('plan.estimate')),
    estimateBox,
    h('h3', null, t('plan.invoices')),
    invoiceTable);
}

// -- pilot report ------------------------------------------------------------------------------

async function reportSection(app, body) {
  const box = h('section', { class: 'card', 'aria-labelledby': 'report-title' }, h('h2', { id: 'report-title' }, t('admin.report')), h('p', null, t('common.loading')));
  replace(body, box);
  let report;
  try {
    report = await app.messenger.api.get('/report');
  } catch (err) {
    failure(app, box, err);
    return;
  }
  const months = report.months;
  const totals = report.totals;
  const chart = barChart({
    title: t('report.chart_title'),
    series: [t('report.active_users'), t('report.messages')],
    rows: months.map((r) => ({ label: formatMonth(r.month), values: [r.active_users, r.messages] })),
    format: (v) => formatNumber(v),
  });
  const download = h('button', { type: 'button', onClick: async () => {
    try {
      const { csv } = await app.messenger.api.get('/report', { format: 'csv' });
      const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
      const a = h('a', { href: url, download: `bocage-rapport-${report.org_id}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      app.toast(app.errorText(err), 'error');
    }
  } }, t('report.download'));
  replace(box,
    h('h2', { id: 'report-title' }, t('admin.report')),
    h('p', { class: 'lead' }, t('report.lead', { org: report.org_name })),
    h('div', { class: 'kpis' },
      kpi(formatNumber(totals.messages), t('report.messages')),
      kpi(formatNumber(totals.emails_avoided), t('report.emails_avoided')),
      kpi(formatMass(totals.co2e_avoided_mg), t('report.co2e')),
      kpi(formatNumber(totals.call_minutes ?? 0), t('report.call_minutes')),
      kpi(formatNumber(totals.trees_funded), t('report.trees_funded'))),
    chart,
    dataTable({
      caption: t('report.table_caption'),
      columns: [t('report.month'), t('report.active_users'), t('report.messages'), t('report.emails_avoided'), t('report.co2e'), t('report.call_minutes'), t('report.call_co2e'), t('report.donation')],
      rows: months.map((r) => [formatMonth(r.month), formatNumber(r.active_users), formatNumber(r.messages), formatNumber(r.emails_avoided), formatMass(r.co2e_avoided_mg), formatNumber(r.call_minutes ?? 0), formatMass(r.call_co2e_mg ?? 0), formatMoney(r.donation_cents)]),
    }),
    h('div', { class: 'actions' }, download),
    h('p', { class: 'hint' }, t('report.trees_all', { count: report.trees_planted_all })));
}

// -- journal (the audit log) -------------------------------------------------------------------

async function journalSection(app, body) {
  const box = h('section', { class: 'card', 'aria-labelledby': 'journal-title' }, h('h2', { id: 'journal-title' }, t('admin.journal')), h('p', null, t('common.loading')));
  replace(body, box);
  const m = app.messenger;
  let page;
  try {
    [page] = await Promise.all([m.api.get('/audit', { limit: '50' }), m.directory ? null : m.loadDirectory()]);
  } catch (err) {
    failure(app, box, err);
    return;
  }
  const rows = h('tbody', null);
  const more = h('div', { class: 'actions' });
  const show = (current) => {
    rows.append(...current.entries.map((entry) => h('tr', null,
      h('td', null, h('time', { datetime: new Date(entry.at * 1000).toISOString() }, formatDateTime(entry.at))),
      h('td', null, describeEntry(m, entry)))));
    replace(more, current.cursor
      ? h('button', { type: 'button', onClick: async () => {
          try {
            show(await m.api.get('/audit', { limit: '50', cursor: current.cursor }));
          } catch (err) {
            app.toast(app.errorText(err), 'error');
          }
        } }, t('journal.older'))
      : null);
  };
  show(page);
  replace(box,
    h('h2', { id: 'journal-title' }, t('admin.journal')),
    h('p', { class: 'lead' }, t('journal.lead', { duration: formatDays(page.retention_days) })),
    page.entries.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'data journal' },
          h('caption', { class: 'visually-hidden' }, t('admin.journal')),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('journal.when')), h('th', { scope: 'col' }, t('journal.what')))),
          rows))
      : h('p', null, t('journal.empty')),
    more,
    m.device.role === 'owner' ? journalKeepForm(app, body, page) : h('p', { class: 'hint' }, t('journal.owners_keep')));
}

function journalKeepForm(app, body, page) {
  /** @type {[string, number][]} */
  const presets = JOURNAL_PRESETS.map((d) => [d, toDays(d)]);
  if (!presets.some(([, days]) => days === page.retention_days)) presets.push([page.retention, page.retention_days]);
  presets.sort((a, b) => a[1] - b[1]);
  const select = h('select', null, presets.map(([d, days]) => h('option', { value: d, selected: days === page.retention_days }, formatDays(days))));
  const status = h('p', { class: 'form-status', role: 'alert' });
  return h('form', { class: 'inline-form', onSubmit: async (e) => {
    e.preventDefault();
    try {
      const updated = await app.messenger.api.request('PUT', '/audit/retention', { body: { duration: select.value } });
      app.toast(t('journal.keep_saved', { duration: formatDays(updated.retention_days) }));
      await journalSection(app, body);
      focus(body.querySelector('h2'));
    } catch (err) {
      status.textContent = app.errorText(err);
    }
  } }, h('div', { class: 'row' }, field(t('journal.keep_label'), select, t('journal.keep_hint')), h('button', { type: 'submit', class: 'primary' }, t('retention.save'))), status);
}

/** One entry as a sentence; an action this version does not know is shown as recorded. */
function describeEntry(m, entry) {
  const { actor, targets, details } = entry;
  const name = (id) => (id ? m.memberName(id) || id : '');
  const value = (v) => journalValue(entry.action, v);
  const vars = {
    actor: actor.member_id === 'operator' ? t('journal.operator') : actor.display_name || name(actor.member_id),
    name: details.name || name(targets.member_id),
    role: details.role ? (entry.action.startsWith('channel.') ? t(`channel.role_${details.role}`) : roleName(details.role)) : '',
    old: value(entry.action === 'member.role_changed' ? details.old_role : details.old),
    new: value(entry.action === 'member.role_changed' ? details.new_role : details.new),
    device: details.device_name || targets.device_id || '',
    channel: details.channel_name || details.name || '',
  };
  const key = entry.action === 'invitation.issued' && details.grant === 'device' ? 'journal.invitation.issued_device' : `journal.${entry.action}`;
  const text = t(key, vars);
  return text === key ? `${entry.action} ${JSON.stringify({ ...targets, ...details })}` : text;
}

function journalValue(action, v) {
  if (v === null || v === undefined) return t('journal.org_default');
  if (action.endsWith('retention_changed')) return formatDays(v);
  if (action === 'member.role_changed') return roleName(v);
  if (action === 'plan.changed') return t(`plan.name_${v}`);
  if (action === 'plan.pilot_end_chosen') return t(`journal.choice_${v}`);
  return String(v);
}
