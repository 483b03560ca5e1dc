// @ts-check
// The public impact page (GET /impact, no device needed): trees planted and CO2e avoided by every
// organisation, through the last closed month. Admins also see their organisation's months
// (GET /impact/org): its headline figures are that answer's totals and its table that answer's
// months, with the same totals as its last row, so the two always agree.
import { Api } from '../api.js';
import { h, replace } from '../dom.js';
import { formatDate, formatMass, formatMoney, formatMonth, formatNumber, formatSize, t } from '../i18n.js';
import { barChart, dataTable, kpi } from '../charts.js';

const RECIPIENTS = 100; // the comparison: one message to this many people
/** The published study behind a call minute's footprint (BillingSettings, call minute). */
const CALL_SOURCE = 'https://doi.org/10.1016/j.resconrec.2020.105389';

export async function renderImpact(app, main) {
  const page = h('div', { class: 'page impact' }, h('h1', null, t('impact.title')), h('p', null, t('common.loading')));
  replace(main, page);
  let impact;
  let org = null;
  try {
    impact = await new Api(app.server()).get('/impact');
    if (app.isAdmin() && app.messenger && !app.messenger.revoked) {
      org = await app.messenger.api.get('/impact/org').catch(() => null);
    }
  } catch (err) {
    replace(page, h('h1', null, t('impact.title')), h('p', { class: 'notice error' }, app.errorText(err)));
    return { title: t('impact.title') };
  }
  const a = impact.assumptions;
  // Milligrams of CO2e for one message to RECIPIENTS people: by e-mail, and by Bocage.
  const byEmail = (RECIPIENTS * a.co2e_ug_per_email) / 1000;
  const byBocage = (RECIPIENTS * a.co2e_ug_per_notification) / 1000;
  const trees = Math.min(impact.trees_planted, 60);
  replace(
    page,
    h('h1', null, t('impact.title')),
    h('p', { class: 'lead' }, t('impact.lead')),
    h('div', { class: 'kpis' },
      kpi(formatNumber(impact.trees_planted), t('impact.trees')),
      kpi(formatMass(impact.co2e_avoided_mg), t('impact.co2e')),
      kpi(formatNumber(impact.emails_avoided), t('impact.emails')),
      kpi(formatMoney(impact.donated_cents), t('impact.donated'))),
    trees ? h('p', { class: 'forest', 'aria-hidden': 'true' }, '🌳'.repeat(trees) + (impact.trees_planted > trees ? ' …' : '')) : null,
    h('p', { class: 'hint' }, impact.through ? t('impact.through', { month: formatMonth(impact.through) }) : t('impact.not_yet')),
    h('section', { class: 'card', 'aria-labelledby': 'impact-chart-title' },
      h('h2', { id: 'impact-chart-title' }, t('impact.chart_title', { count: RECIPIENTS })),
      barChart({
        title: t('impact.chart_title', { count: RECIPIENTS }),
        series: [t('impact.co2e_series')],
        rows: [
          { label: t('impact.by_email'), values: [byEmail] },
          { label: t('impact.by_bocage'), values: [byBocage] },
        ],
        format: (v) => formatMass(v),
      }),
      h('p', { class: 'hint' }, t('impact.chart_hint', { email: formatMass(a.co2e_ug_per_email / 1000), notification: formatMass(a.co2e_ug_per_notification / 1000) }))),
    org && (org.months.length || org.storage?.bytes_in_use) ? orgSection(app, org) : null,
    h('section', { class: 'card', 'aria-labelledby': 'impact-sources' },
      h('h2', { id: 'impact-sources' }, t('impact.sources')),
      h('ul', null,
        h('li', null, t('impact.source_email', { mass: formatMass(a.co2e_ug_per_email / 1000) })),
        h('li', null, t('impact.source_notification', { mass: formatMass(a.co2e_ug_per_notification / 1000) })),
        h('li', null, t('impact.source_call', { mass: formatMass(a.co2e_ug_per_call_minute / 1000) }), ' ',
          h('a', { href: CALL_SOURCE, rel: 'noopener', target: '_blank' }, CALL_SOURCE)),
        h('li', null, t('impact.source_storage', { mass: formatMass(a.co2e_ug_per_gb_month / 1000) }))),
      h('p', { class: 'hint' }, t('impact.method'))),
    h('p', { class: 'hint' }, t('impact.updated', { date: formatDate(Date.now() / 1000) })),
  );
  return { title: t('impact.title') };
}

/** This organisation's figures: headline, chart and table, all from the one /impact/org answer. */
function orgSection(app, org) {
  // CO2e avoided stays the last column: its total is the headline figure.
  const row = (label, r) => [label, formatNumber(r.messages), formatNumber(r.emails_avoided), formatNumber(r.call_minutes ?? 0), formatMass(r.call_co2e_mg ?? 0), formatMass(r.co2e_avoided_mg)];
  return h('section', { class: 'card', 'aria-labelledby': 'impact-org' },
    h('h2', { id: 'impact-org' }, t('impact.org_title', { org: app.device.org_name })),
    h('div', { class: 'kpis org-kpis' },
      kpi(formatMass(org.totals.co2e_avoided_mg), t('impact.co2e')),
      kpi(formatNumber(org.totals.emails_avoided), t('impact.emails')),
      kpi(formatNumber(org.totals.messages), t('impact.messages')),
      kpi(formatNumber(org.totals.call_minutes ?? 0), t('impact.call_minutes')),
      kpi(formatMass(org.totals.call_co2e_mg ?? 0), t('impact.call_co2e')),
      // Files are a cost, not a saving: their footprint is shown apart from what was avoided.
      kpi(formatSize(org.storage.bytes_in_use), t('impact.storage')),
      kpi(formatMass(org.storage.co2e_mg_per_month), t('impact.storage_co2e'))),
    barChart({
      title: t('impact.org_chart'),
      series: [t('impact.co2e_series')],
      rows: org.months.map((r) => ({ label: formatMonth(r.month), values: [r.co2e_avoided_mg] })),
      format: (v) => formatMass(v),
    }),
    dataTable({
      caption: t('impact.org_table'),
      columns: [t('report.month'), t('report.messages'), t('report.emails_avoided'), t('report.call_minutes'), t('report.call_co2e'), t('report.co2e')],
      rows: [...org.months.map((r) => row(formatMonth(r.month), r)), row(t('impact.total'), org.totals)],
    }));
}
