// Keeping the stored history tidy (licensed users, PROTOCOL §7.4 and docs 12.32): delete one
// message (`Delete`), delete a whole chat (`DeleteChat`), search every chat (`Search`), and
// hear that the other side deleted a chat (`ChatDeleted` live, `ChatDeletedInd` at sync).
// Also the server's size limits (`GET /api/limits`, docs 12.36), so that a message too long
// is kept in the composer with the right number instead of being refused on the wire.

import { renderContacts } from "./contacts.js";
import { conversation } from "./conversations.js";
import { el, ui, announce } from "./dom.js";
import { formatTime, htmlToText } from "./format.js";
import { setNotice } from "./notices.js";
import { state } from "./state.js";
import { openChat } from "./view.js";

/** Ask the server for its limits; the defaults stay when it cannot say. */
export async function loadLimits() {
  try {
    const response = await fetch("/api/limits", { cache: "no-cache" });
    if (!response.ok) return;
    const limits = await response.json();
    if (Number.isInteger(limits.max_message) && limits.max_message > 0) state.maxMessage = limits.max_message;
    if (Number.isInteger(limits.max_file) && limits.max_file > 0) state.maxFile = limits.max_file;
  } catch {
    // an older server: keep the documented defaults
  }
}

/** A stored message's row id: known from the history, or found by its call and seq. */
async function rowIdOf(conv, msg) {
  if (msg.rowId) return msg.rowId;
  if (!msg.confId || !msg.seq) return null;
  const { inds } = await state.client.messages("ReadChat", { sip: conv.sip, count: 50 });
  const row = inds.map((ind) => ind.msg).find((m) => m && m.callId === msg.confId && m.seq === msg.seq);
  if (row) msg.rowId = row.id;
  return msg.rowId;
}

export async function deleteMessage(conv, msg) {
  try {
    const id = await rowIdOf(conv, msg);
    if (!id) {
      setNotice(conv, "This message is not stored, so there is nothing to delete yet.");
      return;
    }
    await state.client.messages("Delete", { id });
  } catch (error) {
    setNotice(conv, `The message could not be deleted (${error.code || error.message}).`);
    return;
  }
  removeMessage(conv, msg);
  announce("Message deleted");
}

function removeMessage(conv, msg) {
  const index = conv.messages.indexOf(msg);
  if (index >= 0) conv.messages.splice(index, 1);
  for (const [key, value] of conv.byKey) if (value === msg) conv.byKey.delete(key);
  if (msg.node) msg.node.remove();
  const last = [...conv.messages].reverse().find((m) => !m.system);
  conv.lastText = last ? htmlToText(last.html) : "";
  renderContacts();
}

function clearMessages(conv) {
  for (const msg of [...conv.messages]) if (msg.node) msg.node.remove();
  conv.messages = [];
  conv.byKey.clear();
  conv.lastText = "";
  conv.unread = 0;
  conv.oldestId = null;
  conv.more = false;
}

// -- the whole chat -----------------------------------------------------------------------

export function askDeleteChat() {
  const conv = state.open;
  if (!conv) return;
  ui.deleteChatText.textContent = conv.group
    ? `Your copy of the group chat ${conv.name} is deleted on all your devices. The other members keep theirs.`
    : `Every message with ${conv.name} is deleted on all your devices, files too. ${conv.name} is told that you deleted it.`;
  ui.deleteChatError.textContent = "";
  ui.deleteChatDialog.showModal();
}

export async function confirmDeleteChat(event) {
  event.preventDefault();
  const conv = state.open;
  if (!conv) return;
  ui.deleteChatConfirm.disabled = true;
  try {
    await state.client.messages("DeleteChat", { sip: conv.sip });
  } catch (error) {
    if (error.code !== "not_found") {
      ui.deleteChatError.textContent = `The chat could not be deleted (${error.code || error.message}).`;
      ui.deleteChatConfirm.disabled = false;
      return;
    }
    // nothing stored: the chat on screen goes all the same
  }
  ui.deleteChatConfirm.disabled = false;
  ui.deleteChatDialog.close();
  clearMessages(conv);
  conv.historyLoaded = true;
  setNotice(conv, "You deleted this chat.");
  renderContacts();
  announce(`Chat with ${conv.name} deleted`);
}

/** The other side deleted a chat (live `ChatDeleted`, or `ChatDeletedInd` from ReadChats). */
export function chatDeleted(frame) {
  if (!frame || !frame.sip || frame.queue) return;
  const conv = conversation(frame.sip, frame.dn);
  const who = frame.by === conv.sip ? conv.name : frame.by;
  if (frame.removed) {
    clearMessages(conv);
    conv.historyLoaded = true;
    setNotice(conv, `${who} deleted this chat, and with it your copy.`);
  } else {
    setNotice(conv, `${who} deleted this chat on their side. Your copy stays.`);
  }
  renderContacts();
}

// -- search -------------------------------------------------------------------------------

export async function search(event) {
  event.preventDefault();
  const text = ui.searchInput.value.trim();
  if (!text) return clearSearch();
  ui.searchStatus.textContent = "Searching…";
  let inds;
  try {
    ({ inds } = await state.client.messages("Search", { text, count: 50 }));
  } catch (error) {
    ui.searchStatus.textContent = `The search failed (${error.code || error.message}).`;
    return;
  }
  const items = inds.filter((ind) => ind.msg && ind.sip && !ind.queue).map((ind) => resultItem(ind));
  ui.searchResults.replaceChildren(...items);
  ui.searchResults.hidden = false;
  ui.contacts.hidden = true;
  ui.contactsEmpty.hidden = true;
  ui.searchClear.hidden = false;
  ui.searchStatus.textContent = items.length
    ? `${items.length} message${items.length === 1 ? "" : "s"} found`
    : `No message contains “${text}”.`;
}

function resultItem({ msg, sip }) {
  const conv = conversation(sip);
  const mine = msg.author === state.me.sip;
  const button = el("button", "search-result");
  button.type = "button";
  button.dataset.sip = sip;
  const head = el("span", "search-head");
  head.append(el("span", "search-name", conv.name), el("time", "search-time", formatTime(msg.timestamp)));
  const said = htmlToText(msg.text || "");
  button.append(head, el("span", "search-text", mine ? `You: ${said}` : said));
  button.addEventListener("click", () => {
    clearSearch();
    openChat(conv);
  });
  const item = el("li");
  item.append(button);
  return item;
}

export function clearSearch() {
  ui.searchInput.value = "";
  ui.searchResults.replaceChildren();
  ui.searchResults.hidden = true;
  ui.searchClear.hidden = true;
  ui.searchStatus.textContent = "";
  ui.contacts.hidden = false;
  renderContacts();
}
