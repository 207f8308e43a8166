// Messages in a conversation: keys (confId:seq, our id, the stored row) and their order.
// confId names the call a message was said in (PROTOCOL 4.5); stored rows carry the same
// id under the messages service's field name, callId.

import { firstName, htmlToText } from "./format.js";
import { renderMessage } from "./render.js";
import { state } from "./state.js";

/** A message on screen: ours or theirs, live or from the history. */
export function makeMsg(fields) {
  state.order += 1;
  return {
    key: null,
    id: null, // our client id (own messages we sent)
    rowId: null, // the stored row (history)
    confId: null, // the call it was said in (a stored row's callId)
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

export function msgKey(msg) {
  if (msg.confId && msg.seq) return `${msg.confId}:${msg.seq}`;
  if (msg.id) return `id:${msg.id}`;
  if (msg.rowId) return `row:${msg.rowId}`;
  return `n:${msg.order}`;
}

export function rekey(conv, msg) {
  const key = msgKey(msg);
  if (key === msg.key) return;
  if (msg.key && conv.byKey.get(msg.key) === msg) conv.byKey.delete(msg.key);
  msg.key = key;
  conv.byKey.set(key, msg);
  if (msg.id) conv.byKey.set(`id:${msg.id}`, msg);
}

export function comesBefore(a, b) {
  if (a.confId && a.confId === b.confId && a.seq && b.seq) return a.seq < b.seq;
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
export function addMessage(conv, msg, { live = false } = {}) {
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
    conv.lastText = previewText(msg, conv);
  }
  return true;
}

export function previewText(msg, conv) {
  const text = htmlToText(msg.html);
  const body = text || (msg.attach.length ? `📎 ${msg.attach[0].name}` : "");
  if (msg.mine) return `You: ${body}`;
  if (conv && conv.group && msg.author) return `${firstName(msg.dn || msg.author)}: ${body}`;
  return body;
}

export function findOwn(conv, id) {
  return id ? conv.byKey.get(`id:${id}`) || null : null;
}
