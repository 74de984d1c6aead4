// @ts-check
// The page's only way to make DOM nodes. Text goes in through textContent, never innerHTML: a
// message body, a user name or an error is text, whatever markup it holds.

/**
 * An element with attributes and children (strings become text nodes).
 * @param {string} tag
 * @param {Record<string, string|boolean|undefined>} [attrs]  class, data-*, aria-*, type, ...;
 *   false or undefined leaves the attribute out, true sets it empty
 * @param {(Node|string|null|undefined|false)[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

/** Replaces el's children. @param {Element} el @param {(Node|string)[]} children */
export function replace(el, children) {
  el.replaceChildren(...children.map((c) => (typeof c === 'string' ? document.createTextNode(c) : c)));
}

/** "14:05" (today) or "3 Dec 14:05" from microseconds since the epoch. @param {string|number} us */
export function timeOf(us) {
  const d = new Date(Number(us) / 1000);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === new Date().toDateString()) return hm;
  return `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${hm}`;
}
