// The support console (PROTOCOL §9): an agent's board of a queue and their chats.
//
// The board is the Queue API's Subscribe (QueueInd, then ChatWaiting / ChatTaken /
// ChatTransferred / ChatClosed on the same src). Chats the hub offers ring as incoming
// calls (Accept = conn); any waiting chat can be taken from the board (Take). Each chat
// the agent has is a column with its context, messages, typing, Transfer and Close.

import { Client, CAUSES } from "./switchboard.js";
import { messageFragment as fragment } from "./html.js";
import { initials } from "./initials.js";

const $ = (id) => document.getElementById(id);

// -- small helpers ----------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

function escapeHtml(value) {
  const div = document.createElement("div");
  div.textContent = value;
  return div.innerHTML;
}


function hue(text) {
  let sum = 0;
  for (const char of text || "") sum = (sum * 31 + char.charCodeAt(0)) % 360;
  return sum;
}

function avatar(name, extra = "") {
  const element = el("span", { class: `avatar ${extra}`, "aria-hidden": "true", text: initials(name) });
  element.dataset.hue = String(Math.floor(hue(name) / 45)); // one of 8 colours
  return element;
}

let skew = 0; // the hub's clock minus ours (ms), learnt from acknowledgements

function elapsed(since) {
  const minutes = Math.floor(Math.max(0, Date.now() + skew - since) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function leftNote(goneSince) {
  const ago = elapsed(goneSince);
  return ago === "just now" ? "visitor left just now" : `visitor left ${ago} ago`;
}

function clock(seconds) {
  const date = seconds ? new Date(seconds * 1000) : new Date(Date.now() + skew);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function safeUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url : null;
  } catch {
    return null;
  }
}

let toastTimer = null;

function toast(text, kind = "") {
  const box = $("toast");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, 4000);
}

// -- state ------------------------------------------------------------------------------

let client = null;
let queue = "support";
let subscription = 0; // which Subscribe the board shows (a newer one wins)
let boardSrc = null; // its src: the board's updates carry it
let activity = "available";
let registeredOnce = false;
// Chats are keyed by their confId: the conversation's id, the same on the board (§9.3) and
// on every device's leg of the call (§4.5), whose own callId differs.
const board = new Map(); // confId -> the board's chat object
const ringing = new Map(); // confId -> an offered Call of ours
const taking = new Set(); // confIds we asked to Take
const chats = new Map(); // confId -> ChatView

// -- one chat ---------------------------------------------------------------------------

const ACK_TEXT = { held: "held", delivered: "delivered", stored: "stored", not_delivered: "not delivered" };

class ChatView {
  constructor(call) {
    this.call = call;
    this.confId = call.confId;
    this.ids = new Map();
    this.seqs = new Set();
    this.closing = false;
    this.transferring = null;
    this.typingSent = 0;
    this.typingTimer = null;
    this.build();
    this.refresh();
  }

  get info() {
    return board.get(this.confId) || null;
  }

  get visitor() {
    const info = this.info;
    return {
      sip: (info && info.visitor.sip) || this.call.peer.sip,
      dn: (info && info.visitor.dn) || this.call.peer.dn,
    };
  }

  get context() {
    const info = this.info;
    return this.call.context || (info && info.context) || null;
  }

  build() {
    this.title = el("h3", {});
    this.sub = el("p", { class: "sub" });
    this.face = el("span", {});
    this.contextRow = el("div", { class: "context-row" });
    this.transferInput = el("input", {
      class: "transfer-input",
      placeholder: "agent or queue, e.g. bob or support",
      "aria-label": "Transfer to",
      list: `targets-${this.confId}`,
      required: true,
    });
    this.targets = el("datalist", { id: `targets-${this.confId}` });
    this.transferError = el("p", { class: "error", role: "alert", hidden: true });
    this.transferForm = el(
      "form",
      { class: "transfer-form", hidden: true, onsubmit: (event) => this.transfer(event) },
      this.transferInput,
      this.targets,
      el("button", { type: "submit", class: "primary small", text: "Transfer" }),
      el("button", { type: "button", class: "ghost small", text: "Cancel", onclick: () => this.toggleTransfer(false) }),
      this.transferError,
    );
    this.transferButton = el("button", {
      type: "button",
      class: "ghost small",
      text: "Transfer",
      onclick: () => this.toggleTransfer(this.transferForm.hidden),
    });
    this.closeButton = el("button", { type: "button", class: "danger small", text: "Close", onclick: () => this.close() });
    this.messages = el("ol", { class: "messages", "aria-live": "polite" });
    this.typingText = el("span", {});
    this.typingRow = el(
      "div",
      { class: "typing", hidden: true },
      el("span", { class: "dots", "aria-hidden": "true" }, el("i"), el("i"), el("i")),
      this.typingText,
    );
    this.endedText = el("span", {});
    this.endedRow = el(
      "div",
      { class: "ended", hidden: true, role: "status" },
      this.endedText,
      el("button", { type: "button", class: "ghost small", text: "Dismiss", onclick: () => this.remove() }),
    );
    this.text = el("textarea", { rows: "1", placeholder: "Reply…", "aria-label": "Reply", maxlength: "4000" });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) this.send(event);
    });
    this.text.addEventListener("input", () => this.typing());
    this.composer = el(
      "form",
      { class: "composer", onsubmit: (event) => this.send(event) },
      this.text,
      el("button", { type: "submit", class: "primary small send", text: "Send" }),
    );
    this.root = el(
      "section",
      { class: "chat", dataset: { confId: this.confId }, "aria-label": "Chat" },
      el(
        "header",
        { class: "chat-head" },
        this.face,
        el("div", { class: "who" }, this.title, this.sub),
        el("div", { class: "actions" }, this.transferButton, this.closeButton),
      ),
      this.contextRow,
      this.transferForm,
      this.messages,
      this.typingRow,
      this.endedRow,
      this.composer,
    );
    $("chats").append(this.root);
    $("chats-empty").hidden = true;
  }

  refresh() {
    const visitor = this.visitor;
    this.title.textContent = visitor.dn || visitor.sip;
    this.face.replaceWith((this.face = avatar(visitor.dn || visitor.sip)));
    const info = this.info;
    const since = info ? `started ${elapsed(info.since)}${elapsed(info.since) === "just now" ? "" : " ago"}` : "";
    this.sub.textContent = [this.call.queue ? this.call.queue.dn || this.call.queue.sip : queue, since]
      .filter(Boolean)
      .join(" · ");
    const context = this.context || {};
    const chips = [];
    if (context.product) chips.push(el("span", { class: "chip" }, el("b", { text: "Product" }), context.product));
    if (context.seller) chips.push(el("span", { class: "chip" }, el("b", { text: "Seller" }), context.seller));
    const url = context.url && safeUrl(context.url);
    if (url) {
      chips.push(
        el(
          "a",
          { class: "chip link", href: url.href, target: "_blank", rel: "noopener noreferrer", title: url.href },
          el("b", { text: "Page" }),
          `${url.host}${url.pathname === "/" ? "" : url.pathname}`,
        ),
      );
    } else if (context.url) chips.push(el("span", { class: "chip" }, el("b", { text: "Page" }), context.url));
    this.contextRow.replaceChildren(...chips);
    this.contextRow.hidden = chips.length === 0;
    const options = new Set([queue]);
    for (const chat of board.values()) if (chat.agent && chat.agent.sip !== client.sip) options.add(chat.agent.sip);
    this.targets.replaceChildren(...[...options].map((value) => el("option", { value })));
  }

  scroll() {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  add(message) {
    if (message.id && this.ids.has(message.id)) return null;
    if (message.seq && this.seqs.has(message.seq)) return null;
    if (message.seq) this.seqs.add(message.seq);
    let item;
    if (message.system) {
      this.lastAuthor = null;
      item = el(
        "li",
        { class: "msg system" },
        el("span", { class: "system-icon", "aria-hidden": "true", text: "!" }),
        el("div", { class: "system-body" }, el("strong", { text: "Inactivity warning" }), el("div", {}, fragment(message.data))),
      );
    } else {
      const visitorSip = this.visitor.sip;
      const kind = message.mine ? "mine" : message.sender === visitorSip || !message.sender ? "visitor" : "colleague";
      const meta = el("span", { class: "meta" }, el("span", { class: "time", text: clock(message.time) }));
      if (message.mine) meta.append(el("span", { class: "state", text: message.state ? ` · ${message.state}` : "" }));
      const author = message.mine ? client.sip : message.sender || "";
      const follows = this.lastAuthor === author; // a run of one author shows the name once
      this.lastAuthor = author;
      item = el(
        "li",
        { class: `msg ${kind}${follows ? " follows" : ""}` },
        kind === "mine" || follows ? null : el("span", { class: "author", text: message.sender_dn || message.sender || "" }),
        el("div", { class: "bubble" }, fragment(message.data)),
        meta,
      );
    }
    if (message.id) this.ids.set(message.id, item);
    this.messages.append(item);
    this.scroll();
    return item;
  }

  ack(ack) {
    if (ack.seq) this.seqs.add(ack.seq);
    const item = this.ids.get(ack.id);
    if (!item) return;
    item.dataset.state = ack.state;
    const state = item.querySelector(".state");
    if (state) state.textContent = ` · ${ACK_TEXT[ack.state] || ack.state}`;
    if (ack.time) item.querySelector(".time").textContent = clock(ack.time);
  }

  showTyping(on, name) {
    this.typingRow.hidden = !on;
    if (on) this.typingText.textContent = `${name || this.visitor.dn} is typing…`;
    if (on) this.scroll();
  }

  send(event) {
    event.preventDefault();
    const data = this.text.value.trim();
    if (!data || this.call.state !== "connected" || client.status !== "online") return;
    const id = this.call.send(data);
    this.add({ id, data: escapeHtml(data), mine: true, time: 0, state: "sending" });
    this.text.value = "";
    this.typingSent = 0;
    this.autosize();
  }

  autosize() {
    this.text.style.height = "auto";
    this.text.style.height = `${Math.min(this.text.scrollHeight, 140)}px`;
  }

  typing() {
    this.autosize();
    if (this.call.state !== "connected" || client.status !== "online") return;
    const now = Date.now();
    if (this.text.value.trim() && now - this.typingSent > 3000) {
      this.call.typing(true);
      this.typingSent = now;
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => {
      if (this.typingSent && this.call.state === "connected" && client.status === "online") this.call.typing(false);
      this.typingSent = 0;
    }, 4000);
  }

  toggleTransfer(open) {
    this.transferForm.hidden = !open;
    this.transferError.hidden = true;
    if (open) this.transferInput.focus();
  }

  async transfer(event) {
    event.preventDefault();
    const to = this.transferInput.value.trim();
    if (!to) return;
    this.transferring = to;
    try {
      await client.request("Queue", "Transfer", { confId: this.confId, to });
      if (this.call.state === "released") this.remove();
      toast(`Chat with ${this.visitor.dn} transferred to ${to}`);
    } catch (error) {
      this.transferring = null;
      this.transferError.textContent =
        error.code === "unavailable"
          ? `${to} cannot take the chat now.`
          : error.code === "not_found"
            ? `There is no agent or queue "${to}".`
            : error.message;
      this.transferError.hidden = false;
    }
  }

  async close() {
    this.closing = true;
    try {
      await client.request("Queue", "Close", { confId: this.confId });
    } catch (error) {
      this.closing = false;
      if (error.code === "not_found" && this.call.state !== "released") this.call.release();
      else if (error.code !== "not_found") toast(error.message, "error");
    }
  }

  ended(cause) {
    clearTimeout(this.typingTimer);
    if (this.transferring) return this.remove();
    if (cause === 26) {
      toast("Another agent took this chat first.", "error");
      return this.remove();
    }
    let text;
    if (this.closing && cause === 16) text = "You closed this chat.";
    else if (cause === 16) text = `${this.visitor.dn} left the chat.`;
    else if (cause === 102) text = "Closed for inactivity.";
    else text = `Chat ended: ${CAUSES[cause] || `cause ${cause}`}.`;
    this.endedText.textContent = text;
    this.root.dataset.ended = String(cause);
    this.endedRow.hidden = false;
    this.composer.hidden = true;
    this.transferForm.hidden = true;
    this.typingRow.hidden = true;
    this.transferButton.disabled = true;
    this.closeButton.disabled = true;
  }

  remove() {
    this.root.remove();
    chats.delete(this.confId);
    $("chats-empty").hidden = chats.size > 0;
    renderBoard();
  }

  focus() {
    this.root.scrollIntoView({ inline: "nearest", block: "nearest" });
    this.root.classList.remove("flash");
    void this.root.offsetWidth;
    this.root.classList.add("flash");
    if (this.call.state === "connected") this.text.focus();
  }
}

function chatOf(call) {
  let view = chats.get(call.confId);
  if (!view) {
    view = new ChatView(call);
    chats.set(call.confId, view);
    renderBoard();
  } else if (view.call !== call && view.call.state === "released") {
    view.remove();
    return chatOf(call);
  }
  return view;
}

// -- the board --------------------------------------------------------------------------

function waitingCard(confId, chat, call) {
  // the visitor's page closed: the chat waits out the resume grace for a reload (docs 12.38)
  const gone = Boolean(chat && chat.visitor_gone);
  const name = chat ? chat.visitor.dn || chat.visitor.sip : call.peer.dn || call.peer.sip;
  const context = (chat && chat.context) || (call && call.context) || {};
  const url = context.url && safeUrl(context.url);
  const buttons = [];
  if (call) {
    buttons.push(el("button", { type: "button", class: "primary small accept", text: "Accept", onclick: () => accept(call) }));
    buttons.push(el("button", { type: "button", class: "ghost small", text: "Decline", onclick: () => call.release() }));
  }
  if (chat && !call) buttons.push(el("button", { type: "button", class: "primary small", text: "Take", onclick: (event) => take(confId, event.currentTarget) }));
  return el(
    "li",
    { class: `card${call ? " ringing" : ""}${gone ? " gone" : ""}`, dataset: { confId } },
    el(
      "div",
      { class: "card-top" },
      avatar(name),
      el("div", { class: "card-who" }, el("strong", { text: name }), el("span", { class: "since", text: chat ? `waiting ${elapsed(chat.since)}` : "ringing" }), gone ? el("span", { class: "gone-note", text: leftNote(chat.gone_since), title: "The visitor's page closed: a reload within the resume grace brings them back, else the chat closes" }) : null),
      call ? el("span", { class: "bell", title: "Ringing for you", "aria-label": "ringing" }) : null,
    ),
    // the start of the visitor's first message, as the board carries it (docs 12.33)
    chat && chat.preview ? el("p", { class: "card-preview", text: chat.preview, title: "The visitor's first message" }) : null,
    context.product || url
      ? el(
          "div",
          { class: "card-ctx" },
          context.product ? el("span", { class: "product", text: context.product }) : null,
          url ? el("span", { class: "url", text: url.host + (url.pathname === "/" ? "" : url.pathname) }) : null,
        )
      : null,
    el("div", { class: "card-actions" }, ...buttons),
  );
}

function activeCard(chat) {
  const mine = chat.agent && client && chat.agent.sip === client.sip;
  const view = chats.get(chat.confId);
  const name = chat.visitor.dn || chat.visitor.sip;
  return el(
    "li",
    { class: `card active${mine ? " mine" : ""}`, dataset: { confId: chat.confId } },
    el(
      "div",
      { class: "card-top" },
      avatar(name),
      el(
        "div",
        { class: "card-who" },
        el("strong", { text: name }),
        el("span", { class: "since", text: `with ${mine ? "you" : chat.agent.dn || chat.agent.sip} · ${elapsed(chat.since)}` }),
      ),
      mine && view ? el("button", { type: "button", class: "ghost small", text: "Open", onclick: () => view.focus() }) : null,
    ),
    chat.context && chat.context.product ? el("div", { class: "card-ctx" }, el("span", { class: "product", text: chat.context.product })) : null,
  );
}

function renderBoard() {
  const waiting = [];
  const seen = new Set();
  for (const [confId, chat] of board) {
    if (chat.agent) continue;
    seen.add(confId);
    waiting.push([chat.since, waitingCard(confId, chat, ringing.get(confId))]);
  }
  for (const [confId, call] of ringing) {
    if (!seen.has(confId)) waiting.push([0, waitingCard(confId, null, call)]);
  }
  waiting.sort((a, b) => a[0] - b[0]);
  $("waiting").replaceChildren(...waiting.map(([, card]) => card));
  $("waiting-count").textContent = String(waiting.length);
  $("waiting-count").classList.toggle("hot", waiting.length > 0);
  $("waiting-empty").hidden = waiting.length > 0;
  const active = [...board.values()].filter((chat) => chat.agent).sort((a, b) => a.since - b.since);
  $("active").replaceChildren(...active.map(activeCard));
  $("active-count").textContent = String(active.length);
  $("active-empty").hidden = active.length > 0;
  const rings = ringing.size;
  document.title = rings ? `(${rings}) New chat · Support console` : "Support console · Switchboard";
}

function onBoard(message) {
  if (message.src !== boardSrc) return;
  const chat = message.chat;
  if (!chat) return;
  if (message.mt === "ChatClosed" || chat.queue !== queue) board.delete(chat.confId);
  else board.set(chat.confId, chat);
  const view = chats.get(chat.confId);
  if (view) view.refresh();
  renderBoard();
}

async function subscribe(name) {
  const previous = queue;
  subscription += 1;
  const mine = subscription;
  queue = name;
  $("queue-input").value = name;
  $("board-error").hidden = true;
  board.clear();
  renderBoard();
  if (previous !== name && client.status === "online") {
    client.request("Queue", "Unsubscribe", { queue: previous }).catch(() => {});
  }
  // the board's updates come on the src of the Subscribe (PROTOCOL §9.3)
  const request = client.request("Queue", "Subscribe", { queue: name });
  boardSrc = request.src;
  try {
    const result = await request;
    if (mine !== subscription) return;
    for (const ind of result.inds) board.set(ind.chat.confId, ind.chat);
    localStorage.setItem("switchboard.agent.queue", name);
    renderBoard();
    for (const view of chats.values()) view.refresh();
  } catch (error) {
    if (mine !== subscription) return;
    $("board-error").textContent =
      error.code === "forbidden"
        ? `You are not an agent of the queue "${name}".`
        : error.code === "not_found"
          ? `There is no queue "${name}".`
          : `The board could not be loaded: ${error.message}`;
    $("board-error").hidden = false;
  }
}

// -- taking and answering ---------------------------------------------------------------

async function take(confId, button) {
  if (button) button.disabled = true;
  taking.add(confId);
  try {
    const { result } = await client.request("Queue", "Take", { confId });
    const call = client.calls.get(result.call) || client.byConfId.get(confId);
    if (call) {
      call.state = "connected"; // Take connects it: the hub's setup must not be answered
      ringing.delete(confId);
      chatOf(call).focus();
    }
  } catch (error) {
    toast(
      error.code === "already_taken"
        ? "Another agent took this chat first."
        : error.code === "unavailable"
          ? "You have as many chats as you can take: close one first."
          : error.message,
      "error",
    );
  } finally {
    taking.delete(confId);
    renderBoard();
  }
}

function accept(call) {
  ringing.delete(call.confId);
  call.answer();
  renderBoard();
}

// -- availability -----------------------------------------------------------------------

function showActivity(value) {
  activity = value || "available";
  const group = $("availability");
  group.dataset.activity = activity;
  for (const button of group.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.activity === activity));
  }
}

$("availability").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-activity]");
  if (!button || !client || client.status !== "online") return;
  client.publish(button.dataset.activity);
  // the switch follows the hub's presence_notify (showActivity), not the click
  $("availability").dataset.pending = button.dataset.activity;
});

// -- connection -------------------------------------------------------------------------

const STATUS_TEXT = { online: "Online", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" };

function onStatus({ status, error }) {
  const pill = $("conn");
  pill.dataset.status = status;
  pill.textContent = STATUS_TEXT[status] || status;
  const banner = $("conn-banner");
  if (status === "reconnecting") {
    banner.textContent = "Connection lost. Reconnecting… your chats are kept meanwhile.";
    banner.dataset.kind = "warn";
    banner.hidden = false;
  } else if (status === "offline" && !$("console").hidden && error) {
    banner.textContent = `Disconnected (${error}). Sign in again to continue.`;
    banner.dataset.kind = "error";
    banner.hidden = false;
  } else if (status === "online") {
    banner.hidden = true;
  }
  for (const view of chats.values()) {
    view.composer.classList.toggle("offline", status !== "online");
  }
}

function listen(c) {
  c.addEventListener("status", (event) => onStatus(event.detail));
  c.addEventListener("registered", (event) => {
    if (registeredOnce) {
      subscribe(queue); // a new connection: its board subscription is new too
      if (!event.detail.resumed) c.publish(activity); // a fresh registration starts available
    }
    registeredOnce = true;
  });
  c.addEventListener("presence", (event) => {
    if (event.detail.sip !== c.sip) return;
    delete $("availability").dataset.pending;
    showActivity(event.detail.status === "open" ? event.detail.activity : "");
  });
  c.addEventListener("call", (event) => {
    const { call } = event.detail;
    if (call.presence || !call.incoming) return;
    if (taking.has(call.confId)) return; // our own Take: connected by TakeResult
    if (call.state === "connected") {
      chatOf(call); // a chat we had, offered again after a reconnect
      return;
    }
    ringing.set(call.confId, call);
    const name = call.peer.dn || call.peer.sip;
    toast(`New chat from ${name}${call.context && call.context.product ? ` about ${call.context.product}` : ""}`);
    renderBoard();
  });
  c.addEventListener("connected", (event) => {
    const { call } = event.detail;
    if (call.presence) return;
    ringing.delete(call.confId);
    const view = chatOf(call);
    view.refresh();
    view.focus();
  });
  c.addEventListener("message", (event) => {
    const { call, message } = event.detail;
    if (call.presence) return;
    if (call.state !== "connected" && !taking.has(call.confId) && !chats.has(call.confId)) return;
    const view = chatOf(call);
    if (message.mine && !message.state) message.state = "delivered";
    view.add(message);
    if (!message.mine) view.showTyping(false);
  });
  c.addEventListener("ack", (event) => {
    const { call, ack } = event.detail;
    if (ack.time) skew = ack.time * 1000 - Date.now();
    const view = chats.get(call.confId);
    if (view) view.ack(ack);
  });
  c.addEventListener("typing", (event) => {
    const { call, typing, dn, sip } = event.detail;
    if (sip === c.sip) return;
    const view = chats.get(call.confId);
    if (view) view.showTyping(typing, dn);
  });
  c.addEventListener("released", (event) => {
    const { call, cause } = event.detail;
    if (call.presence) return;
    if (ringing.get(call.confId) === call) {
      ringing.delete(call.confId);
      renderBoard();
    }
    const view = chats.get(call.confId);
    if (view && view.call === call) view.ended(cause);
  });
  c.addEventListener("queue", (event) => onBoard(event.detail.message));
  c.addEventListener("error", (event) => {
    const { message } = event.detail;
    if (message.code === "already_taken") toast("Another agent took this chat first.", "error");
    else if (message.text || message.code) toast(message.text || message.code, "error");
  });
}

async function login(event) {
  event.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  const wanted = $("login-queue").value.trim() || "support";
  const submit = $("login-submit");
  submit.disabled = true;
  $("login-error").hidden = true;
  registeredOnce = false;
  client = new Client({ sip: user, password });
  listen(client);
  try {
    await client.connect();
  } catch (error) {
    $("login-error").textContent =
      error.message === "login failed"
        ? "Wrong user or password."
        : error.message === "throttled"
          ? "Too many attempts. Please wait a minute."
          : `Could not sign in: ${error.message}`;
    $("login-error").hidden = false;
    submit.disabled = false;
    client = null;
    return;
  }
  submit.disabled = false;
  localStorage.setItem("switchboard.agent.user", user);
  $("login-password").value = "";
  $("login-view").hidden = true;
  $("console").hidden = false;
  $("me-name").textContent = user;
  // initials from our name as visitors and colleagues see it (docs/protocol.md 12.42)
  $("me-avatar").replaceWith(Object.assign(avatar(client.dn || user, "small"), { id: "me-avatar" }));
  client.watch(client.sip); // our own presence: the availability switch follows it
  queue = wanted;
  await subscribe(wanted);
}

function logout() {
  if (client) client.close();
  client = null;
  board.clear();
  ringing.clear();
  for (const view of [...chats.values()]) view.remove();
  $("console").hidden = true;
  $("login-view").hidden = false;
  $("conn-banner").hidden = true;
  $("login-password").focus();
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("queue-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("queue-input").value.trim();
  if (name && client) subscribe(name);
});

$("login-user").value = localStorage.getItem("switchboard.agent.user") || "";
$("login-queue").value = localStorage.getItem("switchboard.agent.queue") || "support";
if ($("login-user").value) $("login-password").focus();

setInterval(() => {
  if (!client) return;
  renderBoard();
  for (const view of chats.values()) view.refresh();
}, 15000);
