// Signing in and out, and what a fresh login loads.

import { Client } from "../switchboard.js";
import { renderContacts, renderMe } from "./contacts.js";
import { watch } from "./conversations.js";
import { ui } from "./dom.js";
import { loadEmoticons } from "./emoji.js";
import { onAck, onCall, onConnected, onError, onMessage, onPresence, onReleased, onSeen, onStatus, onTyping } from "./events.js";
import { readChats } from "./history.js";
import { chatDeleted, loadLimits } from "./manage.js";
import { state } from "./state.js";
import { loadContacts } from "./storage.js";

export function loginErrorText(error) {
  const text = error.message || "";
  if (text === "login failed") return "Wrong user name or password.";
  if (text === "throttled") return "Too many attempts. Wait a minute, then try again.";
  if (text === "no valid challenge") return "The sign-in took too long. Try again.";
  return `Could not connect to the server${text ? ` (${text})` : ""}.`;
}

export async function login(event) {
  event.preventDefault();
  const sip = ui.loginUser.value.trim();
  const password = ui.loginPassword.value;
  const domain = ui.loginDomain.value.trim();
  if (!sip || !password) {
    ui.loginError.textContent = "Enter your user name and password.";
    (sip ? ui.loginPassword : ui.loginUser).focus();
    return;
  }
  ui.loginError.textContent = "";
  ui.loginSubmit.disabled = true;
  ui.loginSubmit.textContent = "Signing in…";
  const client = new Client({ sip, password, domain });
  client.addEventListener("status", (e) => onStatus(e.detail));
  client.addEventListener("call", (e) => onCall(e.detail));
  client.addEventListener("connected", (e) => onConnected(e.detail));
  client.addEventListener("message", (e) => onMessage(e.detail));
  client.addEventListener("ack", (e) => onAck(e.detail));
  client.addEventListener("typing", (e) => onTyping(e.detail));
  client.addEventListener("seen", (e) => onSeen(e.detail));
  client.addEventListener("released", (e) => onReleased(e.detail));
  client.addEventListener("presence", (e) => onPresence(e.detail));
  client.addEventListener("error", (e) => onError(e.detail));
  client.addEventListener("chatdeleted", (e) => chatDeleted(e.detail.message));
  state.client = client;
  state.me = { sip, domain: domain || "" };
  try {
    await client.connect();
  } catch (error) {
    state.client = null;
    state.me = null;
    ui.loginError.textContent = loginErrorText(error);
    ui.loginSubmit.disabled = false;
    ui.loginSubmit.textContent = "Sign in";
    ui.loginPassword.select();
    ui.loginPassword.focus();
    return;
  }
  state.me.domain = client.domain;
  state.me.dn = client.dn;
  try {
    localStorage.setItem("switchboard:last-user", JSON.stringify({ sip, domain }));
  } catch {
    // private mode: nothing to remember
  }
  ui.loginPassword.value = "";
  ui.login.hidden = true;
  ui.app.hidden = false;
  renderMe();
  state.selfWatch = client.watch(sip); // our own presence, and our unread badge
  loadContacts();
  renderContacts();
  loadEmoticons();
  await Promise.all([readChats(), loadLimits()]);
  for (const conv of state.convs.values()) watch(conv);
  // the first field to type in, unless the user is already typing somewhere (a search
  // started while the chats were loading must keep its keystrokes)
  const active = document.activeElement;
  if (!active || active === document.body || active === ui.loginPassword) ui.addSip.focus();
}

export function logout() {
  state.loggingOut = true;
  if (state.client) state.client.close();
  // a fresh page forgets every conversation, timer and listener of this login
  location.reload();
}
