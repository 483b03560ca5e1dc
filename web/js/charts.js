// @ts-check
// Small charts as inline SVG (no library): labelled for screen readers, with the figures also
// given as a table beside them.
import { h, svg } from './dom.js';

/**
 * Vertical bars, one or two series. `rows`: [{label, values: [a, b?]}], `series`: names,
 * `format`: value -> text.
 * @param {{title: string, rows: {label: string, values: number[]}[], series: string[], format?: (value: number) => string, height?: number}} chart
 */
export function barChart({ title, rows, series, format = String, height = 180 }) {
  const width = Math.max(280, rows.length * 56 + 48);
  const top = 16;
  const bottom = 36;
  const left = 8;
  const plot = height - top - bottom;
  const max = Math.max(1, ...rows.flatMap((r) => r.values));
  const slot = (width - left * 2) / Math.max(1, rows.length);
  const bar = Math.min(28, (slot - 10) / series.length);
  const children = [svg('title', null, title)];
  children.push(svg('line', { x1: left, x2: width - left, y1: top + plot, y2: top + plot, class: 'axis' }));
  rows.forEach((row, i) => {
    const groupX = left + i * slot + (slot - bar * series.length) / 2;
    row.values.forEach((value, s) => {
      const barHeight = Math.round((value / max) * plot);
      const x = groupX + s * bar;
      children.push(
        svg('rect', { x, y: top + plot - barHeight, width: bar - 2, height: Math.max(barHeight, value ? 1 : 0), class: `bar s${s}`, rx: 2 },
          svg('title', null, `${row.label} — ${series[s]} : ${format(value)}`)),
      );
      if (rows.length <= 12) {
        children.push(svg('text', { x: x + (bar - 2) / 2, y: top + plot - barHeight - 4, class: 'value', 'text-anchor': 'middle' }, format(value)));
      }
    });
    children.push(svg('text', { x: left + i * slot + slot / 2, y: height - bottom + 18, class: 'label', 'text-anchor': 'middle' }, row.label));
  });
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title, preserveAspectRatio: 'xMinYMin meet' }, children);
  chart.style.maxWidth = `${Math.round(width * 1.5)}px`; // CSSOM, allowed by the style-src policy
  const legend = series.length > 1
    ? h('ul', { class: 'legend' }, series.map((name, s) => h('li', null, h('span', { class: `swatch s${s}`, 'aria-hidden': 'true' }), name)))
    : null;
  return h('figure', { class: 'chart-figure' }, chart, legend);
}

/** The same figures as an accessible table. */
export function dataTable({ caption, columns, rows }) {
  return h(
    'table',
    { class: 'data' },
    h('caption', null, caption),
    h('thead', null, h('tr', null, columns.map((c, i) => h('th', { scope: 'col', class: i ? 'num' : null }, c)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((cell, i) => (i ? h('td', { class: 'num' }, cell) : h('th', { scope: 'row' }, cell)))))),
  );
}

/** A headline figure: its value large, what it counts below. */
export function kpi(value, label) {
  return h('div', { class: 'kpi' }, h('span', { class: 'kpi-value' }, value), h('span', { class: 'kpi-label' }, label));
}
