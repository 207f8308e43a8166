// The contact list in the sidebar, and our own entry at its top.

import { conversation, isGroupSip } from "./conversations.js";
import { el, ui } from "./dom.js";
import { avatarClass, firstName, formatTime, initials, presenceClass, presenceText } from "./format.js";
import { state } from "./state.js";
import { openChat } from "./view.js";

export function setAvatar(avatar, initialsEl, dot, name, sip, presence, group = false) {
  avatar.className = `avatar ${avatarClass(sip)}${group ? " group" : ""}`;
  initialsEl.textContent = initials(name);
  dot.className = `presence-dot ${presenceClass(presence)}`;
}

export function sortedConvs() {
  return [...state.convs.values()].sort(
    (a, b) => b.lastTime - a.lastTime || a.name.localeCompare(b.name),
  );
}

export function renderContacts() {
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

export function makeContactItem(conv) {
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

export function updateContactItem(conv) {
  const button = conv.item.firstChild;
  const [avatar, main, side] = button.children;
  avatar.className = `avatar ${avatarClass(conv.sip)}${conv.group ? " group" : ""}`;
  avatar.children[0].textContent = initials(conv.name);
  avatar.children[1].className = `presence-dot ${presenceClass(conv.presence)}`;
  main.children[0].textContent = conv.name;
  const sub = main.children[1];
  sub.classList.toggle("is-typing", conv.typing);
  const typing = conv.typingName ? `${firstName(conv.typingName)} is typing…` : "typing…";
  const idle = conv.group ? "Group" : presenceText(conv.presence) || conv.sip;
  sub.textContent = conv.typing ? typing : conv.lastText || idle;
  side.children[0].textContent = conv.lastTime ? formatTime(conv.lastTime) : "";
  const badge = side.children[1];
  button.classList.toggle("has-unread", conv.unread > 0);
  badge.textContent = conv.unread > 99 ? "99+" : String(conv.unread);
  badge.hidden = conv.unread === 0;
  const status = conv.group ? "group" : presenceText(conv.presence);
  const unread = conv.unread ? `, ${conv.unread} unread` : "";
  button.setAttribute("aria-label", `${conv.name}${status ? `, ${status}` : ""}${unread}`);
  if (conv === state.open) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
}

export function renderMe() {
  const presence = { status: "open", activity: state.activity };
  // initials from our name as others see it, so that they match on every page
  setAvatar(ui.meAvatar, ui.meInitials, ui.meDot, state.me.dn || state.me.sip, state.me.sip, presence);
  ui.meName.textContent = `${state.me.sip}@${state.me.domain}`;
  ui.meStatus.value = state.activity;
}

export function addContact(event) {
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
  if (isGroupSip(sip) && !state.convs.has(sip)) {
    ui.addError.textContent = "Groups are listed once you are a member.";
    return;
  }
  const conv = conversation(sip);
  ui.addSip.value = "";
  renderContacts();
  openChat(conv);
}
