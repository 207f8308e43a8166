// The stored history and read marks (licensed users, PROTOCOL §7.4).

import { renderContacts } from "./contacts.js";
import { conversation } from "./conversations.js";
import { readGroups } from "./groups.js";
import { ui } from "./dom.js";
import { htmlToText } from "./format.js";
import { chatDeleted } from "./manage.js";
import { addMessage, makeMsg } from "./messages.js";
import { setNotice } from "./notices.js";
import { refreshAttachments, updateMark } from "./render.js";
import { state } from "./state.js";
import { scrollToBottom, visible } from "./view.js";

export const HISTORY_PAGE = 30;

export function renderHistoryStatus() {
  const conv = state.open;
  if (!conv) return;
  const text = conv.loading ? "Loading earlier messages…" : conv.historyLoaded && !conv.more && conv.messages.length ? "Start of the conversation" : "";
  ui.historyStatus.textContent = text;
  ui.historyStatus.hidden = !text;
}

export function historyMsg(conv, stored) {
  const mine = stored.author === state.me.sip;
  const attach = (stored.attached || []).map((file) => ({ url: file.url, name: file.name }));
  const text = htmlToText(stored.text);
  if (attach.length === 1 && text) attach[0].name = text; // we send the file name as text
  return makeMsg({
    rowId: stored.id,
    confId: stored.callId || null, // the service names the conversation callId
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

export async function loadHistory(conv, older) {
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
export async function fetchAttachments(conv, msg) {
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
export async function markRead(conv) {
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

export async function markNewest(conv) {
  for (let attempt = 0; attempt < 8; attempt += 1) {
    if (!state.licensed || !visible(conv)) return;
    const newest = [...conv.messages].reverse().find((msg) => !msg.mine && !msg.system);
    if (!newest) return;
    if (!newest.rowId && newest.confId && newest.seq) {
      // a live message: find its row (the hub stores it on its way; it may not be there yet)
      const { inds } = await state.client.messages("ReadChat", { sip: conv.sip, count: 10 });
      const row = inds.map((ind) => ind.msg).find((m) => m && m.callId === newest.confId && m.seq === newest.seq);
      if (row) newest.rowId = row.id;
    }
    if (newest.rowId) {
      if (newest.rowId > conv.readUpTo) {
        conv.readUpTo = newest.rowId;
        await state.client.messages("SetRead", { id: newest.rowId });
      }
      return;
    }
    if (!newest.confId || !newest.seq) return; // not a stored message (e.g. volatile chat)
    await new Promise((resolve) => setTimeout(resolve, 150 * (attempt + 1)));
  }
}

export async function readChats() {
  try {
    const { inds } = await state.client.messages("ReadChats", {});
    state.licensed = true;
    for (const ind of inds) {
      if (ind.mt === "ChatDeletedInd") {
        chatDeleted(ind);
        continue;
      }
      if (!ind.sip) continue;
      const conv = conversation(ind.sip, ind.dn);
      if (ind.timestamp && ind.timestamp > conv.lastTime) conv.lastTime = ind.timestamp;
      if (conv !== state.open || !visible(conv)) conv.unread = Math.max(conv.unread, ind.unread || 0);
    }
  } catch (error) {
    state.licensed = error.code !== "unlicensed";
  }
  ui.attachButton.hidden = !state.licensed;
  ui.newGroup.hidden = !state.licensed;
  ui.searchForm.hidden = !state.licensed;
  renderContacts();
  if (state.licensed) await readGroups();
}
