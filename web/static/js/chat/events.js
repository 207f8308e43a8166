// What the hub tells us (switchboard.js events), applied to the conversations.

import { attachCall, convOf } from "./calls.js";
import { renderContacts, renderMe } from "./contacts.js";
import { conversation, liveCall, watch } from "./conversations.js";
import { announce, ui } from "./dom.js";
import { htmlToText } from "./format.js";
import { readGroups } from "./groups.js";
import { loadHistory, markRead, readChats } from "./history.js";
import { addMessage, comesBefore, findOwn, makeMsg, rekey } from "./messages.js";
import { hideBanner, setNotice, showBanner } from "./notices.js";
import { STATE_MARK, setTime, updateMark } from "./render.js";
import { state } from "./state.js";
import { setPeerTyping, typed } from "./typing.js";
import { isAtBottom, renderHeader, scrollToBottom, visible } from "./view.js";

export const CAUSE_TEXT = {
  1: (conv) => `There is no user “${conv.sip}”`,
  17: (conv) => `${conv.name} is busy`,
  18: (conv) => `${conv.name} is offline`,
  19: (conv) => `${conv.name} did not answer`,
  21: (conv) => `You may not chat with ${conv.name}`,
  41: (conv) => `The connection to ${conv.name} was lost`,
  47: () => "Too many chats are open",
};

export function onCall({ call }) {
  if (call.presence) return; // our own subscriptions (watch) and their resumes
  if (call.queue) return; // a support chat: the agent console takes those, not this app
  const conv = conversation(call.peer.sip, call.peer.dn);
  attachCall(conv, call);
  if (call.incoming && call.state === "offered") call.answer();
  if (conv.group && conv.groupId === undefined && state.licensed) readGroups();
  renderContacts();
  if (conv === state.open) renderHeader();
}

export function onConnected({ call }) {
  if (call.presence) return;
  const conv = convOf(call);
  if (!conv) return;
  if (call.peer.dn && call.peer.dn !== call.peer.sip && call.peer.sip === conv.sip) conversation(conv.sip, call.peer.dn);
  if (conv === state.open) {
    renderHeader();
    if (ui.input.value.trim() && conv.call === call) {
      conv.sentTyping = 0;
      typed(conv); // we were typing while it rang
    }
  }
  renderContacts();
}

export function onMessage({ call, message }) {
  const conv = convOf(call);
  if (!conv) return;
  if (message.mine && message.id) {
    const own = findOwn(conv, message.id);
    if (own) {
      // our message replayed after a resume: we know it, learn its place
      own.seq = message.seq || own.seq;
      own.confId = call.confId || own.confId;
      rekey(conv, own);
      return;
    }
  }
  const attach = String(message.attach || "")
    .split(/\s+/)
    .filter(Boolean)
    .map((url, _, all) => {
      const text = htmlToText(message.data);
      let name = text;
      if (all.length > 1 || !text) {
        try {
          name = decodeURIComponent(new URL(url, location.href).pathname.split("/").pop()) || url;
        } catch {
          name = url;
        }
      }
      return { url, name };
    });
  const msg = makeMsg({
    confId: call.confId,
    seq: message.seq || 0,
    mine: Boolean(message.mine),
    system: message.system,
    author: message.sender || "",
    dn: message.sender_dn || "",
    html: message.data || "",
    attach,
    time: message.time ? message.time * 1000 : Date.now(),
    state: message.mine ? "delivered" : null,
  });
  if (message.sender === conv.sip && message.sender_dn) conversation(conv.sip, message.sender_dn);
  const wasAtBottom = conv === state.open && isAtBottom();
  if (!addMessage(conv, msg, { live: true })) return;
  if (!msg.mine && !msg.system) {
    setPeerTyping(conv, false);
    if (visible(conv)) markRead(conv);
    else conv.unread += 1;
    announce(`${msg.dn || conv.name}: ${htmlToText(msg.html) || (msg.attach[0] ? `sent ${msg.attach[0].name}` : "")}`);
  }
  if (conv === state.open && (wasAtBottom || msg.mine)) scrollToBottom();
  renderContacts();
}

export function onAck({ call, ack }) {
  const conv = convOf(call);
  if (!conv) return;
  let msg = findOwn(conv, ack.id);
  if (!msg && ack.seq) msg = conv.messages.find((m) => m.mine && m.call === call && m.seq === ack.seq) || null;
  if (!msg) return;
  if (ack.seq) {
    msg.seq = ack.seq;
    msg.confId = call.confId || msg.confId;
    rekey(conv, msg);
  }
  if (ack.time) setTime(conv, msg, ack.time * 1000); // the hub's clock, as everyone's
  // nobody took it: it waits in storage (in a group: nobody else is in the chat yet)
  if (ack.state === "stored" && !conv.group) call.hubAnswered = true;
  if (msg.state === "seen" && ack.state === "delivered") return;
  msg.state = ack.state in STATE_MARK ? ack.state : msg.state;
  if (conv.group && msg.state === "stored") msg.state = "sent"; // kept for members not in it yet
  updateMark(msg);
  if (ack.state === "not_delivered" && call.state !== "released") {
    setNotice(conv, `${conv.name} did not get the message; it was not delivered.`);
  }
}

export function onSeen({ call, seq }) {
  const conv = convOf(call);
  if (!conv) return;
  const target = conv.messages.find((m) => m.mine && m.confId === call.confId && m.seq === seq);
  for (const msg of conv.messages) {
    if (!msg.mine || !["delivered", "sent", "stored"].includes(msg.state)) continue;
    const upTo = msg.confId === call.confId ? msg.seq <= seq : target ? !comesBefore(target, msg) : false;
    if (upTo) {
      msg.state = "seen";
      updateMark(msg);
    }
  }
}

export function onTyping({ call, sip, dn, typing }) {
  const conv = convOf(call);
  if (!conv || (sip && sip === state.me.sip)) return;
  setPeerTyping(conv, Boolean(typing), conv.group ? dn || sip || "" : "");
}

export function onReleased({ call, cause }) {
  if (call.presence) {
    const sip = call.peer.sip;
    if (state.watches.get(sip) === call) state.watches.delete(sip);
    const conv = state.convs.get(sip);
    if (conv && cause === 1) {
      conv.presence = { unknown: true };
      renderContacts();
      if (conv === state.open) renderHeader();
    }
    return;
  }
  const conv = convOf(call);
  if (!conv) return;
  if (conv.call === call) {
    conv.call = null;
    conv.sentTyping = 0;
  }
  setPeerTyping(conv, false);
  // what never got through on this call: the hub said not_delivered, or said nothing
  const lost = conv.messages.filter((m) => m.mine && m.call === call && ["sending", "held", "not_delivered"].includes(m.state));
  for (const msg of lost) {
    msg.state = "not_delivered";
    updateMark(msg);
  }
  if (lost.length) {
    const why = (CAUSE_TEXT[cause] || ((c) => `The chat with ${c.name} ended`))(conv);
    setNotice(conv, `${why}; the message was not delivered.`);
  } else if (cause === 1 || cause === 21) {
    setNotice(conv, `${CAUSE_TEXT[cause](conv)}.`);
  }
}

export function onPresence({ sip, status, activity, note, badge }) {
  if (sip === state.me.sip) {
    if (status === "open" && activity && activity !== state.activity) {
      state.activity = activity;
      renderMe();
    }
    if (badge !== null && badge !== undefined && badge !== state.badge) {
      // our unread count moved (e.g. messages stored for us): which chats have them?
      const grew = state.badge !== null && badge > state.badge;
      state.badge = badge;
      if (grew && state.licensed) {
        clearTimeout(state.badgeTimer);
        state.badgeTimer = setTimeout(readChats, 300);
      }
    }
    return;
  }
  const conv = state.convs.get(sip);
  if (!conv) return;
  conv.presence = { status, activity, note: note || "" };
  const call = liveCall(conv);
  if (status === "open" && call && call.hubAnswered) {
    call.release(); // they are back: the next message rings their devices (§12.9)
    conv.call = null;
  }
  renderContacts();
  if (conv === state.open) renderHeader();
}

export function onError({ message }) {
  const conv = state.open;
  const code = message.code;
  if (code === "rate_limited") {
    const wait = Math.max(1, Math.ceil((message.retry_after_ms || 1000) / 1000));
    for (const c of state.convs.values()) {
      for (const msg of c.messages) {
        if (msg.mine && msg.state === "sending") {
          msg.state = "failed";
          updateMark(msg);
        }
      }
    }
    if (conv) setNotice(conv, `You are sending too fast. Wait ${wait} s, then retry.`);
    return;
  }
  const call = message.call !== undefined ? state.callsByNumber.get(message.call) || null : null;
  if (code === "message_too_big") {
    const target = call ? convOf(call) : conv;
    if (target) {
      const msg = [...target.messages].reverse().find((m) => m.mine && m.state === "sending");
      if (msg) {
        msg.state = "too_big";
        updateMark(msg);
      }
      setNotice(target, "The message is too big to send; it was not delivered.");
    }
    return;
  }
  if (code === "bad_state") {
    // we wrote on a call that had just ended (its rel crossed our message): a retry
    // places a new one. Typing on such a call needs no word.
    const target = call ? convOf(call) : null;
    const refused = target ? target.messages.filter((m) => m.mine && m.call === call && m.state === "sending") : [];
    for (const msg of refused) {
      msg.state = "failed";
      updateMark(msg);
    }
    if (refused.length) setNotice(target, "The chat had just ended; press Retry to send the message again.");
    return;
  }
  if (conv && message.text) setNotice(conv, `The server said: ${message.text}`);
}

export function onStatus({ status, error }) {
  if (state.loggingOut) return;
  if (status === "reconnecting") {
    state.wasReconnecting = true;
    showBanner("Connection lost. Reconnecting…", "warn");
  } else if (status === "online") {
    if (state.wasReconnecting) {
      state.wasReconnecting = false;
      showBanner("Back online.", "ok");
      setTimeout(() => {
        if (state.client && state.client.status === "online") hideBanner();
      }, 2500);
      resynchronize();
    }
  } else if (status === "offline" && state.me) {
    const why = error ? ` (${error})` : "";
    showBanner(`Disconnected${why}.`, "error", true);
  }
}

/** After a reconnect: presence again, and what a lost registration may have missed. */
export function resynchronize() {
  const client = state.client;
  if (!state.selfWatch || state.selfWatch.state === "released") state.selfWatch = client.watch(state.me.sip);
  for (const conv of state.convs.values()) watch(conv);
  if (!client.resumed) {
    if (state.activity !== "available") client.publish(state.activity);
    if (state.licensed) {
      readChats();
      if (state.open) {
        state.open.historyLoaded = false;
        loadHistory(state.open, false);
      }
    }
  }
}
