// Building the page without ever parsing markup from data: every value goes in as a text node or an
// attribute value, so a prompt like "<img onerror=...>" is shown as the text it is.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(element, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = String(value);
    else if (name === "on") {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof value !== "string" && name !== "list") element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// h("div", {class: "card"}, "text", h("span", {}, value)) - children are nodes or plain text.
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  apply(element, props);
  append(element, children);
  return element;
}

export function svgEl(tag, attributes = {}) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

// Keep a list in step with `items` with as few DOM moves as possible: an unchanged item keeps its
// element (so an <audio> that is playing keeps playing and a typed comment stays), new items are
// inserted, gone ones removed. `signature(item)` says when an item must be drawn again.
export function reconcile(parent, items, { key, signature, render }) {
  const previous = parent._reconciled || new Map();
  const next = new Map();
  let cursor = parent.firstChild;
  for (const item of items) {
    const id = key(item);
    const sig = signature(item);
    const entry = previous.get(id);
    let element = entry ? entry.element : null;
    if (!entry || entry.sig !== sig) {
      element = render(item, element);
      if (entry && entry.element !== element) {
        if (cursor === entry.element) cursor = cursor.nextSibling;
        entry.element.remove();
      }
    }
    next.set(id, { element, sig });
    if (element === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(element, cursor);
  }
  const kept = new Set([...next.values()].map((entry) => entry.element));
  for (const child of [...parent.childNodes]) {
    if (!kept.has(child)) child.remove();
  }
  parent._reconciled = next;
}

// The run graph comes from our own API (which escapes every value), but it is parsed as XML and
// filtered anyway: only drawing elements, no event handlers, no links, no styles.
const SVG_ELEMENTS = new Set([
  "svg", "g", "rect", "circle", "ellipse", "line", "path", "polyline", "polygon", "text", "tspan",
  "title", "desc", "defs", "marker",
]);

export function parseSvg(text) {
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = parsed.documentElement;
  if (root.nodeName !== "svg" || parsed.getElementsByTagName("parsererror").length) {
    throw new Error("The graph could not be read.");
  }
  const walk = (node) => {
    for (const child of [...node.children]) {
      if (!SVG_ELEMENTS.has(child.localName) || child.namespaceURI !== SVG_NS) {
        child.remove();
        continue;
      }
      for (const attribute of [...child.attributes]) {
        const name = attribute.name.toLowerCase();
        if (name.startsWith("on") || name.includes("href") || name === "style") {
          child.removeAttribute(attribute.name);
        }
      }
      walk(child);
    }
  };
  walk(root);
  return document.importNode(root, true);
}

export function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  // Plain http on another host than localhost: no Clipboard API; the old way still works.
  const area = h("textarea", { class: "offscreen", readOnly: true }, text);
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

// A short notice at the corner of the page (an action's outcome or its error).
export function toast(text, tone = "info") {
  let area = document.getElementById("toasts");
  if (!area) {
    area = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(area);
  }
  const note = h("div", { class: `toast toast-${tone}` }, text);
  area.append(note);
  setTimeout(() => note.classList.add("toast-leaving"), 4200);
  setTimeout(() => note.remove(), 4600);
}

// An empty state: what is missing, and what to do about it.
export function empty(title, ...hint) {
  return h("div", { class: "empty" }, h("div", { class: "empty-title" }, title), hint.length ? h("div", { class: "empty-hint" }, ...hint) : null);
}

// replaceChildren, minus the holes: a null or false child (an optional part) adds nothing, where
// replaceChildren would add the text "null".
export function fill(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}
