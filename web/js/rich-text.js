// @ts-check
// What a message's text becomes on screen: plain runs, web links and @mentions, as data (the
// view builds elements from it, never HTML from text). Only http and https addresses become
// links; a mention is "@Name" for a name the sealed content lists in `mentions`, so text that
// merely looks like a mention highlights nobody.

/**
 * @typedef {{type: 'text', text: string}
 *   | {type: 'link', text: string, href: string}
 *   | {type: 'mention', text: string, memberId: string}} Segment
 */

/** @typedef {{memberId: string, name: string}} Mentionable */

// A web address runs to the next space or angle bracket; the punctuation that ends a sentence
// around it is not part of it.
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/giu;
const TRAILING = /[.,;:!?)\]}»]+$/u;
const MAX_LINK = 2048;

/**
 * @param {string} text
 * @param {Mentionable[]} [mentioned] the members the message mentions, with their names
 * @returns {Segment[]}
 */
export function segments(text, mentioned = []) {
  /** @type {Segment[]} */
  const out = [];
  for (const piece of linkSegments(text)) {
    if (piece.type === 'text') out.push(...mentionSegments(piece.text, mentioned));
    else out.push(piece);
  }
  return out;
}

/**
 * @param {string} text
 * @returns {Segment[]}
 */
function linkSegments(text) {
  /** @type {Segment[]} */
  const out = [];
  let at = 0;
  for (const match of text.matchAll(URL_RE)) {
    const start = match.index ?? 0;
    const raw = match[0];
    const href = raw.replace(TRAILING, '');
    if (href.length > MAX_LINK || !isWebAddress(href)) continue;
    if (start > at) out.push({ type: 'text', text: text.slice(at, start) });
    out.push({ type: 'link', text: href, href });
    at = start + href.length;
  }
  if (at < text.length) out.push({ type: 'text', text: text.slice(at) });
  return out;
}

/** @param {string} href */
function isWebAddress(href) {
  try {
    const url = new URL(href);
    return (url.protocol === 'https:' || url.protocol === 'http:') && Boolean(url.hostname);
  } catch {
    return false;
  }
}

/**
 * @param {string} text
 * @param {Mentionable[]} mentioned
 * @returns {Segment[]}
 */
function mentionSegments(text, mentioned) {
  const names = [...mentioned].filter((m) => m.name).sort((a, b) => b.name.length - a.name.length);
  /** @type {Segment[]} */
  const out = [];
  let at = 0;
  let plain = 0;
  while (names.length && at < text.length) {
    const found = text[at] === '@' && startsWord(text, at) ? names.find((m) => endsAt(text, at + 1, m.name)) : undefined;
    if (!found) {
      at += 1;
      continue;
    }
    if (at > plain) out.push({ type: 'text', text: text.slice(plain, at) });
    const end = at + 1 + found.name.length;
    out.push({ type: 'mention', text: text.slice(at, end), memberId: found.memberId });
    at = end;
    plain = end;
  }
  if (plain < text.length) out.push({ type: 'text', text: text.slice(plain) });
  return out;
}

/** @param {string} text @param {number} at */
function startsWord(text, at) {
  return at === 0 || /[\s([{«"']/u.test(text[at - 1]);
}

/** Whether `name` is written at `at`, and ends there as a word does. */
function endsAt(/** @type {string} */ text, /** @type {number} */ at, /** @type {string} */ name) {
  const end = at + name.length;
  return text.slice(at, end).toLocaleLowerCase() === name.toLocaleLowerCase() && !/[\p{L}\p{N}_-]/u.test(text[end] || ' ');
}

/**
 * The "@..." being typed just before the caret, for the suggestions; null when there is none.
 * @param {string} text
 * @param {number} caret
 * @returns {{start: number, query: string} | null}
 */
export function mentionQuery(text, caret) {
  const before = text.slice(0, caret);
  const at = before.lastIndexOf('@');
  if (at < 0 || !startsWord(before, at)) return null;
  const query = before.slice(at + 1);
  if (query.length > 40 || /[\n@]/u.test(query) || /\s{2}/u.test(query)) return null;
  return { start: at, query };
}

/**
 * The members whose "@Name" the text contains: what a sent message lists in `mentions`.
 * @param {string} text
 * @param {Mentionable[]} members
 * @returns {string[]} member ids, each once
 */
export function mentionsIn(text, members) {
  const ids = segments(text, members).flatMap((s) => (s.type === 'mention' ? [s.memberId] : []));
  return [...new Set(ids)];
}

/** Case and accents ignored: "ecole" finds "École". @param {string} text */
export function fold(text) {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLocaleLowerCase();
}
