// The visitor's side of live support (PROTOCOL §9): the page inside the widget's frame.
//
// It makes a throwaway visitor account (POST /api/visitors, §9.1) with the shop page's
// context, logs in with it and calls the support queue. The account, the resume token and
// the chat's confId (the conversation's id, §4.5) are kept for the tab (sessionStorage, see "storage" below), so a reload
// of the shop page keeps the chat: the new page registers with the stored token, the hub
// offers the live call again (setup with `resumed`, §4.9) and replays what was said.

import { Client, CAUSES } from "./switchboard.js";
import { messageFragment as fragment } from "./html.js";
import { initials } from "./initials.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const queue = (params.get("queue") || "support").trim();
const domain = (params.get("domain") || "").trim(); // the tenant (the widget's data-domain)
const context = {};
for (const key of ["product", "seller", "url"]) {
  const value = (params.get(key) || "").trim();
  if (value) context[key] = value;
}
const framed = window.parent !== window;
const STORE = `switchboard.visit.${domain ? `${domain}.` : ""}${queue}`;

// -- storage -----------------------------------------------------------------------------
//
// Opened directly, the page keeps its state in its own sessionStorage. In the widget's
// frame it is a third-party frame, whose storage browsers refuse or partition: there the
// widget keeps the state in the shop page's sessionStorage instead. It hands it in with
// the frame's address (#state=…, removed at once) and gets every change by postMessage,
// sent only to the origin the widget named.

const embedded = framed && params.get("embed") === "1";
const parentOrigin = params.get("origin") || "";
let state = {};
if (embedded) {
  const match = /(?:^#|&)state=([^&]*)/.exec(location.hash);
  if (match) {
    try {
      state = JSON.parse(decodeURIComponent(match[1])) || {};
    } catch {
      state = {};
    }
  }
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
} else {
  try {
    state = JSON.parse(sessionStorage.getItem(STORE) || "{}") || {};
  } catch {
    state = {}; // storage refused: the chat lives as long as this page
  }
}
if (state.callId && !state.confId) state.confId = state.callId; // kept by an older page: the same id
delete state.callId;

function save() {
  if (embedded) {
    if (/^https?:\/\/[^/]+$/.test(parentOrigin)) {
      window.parent.postMessage({ type: "switchboard:state", state }, parentOrigin);
    }
    return;
  }
  try {
    sessionStorage.setItem(STORE, JSON.stringify(state));
  } catch {
    // memory only
  }
}

function el(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function clock(seconds) {
  const date = seconds ? new Date(seconds * 1000) : new Date();
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}


// -- the page ---------------------------------------------------------------------------

const page = $("visit");
const messages = $("messages");
const text = $("text");
let client = null;
let call = null;
let agent = "";
let endedByMe = false;
const shownIds = new Map(); // message id -> its <li>
const shownSeqs = new Set();
let typingTimer = null;
let typingSent = 0;
let lastAuthor = null; // a run of one author's messages shows the name once

if (params.get("title")) $("title").textContent = params.get("title").slice(0, 80);
if (context.product) {
  $("context-product").textContent = context.product;
  $("context").hidden = false;
}
if (framed) $("minimize").hidden = false;
if (state.name) $("name").value = state.name;

function phase(name) {
  page.dataset.phase = name;
  $("intro").hidden = name !== "intro";
  $("chat").hidden = name === "intro";
  $("composer").hidden = name === "ended";
  $("ended").hidden = name !== "ended";
  $("end").hidden = !(name === "waiting" || name === "chatting");
  if (name !== "chatting") showTyping(false);
}

function subtitle(textContent, mood = "") {
  $("subtitle-text").textContent = textContent;
  $("subtitle").dataset.mood = mood;
}

function setAgent(name) {
  agent = name || "Support";
  state.agent = agent;
  save();
  $("title").textContent = agent;
  $("avatar").textContent = initials(agent);
  $("avatar").classList.add("person");
  subtitle("Online now", "online");
  phase("chatting");
}

function setWaiting() {
  subtitle("Waiting for an agent…", "waiting");
  phase("waiting");
}

function banner(message) {
  $("banner").hidden = !message;
  $("banner-text").textContent = message || "";
}

function post(kind) {
  if (framed) window.parent.postMessage({ type: `switchboard:${kind}` }, "*");
}

function scrollDown() {
  messages.scrollTop = messages.scrollHeight;
}

function note(message, kind = "note") {
  lastAuthor = null;
  const item = el("li", `note ${kind}`);
  item.append(el("span", "", message));
  messages.append(item);
  scrollDown();
}

const ACK_TEXT = { held: "Waiting for an agent", delivered: "Delivered", stored: "Delivered", not_delivered: "Not delivered" };

function addMessage(message) {
  if (message.id && shownIds.has(message.id)) return;
  if (message.seq && !message.mine && shownSeqs.has(message.seq)) return;
  if (message.seq) shownSeqs.add(message.seq);
  const system = message.system;
  const kind = system ? "system" : message.mine ? "mine" : "theirs";
  const item = el("li", `msg ${kind}`);
  if (system) {
    lastAuthor = null;
    const icon = el("span", "system-icon", "!");
    icon.setAttribute("aria-hidden", "true");
    item.append(icon);
    const body = el("div", "system-text");
    body.append(fragment(message.data));
    item.append(body);
  } else {
    const author = message.mine ? "me" : message.sender || "";
    if (!message.mine && lastAuthor !== author) item.append(el("span", "author", message.sender_dn || agent || "Support"));
    else if (lastAuthor === author) item.classList.add("follows");
    lastAuthor = author;
    const bubble = el("div", "bubble");
    bubble.append(fragment(message.data));
    item.append(bubble);
    const meta = el("span", "meta", clock(message.time));
    if (message.mine) meta.append(el("span", "state", message.state ? ` · ${ACK_TEXT[message.state] || ""}` : ""));
    item.append(meta);
  }
  if (message.id) shownIds.set(message.id, item);
  messages.append(item);
  if (!message.mine) {
    // one polite announcer, replaced each time: a replayed history is not read out whole
    const who = system ? "" : `${message.sender_dn || agent || "Support"}: `;
    $("announce").textContent = who + (item.querySelector(".bubble, .system-text")?.textContent || "");
  }
  scrollDown();
  return item;
}

function showTyping(on, name) {
  $("typing").hidden = !on;
  if (on) $("typing-text").textContent = `${name || agent || "Support"} is typing…`;
  if (on) scrollDown();
}

let goneCause = null; // why our chat ended while the page was away, when the hub said

function ended(cause) {
  const waiting = page.dataset.phase === "waiting";
  call = null;
  state.confId = null;
  state.agent = "";
  save();
  let title = "Chat ended";
  let detail;
  if (endedByMe) detail = "You ended the chat. Thank you for writing to us!";
  else if (cause === 16) detail = waiting ? "The chat was closed." : `${agent || "The agent"} closed the chat. Thank you for writing to us!`;
  else if (cause === 102) detail = "The chat was closed because nobody wrote for a while.";
  else if (cause === 19 || cause === 18 || cause === 1 || cause === 47) {
    title = "No agent is available";
    detail = "Sorry, nobody can answer right now. Please try again a little later.";
  } else if (cause === 41) detail = "The connection was lost and the chat ended.";
  else detail = `The chat ended (${CAUSES[cause] || `cause ${cause}`}).`;
  $("ended-title").textContent = title;
  $("ended-text").textContent = detail;
  $("ended").dataset.cause = String(cause);
  subtitle(title === "Chat ended" ? "Chat ended" : "No agent available", "ended");
  endedByMe = false;
  phase("ended");
  scrollDown();
}

// -- the account and the connection -----------------------------------------------------

async function visitorAccount(name) {
  if (state.account) return state.account;
  const response = await fetch("/api/visitors", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(domain ? { name, context, domain } : { name, context }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(
      problem.code === "rate_limited"
        ? "Too many chats were started from your network. Please try again later."
        : problem.code === "origin_refused"
          ? "This shop's chat cannot be started from this page."
          : "The chat could not be started. Please try again.",
    );
  }
  const made = await response.json();
  state.account = { sip: made.sip, password: made.password, domain: made.domain };
  state.token = null;
  save();
  return state.account;
}

function listen(c) {
  c.addEventListener("registered", (event) => {
    state.token = event.detail.resume;
    save();
  });
  c.addEventListener("status", (event) => {
    const { status } = event.detail;
    if (status === "online") banner("");
    else if (status === "reconnecting") banner("Connection lost. Reconnecting…");
    else if (status === "offline" && event.detail.error) banner("Disconnected. Reload the page to continue.");
    const live = status === "online";
    text.disabled = !live;
    $("send").disabled = !live;
  });
  c.addEventListener("gone", (event) => {
    // our chat ended while the page was away: the resume says why (docs/protocol.md 12.35)
    if (event.detail.confId === state.confId) goneCause = event.detail.cause;
  });
  c.addEventListener("call", (event) => {
    const offered = event.detail.call;
    if (!offered.incoming || offered.presence || call) return;
    if (offered.confId === state.confId) adopt(offered);
  });
  c.addEventListener("proceeding", (event) => {
    if (event.detail.call !== call) return;
    state.confId = call.confId;
    save();
  });
  c.addEventListener("connected", (event) => {
    if (event.detail.call !== call) return;
    const joined = call.peer.dn;
    if (joined && joined !== agent) {
      note(`${joined} joined the chat`);
      setAgent(joined);
    }
  });
  c.addEventListener("message", (event) => {
    if (event.detail.call !== call) return;
    const message = event.detail.message;
    if (message.mine && !message.state) message.state = "delivered";
    addMessage(message);
    if (!message.mine) {
      showTyping(false);
      post("message");
    }
  });
  c.addEventListener("ack", (event) => {
    if (event.detail.call !== call) return;
    const { ack } = event.detail;
    const item = shownIds.get(ack.id);
    if (!item) return;
    if (ack.seq) shownSeqs.add(ack.seq);
    item.dataset.state = ack.state;
    const label = item.querySelector(".state");
    if (label) label.textContent = ` · ${ACK_TEXT[ack.state] || ack.state}`;
    const meta = item.querySelector(".meta");
    if (meta && ack.time && meta.firstChild) meta.firstChild.textContent = clock(ack.time);
  });
  c.addEventListener("typing", (event) => {
    if (event.detail.call !== call || event.detail.sip === c.sip) return;
    showTyping(event.detail.typing, event.detail.dn);
  });
  c.addEventListener("released", (event) => {
    if (event.detail.call !== call) return;
    ended(event.detail.cause);
  });
}

/** The chat the hub offered again after a reload: the replay of what was said follows. */
function adopt(offered) {
  call = offered;
  state.confId = call.confId;
  save();
  phase("chatting");
  const queueSip = call.queue ? call.queue.sip : queue;
  if (call.peer.sip === queueSip || call.peer.sip === queue) setWaiting();
  else setAgent(call.peer.dn || state.agent);
}

async function connect() {
  if (client && client.status !== "offline") return client;
  const account = state.account;
  client = new Client({
    sip: account.sip,
    password: account.password,
    domain: account.domain,
    resume: state.token || null,
    seqs: state.confId ? { [state.confId]: 0 } : null, // 0: replay everything we had
  });
  listen(client);
  await client.connect();
  return client;
}

function startCall() {
  messages.replaceChildren();
  lastAuthor = null;
  shownIds.clear();
  shownSeqs.clear();
  agent = "";
  $("title").textContent = params.get("title") || "Chat with us";
  $("avatar").classList.remove("person");
  call = client.chat(queue, { context: Object.keys(context).length ? context : null });
  setWaiting();
  note(`Hi${state.name ? ` ${state.name}` : ""}! Tell us how we can help, an agent will join you shortly.`, "welcome");
  text.focus();
}

async function start(event) {
  event.preventDefault();
  const button = $("start");
  button.disabled = true;
  $("start-error").hidden = true;
  const name = $("name").value.trim();
  try {
    if (!state.account) state.name = name;
    await visitorAccount(name);
    try {
      await connect();
    } catch (error) {
      if (!/login failed/.test(error.message)) throw error;
      state = { name }; // the account is gone (expired): make a new one
      save();
      await visitorAccount(name);
      await connect();
    }
    startCall();
  } catch (error) {
    $("start-error").textContent = error.message || "The chat could not be started.";
    $("start-error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

/** A reload: log in again with the stored account and take the live chat back. */
async function restore() {
  phase("waiting");
  subtitle("Reconnecting…", "waiting");
  try {
    await connect();
  } catch (error) {
    if (/login failed/.test(error.message)) {
      state = { name: state.name }; // the account is gone: start again
      save();
      phase("intro");
      subtitle("We usually answer within minutes");
    } else {
      banner("The chat cannot be reached right now. Reload the page to try again.");
    }
    return;
  }
  await client.sync(); // the hub offers every live call right after RegisterResult
  if (!call && goneCause !== null) return ended(goneCause);
  if (!call) {
    const cause = client.resumed ? 16 : 41;
    state.confId = null;
    save();
    $("ended-title").textContent = "Chat ended";
    $("ended-text").textContent =
      cause === 16 ? "This chat has ended." : "The chat ended while you were away.";
    subtitle("Chat ended", "ended");
    phase("ended");
  }
}

// -- writing ----------------------------------------------------------------------------

function send(event) {
  event.preventDefault();
  const data = text.value.trim();
  if (!data || !call || !client || client.status !== "online") return;
  const id = call.send(data);
  const item = addMessage({ id, data: escape(data), mine: true, time: 0, state: "sending" });
  if (item) item.querySelector(".state").textContent = " · Sending";
  text.value = "";
  autosize();
  typingSent = 0;
}

function escape(value) {
  const div = document.createElement("div");
  div.textContent = value;
  return div.innerHTML;
}

function autosize() {
  text.style.height = "auto";
  text.style.height = `${Math.min(text.scrollHeight, 120)}px`;
}

function typing() {
  autosize();
  if (!call || page.dataset.phase !== "chatting" || client.status !== "online") return;
  const now = Date.now();
  if (text.value.trim() && now - typingSent > 3000) {
    call.typing(true);
    typingSent = now;
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => {
    if (typingSent && call && client.status === "online") call.typing(false);
    typingSent = 0;
  }, 4000);
}

$("start-form").addEventListener("submit", start);
$("composer").addEventListener("submit", send);
text.addEventListener("input", typing);
text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) send(event);
});
$("end").addEventListener("click", () => {
  if (!call) return;
  endedByMe = true;
  call.release();
});
$("restart").addEventListener("click", async () => {
  try {
    await connect();
    startCall();
  } catch {
    phase("intro");
  }
});
$("minimize").addEventListener("click", () => post("close"));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && framed) post("close"); // the widget closes and refocuses its button
});

if (state.account && state.confId) restore();
else phase("intro");
