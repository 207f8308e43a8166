// One chat the agent has: a column with its visitor (and their presence), context,
// messages, typing, Transfer and Close. A chat still ringing for the agent opens here too
// when its queue has `take_on_write`: what the agent writes takes it (docs 12.34).

import { CAUSES } from "../switchboard.js";
import { messageFragment as fragment } from "../html.js";
import { presenceLine } from "./presence.js";
import { state } from "./state.js";
import { refusal } from "./supervise.js";
import { $, avatar, clock, el, elapsed, escapeHtml, safeUrl, toast } from "./ui.js";

const ACK_TEXT = { held: "held", delivered: "delivered", stored: "stored", not_delivered: "not delivered" };

function ringingCall(call) {
  return call.state === "offered" || call.state === "alerting";
}

function contextChips(context) {
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
  return chips;
}

export class ChatView {
  constructor(call) {
    this.call = call;
    this.confId = call.confId;
    this.ids = new Map();
    this.seqs = new Set();
    this.closing = false;
    this.transferring = null;
    this.typingSent = 0;
    this.typingTimer = null;
    this.pendingTake = null; // our message that takes a ringing chat, until its ack
    this.reason = ""; // why it ended, when the board says more than the rel (docs 12.34)
    this.build();
    this.refresh();
  }

  get info() {
    return state.board.get(this.confId) || null;
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
    this.presence = el("span", {});
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
    this.actions = el("div", { class: "actions" }, this.transferButton, this.closeButton);
    this.offerText = el("span", {});
    this.offerRow = el("div", { class: "offer-note", role: "status", hidden: true }, this.offerText);
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
      el("header", { class: "chat-head" }, this.face, el("div", { class: "who" }, this.title, this.sub), this.actions),
      this.contextRow,
      this.transferForm,
      this.offerRow,
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
    const started = info ? elapsed(info.since) : "";
    const since = info ? `started ${started}${started === "just now" ? "" : " ago"}` : "";
    this.sub.replaceChildren(
      [this.call.queue ? this.call.queue.dn || this.call.queue.sip : state.queue, since].filter(Boolean).join(" · "),
    );
    // the visitor's presence: online, recently active, or when last seen (docs 12.37)
    const line = presenceLine(visitor.sip);
    if (line) this.sub.append(line);
    const chips = contextChips(this.context || {});
    this.contextRow.replaceChildren(...chips);
    this.contextRow.hidden = chips.length === 0;
    const options = new Set([state.queue]);
    for (const chat of state.board.values()) if (chat.agent && chat.agent.sip !== state.client.sip) options.add(chat.agent.sip);
    this.targets.replaceChildren(...[...options].map((value) => el("option", { value })));
    const offered = ringingCall(this.call);
    this.root.classList.toggle("offered", offered);
    this.actions.hidden = offered;
    this.offerRow.hidden = !offered;
    if (offered) {
      const preview = info && info.preview ? ` They wrote: “${info.preview}”` : "";
      this.offerText.textContent = `Ringing for you: what you write takes this chat.${preview}`;
    }
    this.text.placeholder = offered ? "Write to take this chat…" : "Reply…";
  }

  scroll() {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  add(message) {
    if (message.id && this.ids.has(message.id)) return null;
    if (message.seq && this.seqs.has(message.seq)) return null;
    if (message.seq) this.seqs.add(message.seq);
    const item = message.system ? this.systemItem(message) : this.messageItem(message);
    if (message.id) this.ids.set(message.id, item);
    // what the visitor wrote while the chat rang arrives when our first words take it,
    // before their ack: it goes above them (docs 12.34)
    if (this.pendingTake && !message.mine) this.messages.insertBefore(item, this.pendingTake);
    else this.messages.append(item);
    this.scroll();
    return item;
  }

  systemItem(message) {
    this.lastAuthor = null;
    return el(
      "li",
      { class: "msg system" },
      el("span", { class: "system-icon", "aria-hidden": "true", text: "!" }),
      el("div", { class: "system-body" }, el("strong", { text: "Inactivity warning" }), el("div", {}, fragment(message.data))),
    );
  }

  messageItem(message) {
    const visitorSip = this.visitor.sip;
    const kind = message.mine ? "mine" : message.sender === visitorSip || !message.sender ? "visitor" : "colleague";
    const meta = el("span", { class: "meta" }, el("span", { class: "time", text: clock(message.time) }));
    if (message.mine) meta.append(el("span", { class: "state", text: message.state ? ` · ${message.state}` : "" }));
    const author = message.mine ? state.client.sip : message.sender || "";
    const follows = this.lastAuthor === author; // a run of one author shows the name once
    this.lastAuthor = author;
    return el(
      "li",
      { class: `msg ${kind}${follows ? " follows" : ""}` },
      kind === "mine" || follows ? null : el("span", { class: "author", text: message.sender_dn || message.sender || "" }),
      el("div", { class: "bubble" }, fragment(message.data)),
      meta,
    );
  }

  ack(ack) {
    if (ack.seq) this.seqs.add(ack.seq);
    const item = this.ids.get(ack.id);
    if (!item) return;
    if (item === this.pendingTake) this.pendingTake = null;
    item.dataset.state = ack.state;
    const shown = item.querySelector(".state");
    if (shown) shown.textContent = ` · ${ACK_TEXT[ack.state] || ack.state}`;
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
    if (!data || state.client.status !== "online") return;
    const takes = ringingCall(this.call) && state.terms.take_on_write;
    if (this.call.state !== "connected" && !takes) return;
    const id = this.call.send(data);
    if (takes) {
      // writing takes the chat: the hub connects it to us (docs/protocol.md 12.34)
      this.call.state = "connected";
      state.ringing.delete(this.confId);
      this.refresh();
      state.changed();
    }
    const item = this.add({ id, data: escapeHtml(data), mine: true, time: 0, state: "sending" });
    if (takes) this.pendingTake = item;
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
    if (this.call.state !== "connected" || state.client.status !== "online") return;
    const now = Date.now();
    if (this.text.value.trim() && now - this.typingSent > 3000) {
      this.call.typing(true);
      this.typingSent = now;
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => {
      if (this.typingSent && this.call.state === "connected" && state.client.status === "online") this.call.typing(false);
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
      await state.client.request("Queue", "Transfer", { confId: this.confId, to });
      if (this.call.state === "released") this.remove();
      toast(`Chat with ${this.visitor.dn} transferred to ${to}`);
    } catch (error) {
      this.transferring = null;
      this.transferError.textContent = refusal(error, "transfer", to);
      this.transferError.hidden = false;
    }
  }

  async close() {
    this.closing = true;
    try {
      await state.client.request("Queue", "Close", { confId: this.confId });
    } catch (error) {
      this.closing = false;
      if (error.code === "not_found" && this.call.state !== "released") this.call.release();
      else if (error.code !== "not_found") toast(refusal(error, "close"), "error");
    }
  }

  ended(cause, offered) {
    clearTimeout(this.typingTimer);
    if (this.transferring) return this.remove();
    if (cause === 26) {
      toast("Another agent took this chat first.", "error");
      return this.remove();
    }
    if (offered) return this.remove(); // a ringing chat we declined, or that stopped
    let text;
    if (this.reason) text = this.reason;
    else if (this.closing && cause === 16) text = "You closed this chat.";
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

  /** The board told who ended or moved the chat (a supervisor): say so, now or at the end. */
  explain(text) {
    this.reason = text;
    if (!this.endedRow.hidden) this.endedText.textContent = text;
  }

  remove() {
    this.root.remove();
    state.chats.delete(this.confId);
    $("chats-empty").hidden = state.chats.size > 0;
    state.changed();
  }

  focus() {
    this.root.scrollIntoView({ inline: "nearest", block: "nearest" });
    this.root.classList.remove("flash");
    void this.root.offsetWidth;
    this.root.classList.add("flash");
    if (this.call.state === "connected" || ringingCall(this.call)) this.text.focus();
  }
}

/** The column of `call`'s chat, made when it has none. */
export function chatOf(call) {
  let view = state.chats.get(call.confId);
  if (!view) {
    view = new ChatView(call);
    state.chats.set(call.confId, view);
    state.changed();
  } else if (view.call !== call && view.call.state === "released") {
    view.remove();
    return chatOf(call);
  }
  return view;
}
