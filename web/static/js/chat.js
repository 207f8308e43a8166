// The chat app at `/`: log in, contacts with live presence and unread badges, one chat
// window at a time. Everything it knows comes from the public protocol through
// switchboard.js (docs/protocol.md); this file is only the page.
//
// Model: a conversation per peer sip (`Conv`), holding its messages and the live chat call
// to that peer, if any. A call is placed when there is something to say (the first message
// rides in the setup, so an offline peer is reported at once) or when we start typing to a
// peer who is online; calls the hub offers are answered at once. Licensed users also read
// the stored history (PbxMessages ReadChat), send files (CreateFileBuffer) and chat in
// groups (a conversation under the group's sip, each message naming its sender).
//
// The page is split into modules under chat/, one concept each: state and dom (what the
// page knows and its elements), format, storage, conversations and messages (the model),
// render, contacts, view and notices (what is on screen), calls, typing, history,
// attachments, emoji, groups and manage (what the user does), events (what the hub says) and
// login. This file only wires the page's controls to them.
//
// Text a peer wrote reaches the DOM in exactly one place, `renderBody` (chat/render.js), as
// the HTML the hub sanitized; names, sips, file names and everything else go through
// textContent.

import { sendFile } from "./chat/attachments.js";
import { submitMessage } from "./chat/calls.js";
import { addContact, renderContacts, renderMe } from "./chat/contacts.js";
import { isPhone, ui } from "./chat/dom.js";
import { buildEmoji, closeEmoji, emojiKeys, openEmoji } from "./chat/emoji.js";
import {
  addToGroup,
  closeGroupForm,
  closeMemberForm,
  createGroup,
  openGroupForm,
  toggleMemberForm,
} from "./chat/groups.js";
import { loadHistory, markRead } from "./chat/history.js";
import { login, logout } from "./chat/login.js";
import { askDeleteChat, clearSearch, confirmDeleteChat, search } from "./chat/manage.js";
import { setNotice } from "./chat/notices.js";
import { state } from "./chat/state.js";
import { typed } from "./chat/typing.js";
import { closeChat, isAtBottom, visible } from "./chat/view.js";

function wire() {
  buildEmoji();
  ui.loginForm.addEventListener("submit", login);
  ui.addForm.addEventListener("submit", addContact);
  ui.newGroup.addEventListener("click", () => (ui.groupForm.hidden ? openGroupForm() : closeGroupForm()));
  ui.groupForm.addEventListener("submit", createGroup);
  ui.groupCancel.addEventListener("click", () => closeGroupForm());
  ui.groupForm.addEventListener("keydown", (event) => event.key === "Escape" && closeGroupForm());
  ui.addMemberButton.addEventListener("click", toggleMemberForm);
  ui.memberForm.addEventListener("submit", addToGroup);
  ui.memberCancel.addEventListener("click", () => closeMemberForm());
  ui.memberForm.addEventListener("keydown", (event) => event.key === "Escape" && closeMemberForm());
  ui.logout.addEventListener("click", logout);
  ui.searchForm.addEventListener("submit", search);
  ui.searchClear.addEventListener("click", () => {
    clearSearch();
    ui.searchInput.focus();
  });
  ui.searchInput.addEventListener("keydown", (event) => event.key === "Escape" && clearSearch());
  ui.deleteChat.addEventListener("click", askDeleteChat);
  ui.deleteChatForm.addEventListener("submit", confirmDeleteChat);
  ui.deleteChatCancel.addEventListener("click", () => ui.deleteChatDialog.close());
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
    state.stickToBottom = isAtBottom();
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
