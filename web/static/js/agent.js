// The support console (PROTOCOL §9): an agent's board of a queue and their chats.
//
// The board is the Queue API's Subscribe (QueueInd, then ChatWaiting / ChatTaken /
// ChatTransferred / ChatClosed on the same src). Chats the hub offers ring as incoming
// calls (Accept = conn); any waiting chat can be taken from the board (Take). Each chat
// the agent has is a column (agent/chat_view.js). SubscribeResult says the agent's role
// there and whether writing takes a ringing chat (docs/protocol.md 12.34): supervisors
// close and transfer other agents' chats from the board (agent/supervise.js). Visitors
// show their presence (agent/presence.js), and the History view reads and searches the
// queue's stored chats (agent/history.js).

import { Client } from "./switchboard.js";
import { chatOf } from "./agent/chat_view.js";
import { hideHistory, historyChatDeleted, resetHistory, showHistory } from "./agent/history.js";
import * as presence from "./agent/presence.js";
import { state, supervisor } from "./agent/state.js";
import { manage } from "./agent/supervise.js";
import { $, avatar, ago, el, elapsed, hubClock, safeUrl, toast } from "./agent/ui.js";

let subscription = 0; // which Subscribe the board shows (a newer one wins)
let boardSrc = null; // its src: the board's updates carry it
let activity = "available";
let registeredOnce = false;
let shownView = "board";

// -- the board --------------------------------------------------------------------------

function leftNote(goneSince) {
  return `visitor left ${ago(goneSince)}`;
}

function ringingButtons(call) {
  const buttons = [
    el("button", { type: "button", class: "primary small accept", text: "Accept", onclick: () => accept(call) }),
    el("button", { type: "button", class: "ghost small", text: "Decline", onclick: () => call.release() }),
  ];
  if (state.terms.take_on_write) {
    // the queue lets an agent take a ringing chat by writing into it (docs 12.34)
    buttons.push(el("button", { type: "button", class: "ghost small", text: "Reply", onclick: () => chatOf(call).focus() }));
  }
  return buttons;
}

function waitingCard(confId, chat, call) {
  // the visitor's page closed: the chat waits out the resume grace for a reload (docs 12.38)
  const gone = Boolean(chat && chat.visitor_gone);
  const visitor = chat ? chat.visitor : call.peer;
  const name = visitor.dn || visitor.sip;
  const context = (chat && chat.context) || (call && call.context) || {};
  const url = context.url && safeUrl(context.url);
  const buttons = call ? ringingButtons(call) : [];
  if (chat && !call) buttons.push(el("button", { type: "button", class: "primary small", text: "Take", onclick: (event) => take(confId, event.currentTarget) }));
  return el(
    "li",
    { class: `card${call ? " ringing" : ""}${gone ? " gone" : ""}`, dataset: { confId } },
    el(
      "div",
      { class: "card-top" },
      avatar(name),
      el(
        "div",
        { class: "card-who" },
        el("strong", { text: name }),
        el("span", { class: "since", text: chat ? `waiting ${elapsed(chat.since)}` : "ringing" }),
        gone
          ? el("span", { class: "gone-note", text: leftNote(chat.gone_since), title: "The visitor's page closed: a reload within the resume grace brings them back, else the chat closes" })
          : presence.presenceLine(visitor.sip),
      ),
      call ? el("span", { class: "bell", title: "Ringing for you", "aria-label": "ringing" }) : null,
    ),
    // the start of the visitor's first message, as the board carries it (docs 12.33)
    chat && chat.preview ? el("p", { class: "card-preview", text: chat.preview, title: "The visitor's first message" }) : null,
    context.product || url
      ? el(
          "div",
          { class: "card-ctx" },
          context.product ? el("span", { class: "product", text: context.product }) : null,
          url ? el("span", { class: "url", text: url.host + (url.pathname === "/" ? "" : url.pathname) }) : null,
        )
      : null,
    el("div", { class: "card-actions" }, ...buttons),
  );
}

function transferTargets() {
  const options = new Set([state.queue]);
  for (const chat of state.board.values()) if (chat.agent) options.add(chat.agent.sip);
  options.delete(state.client.sip);
  return [...options];
}

function othersActions(chat) {
  // a supervisor closes or transfers any taken chat of the queue; others only their own
  if (!supervisor()) return null;
  const options = () => ({ client: state.client, targets: transferTargets().filter((sip) => sip !== chat.agent.sip), refresh: () => subscribe(state.queue) });
  const who = chat.visitor.dn || chat.visitor.sip;
  return el(
    "div",
    { class: "card-actions" },
    el("button", { type: "button", class: "ghost small", text: "Transfer", "aria-label": `Transfer the chat with ${who}`, onclick: () => manage("transfer", chat, options()) }),
    el("button", { type: "button", class: "danger small", text: "Close", "aria-label": `Close the chat with ${who}`, onclick: () => manage("close", chat, options()) }),
  );
}

function activeCard(chat) {
  const mine = chat.agent && state.client && chat.agent.sip === state.client.sip;
  const view = state.chats.get(chat.confId);
  const name = chat.visitor.dn || chat.visitor.sip;
  return el(
    "li",
    { class: `card active${mine ? " mine" : ""}`, dataset: { confId: chat.confId } },
    el(
      "div",
      { class: "card-top" },
      avatar(name),
      el(
        "div",
        { class: "card-who" },
        el("strong", { text: name }),
        el("span", { class: "since", text: `with ${mine ? "you" : chat.agent.dn || chat.agent.sip} · ${elapsed(chat.since)}` }),
      ),
      mine && view ? el("button", { type: "button", class: "ghost small", text: "Open", onclick: () => view.focus() }) : null,
    ),
    chat.context && chat.context.product ? el("div", { class: "card-ctx" }, el("span", { class: "product", text: chat.context.product })) : null,
    mine ? null : othersActions(chat),
  );
}

/** The visitors the console shows: it follows their presence (docs 12.37). */
function shownVisitors() {
  const sips = new Set();
  for (const chat of state.board.values()) if (!chat.agent) sips.add(chat.visitor.sip);
  for (const call of state.ringing.values()) sips.add(call.peer.sip);
  for (const view of state.chats.values()) sips.add(view.visitor.sip);
  return sips;
}

function renderBoard() {
  const waiting = [];
  const seen = new Set();
  for (const [confId, chat] of state.board) {
    if (chat.agent) continue;
    seen.add(confId);
    waiting.push([chat.since, waitingCard(confId, chat, state.ringing.get(confId))]);
  }
  for (const [confId, call] of state.ringing) {
    if (!seen.has(confId)) waiting.push([0, waitingCard(confId, null, call)]);
  }
  waiting.sort((a, b) => a[0] - b[0]);
  $("waiting").replaceChildren(...waiting.map(([, card]) => card));
  $("waiting-count").textContent = String(waiting.length);
  $("waiting-count").classList.toggle("hot", waiting.length > 0);
  $("waiting-empty").hidden = waiting.length > 0;
  $("views-waiting").textContent = String(waiting.length);
  $("views-waiting").hidden = waiting.length === 0 || shownView === "board";
  const active = [...state.board.values()].filter((chat) => chat.agent).sort((a, b) => a.since - b.since);
  $("active").replaceChildren(...active.map(activeCard));
  $("active-count").textContent = String(active.length);
  $("active-empty").hidden = active.length > 0;
  const rings = state.ringing.size;
  document.title = rings ? `(${rings}) New chat · Support console` : "Support console · Switchboard";
  if (state.client) presence.followOnly(state.client, shownVisitors());
}

state.changed = renderBoard;

function agentName(sip) {
  for (const chat of state.board.values()) if (chat.agent && chat.agent.sip === sip) return chat.agent.dn || sip;
  return sip;
}

/** A supervisor closed or moved a chat of ours: the column says so (docs 12.34). */
function explain(view, message) {
  const me = state.client.sip;
  if (message.mt === "ChatClosed" && ![me, view.visitor.sip, "system"].includes(message.by)) {
    view.explain(`${agentName(message.by)} closed this chat.`);
  } else if (message.mt === "ChatTransferred" && message.from === me && !view.transferring) {
    view.explain(`A supervisor handed this chat to ${message.to}.`);
  }
}

function onBoard(message) {
  if (message.src !== boardSrc) return;
  const chat = message.chat;
  if (!chat) return;
  const view = state.chats.get(chat.confId);
  if (view) explain(view, message);
  if (message.mt === "ChatClosed" || chat.queue !== state.queue) state.board.delete(chat.confId);
  else state.board.set(chat.confId, chat);
  if (view) view.refresh();
  renderBoard();
}

function showTerms(terms) {
  state.terms = { role: terms.role === "supervisor" ? "supervisor" : "agent", take_on_write: Boolean(terms.take_on_write) };
  $("me-role").hidden = !supervisor();
}

async function subscribe(name) {
  const previous = state.queue;
  subscription += 1;
  const mine = subscription;
  state.queue = name;
  $("queue-input").value = name;
  $("board-error").hidden = true;
  state.board.clear();
  renderBoard();
  if (previous !== name && state.client.status === "online") {
    state.client.request("Queue", "Unsubscribe", { queue: previous }).catch(() => {});
  }
  if (shownView === "history") showHistory(state.client, name);
  // the board's updates come on the src of the Subscribe (PROTOCOL §9.3)
  const request = state.client.request("Queue", "Subscribe", { queue: name });
  boardSrc = request.src;
  try {
    const { inds, result } = await request;
    if (mine !== subscription) return;
    showTerms(result);
    for (const ind of inds) state.board.set(ind.chat.confId, ind.chat);
    localStorage.setItem("switchboard.agent.queue", name);
    renderBoard();
    for (const view of state.chats.values()) view.refresh();
  } catch (error) {
    if (mine !== subscription) return;
    showTerms({});
    $("board-error").textContent =
      error.code === "forbidden"
        ? `You are not an agent of the queue "${name}".`
        : error.code === "not_found"
          ? `There is no queue "${name}".`
          : `The board could not be loaded: ${error.message}`;
    $("board-error").hidden = false;
  }
}

// -- taking and answering ---------------------------------------------------------------

async function take(confId, button) {
  if (button) button.disabled = true;
  state.taking.add(confId);
  try {
    const { result } = await state.client.request("Queue", "Take", { confId });
    const call = state.client.calls.get(result.call) || state.client.byConfId.get(confId);
    if (call) {
      call.state = "connected"; // Take connects it: the hub's setup must not be answered
      state.ringing.delete(confId);
      chatOf(call).focus();
    }
  } catch (error) {
    toast(
      error.code === "already_taken"
        ? "Another agent took this chat first."
        : error.code === "unavailable"
          ? "You have as many chats as you can take: close one first."
          : error.message,
      "error",
    );
  } finally {
    state.taking.delete(confId);
    renderBoard();
  }
}

function accept(call) {
  state.ringing.delete(call.confId);
  call.answer();
  renderBoard();
}

// -- views, availability ----------------------------------------------------------------

function showView(name) {
  shownView = name;
  for (const button of $("views").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === name));
  }
  $("board-view").hidden = name !== "board";
  $("history").hidden = name !== "history";
  if (name === "history") showHistory(state.client, state.queue);
  else hideHistory();
  renderBoard();
}

$("views").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-view]");
  if (button && state.client) showView(button.dataset.view);
});

function showActivity(value) {
  activity = value || "available";
  const group = $("availability");
  group.dataset.activity = activity;
  for (const button of group.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.activity === activity));
  }
}

$("availability").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-activity]");
  if (!button || !state.client || state.client.status !== "online") return;
  state.client.publish(button.dataset.activity);
  // the switch follows the hub's presence_notify (showActivity), not the click
  $("availability").dataset.pending = button.dataset.activity;
});

// -- connection -------------------------------------------------------------------------

const STATUS_TEXT = { online: "Online", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" };

function onStatus({ status, error }) {
  const pill = $("conn");
  pill.dataset.status = status;
  pill.textContent = STATUS_TEXT[status] || status;
  const banner = $("conn-banner");
  if (status === "reconnecting") {
    banner.textContent = "Connection lost. Reconnecting… your chats are kept meanwhile.";
    banner.dataset.kind = "warn";
    banner.hidden = false;
  } else if (status === "offline" && !$("console").hidden && error) {
    banner.textContent = `Disconnected (${error}). Sign in again to continue.`;
    banner.dataset.kind = "error";
    banner.hidden = false;
  } else if (status === "online") {
    banner.hidden = true;
  }
  for (const view of state.chats.values()) {
    view.composer.classList.toggle("offline", status !== "online");
  }
}

function onPresence(c, detail) {
  if (detail.sip === c.sip) {
    delete $("availability").dataset.pending;
    showActivity(detail.status === "open" ? detail.activity : "");
    return;
  }
  if (!presence.noted(detail)) return;
  renderBoard();
  for (const view of state.chats.values()) if (view.visitor.sip === detail.sip) view.refresh();
}

function onCall(call) {
  if (call.presence || !call.incoming) return;
  if (state.taking.has(call.confId)) return; // our own Take: connected by TakeResult
  if (call.state === "connected") {
    chatOf(call); // a chat we had, offered again after a reconnect
    return;
  }
  state.ringing.set(call.confId, call);
  const name = call.peer.dn || call.peer.sip;
  toast(`New chat from ${name}${call.context && call.context.product ? ` about ${call.context.product}` : ""}`);
  renderBoard();
}

function onReleased(call, cause) {
  if (call.presence) return presence.ended(call, cause);
  const offered = state.ringing.get(call.confId) === call;
  if (offered) {
    state.ringing.delete(call.confId);
    renderBoard();
  }
  const view = state.chats.get(call.confId);
  if (view && view.call === call) view.ended(cause, offered);
}

function onMessage(call, message) {
  if (call.presence) return;
  if (call.state !== "connected" && !state.taking.has(call.confId) && !state.chats.has(call.confId)) return;
  const view = chatOf(call);
  if (message.mine && !message.state) message.state = "delivered";
  view.add(message);
  if (!message.mine) view.showTyping(false);
}

function listen(c) {
  c.addEventListener("status", (event) => onStatus(event.detail));
  c.addEventListener("registered", (event) => {
    if (registeredOnce) {
      subscribe(state.queue); // a new connection: its board subscription is new too
      if (!event.detail.resumed) c.publish(activity); // a fresh registration starts available
    }
    registeredOnce = true;
  });
  c.addEventListener("presence", (event) => onPresence(c, event.detail));
  c.addEventListener("call", (event) => onCall(event.detail.call));
  c.addEventListener("connected", (event) => {
    const { call } = event.detail;
    if (call.presence) return;
    state.ringing.delete(call.confId);
    const view = chatOf(call);
    view.refresh();
    view.focus();
  });
  c.addEventListener("message", (event) => onMessage(event.detail.call, event.detail.message));
  c.addEventListener("ack", (event) => {
    const { call, ack } = event.detail;
    if (ack.time) hubClock.skew = ack.time * 1000 - Date.now();
    const view = state.chats.get(call.confId);
    if (view) view.ack(ack);
  });
  c.addEventListener("typing", (event) => {
    const { call, typing, dn, sip } = event.detail;
    if (sip === c.sip) return;
    const view = state.chats.get(call.confId);
    if (view) view.showTyping(typing, dn);
  });
  c.addEventListener("released", (event) => onReleased(event.detail.call, event.detail.cause));
  c.addEventListener("queue", (event) => onBoard(event.detail.message));
  c.addEventListener("chatdeleted", (event) => historyChatDeleted(event.detail.message));
  c.addEventListener("error", (event) => {
    const { message } = event.detail;
    if (message.code === "already_taken") toast("Another agent took this chat first.", "error");
    else if (message.text || message.code) toast(message.text || message.code, "error");
  });
}

async function login(event) {
  event.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  const wanted = $("login-queue").value.trim() || "support";
  const submit = $("login-submit");
  submit.disabled = true;
  $("login-error").hidden = true;
  registeredOnce = false;
  const client = new Client({ sip: user, password });
  state.client = client;
  listen(client);
  try {
    await client.connect();
  } catch (error) {
    $("login-error").textContent =
      error.message === "login failed"
        ? "Wrong user or password."
        : error.message === "throttled"
          ? "Too many attempts. Please wait a minute."
          : `Could not sign in: ${error.message}`;
    $("login-error").hidden = false;
    submit.disabled = false;
    state.client = null;
    return;
  }
  submit.disabled = false;
  localStorage.setItem("switchboard.agent.user", user);
  $("login-password").value = "";
  $("login-view").hidden = true;
  $("console").hidden = false;
  $("me-name").textContent = user;
  // initials from our name as visitors and colleagues see it (docs/protocol.md 12.42)
  $("me-avatar").replaceWith(Object.assign(avatar(client.dn || user, "small"), { id: "me-avatar" }));
  client.watch(client.sip); // our own presence: the availability switch follows it
  state.queue = wanted;
  showView("board");
  await subscribe(wanted);
}

function logout() {
  if (state.client) state.client.close();
  state.client = null;
  state.board.clear();
  state.ringing.clear();
  for (const view of [...state.chats.values()]) view.remove();
  presence.forget();
  resetHistory();
  showTerms({});
  if ($("manage-dialog").open) $("manage-dialog").close();
  $("console").hidden = true;
  $("login-view").hidden = false;
  $("conn-banner").hidden = true;
  $("login-password").focus();
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("queue-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("queue-input").value.trim();
  if (name && state.client) subscribe(name);
});

$("login-user").value = localStorage.getItem("switchboard.agent.user") || "";
$("login-queue").value = localStorage.getItem("switchboard.agent.queue") || "support";
if ($("login-user").value) $("login-password").focus();

setInterval(() => {
  if (!state.client) return;
  renderBoard();
  for (const view of state.chats.values()) view.refresh();
}, 15000);
