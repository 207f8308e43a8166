// Message text as the page shows it. The hub sanitizes every im_message to a small
// allow-list of elements without attributes (PROTOCOL 4.6); the page copies that allow-list
// again, element by element, into new nodes, so nothing else can reach the document even
// if a message ever arrived unsanitized.

const ALLOWED = new Set("P BR B STRONG I EM U S UL OL LI BLOCKQUOTE CODE PRE SPAN DIV".split(" "));
const DROPPED = new Set(["SCRIPT", "STYLE", "TEMPLATE", "TITLE"]);

/** A document fragment of the allowed elements and the text of ``html``. */
export function messageFragment(html) {
  const body = new DOMParser().parseFromString(html || "", "text/html").body;
  const out = document.createDocumentFragment();
  const copy = (from, to) => {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) to.append(node.data);
      else if (node.nodeType === Node.ELEMENT_NODE && !DROPPED.has(node.tagName)) {
        if (ALLOWED.has(node.tagName)) {
          const element = document.createElement(node.tagName.toLowerCase());
          copy(node, element);
          to.append(element);
        } else copy(node, to);
      }
    }
  };
  copy(body, out);
  return out;
}
