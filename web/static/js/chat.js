// The chat app at `/`: log in, contacts with live presence and unread badges, one chat
// window at a time. Everything it knows comes from the public protocol through
// switchboard.js (docs/protocol.md); this file is only the page.
//
// Model: a conversation per peer sip (`Conv`), holding its messages and the live chat call
// to that peer, if any. A call is placed when there is something to say (the first message
// rides in the setup, so an offline peer is reported at once) or when we start typing to a
// peer who is online; calls the hub offers are answered at once. Licensed users also read
// the stored history (PbxMessages ReadChat) and send files (CreateFileBuffer).
//
// Text a peer wrote reaches the DOM in exactly one place, `renderBody`, as the HTML the hub
// sanitized; names, sips, file names and everything else go through textContent.

import { Client } from "./switchboard.js";

const HISTORY_PAGE = 30;
const TYPING_RENEW_MS = 4000; // the hub forgets typing after 6 s (signaling.typing_ttl)
const TYPING_IDLE_MS = 5000;
const PEER_TYPING_MS = 8000; // in case a typing:false got lost
const MAX_MESSAGE_BYTES = 64 * 1024; // limits.max_message (the default)
const IMAGE_NAME = /\.(png|jpe?g|gif|webp)$/i;
const IMAGE_MIME = /^image\/(png|jpeg|gif|webp)$/;

const ACTIVITY_TEXT = { available: "Online", away: "Away", busy: "Busy", dnd: "Do not disturb" };

const EMOJI = [
  ["😀", "grinning face"], ["😂", "tears of joy"], ["😊", "smiling face"], ["😍", "heart eyes"],
  ["😉", "winking face"], ["😎", "sunglasses"], ["🤔", "thinking face"], ["😅", "sweat smile"],
  ["😢", "crying face"], ["😮", "surprised face"], ["😡", "angry face"], ["😴", "sleeping face"],
  ["👍", "thumbs up"], ["👎", "thumbs down"], ["👏", "clapping hands"], ["🙏", "folded hands"],
  ["🙌", "raising hands"], ["💪", "flexed biceps"], ["👋", "waving hand"], ["🤝", "handshake"],
  ["❤️", "red heart"], ["🔥", "fire"], ["🎉", "party popper"], ["✨", "sparkles"],
  ["✅", "check mark"], ["❌", "cross mark"], ["⭐", "star"], ["👀", "eyes"],
  ["☕", "coffee"], ["🍕", "pizza"], ["🚀", "rocket"], ["💡", "light bulb"],
];

const $ = (id) => document.getElementById(id);

const ui = {
  announcer: $("announcer"),
  login: $("login"),
  loginForm: $("login-form"),
  loginUser: $("login-user"),
  loginPassword: $("login-password"),
  loginDomain: $("login-domain"),
  loginError: $("login-error"),
  loginSubmit: $("login-submit"),
  app: $("app"),
  banner: $("banner"),
  bannerText: $("banner-text"),
  bannerAction: $("banner-action"),
  meAvatar: $("me-avatar"),
  meInitials: $("me-initials"),
  meDot: $("me-dot"),
  meName: $("me-name"),
  meStatus: $("me-status"),
  logout: $("logout"),
  addForm: $("add-form"),
  addSip: $("add-sip"),
  addError: $("add-error"),
  contacts: $("contacts"),
  contactsEmpty: $("contacts-empty"),
  chatEmpty: $("chat-empty"),
  chatPane: $("chat-pane"),
  back: $("back"),
  chatAvatar: $("chat-avatar"),
  chatInitials: $("chat-initials"),
  chatDot: $("chat-dot"),
  chatName: $("chat-name"),
  chatStatus: $("chat-status"),
  messages: $("messages"),
  historyStatus: $("history-status"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeClose: $("notice-close"),
  upload: $("upload"),
  uploadName: $("upload-name"),
  uploadProgress: $("upload-progress"),
  uploadCancel: $("upload-cancel"),
  typing: $("typing"),
  composer: $("composer"),
  input: $("composer-input"),
  emojiButton: $("emoji-button"),
  emojiPicker: $("emoji-picker"),
  emojiGrid: $("emoji-grid"),
  emoticonTitle: $("emoticon-title"),
  emoticonGrid: $("emoticon-grid"),
  attachButton: $("attach-button"),
  fileInput: $("file-input"),
};

const state = {
  client: null,
  me: null, // {sip, domain}
  licensed: false,
  activity: "available",
  convs: new Map(), // peer sip -> Conv
  open: null, // the Conv on screen
  callConv: new WeakMap(), // Call -> Conv
  callsByNumber: new Map(), // call number -> Call (Error frames name the number only)
  selfWatch: null,
  badge: null, // our unread count, as the hub last said (licensed users)
  badgeTimer: null,
  watches: new Map(), // sip -> presence Call
  emoticons: {}, // shortcode -> image path
  upload: null, // the XMLHttpRequest of the upload running
  loggingOut: false,
  wasReconnecting: false,
  order: 0,
};

// -- small helpers ------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function initials(name) {
  const words = String(name || "?").replace(/[@._-]+/g, " ").trim().split(/\s+/);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : words[0].slice(0, 2);
  return letters.toUpperCase();
}

function avatarClass(sip) {
  let hash = 0;
  for (const ch of String(sip)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `av-${hash % 8}`;
}

function setAvatar(avatar, initialsEl, dot, name, sip, presence) {
  avatar.className = `avatar ${avatarClass(sip)}`;
  initialsEl.textContent = initials(name);
  dot.className = `presence-dot ${presenceClass(presence)}`;
}

function presenceClass(presence) {
  if (!presence) return "unknown";
  if (presence.unknown) return "unknown";
  if (presence.status !== "open") return "closed";
  return `open ${presence.activity || "available"}`;
}

function presenceText(presence) {
  if (!presence) return "";
  if (presence.unknown) return "No such user";
  if (presence.status !== "open") return "Offline";
  const text = ACTIVITY_TEXT[presence.activity] || "Online";
  return presence.note ? `${text} · ${presence.note}` : text;
}

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** What we send: our text as HTML (escaped, line breaks as <br>), as other clients expect. */
function textToHtml(text) {
  return escapeHtml(text).replace(/\r?\n/g, "<br>");
}

/** The plain text of sanitized HTML, for previews and announcements (never rendered). */
function htmlToText(html) {
  const spaced = (html || "").replace(/<br\s*\/?>|<\/(p|div|li|pre|blockquote)>/gi, " $&");
  const doc = new DOMParser().parseFromString(`<body>${spaced}</body>`, "text/html");
  return (doc.body.textContent || "").replace(/\s+/g, " ").trim();
}

/** URL-encode what PROTOCOL §4.6 does not allow in `attach`, keep the rest as it is. */
function encodeAttach(url) {
  return Array.from(url, (ch) => (/[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/.test(ch) ? ch : encodeURIComponent(ch))).join("");
}

/** A link target we are willing to put in the page: http(s) only. */
function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed : null;
  } catch {
    return null;
  }
}

function formatTime(ms) {
  const date = new Date(ms);
  const now = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })}, ${time}`;
}

function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

function announce(text) {
  ui.announcer.textContent = "";
  // a fresh text node, so that screen readers announce the same words twice in a row too
  setTimeout(() => {
    ui.announcer.textContent = text;
  }, 50);
}

function isPhone() {
  return window.matchMedia("(max-width: 640px)").matches;
}

// -- conversations ------------------------------------------------------------------------

class Conv {
  constructor(sip, dn) {
    this.sip = sip;
    this.dn = dn || sip;
    this.presence = null;
    this.unread = 0;
    this.lastTime = 0;
    this.lastText = "";
    this.call = null;
    this.messages = []; // sorted, oldest first
    this.byKey = new Map(); // callId:seq or id -> Msg
    this.typing = false;
    this.typingTimer = null;
    this.sentTyping = 0; // when we last told the peer we type (0: we do not)
    this.historyLoaded = false;
    this.loading = false;
    this.more = false;
    this.oldestId = null;
    this.notice = "";
    this.draft = "";
    this.atBottom = true;
    this.scrollTop = 0;
    this.readUpTo = 0; // the newest row id we sent SetRead for
    this.list = el("ol", "message-list");
    this.item = null; // the contact list entry
  }

  get name() {
    return this.dn || this.sip;
  }
}

function conversation(sip, dn) {
  let conv = state.convs.get(sip);
  if (!conv) {
    conv = new Conv(sip, dn);
    state.convs.set(sip, conv);
    saveContacts();
    watch(conv);
  } else if (dn && dn !== sip && conv.dn !== dn) {
    conv.dn = dn;
    saveContacts();
  }
  return conv;
}

function liveCall(conv) {
  return conv.call && conv.call.state !== "released" ? conv.call : null;
}

function contactsKey() {
  return `switchboard:contacts:${state.me.domain}:${state.me.sip}`;
}

function loadContacts() {
  try {
    const saved = JSON.parse(localStorage.getItem(contactsKey()) || "[]");
    for (const { sip, dn } of saved) if (typeof sip === "string" && sip) conversation(sip, dn);
  } catch {
    // a damaged entry: start with an empty list
  }
}

function saveContacts() {
  if (!state.me) return;
  const list = [...state.convs.values()].map((conv) => ({ sip: conv.sip, dn: conv.dn }));
  try {
    localStorage.setItem(contactsKey(), JSON.stringify(list));
  } catch {
    // storage full or disabled: the list lives as long as the page
  }
}

function watch(conv) {
  const client = state.client;
  if (!client || client.status !== "online" || conv.sip === state.me.sip) return;
  const current = state.watches.get(conv.sip);
  if (current && current.state !== "released") return;
  const call = client.watch(conv.sip);
  state.watches.set(conv.sip, call);
}

// -- messages -----------------------------------------------------------------------------

/** A message on screen: ours or theirs, live or from the history. */
function makeMsg(fields) {
  state.order += 1;
  return {
    key: null,
    id: null, // our client id (own messages we sent)
    rowId: null, // the stored row (history)
    callId: null,
    seq: 0,
    mine: false,
    system: false,
    author: "",
    dn: "",
    html: "",
    attach: [], // [{url, name, mime}]
    time: Date.now(),
    state: null,
    order: state.order,
    node: null,
    ...fields,
  };
}

function msgKey(msg) {
  if (msg.callId && msg.seq) return `${msg.callId}:${msg.seq}`;
  if (msg.id) return `id:${msg.id}`;
  if (msg.rowId) return `row:${msg.rowId}`;
  return `n:${msg.order}`;
}

function rekey(conv, msg) {
  const key = msgKey(msg);
  if (key === msg.key) return;
  if (msg.key && conv.byKey.get(msg.key) === msg) conv.byKey.delete(msg.key);
  msg.key = key;
  conv.byKey.set(key, msg);
  if (msg.id) conv.byKey.set(`id:${msg.id}`, msg);
}

function comesBefore(a, b) {
  if (a.callId && a.callId === b.callId && a.seq && b.seq) return a.seq < b.seq;
  // ours, not yet acknowledged: the newest there is (its time is still the local clock's)
  if (b.mine && !b.seq) return true;
  if (a.mine && !a.seq) return false;
  const ta = Math.floor(a.time / 1000);
  const tb = Math.floor(b.time / 1000);
  if (ta !== tb) return ta < tb;
  return a.order < b.order;
}

/** Put a message into its conversation; returns false for one already there. What
 * happens now (`live`) goes at the end; the history is put in order among the rest. */
function addMessage(conv, msg, { live = false } = {}) {
  const key = msgKey(msg);
  if (conv.byKey.has(key)) return false;
  msg.key = key;
  conv.byKey.set(key, msg);
  if (msg.id) conv.byKey.set(`id:${msg.id}`, msg);
  let index = conv.messages.length;
  while (!live && index > 0 && comesBefore(msg, conv.messages[index - 1])) index -= 1;
  conv.messages.splice(index, 0, msg);
  msg.node = renderMessage(conv, msg);
  const next = conv.messages[index + 1];
  conv.list.insertBefore(msg.node, next ? next.node : null);
  if (index === conv.messages.length - 1 && !msg.system) {
    conv.lastTime = msg.time;
    conv.lastText = previewText(msg);
  }
  return true;
}

function previewText(msg) {
  const text = htmlToText(msg.html);
  const body = text || (msg.attach.length ? `📎 ${msg.attach[0].name}` : "");
  return msg.mine ? `You: ${body}` : body;
}

function findOwn(conv, id) {
  return id ? conv.byKey.get(`id:${id}`) || null : null;
}

// -- rendering: messages ------------------------------------------------------------------

const STATE_MARK = {
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

const RETRY_STATES = new Set(["not_delivered", "failed"]);

function renderMessage(conv, msg) {
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
  updateMark(msg, item);
  return item;
}

/** The one place a peer's text becomes markup. `html` is what the hub sent or stored: it
 * sanitized it (PROTOCOL §4.6) to a small allow-list of formatting elements with no
 * attributes at all, so nothing in it can load, link or run anything. That is why it may
 * go in with innerHTML; the page's CSP (no inline script) stands behind it. */
function renderBody(node, html) {
  node.innerHTML = html;
  if (Object.keys(state.emoticons).length) showEmoticons(node);
}

/** Tenant emoticons: `:shortcode:` in the text shows the tenant's image (12.20). */
function showEmoticons(root) {
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

function renderAttachments(msg) {
  const box = el("div", "attachments");
  for (const file of msg.attach) {
    const url = safeUrl(file.url);
    if (!url) continue;
    const sameOrigin = url.origin === location.origin;
    const image = sameOrigin && (IMAGE_MIME.test(file.mime || "") || IMAGE_NAME.test(file.name));
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

function updateMark(msg, item = msg.node) {
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

function setTime(conv, msg, ms) {
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

function refreshAttachments(msg) {
  if (!msg.node) return;
  const old = msg.node.querySelector(".attachments");
  if (old) old.replaceWith(renderAttachments(msg));
}

// -- rendering: contacts and the chat header ----------------------------------------------

function sortedConvs() {
  return [...state.convs.values()].sort(
    (a, b) => b.lastTime - a.lastTime || a.name.localeCompare(b.name),
  );
}

function renderContacts() {
  const convs = sortedConvs();
  ui.contactsEmpty.hidden = convs.length > 0;
  convs.forEach((conv, index) => {
    if (!conv.item) conv.item = makeContactItem(conv);
    updateContactItem(conv);
    if (ui.contacts.children[index] !== conv.item) {
      ui.contacts.insertBefore(conv.item, ui.contacts.children[index] || null);
    }
  });
  const total = convs.reduce((sum, conv) => sum + conv.unread, 0);
  document.title = total ? `(${total}) Switchboard` : "Switchboard";
}

function makeContactItem(conv) {
  const item = el("li");
  const button = el("button", "contact");
  button.type = "button";
  button.dataset.sip = conv.sip;
  const avatar = el("span", "avatar");
  avatar.setAttribute("aria-hidden", "true");
  avatar.append(el("span", "initials"), el("span", "presence-dot"));
  const main = el("span", "contact-main");
  main.append(el("span", "contact-name"), el("span", "contact-sub"));
  const side = el("span", "contact-side");
  side.append(el("span", "contact-time"), el("span", "badge"));
  button.append(avatar, main, side);
  button.addEventListener("click", () => openChat(conv));
  item.append(button);
  return item;
}

function updateContactItem(conv) {
  const button = conv.item.firstChild;
  const [avatar, main, side] = button.children;
  avatar.className = `avatar ${avatarClass(conv.sip)}`;
  avatar.children[0].textContent = initials(conv.name);
  avatar.children[1].className = `presence-dot ${presenceClass(conv.presence)}`;
  main.children[0].textContent = conv.name;
  const sub = main.children[1];
  sub.classList.toggle("is-typing", conv.typing);
  sub.textContent = conv.typing ? "typing…" : conv.lastText || presenceText(conv.presence) || conv.sip;
  side.children[0].textContent = conv.lastTime ? formatTime(conv.lastTime) : "";
  const badge = side.children[1];
  button.classList.toggle("has-unread", conv.unread > 0);
  badge.textContent = conv.unread > 99 ? "99+" : String(conv.unread);
  badge.hidden = conv.unread === 0;
  const status = presenceText(conv.presence);
  const unread = conv.unread ? `, ${conv.unread} unread` : "";
  button.setAttribute("aria-label", `${conv.name}${status ? `, ${status}` : ""}${unread}`);
  if (conv === state.open) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
}

function renderHeader() {
  const conv = state.open;
  if (!conv) return;
  ui.chatName.textContent = conv.name;
  const status = presenceText(conv.presence);
  ui.chatStatus.textContent = conv.dn !== conv.sip ? `${conv.sip}${status ? ` · ${status}` : ""}` : status;
  setAvatar(ui.chatAvatar, ui.chatInitials, ui.chatDot, conv.name, conv.sip, conv.presence);
}

function renderTyping() {
  const conv = state.open;
  ui.typing.textContent = conv && conv.typing ? `${conv.name} is typing…` : "";
  ui.typing.classList.toggle("active", Boolean(conv && conv.typing));
}

function renderNotice() {
  const conv = state.open;
  const text = conv ? conv.notice : "";
  ui.noticeText.textContent = text;
  ui.notice.hidden = !text;
}

function setNotice(conv, text) {
  conv.notice = text;
  if (conv === state.open) renderNotice();
}

function renderMe() {
  const presence = { status: "open", activity: state.activity };
  setAvatar(ui.meAvatar, ui.meInitials, ui.meDot, state.me.sip, state.me.sip, presence);
  ui.meName.textContent = `${state.me.sip}@${state.me.domain}`;
  ui.meStatus.value = state.activity;
}

// -- the open chat ------------------------------------------------------------------------

function openChat(conv, { focus = true } = {}) {
  const previous = state.open;
  if (previous && previous !== conv) {
    previous.draft = ui.input.value;
    previous.scrollTop = ui.messages.scrollTop;
    previous.atBottom = isAtBottom();
    stopTyping(previous);
  }
  state.open = conv;
  ui.app.classList.add("chat-open");
  ui.chatEmpty.hidden = true;
  ui.chatPane.hidden = false;
  if (previous !== conv) {
    const current = ui.messages.querySelector(".message-list");
    if (current) current.remove();
    ui.messages.append(conv.list);
    ui.input.value = conv.draft;
    closeEmoji(false);
  }
  conv.unread = 0;
  renderHeader();
  renderTyping();
  renderNotice();
  renderHistoryStatus();
  renderContacts();
  if (conv.atBottom) scrollToBottom();
  else ui.messages.scrollTop = conv.scrollTop;
  ui.attachButton.hidden = !state.licensed;
  if (state.licensed && !conv.historyLoaded) loadHistory(conv, false);
  else markRead(conv);
  if (focus) ui.input.focus();
}

function closeChat() {
  if (state.open) {
    state.open.draft = ui.input.value;
    stopTyping(state.open);
  }
  ui.app.classList.remove("chat-open");
  const conv = state.open;
  if (isPhone()) {
    // on a phone the list comes back; the chat stays selected for a wide screen
    if (conv && conv.item) conv.item.firstChild.focus();
  }
}

function isAtBottom() {
  const box = ui.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

let stickToBottom = true;

function keepAtBottom() {
  if (stickToBottom) scrollToBottom();
}

/** Is this conversation in front of the user's eyes (so what arrives in it is read)? */
function visible(conv) {
  const shown = !isPhone() || ui.app.classList.contains("chat-open"); // one pane on a phone
  return conv === state.open && document.visibilityState === "visible" && shown;
}

// -- the call of a conversation -----------------------------------------------------------

function attachCall(conv, call) {
  state.callConv.set(call, conv);
  state.callsByNumber.set(call.number, call);
  const current = liveCall(conv);
  if (!current || current === call || call.incoming || current.hubAnswered) conv.call = call;
}

function convOf(call) {
  return state.callConv.get(call) || null;
}

/** The call to send on: the live one, or a new one carrying `first` in its setup. */
function callFor(conv, first) {
  let call = liveCall(conv);
  if (call && call.hubAnswered && conv.presence && conv.presence.status === "open") {
    // the hub answered for them while they were away (§7.5); they are back: ring them
    call.release();
    call = null;
  }
  if (call) return { call, placed: false };
  call = state.client.chat(conv.sip, first ? { first } : {});
  attachCall(conv, call);
  conv.call = call;
  return { call, placed: true };
}

function tooBig(html) {
  return new TextEncoder().encode(html).length > MAX_MESSAGE_BYTES;
}

function send(conv, html, attach = []) {
  const msg = makeMsg({
    mine: true,
    author: state.me.sip,
    html,
    attach: attach.map((file) => ({ ...file })),
    state: "sending",
  });
  transmit(conv, msg);
  addMessage(conv, msg, { live: true });
  afterOwnMessage(conv);
  return msg;
}

function transmit(conv, msg) {
  const attach = msg.attach.map((file) => encodeAttach(file.url)).join(" ");
  const first = { mime: "text/html", data: msg.html };
  if (attach) first.attach = attach;
  const { call, placed } = callFor(conv, first);
  if (placed) {
    msg.id = call.firstId;
  } else {
    msg.id = call.send(msg.html, { mime: "text/html", attach: attach || null, id: msg.retryOn === call ? msg.id : null });
  }
  msg.call = call;
  if (msg.key) conv.byKey.set(`id:${msg.id}`, msg); // a retry: already on screen
  conv.sentTyping = 0; // the hub ends our typing with the message
  clearTimeout(conv.typingIdle);
  setNotice(conv, "");
}

function resend(conv, msg) {
  msg.retryOn = msg.call;
  msg.state = "sending";
  updateMark(msg);
  transmit(conv, msg);
}

function afterOwnMessage(conv) {
  stickToBottom = true;
  if (conv === state.open) scrollToBottom();
  renderContacts();
}

// -- typing -------------------------------------------------------------------------------

function typed(conv) {
  const text = ui.input.value;
  if (!text.trim()) return stopTyping(conv);
  const now = Date.now();
  clearTimeout(conv.typingIdle);
  conv.typingIdle = setTimeout(() => stopTyping(conv), TYPING_IDLE_MS);
  if (conv.sentTyping && now - conv.sentTyping < TYPING_RENEW_MS) return;
  let call = liveCall(conv);
  if (!call && conv.presence && conv.presence.status === "open") {
    call = callFor(conv, null).call; // ring them now: the typing goes out once they answer
  }
  if (call && call.state === "connected") {
    call.typing(true);
    conv.sentTyping = now;
  }
}

function stopTyping(conv) {
  clearTimeout(conv.typingIdle);
  if (!conv.sentTyping) return;
  conv.sentTyping = 0;
  const call = liveCall(conv);
  if (call && call.state === "connected") call.typing(false);
}

// -- history and read marks (licensed users, PROTOCOL §7.4) --------------------------------

function renderHistoryStatus() {
  const conv = state.open;
  if (!conv) return;
  const text = conv.loading ? "Loading earlier messages…" : conv.historyLoaded && !conv.more && conv.messages.length ? "Start of the conversation" : "";
  ui.historyStatus.textContent = text;
  ui.historyStatus.hidden = !text;
}

function historyMsg(conv, stored) {
  const mine = stored.author === state.me.sip;
  const attach = (stored.attached || []).map((file) => ({ url: file.url, name: file.name }));
  const text = htmlToText(stored.text);
  if (attach.length === 1 && text) attach[0].name = text; // we send the file name as text
  return makeMsg({
    rowId: stored.id,
    callId: stored.callId || null,
    seq: stored.seq || 0,
    mine,
    author: stored.author,
    dn: stored.dn,
    html: stored.text || "",
    attach,
    time: stored.timestamp,
    state: mine ? (stored.read ? "seen" : "sent") : null,
    needsFiles: attach.length > 0,
  });
}

async function loadHistory(conv, older) {
  if (conv.loading) return;
  conv.loading = true;
  renderHistoryStatus();
  const body = { sip: conv.sip, count: HISTORY_PAGE };
  if (older && conv.oldestId !== null) body.older = conv.oldestId;
  const box = ui.messages;
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    const { inds, result } = await state.client.messages("ReadChat", body);
    for (const ind of inds) {
      const stored = ind.msg;
      if (!stored) continue;
      if (conv.oldestId === null || stored.id < conv.oldestId) conv.oldestId = stored.id;
      const known = stored.callId && stored.seq ? conv.byKey.get(`${stored.callId}:${stored.seq}`) : null;
      if (known) {
        known.rowId = stored.id;
        if (known.mine && stored.read) {
          known.state = "seen";
          updateMark(known);
        }
        continue;
      }
      const msg = historyMsg(conv, stored);
      if (addMessage(conv, msg) && msg.needsFiles) fetchAttachments(conv, msg);
    }
    conv.more = Boolean(result.more);
    conv.historyLoaded = true;
  } catch (error) {
    setNotice(conv, `The history could not be loaded (${error.code || error.message}).`);
  } finally {
    conv.loading = false;
  }
  renderHistoryStatus();
  renderContacts();
  if (conv === state.open) {
    if (older) box.scrollTop = box.scrollHeight - fromBottom;
    else if (conv.atBottom) scrollToBottom();
    if (!older) markRead(conv);
    // a short history may not fill the window: there is no scrolling to ask for more then
    if (conv.more && box.scrollHeight <= box.clientHeight + 10) loadHistory(conv, true);
  }
}

/** Stored attachments: urls signed for this session (`Attachments`, §8.4). */
async function fetchAttachments(conv, msg) {
  try {
    const { result } = await state.client.messages("Attachments", { id: msg.rowId });
    const files = result.files || [];
    if (!files.length) return;
    const text = htmlToText(msg.html);
    msg.attach = files.map((file) => ({
      url: file.url,
      name: files.length === 1 && text ? text : file.name,
      mime: file.mime,
      size: file.size,
    }));
    refreshAttachments(msg);
  } catch {
    // keep the url in the message; it works while the upload buffer lives
  }
}

/** Tell the service (and so the peer, im_seen) that we read up to the newest message.
 * One at a time per conversation; what arrives meanwhile is marked right after. */
async function markRead(conv) {
  if (conv.marking) {
    conv.markAgain = true;
    return;
  }
  conv.marking = true;
  try {
    await markNewest(conv);
  } catch {
    // the service is away: the next message or the next opening marks it
  } finally {
    conv.marking = false;
  }
  if (conv.markAgain) {
    conv.markAgain = false;
    markRead(conv);
  }
}

async function markNewest(conv) {
  for (let attempt = 0; attempt < 8; attempt += 1) {
    if (!state.licensed || !visible(conv)) return;
    const newest = [...conv.messages].reverse().find((msg) => !msg.mine && !msg.system);
    if (!newest) return;
    if (!newest.rowId && newest.callId && newest.seq) {
      // a live message: find its row (the hub stores it on its way; it may not be there yet)
      const { inds } = await state.client.messages("ReadChat", { sip: conv.sip, count: 10 });
      const row = inds.map((ind) => ind.msg).find((m) => m && m.callId === newest.callId && m.seq === newest.seq);
      if (row) newest.rowId = row.id;
    }
    if (newest.rowId) {
      if (newest.rowId > conv.readUpTo) {
        conv.readUpTo = newest.rowId;
        await state.client.messages("SetRead", { id: newest.rowId });
      }
      return;
    }
    if (!newest.callId || !newest.seq) return; // not a stored message (e.g. volatile chat)
    await new Promise((resolve) => setTimeout(resolve, 150 * (attempt + 1)));
  }
}

// -- files (licensed users, PROTOCOL §8) ---------------------------------------------------

function uploadBytes(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    state.upload = xhr;
    xhr.open("POST", url);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch {
        // not JSON: the status says enough
      }
      if (xhr.status === 201) resolve(body);
      else reject(Object.assign(new Error(body.text || `upload failed (${xhr.status})`), { status: xhr.status, body }));
    });
    xhr.addEventListener("error", () => reject(new Error("the upload failed (network)")));
    xhr.addEventListener("abort", () => reject(Object.assign(new Error("cancelled"), { cancelled: true })));
    xhr.send(file);
  });
}

async function sendFile(conv, file) {
  if (!state.licensed) {
    setNotice(conv, "Sending files needs the messages licence.");
    return;
  }
  if (state.upload) {
    setNotice(conv, "Wait for the upload that is running to finish.");
    return;
  }
  ui.uploadName.textContent = `Uploading ${file.name}`;
  ui.uploadProgress.value = 0;
  ui.upload.hidden = false;
  state.upload = true;
  try {
    const mime = file.type || "application/octet-stream";
    const { result } = await state.client.messages("CreateFileBuffer", { name: file.name, size: file.size, mime });
    await uploadBytes(result.url, file, (share) => {
      ui.uploadProgress.value = Math.round(share * 100);
    });
    ui.uploadProgress.value = 100;
    send(conv, escapeHtml(file.name), [{ url: result.url, name: file.name, mime, size: file.size }]);
  } catch (error) {
    if (!error.cancelled) setNotice(conv, uploadError(file, error));
  } finally {
    state.upload = null;
    ui.upload.hidden = true;
  }
}

function uploadError(file, error) {
  const body = error.body || (error.frame || {});
  if (error.code === "too_big" || error.status === 413 || body.code === "too_big") {
    const max = body.max_bytes;
    return `${file.name} is too big to send${max !== undefined ? ` (at most ${formatBytes(max)} left)` : ""}.`;
  }
  if (error.code === "unlicensed") return "Sending files needs the messages licence.";
  if (error.status === 410) return "The upload took too long; try again.";
  return `${file.name} could not be sent: ${error.message}.`;
}

// -- protocol events ----------------------------------------------------------------------

const CAUSE_TEXT = {
  1: (conv) => `There is no user “${conv.sip}”`,
  17: (conv) => `${conv.name} is busy`,
  18: (conv) => `${conv.name} is offline`,
  19: (conv) => `${conv.name} did not answer`,
  21: (conv) => `You may not chat with ${conv.name}`,
  41: (conv) => `The connection to ${conv.name} was lost`,
  47: () => "Too many chats are open",
};

function onCall({ call }) {
  if (call.presence) return; // our own subscriptions (watch) and their resumes
  if (call.queue) return; // a support chat: the agent console takes those, not this app
  const conv = conversation(call.peer.sip, call.peer.dn);
  attachCall(conv, call);
  if (call.incoming && call.state === "offered") call.answer();
  renderContacts();
  if (conv === state.open) renderHeader();
}

function onConnected({ call }) {
  if (call.presence) return;
  const conv = convOf(call);
  if (!conv) return;
  if (call.peer.dn && call.peer.dn !== call.peer.sip && call.peer.sip === conv.sip) conversation(conv.sip, call.peer.dn);
  if (conv === state.open) {
    renderHeader();
    if (ui.input.value.trim() && conv.call === call) {
      conv.sentTyping = 0;
      typed(conv); // we were typing while it rang
    }
  }
  renderContacts();
}

function onMessage({ call, message }) {
  const conv = convOf(call);
  if (!conv) return;
  if (message.mine && message.id) {
    const own = findOwn(conv, message.id);
    if (own) {
      // our message replayed after a resume: we know it, learn its place
      own.seq = message.seq || own.seq;
      own.callId = call.callId || own.callId;
      rekey(conv, own);
      return;
    }
  }
  const attach = String(message.attach || "")
    .split(/\s+/)
    .filter(Boolean)
    .map((url, _, all) => {
      const text = htmlToText(message.data);
      let name = text;
      if (all.length > 1 || !text) {
        try {
          name = decodeURIComponent(new URL(url, location.href).pathname.split("/").pop()) || url;
        } catch {
          name = url;
        }
      }
      return { url, name };
    });
  const msg = makeMsg({
    callId: call.callId,
    seq: message.seq || 0,
    mine: Boolean(message.mine),
    system: message.system,
    author: message.sender || "",
    dn: message.sender_dn || "",
    html: message.data || "",
    attach,
    time: message.time ? message.time * 1000 : Date.now(),
    state: message.mine ? "delivered" : null,
  });
  if (message.sender === conv.sip && message.sender_dn) conversation(conv.sip, message.sender_dn);
  const wasAtBottom = conv === state.open && isAtBottom();
  if (!addMessage(conv, msg, { live: true })) return;
  if (!msg.mine && !msg.system) {
    setPeerTyping(conv, false);
    if (visible(conv)) markRead(conv);
    else conv.unread += 1;
    announce(`${msg.dn || conv.name}: ${htmlToText(msg.html) || (msg.attach[0] ? `sent ${msg.attach[0].name}` : "")}`);
  }
  if (conv === state.open && (wasAtBottom || msg.mine)) scrollToBottom();
  renderContacts();
}

function onAck({ call, ack }) {
  const conv = convOf(call);
  if (!conv) return;
  let msg = findOwn(conv, ack.id);
  if (!msg && ack.seq) msg = conv.messages.find((m) => m.mine && m.call === call && m.seq === ack.seq) || null;
  if (!msg) return;
  if (ack.seq) {
    msg.seq = ack.seq;
    msg.callId = call.callId || msg.callId;
    rekey(conv, msg);
  }
  if (ack.time) setTime(conv, msg, ack.time * 1000); // the hub's clock, as everyone's
  if (ack.state === "stored") call.hubAnswered = true; // nobody took it: it waits in storage
  if (msg.state === "seen" && ack.state === "delivered") return;
  msg.state = ack.state in STATE_MARK ? ack.state : msg.state;
  updateMark(msg);
  if (ack.state === "not_delivered" && call.state !== "released") {
    setNotice(conv, `${conv.name} did not get the message; it was not delivered.`);
  }
}

function onSeen({ call, seq }) {
  const conv = convOf(call);
  if (!conv) return;
  const target = conv.messages.find((m) => m.mine && m.callId === call.callId && m.seq === seq);
  for (const msg of conv.messages) {
    if (!msg.mine || !["delivered", "sent", "stored"].includes(msg.state)) continue;
    const upTo = msg.callId === call.callId ? msg.seq <= seq : target ? !comesBefore(target, msg) : false;
    if (upTo) {
      msg.state = "seen";
      updateMark(msg);
    }
  }
}

function setPeerTyping(conv, typing) {
  clearTimeout(conv.typingTimer);
  conv.typing = typing;
  if (typing) conv.typingTimer = setTimeout(() => setPeerTyping(conv, false), PEER_TYPING_MS);
  if (conv === state.open) renderTyping();
  if (conv.item) updateContactItem(conv);
}

function onTyping({ call, sip, typing }) {
  const conv = convOf(call);
  if (!conv || (sip && sip === state.me.sip)) return;
  setPeerTyping(conv, Boolean(typing));
}

function onReleased({ call, cause }) {
  if (call.presence) {
    const sip = call.peer.sip;
    if (state.watches.get(sip) === call) state.watches.delete(sip);
    const conv = state.convs.get(sip);
    if (conv && cause === 1) {
      conv.presence = { unknown: true };
      renderContacts();
      if (conv === state.open) renderHeader();
    }
    return;
  }
  const conv = convOf(call);
  if (!conv) return;
  if (conv.call === call) {
    conv.call = null;
    conv.sentTyping = 0;
  }
  setPeerTyping(conv, false);
  // what never got through on this call: the hub said not_delivered, or said nothing
  const lost = conv.messages.filter((m) => m.mine && m.call === call && ["sending", "held", "not_delivered"].includes(m.state));
  for (const msg of lost) {
    msg.state = "not_delivered";
    updateMark(msg);
  }
  if (lost.length) {
    const why = (CAUSE_TEXT[cause] || ((c) => `The chat with ${c.name} ended`))(conv);
    setNotice(conv, `${why}; the message was not delivered.`);
  } else if (cause === 1 || cause === 21) {
    setNotice(conv, `${CAUSE_TEXT[cause](conv)}.`);
  }
}

function onPresence({ sip, status, activity, note, badge }) {
  if (sip === state.me.sip) {
    if (status === "open" && activity && activity !== state.activity) {
      state.activity = activity;
      renderMe();
    }
    if (badge !== null && badge !== undefined && badge !== state.badge) {
      // our unread count moved (e.g. messages stored for us): which chats have them?
      const grew = state.badge !== null && badge > state.badge;
      state.badge = badge;
      if (grew && state.licensed) {
        clearTimeout(state.badgeTimer);
        state.badgeTimer = setTimeout(readChats, 300);
      }
    }
    return;
  }
  const conv = state.convs.get(sip);
  if (!conv) return;
  conv.presence = { status, activity, note: note || "" };
  const call = liveCall(conv);
  if (status === "open" && call && call.hubAnswered) {
    call.release(); // they are back: the next message rings their devices (§12.9)
    conv.call = null;
  }
  renderContacts();
  if (conv === state.open) renderHeader();
}

function onError({ message }) {
  const conv = state.open;
  const code = message.code;
  if (code === "rate_limited") {
    const wait = Math.max(1, Math.ceil((message.retry_after_ms || 1000) / 1000));
    for (const c of state.convs.values()) {
      for (const msg of c.messages) {
        if (msg.mine && msg.state === "sending") {
          msg.state = "failed";
          updateMark(msg);
        }
      }
    }
    if (conv) setNotice(conv, `You are sending too fast. Wait ${wait} s, then retry.`);
    return;
  }
  const call = message.call !== undefined ? state.callsByNumber.get(message.call) || null : null;
  if (code === "message_too_big") {
    const target = call ? convOf(call) : conv;
    if (target) {
      const msg = [...target.messages].reverse().find((m) => m.mine && m.state === "sending");
      if (msg) {
        msg.state = "too_big";
        updateMark(msg);
      }
      setNotice(target, "The message is too big to send; it was not delivered.");
    }
    return;
  }
  if (code === "bad_state") {
    // we wrote on a call that had just ended (its rel crossed our message): a retry
    // places a new one. Typing on such a call needs no word.
    const target = call ? convOf(call) : null;
    const refused = target ? target.messages.filter((m) => m.mine && m.call === call && m.state === "sending") : [];
    for (const msg of refused) {
      msg.state = "failed";
      updateMark(msg);
    }
    if (refused.length) setNotice(target, "The chat had just ended; press Retry to send the message again.");
    return;
  }
  if (conv && message.text) setNotice(conv, `The server said: ${message.text}`);
}

function onStatus({ status, error }) {
  if (state.loggingOut) return;
  if (status === "reconnecting") {
    state.wasReconnecting = true;
    showBanner("Connection lost. Reconnecting…", "warn");
  } else if (status === "online") {
    if (state.wasReconnecting) {
      state.wasReconnecting = false;
      showBanner("Back online.", "ok");
      setTimeout(() => {
        if (state.client && state.client.status === "online") hideBanner();
      }, 2500);
      resynchronize();
    }
  } else if (status === "offline" && state.me) {
    const why = error ? ` (${error})` : "";
    showBanner(`Disconnected${why}.`, "error", true);
  }
}

/** After a reconnect: presence again, and what a lost registration may have missed. */
function resynchronize() {
  const client = state.client;
  if (!state.selfWatch || state.selfWatch.state === "released") state.selfWatch = client.watch(state.me.sip);
  for (const conv of state.convs.values()) watch(conv);
  if (!client.resumed) {
    if (state.activity !== "available") client.publish(state.activity);
    if (state.licensed) {
      readChats();
      if (state.open) {
        state.open.historyLoaded = false;
        loadHistory(state.open, false);
      }
    }
  }
}

function showBanner(text, kind, action = false) {
  ui.bannerText.textContent = text;
  ui.banner.className = `banner ${kind}`;
  ui.banner.hidden = false;
  ui.bannerAction.hidden = !action;
}

function hideBanner() {
  ui.banner.hidden = true;
}

// -- login --------------------------------------------------------------------------------

async function readChats() {
  try {
    const { inds } = await state.client.messages("ReadChats", {});
    state.licensed = true;
    for (const ind of inds) {
      if (!ind.sip || ind.grp) continue; // groups are not in this first version
      const conv = conversation(ind.sip, ind.dn);
      if (ind.timestamp && ind.timestamp > conv.lastTime) conv.lastTime = ind.timestamp;
      if (conv !== state.open || !visible(conv)) conv.unread = Math.max(conv.unread, ind.unread || 0);
    }
  } catch (error) {
    state.licensed = error.code !== "unlicensed";
  }
  ui.attachButton.hidden = !state.licensed;
  renderContacts();
}

async function loadEmoticons() {
  try {
    const answer = await fetch(`/api/emoticons?domain=${encodeURIComponent(state.me.domain)}`);
    if (!answer.ok) return;
    const { emoticons } = await answer.json();
    state.emoticons = {};
    for (const [code, path] of Object.entries(emoticons || {})) {
      const url = safeUrl(path);
      if (url && url.origin === location.origin) state.emoticons[code] = url.pathname;
    }
    buildEmoticons();
    for (const conv of state.convs.values()) {
      for (const msg of conv.messages) {
        const body = msg.node && msg.node.querySelector(".body, .system-text");
        if (body) renderBody(body, msg.html);
      }
    }
  } catch {
    // no custom emoticons: the Unicode ones still work
  }
}

function loginErrorText(error) {
  const text = error.message || "";
  if (text === "login failed") return "Wrong user name or password.";
  if (text === "throttled") return "Too many attempts. Wait a minute, then try again.";
  if (text === "no valid challenge") return "The sign-in took too long. Try again.";
  return `Could not connect to the server${text ? ` (${text})` : ""}.`;
}

async function login(event) {
  event.preventDefault();
  const sip = ui.loginUser.value.trim();
  const password = ui.loginPassword.value;
  const domain = ui.loginDomain.value.trim();
  if (!sip || !password) {
    ui.loginError.textContent = "Enter your user name and password.";
    (sip ? ui.loginPassword : ui.loginUser).focus();
    return;
  }
  ui.loginError.textContent = "";
  ui.loginSubmit.disabled = true;
  ui.loginSubmit.textContent = "Signing in…";
  const client = new Client({ sip, password, domain });
  client.addEventListener("status", (e) => onStatus(e.detail));
  client.addEventListener("call", (e) => onCall(e.detail));
  client.addEventListener("connected", (e) => onConnected(e.detail));
  client.addEventListener("message", (e) => onMessage(e.detail));
  client.addEventListener("ack", (e) => onAck(e.detail));
  client.addEventListener("typing", (e) => onTyping(e.detail));
  client.addEventListener("seen", (e) => onSeen(e.detail));
  client.addEventListener("released", (e) => onReleased(e.detail));
  client.addEventListener("presence", (e) => onPresence(e.detail));
  client.addEventListener("error", (e) => onError(e.detail));
  state.client = client;
  state.me = { sip, domain: domain || "" };
  try {
    await client.connect();
  } catch (error) {
    state.client = null;
    state.me = null;
    ui.loginError.textContent = loginErrorText(error);
    ui.loginSubmit.disabled = false;
    ui.loginSubmit.textContent = "Sign in";
    ui.loginPassword.select();
    ui.loginPassword.focus();
    return;
  }
  state.me.domain = client.domain;
  try {
    localStorage.setItem("switchboard:last-user", JSON.stringify({ sip, domain }));
  } catch {
    // private mode: nothing to remember
  }
  ui.loginPassword.value = "";
  ui.login.hidden = true;
  ui.app.hidden = false;
  renderMe();
  state.selfWatch = client.watch(sip); // our own presence, and our unread badge
  loadContacts();
  renderContacts();
  loadEmoticons();
  await readChats();
  for (const conv of state.convs.values()) watch(conv);
  ui.addSip.focus();
}

function logout() {
  state.loggingOut = true;
  if (state.client) state.client.close();
  // a fresh page forgets every conversation, timer and listener of this login
  location.reload();
}

// -- emoji --------------------------------------------------------------------------------

function buildEmoji() {
  for (const [emoji, name] of EMOJI) {
    const button = el("button", "emoji", emoji);
    button.type = "button";
    button.setAttribute("aria-label", name);
    button.title = name;
    button.addEventListener("click", () => insertText(emoji));
    ui.emojiGrid.append(button);
  }
}

function buildEmoticons() {
  ui.emoticonGrid.replaceChildren();
  const codes = Object.keys(state.emoticons);
  ui.emoticonGrid.hidden = ui.emoticonTitle.hidden = codes.length === 0;
  for (const code of codes) {
    const button = el("button", "emoji");
    button.type = "button";
    button.setAttribute("aria-label", `:${code}:`);
    button.title = `:${code}:`;
    const image = el("img", "emoticon");
    image.src = state.emoticons[code];
    image.alt = "";
    button.append(image);
    button.addEventListener("click", () => insertText(`:${code}:`));
    ui.emoticonGrid.append(button);
  }
}

function insertText(text) {
  const input = ui.input;
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, "end");
  closeEmoji(false);
  input.focus();
  if (state.open) typed(state.open);
}

function openEmoji() {
  ui.emojiPicker.hidden = false;
  ui.emojiButton.setAttribute("aria-expanded", "true");
  ui.emojiGrid.querySelector("button").focus();
}

function closeEmoji(returnFocus = true) {
  if (ui.emojiPicker.hidden) return;
  ui.emojiPicker.hidden = true;
  ui.emojiButton.setAttribute("aria-expanded", "false");
  if (returnFocus) ui.emojiButton.focus();
}

function emojiKeys(event) {
  if (event.key === "Escape") {
    event.preventDefault();
    closeEmoji();
    return;
  }
  const columns = getComputedStyle(ui.emojiGrid).gridTemplateColumns.split(" ").length;
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
  if (!(event.key in moves)) return;
  const buttons = [...ui.emojiPicker.querySelectorAll("button")];
  const index = buttons.indexOf(document.activeElement);
  if (index < 0) return;
  event.preventDefault();
  const next = Math.min(buttons.length - 1, Math.max(0, index + moves[event.key]));
  buttons[next].focus();
}

// -- wiring -------------------------------------------------------------------------------

function addContact(event) {
  event.preventDefault();
  const sip = ui.addSip.value.trim();
  ui.addError.textContent = "";
  if (!sip) return;
  if (/\s/.test(sip)) {
    ui.addError.textContent = "A user name has no spaces.";
    return;
  }
  if (sip === state.me.sip) {
    ui.addError.textContent = "That is you.";
    return;
  }
  const conv = conversation(sip);
  ui.addSip.value = "";
  renderContacts();
  openChat(conv);
}

function submitMessage() {
  const conv = state.open;
  if (!conv) return;
  const text = ui.input.value;
  if (!text.trim()) return;
  const html = textToHtml(text);
  if (tooBig(html)) {
    // the hub would refuse it (message_too_big): keep it here to be shortened
    setNotice(conv, `The message is too long to send (at most ${formatBytes(MAX_MESSAGE_BYTES)}); shorten it or send it in parts.`);
    return;
  }
  ui.input.value = "";
  conv.draft = "";
  send(conv, html);
}

function wire() {
  buildEmoji();
  ui.loginForm.addEventListener("submit", login);
  ui.addForm.addEventListener("submit", addContact);
  ui.logout.addEventListener("click", logout);
  ui.bannerAction.addEventListener("click", logout);
  ui.back.addEventListener("click", closeChat);
  ui.noticeClose.addEventListener("click", () => state.open && setNotice(state.open, ""));
  ui.meStatus.addEventListener("change", () => {
    state.activity = ui.meStatus.value;
    renderMe();
    if (state.client && state.client.status === "online") state.client.publish(state.activity);
  });
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitMessage();
    ui.input.focus();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitMessage();
    } else if (event.key === "Escape" && !ui.emojiPicker.hidden) {
      closeEmoji();
    } else if (event.key === "Escape" && isPhone()) {
      closeChat();
    }
  });
  ui.input.addEventListener("input", () => state.open && typed(state.open));
  ui.emojiButton.addEventListener("click", () => (ui.emojiPicker.hidden ? openEmoji() : closeEmoji()));
  ui.emojiPicker.addEventListener("keydown", emojiKeys);
  document.addEventListener("click", (event) => {
    if (!ui.emojiPicker.hidden && !ui.emojiPicker.contains(event.target) && !ui.emojiButton.contains(event.target)) {
      closeEmoji(false);
    }
  });
  ui.attachButton.addEventListener("click", () => ui.fileInput.click());
  ui.fileInput.addEventListener("change", () => {
    const file = ui.fileInput.files[0];
    ui.fileInput.value = "";
    if (file && state.open) sendFile(state.open, file);
  });
  ui.uploadCancel.addEventListener("click", () => {
    if (state.upload && state.upload.abort) state.upload.abort();
  });
  ui.messages.addEventListener("scroll", () => {
    stickToBottom = isAtBottom();
    const conv = state.open;
    if (conv && state.licensed && conv.more && !conv.loading && ui.messages.scrollTop < 120) loadHistory(conv, true);
  });
  document.addEventListener("visibilitychange", () => {
    const conv = state.open;
    if (!conv || !visible(conv)) return;
    conv.unread = 0; // what came while the page was hidden is read now
    renderContacts();
    markRead(conv);
  });
  try {
    const last = JSON.parse(localStorage.getItem("switchboard:last-user") || "null");
    if (last && last.sip) {
      ui.loginUser.value = last.sip;
      ui.loginDomain.value = last.domain || "";
    }
  } catch {
    // nothing remembered
  }
  (ui.loginUser.value ? ui.loginPassword : ui.loginUser).focus();
}

wire();
