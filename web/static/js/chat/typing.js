// Typing indications, ours and the peer's.

import { callFor } from "./calls.js";
import { updateContactItem } from "./contacts.js";
import { liveCall } from "./conversations.js";
import { ui } from "./dom.js";
import { state } from "./state.js";
import { renderTyping } from "./view.js";

export const TYPING_RENEW_MS = 4000; // the hub forgets typing after 6 s (signaling.typing_ttl)

export const TYPING_IDLE_MS = 5000;

export const PEER_TYPING_MS = 8000; // in case a typing:false got lost

export function typed(conv) {
  const text = ui.input.value;
  if (!text.trim()) return stopTyping(conv);
  const now = Date.now();
  clearTimeout(conv.typingIdle);
  conv.typingIdle = setTimeout(() => stopTyping(conv), TYPING_IDLE_MS);
  if (conv.sentTyping && now - conv.sentTyping < TYPING_RENEW_MS) return;
  let call = liveCall(conv);
  if (!call && (conv.group || (conv.presence && conv.presence.status === "open"))) {
    call = callFor(conv, null).call; // ring them now: the typing goes out once they answer
  }
  if (call && call.state === "connected") {
    call.typing(true);
    conv.sentTyping = now;
  }
}

export function stopTyping(conv) {
  clearTimeout(conv.typingIdle);
  if (!conv.sentTyping) return;
  conv.sentTyping = 0;
  const call = liveCall(conv);
  if (call && call.state === "connected") call.typing(false);
}

export function setPeerTyping(conv, typing, name = "") {
  clearTimeout(conv.typingTimer);
  conv.typing = typing;
  conv.typingName = typing ? name : "";
  if (typing) conv.typingTimer = setTimeout(() => setPeerTyping(conv, false), PEER_TYPING_MS);
  if (conv === state.open) renderTyping();
  if (conv.item) updateContactItem(conv);
}
