// Conversations: one per peer (or group) sip, with its messages and its live chat call;
// a presence watch per contact.

import { el } from "./dom.js";
import { state } from "./state.js";
import { saveContacts } from "./storage.js";

export class Conv {
  constructor(sip, dn) {
    this.sip = sip;
    this.dn = dn || sip;
    this.group = isGroupSip(sip); // a group chat (§7.6): no presence, senders named
    this.typingName = ""; // who types, in a group
    this.presence = null;
    this.unread = 0;
    this.lastTime = 0;
    this.lastText = "";
    this.call = null;
    this.messages = []; // sorted, oldest first
    this.byKey = new Map(); // confId:seq or id -> Msg
    this.typing = false;
    this.typingTimer = null;
    this.sentTyping = 0; // when we last told the peer we type (0: we do not)
    this.historyLoaded = false;
    this.loading = false;
    this.more = false;
    this.oldestId = null;
    this.notice = "";
    this.draft = "";
    this.atBottom = true;
    this.scrollTop = 0;
    this.readUpTo = 0; // the newest row id we sent SetRead for
    this.list = el("ol", "message-list");
    this.item = null; // the contact list entry
  }

  get name() {
    return this.dn || this.sip;
  }
}

export function conversation(sip, dn) {
  let conv = state.convs.get(sip);
  if (!conv) {
    conv = new Conv(sip, dn);
    state.convs.set(sip, conv);
    saveContacts();
    watch(conv);
  } else if (dn && dn !== sip && conv.dn !== dn) {
    conv.dn = dn;
    saveContacts();
  }
  return conv;
}

/** Group sips are `group-<id>` (PROTOCOL 12.10); no user or App may have such a name. */
export function isGroupSip(sip) {
  return /^group-\d+$/.test(String(sip));
}

export function liveCall(conv) {
  return conv.call && conv.call.state !== "released" ? conv.call : null;
}

export function watch(conv) {
  const client = state.client;
  if (!client || client.status !== "online" || conv.sip === state.me.sip || conv.group) return;
  const current = state.watches.get(conv.sip);
  if (current && current.state !== "released") return;
  const call = client.watch(conv.sip);
  state.watches.set(conv.sip, call);
}
