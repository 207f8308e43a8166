// Rendering one message: the bubble, its body, attachments and delivery mark.

import { resend } from "./calls.js";
import { updateContactItem } from "./contacts.js";
import { el } from "./dom.js";
import { formatBytes, formatTime, htmlToText, safeUrl } from "./format.js";
import { deleteMessage } from "./manage.js";
import { state } from "./state.js";
import { keepAtBottom } from "./view.js";

export const IMAGE_NAME = /\.(png|jpe?g|gif|webp)$/i;

export const IMAGE_MIME = /^image\/(png|jpeg|gif|webp)$/;

export const STATE_MARK = {
  sending: ["Sending…", "The message is on its way"],
  held: ["Waiting…", "Held until they open the chat"],
  delivered: ["✓", "Delivered"],
  seen: ["✓✓", "Seen"],
  sent: ["✓", "Sent"],
  stored: ["Stored", "Stored: they will see it when they are back online"],
  not_delivered: ["Not delivered", "The message was not delivered"],
  failed: ["Not sent", "The message was not sent"],
  too_big: ["Too big", "The message is too big to send"],
};

export const RETRY_STATES = new Set(["not_delivered", "failed"]);

export function renderMessage(conv, msg) {
  const item = el("li", msg.system ? "msg system" : msg.mine ? "msg mine" : "msg theirs");
  if (msg.system) {
    const body = el("div", "system-text");
    renderBody(body, msg.html);
    item.append(body);
    return item;
  }
  const bubble = el("div", "bubble");
  if (!msg.mine && msg.author && msg.author !== conv.sip) {
    bubble.append(el("p", "sender", msg.dn || msg.author)); // a group: who wrote it
  }
  if (msg.attach.length) bubble.append(renderAttachments(msg));
  const text = htmlToText(msg.html);
  const isFileName = msg.attach.length === 1 && text === msg.attach[0].name;
  if (msg.html && !isFileName) {
    const body = el("div", "body");
    renderBody(body, msg.html);
    bubble.append(body);
  }
  const meta = el("div", "meta");
  const time = el("time", "time", formatTime(msg.time));
  time.dateTime = new Date(msg.time).toISOString();
  time.title = new Date(msg.time).toLocaleString();
  meta.append(time);
  if (msg.mine) meta.append(el("span", "mark"));
  bubble.append(meta);
  item.append(bubble);
  if (msg.mine) {
    const retry = el("button", "retry", "Retry");
    retry.type = "button";
    retry.hidden = true;
    retry.addEventListener("click", () => resend(conv, msg));
    item.append(retry);
  }
  if (state.licensed) {
    const remove = el("button", "msg-delete", "Delete");
    remove.type = "button";
    remove.setAttribute("aria-label", "Delete this message");
    remove.title = "Delete this message (on all your devices)";
    remove.addEventListener("click", () => deleteMessage(conv, msg));
    item.append(remove);
  }
  updateMark(msg, item);
  return item;
}

/** The one place a peer's text becomes markup. `html` is what the hub sent or stored: it
 * sanitized it (PROTOCOL §4.6) to a small allow-list of formatting elements with no
 * attributes at all, so nothing in it can load, link or run anything. That is why it may
 * go in with innerHTML; the page's CSP (no inline script) stands behind it. */
export function renderBody(node, html) {
  node.innerHTML = html;
  if (Object.keys(state.emoticons).length) showEmoticons(node);
}

/** Tenant emoticons: `:shortcode:` in the text shows the tenant's image (12.20). */
export function showEmoticons(root) {
  const pattern = /:([a-z0-9_+-]{1,32}):/g;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode);
  for (const textNode of texts) {
    const text = textNode.nodeValue;
    if (!pattern.test(text)) continue;
    pattern.lastIndex = 0;
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      const path = state.emoticons[match[1]];
      if (!path) continue;
      fragment.append(text.slice(last, match.index));
      const image = el("img", "emoticon");
      image.src = path;
      image.alt = match[0];
      image.title = match[0];
      fragment.append(image);
      last = match.index + match[0].length;
    }
    if (last === 0) continue;
    fragment.append(text.slice(last));
    textNode.replaceWith(fragment);
  }
}

export function renderAttachments(msg) {
  const box = el("div", "attachments");
  for (const file of msg.attach) {
    const url = safeUrl(file.url);
    if (!url) continue;
    // Only a file buffer of this server is a file (PROTOCOL 8): any other url a peer put in
    // `attach` is a plain link showing its host, never loaded by the page (an <img> of
    // another path of this server would be a request made with this browser's credentials).
    const uploaded = url.origin === location.origin && url.pathname.startsWith("/messages/files/");
    if (!uploaded) {
      const external = el("a", "file external");
      external.href = url.href;
      external.target = "_blank";
      external.rel = "noopener noreferrer";
      external.append(el("span", "file-icon", "🔗"), el("span", "file-name", `${url.host}${url.pathname}`));
      box.append(external);
      continue;
    }
    const image = IMAGE_MIME.test(file.mime || "") || (!file.mime && IMAGE_NAME.test(file.name));
    const link = el("a", image ? "preview" : "file");
    link.href = url.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    if (image) {
      const img = el("img");
      img.src = url.href;
      img.alt = file.name;
      img.loading = "lazy";
      img.addEventListener("load", () => keepAtBottom());
      img.addEventListener("error", () => {
        // not an image after all, or gone: show it as a file link
        link.className = "file";
        link.replaceChildren(el("span", "file-icon", "📄"), el("span", "file-name", file.name));
      });
      link.append(img);
      link.setAttribute("aria-label", `Image: ${file.name}`);
    } else {
      link.download = file.name;
      link.append(el("span", "file-icon", "📄"), el("span", "file-name", file.name));
      if (file.size) link.append(el("span", "file-size", formatBytes(file.size)));
    }
    box.append(link);
  }
  return box;
}

export function updateMark(msg, item = msg.node) {
  if (!item || !msg.mine) return;
  item.dataset.state = msg.state || "";
  const mark = item.querySelector(".mark");
  const [text, label] = STATE_MARK[msg.state] || ["", ""];
  mark.textContent = text;
  mark.title = label;
  mark.className = `mark ${msg.state || ""}`;
  if (text !== label) mark.setAttribute("aria-label", label);
  else mark.removeAttribute("aria-label");
  const retry = item.querySelector(".retry");
  if (retry) retry.hidden = !RETRY_STATES.has(msg.state);
}

export function setTime(conv, msg, ms) {
  msg.time = ms;
  const time = msg.node && msg.node.querySelector(".time");
  if (time) {
    time.textContent = formatTime(ms);
    time.dateTime = new Date(ms).toISOString();
    time.title = new Date(ms).toLocaleString();
  }
  if (conv.messages[conv.messages.length - 1] === msg) {
    conv.lastTime = ms;
    if (conv.item) updateContactItem(conv);
  }
}

export function refreshAttachments(msg) {
  if (!msg.node) return;
  const old = msg.node.querySelector(".attachments");
  if (old) old.replaceWith(renderAttachments(msg));
}
