// Sending: the chat call of a conversation, our messages on it, and retries.

import { renderContacts } from "./contacts.js";
import { liveCall } from "./conversations.js";
import { ui } from "./dom.js";
import { encodeAttach, formatBytes, textToHtml } from "./format.js";
import { addMessage, makeMsg } from "./messages.js";
import { setNotice } from "./notices.js";
import { updateMark } from "./render.js";
import { state } from "./state.js";
import { scrollToBottom } from "./view.js";

export function attachCall(conv, call) {
  state.callConv.set(call, conv);
  state.callsByNumber.set(call.number, call);
  const current = liveCall(conv);
  if (!current || current === call || call.incoming || current.hubAnswered) conv.call = call;
}

export function convOf(call) {
  return state.callConv.get(call) || null;
}

/** The call to send on: the live one, or a new one carrying `first` in its setup. */
export function callFor(conv, first) {
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

export function tooBig(html) {
  return new TextEncoder().encode(html).length > state.maxMessage;
}

export function send(conv, html, attach = []) {
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

export function transmit(conv, msg) {
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

export function resend(conv, msg) {
  msg.retryOn = msg.call;
  msg.state = "sending";
  updateMark(msg);
  transmit(conv, msg);
}

export function afterOwnMessage(conv) {
  state.stickToBottom = true;
  if (conv === state.open) scrollToBottom();
  renderContacts();
}

export function submitMessage() {
  const conv = state.open;
  if (!conv) return;
  const text = ui.input.value;
  if (!text.trim()) return;
  const html = textToHtml(text);
  if (tooBig(html)) {
    // the hub would refuse it (message_too_big): keep it here to be shortened
    setNotice(conv, `The message is too long to send (at most ${formatBytes(state.maxMessage)}); shorten it or send it in parts.`);
    return;
  }
  ui.input.value = "";
  conv.draft = "";
  send(conv, html);
}
