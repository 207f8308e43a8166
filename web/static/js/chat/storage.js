// The contact list, remembered per user in localStorage.

import { conversation } from "./conversations.js";
import { state } from "./state.js";

export function contactsKey() {
  return `switchboard:contacts:${state.me.domain}:${state.me.sip}`;
}

export function loadContacts() {
  try {
    const saved = JSON.parse(localStorage.getItem(contactsKey()) || "[]");
    for (const { sip, dn } of saved) if (typeof sip === "string" && sip) conversation(sip, dn);
  } catch {
    // a damaged entry: start with an empty list
  }
}

export function saveContacts() {
  if (!state.me) return;
  const list = [...state.convs.values()].map((conv) => ({ sip: conv.sip, dn: conv.dn }));
  try {
    localStorage.setItem(contactsKey(), JSON.stringify(list));
  } catch {
    // storage full or disabled: the list lives as long as the page
  }
}
