// @ts-check
// Strings: one dictionary per language (i18n/fr.js, i18n/en.js), French by default.
import fr from './i18n/fr.js';

/** French is built in; another language's dictionary loads when it is chosen (first load stays light). */
export const DICTIONARIES = { fr };
const LOADERS = { en: () => import('./i18n/en.js') };
export const LANGUAGES = [
  { code: 'fr', name: 'Français' },
  { code: 'en', name: 'English' },
];
const LOCALES = { fr: 'fr-FR', en: 'en-GB' };
const STORAGE_KEY = 'bocage.lang';

let current = 'fr';
try {
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  if (saved && LANGUAGES.some((l) => l.code === saved)) current = saved;
} catch {
  // storage may be unavailable: French it is
}

export function lang() {
  return current;
}

export function locale() {
  return LOCALES[current];
}

export async function setLang(code) {
  if (!DICTIONARIES[code] && LOADERS[code]) DICTIONARIES[code] = (await LOADERS[code]()).default;
  if (!DICTIONARIES[code]) return;
  current = code;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, code);
  } catch {
    // not remembered, still switched
  }
  if (globalThis.document) document.documentElement.lang = code;
}

/** t('channels.unread', {count: 3}): plural forms are {one, other} objects. */
export function t(key, vars = {}) {
  let entry = DICTIONARIES[current]?.[key] ?? DICTIONARIES.fr[key];
  if (entry === undefined) return key;
  if (typeof entry === 'object') {
    const rule = new Intl.PluralRules(LOCALES[current]).select(Number(vars.count ?? 0));
    entry = entry[rule] ?? entry.other;
  }
  return entry.replace(/\{(\w+)\}/g, (_, name) => (vars[name] === undefined ? `{${name}}` : String(vars[name])));
}

const toDate = (seconds) => new Date(Number(seconds) * 1000);

export function formatDate(seconds) {
  return new Intl.DateTimeFormat(locale(), { day: 'numeric', month: 'long', year: 'numeric' }).format(toDate(seconds));
}

export function formatDateTime(seconds) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(toDate(seconds));
}

export function formatTime(seconds) {
  const date = toDate(seconds);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  /** @type {Intl.DateTimeFormatOptions} */
  const options = sameDay ? { timeStyle: 'short' } : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

export function formatMonth(month) {
  const [year, m] = String(month).split('-').map(Number);
  return new Intl.DateTimeFormat(locale(), { month: 'short', year: 'numeric', timeZone: 'UTC' }).format(
    new Date(Date.UTC(year, m - 1, 1)),
  );
}

export function formatMoney(cents) {
  return new Intl.NumberFormat(locale(), { style: 'currency', currency: 'EUR' }).format(Number(cents) / 100);
}

export function formatNumber(value, digits = 0) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(Number(value));
}

/** A size in bytes: "1,2 Go", "1,2 Mo", "340 ko", "12 octets". @param {number} size */
export function formatSize(size) {
  if (size >= 1e9) return t('file.gb', { size: formatNumber(size / 1e9, 1) });
  if (size >= 1e6) return t('file.mb', { size: formatNumber(size / 1e6, 1) });
  if (size >= 1e3) return t('file.kb', { size: formatNumber(size / 1e3, 0) });
  return t('file.bytes', { count: size });
}

/** A mass of CO2e given in milligrams: "850 mg", "12,3 g", "4,1 kg", "2,5 t". */
export function formatMass(mg) {
  const value = Number(mg);
  const nf = (v) => new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(v);
  if (value >= 1e9) return `${nf(value / 1e9)} t`;
  if (value >= 1e6) return `${nf(value / 1e6)} kg`;
  if (value >= 1e3) return `${nf(value / 1e3)} g`;
  if (value >= 1 || value === 0) return `${nf(value)} mg`;
  return `${nf(value * 1e3)} µg`;
}

/** A retention in days, in words: 90 → "90 jours", 365 → "1 an". */
export function formatDays(days) {
  const d = Number(days);
  if (d % 365 === 0) return t('unit.years', { count: d / 365 });
  if (d % 30 === 0 && d < 365) return t('unit.months', { count: d / 30 });
  if (d % 7 === 0 && d < 30) return t('unit.weeks', { count: d / 7 });
  return t('unit.days', { count: d });
}
