// @ts-check
// Building the DOM without innerHTML: text is always text, never markup (and the CSP forbids
// inline scripts and styles anyway).

const SVG_NS = 'http://www.w3.org/2000/svg';
const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'multiple', 'required', 'readOnly', 'open']);

function apply(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (PROPS.has(name)) {
      el[name] = value;
    } else if (name === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Attributes and properties; `onX` functions become listeners, `class` may be a list.
 * @typedef {Record<string, any> | null | undefined} Attrs
 */

/**
 * h('button', {class: 'primary', onClick}, 'Envoyer')
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} attrs
 * @param {...any} children nodes, text, nested lists; null, undefined and false are left out
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/**
 * Like replace, but a node already in `el` that stays is never taken out of the page: removing
 * a focused field blurs it, and the keys typed next would go nowhere. Nodes before it that go
 * are removed, new ones are inserted; a kept node is never moved. Kept nodes keep their order.
 */
export function replaceKeeping(el, ...children) {
  const wanted = [];
  append({ append: (/** @type {Node} */ node) => wanted.push(node) }, children);
  /** Remove `from` and its next siblings up to `until` (excluded; null: to the end). */
  const dropUntil = (/** @type {ChildNode | null} */ from, /** @type {Node | null} */ until) => {
    while (from && from !== until) {
      const stale = from;
      from = from.nextSibling;
      stale.remove();
    }
  };
  let at = el.firstChild;
  for (const node of wanted) {
    if (node.parentNode === el) {
      dropUntil(at, node);
      at = node.nextSibling;
    } else {
      el.insertBefore(node, at);
    }
  }
  dropUntil(at, null);
  return el;
}

let uid = 0;
export function newId(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: label, control, optional hint, all wired with ids. */
export function field(label, control, hint) {
  const id = control.id || newId('f');
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

/** Move focus to an element (a heading gets tabindex -1 so it can hold focus). */
export function focus(el) {
  if (!el) return;
  if (!el.hasAttribute('tabindex') && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) {
    el.setAttribute('tabindex', '-1');
  }
  el.focus({ preventScroll: false });
}
