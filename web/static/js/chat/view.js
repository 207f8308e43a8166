// The open chat: which conversation is on screen, its header, typing line and scrolling.

import { renderContacts, setAvatar } from "./contacts.js";
import { isPhone, ui } from "./dom.js";
import { closeEmoji } from "./emoji.js";
import { presenceText } from "./format.js";
import { closeMemberForm, joinGroup } from "./groups.js";
import { loadHistory, markRead, renderHistoryStatus } from "./history.js";
import { renderNotice } from "./notices.js";
import { state } from "./state.js";
import { stopTyping } from "./typing.js";

export function renderHeader() {
  const conv = state.open;
  if (!conv) return;
  ui.chatName.textContent = conv.name;
  ui.addMemberButton.hidden = !conv.group || !state.licensed;
  if (!conv.group) closeMemberForm(false);
  if (conv.group) {
    ui.chatStatus.textContent = "Group chat";
    setAvatar(ui.chatAvatar, ui.chatInitials, ui.chatDot, conv.name, conv.sip, null, true);
    return;
  }
  const status = presenceText(conv.presence);
  ui.chatStatus.textContent = conv.dn !== conv.sip ? `${conv.sip}${status ? ` · ${status}` : ""}` : status;
  setAvatar(ui.chatAvatar, ui.chatInitials, ui.chatDot, conv.name, conv.sip, conv.presence);
}

export function renderTyping() {
  const conv = state.open;
  ui.typing.textContent = conv && conv.typing ? `${conv.typingName || conv.name} is typing…` : "";
  ui.typing.classList.toggle("active", Boolean(conv && conv.typing));
}

export function openChat(conv, { focus = true } = {}) {
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
  ui.deleteChat.hidden = !state.licensed;
  if (state.licensed && !conv.historyLoaded) loadHistory(conv, false);
  else markRead(conv);
  if (conv.group) joinGroup(conv);
  if (focus) ui.input.focus();
}

export function closeChat() {
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

export function isAtBottom() {
  const box = ui.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
}

export function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

export function keepAtBottom() {
  if (state.stickToBottom) scrollToBottom();
}

/** Is this conversation in front of the user's eyes (so what arrives in it is read)? */
export function visible(conv) {
  const shown = !isPhone() || ui.app.classList.contains("chat-open"); // one pane on a phone
  return conv === state.open && document.visibilityState === "visible" && shown;
}
