// Visitors' presence in the support console (docs/protocol.md 12.37): the console follows
// the presence of each visitor it shows (a waiting card, a chat it has) and says whether
// they are online, were active recently (`recent`, the server's `[presence]
// recent_window`) or when they were last seen (`last_seen`). A subscription ends when the
// visitor leaves the console.

import { ago, el } from "./ui.js";

const watched = new Map(); // sip -> the presence Call that follows them
const known = new Map(); // sip -> {status, lastSeen, recent}
const refused = new Set(); // sips the hub would not let us follow (not asked again)

/** Follow exactly the visitors in `sips` (a Set); returns nothing. */
export function followOnly(client, sips) {
  for (const [sip, call] of [...watched]) {
    if (sips.has(sip)) continue;
    watched.delete(sip);
    known.delete(sip);
    if (call.state !== "released") call.release();
  }
  for (const sip of [...refused]) if (!sips.has(sip)) refused.delete(sip);
  if (!client || client.status !== "online") return;
  for (const sip of sips) {
    if (!watched.has(sip) && !refused.has(sip) && sip !== client.sip) watched.set(sip, client.watch(sip));
  }
}

/** A presence_notify for `detail.sip`; true when it is one of ours. */
export function noted(detail) {
  if (!watched.has(detail.sip)) return false;
  known.set(detail.sip, { status: detail.status, lastSeen: detail.lastSeen, recent: detail.recent });
  return true;
}

/** A presence subscription ended: by us (nothing to do), with the connection (followed
 * again once online), or refused by the hub (not asked again while shown). */
export function ended(call, cause) {
  if (watched.get(call.peer.sip) !== call) return;
  watched.delete(call.peer.sip);
  known.delete(call.peer.sip);
  if (cause !== 41) refused.add(call.peer.sip);
}

/** Forget every subscription (signed out). */
export function forget() {
  watched.clear();
  known.clear();
  refused.clear();
}

/** What the console says of a visitor's presence: {state, text}, or null before it knows. */
export function describe(sip) {
  const seen = known.get(sip);
  if (!seen) return null;
  if (seen.status === "open") return { state: "online", text: "Online" };
  if (!seen.lastSeen) return { state: "offline", text: "Offline" };
  if (seen.recent) return { state: "recent", text: `Recently active · seen ${ago(seen.lastSeen)}` };
  return { state: "offline", text: `Last seen ${ago(seen.lastSeen)}` };
}

/** The presence line of a visitor, or null before the console knows it. */
export function presenceLine(sip) {
  const said = describe(sip);
  if (!said) return null;
  return el("span", { class: "presence", dataset: { state: said.state }, text: said.text });
}
