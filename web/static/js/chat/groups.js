// Group chats (licensed users, PROTOCOL §7.6 and 12.12): the groups we are in, a new group
// with its first members, adding people to one, and joining a group's chat when it is
// opened. A group is a conversation like any other, under the group's sip: its calls, its
// history (ReadChat with the group's sip) and its messages, each naming who wrote it.

import { callFor } from "./calls.js";
import { renderContacts } from "./contacts.js";
import { conversation, liveCall } from "./conversations.js";
import { announce, ui } from "./dom.js";
import { setNotice } from "./notices.js";
import { state } from "./state.js";
import { openChat, renderHeader } from "./view.js";

const MEMBER_ERROR = {
  not_found: "no such user",
  unlicensed: "no messages licence",
  forbidden: "only the group's admins add people",
};

/** The groups we are a member of (`ReadGroups`): each one listed with the contacts. */
export async function readGroups() {
  try {
    const { inds } = await state.client.messages("ReadGroups", {});
    for (const ind of inds) {
      if (!ind.sip) continue;
      const conv = conversation(ind.sip, ind.dn);
      conv.groupId = ind.id;
      conv.admin = Boolean(ind.admin);
    }
  } catch {
    // the service is away: a group still shows up with its first message
  }
  renderContacts();
  if (state.open && state.open.group) renderHeader();
}

/** Opening a group joins its chat: a call to the group's sip, unless we are in it. */
export function joinGroup(conv) {
  if (!state.client || state.client.status !== "online" || liveCall(conv)) return;
  callFor(conv, null);
}

function userNames(text) {
  const names = String(text).split(/[\s,;]+/).filter(Boolean);
  return [...new Set(names)].filter((sip) => sip !== state.me.sip);
}

/** `WriteMember` for each name; returns what went wrong, one line per name. */
async function addMembers(conv, members) {
  const failed = [];
  for (const member of members) {
    try {
      await state.client.messages("WriteMember", { grp: conv.groupId ?? conv.sip, member, admin: false });
    } catch (error) {
      failed.push(`${member} (${MEMBER_ERROR[error.code] || error.code || error.message})`);
    }
  }
  return failed;
}

function notAdded(failed) {
  return `Not added: ${failed.join(", ")}.`;
}

// -- a new group --------------------------------------------------------------------------

export function openGroupForm() {
  ui.groupForm.hidden = false;
  ui.newGroup.setAttribute("aria-expanded", "true");
  ui.groupError.textContent = "";
  ui.groupName.focus();
}

export function closeGroupForm(returnFocus = true) {
  if (ui.groupForm.hidden) return;
  ui.groupForm.hidden = true;
  ui.newGroup.setAttribute("aria-expanded", "false");
  if (returnFocus) ui.newGroup.focus();
}

export async function createGroup(event) {
  event.preventDefault();
  const dn = ui.groupName.value.trim();
  const members = userNames(ui.groupMembers.value);
  ui.groupError.textContent = "";
  if (!dn) {
    ui.groupError.textContent = "Give the group a name.";
    ui.groupName.focus();
    return;
  }
  ui.groupCreate.disabled = true;
  try {
    const { result } = await state.client.messages("WriteGroup", { dn });
    const conv = conversation(result.sip, dn);
    conv.groupId = result.id;
    conv.admin = true; // the creator is its first member and admin
    const failed = await addMembers(conv, members);
    ui.groupForm.reset();
    closeGroupForm(false);
    renderContacts();
    openChat(conv);
    if (failed.length) setNotice(conv, notAdded(failed));
    else announce(`Group ${dn} created.`);
  } catch (error) {
    ui.groupError.textContent = `The group could not be created (${error.code || error.message}).`;
  } finally {
    ui.groupCreate.disabled = false;
  }
}

// -- adding people to the open group ------------------------------------------------------

export function toggleMemberForm() {
  if (ui.memberForm.hidden) {
    ui.memberForm.hidden = false;
    ui.addMemberButton.setAttribute("aria-expanded", "true");
    ui.memberSip.focus();
  } else {
    closeMemberForm();
  }
}

export function closeMemberForm(returnFocus = true) {
  if (ui.memberForm.hidden) return;
  ui.memberForm.hidden = true;
  ui.memberForm.reset();
  ui.addMemberButton.setAttribute("aria-expanded", "false");
  if (returnFocus && !ui.addMemberButton.hidden) ui.addMemberButton.focus();
}

export async function addToGroup(event) {
  event.preventDefault();
  const conv = state.open;
  const members = userNames(ui.memberSip.value);
  if (!conv || !conv.group || !members.length) return;
  ui.memberAdd.disabled = true;
  try {
    const failed = await addMembers(conv, members);
    const added = members.length - failed.length;
    if (failed.length) setNotice(conv, notAdded(failed));
    else setNotice(conv, "");
    if (added) announce(`Added to ${conv.name}.`);
    if (!failed.length) closeMemberForm();
  } finally {
    ui.memberAdd.disabled = false;
  }
}
