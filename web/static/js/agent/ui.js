// Small helpers the support console's modules share: elements, avatars, times, the toast.

import { initials } from "../initials.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

export function escapeHtml(value) {
  const div = document.createElement("div");
  div.textContent = value;
  return div.innerHTML;
}

function hue(text) {
  let sum = 0;
  for (const char of text || "") sum = (sum * 31 + char.charCodeAt(0)) % 360;
  return sum;
}

/** A round avatar with the initials every page draws (initials.js), in one of 8 colours. */
export function avatar(name, extra = "") {
  const element = el("span", { class: `avatar ${extra}`, "aria-hidden": "true", text: initials(name) });
  element.dataset.hue = String(Math.floor(hue(name) / 45));
  return element;
}

/** The hub's clock: times on the board and in presence are the hub's, so the console
 * learns how far its own clock is off (from acknowledgements) and counts from there. */
export const hubClock = { skew: 0 };

export function hubNow() {
  return Date.now() + hubClock.skew;
}

/** "just now", "4 min", "2 h 5 min": how long since `since` (ms of the hub's clock). */
export function elapsed(since) {
  const minutes = Math.floor(Math.max(0, hubNow() - since) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  return `${Math.floor(minutes / 1440)} days`;
}

/** "just now" or "4 min ago". */
export function ago(since) {
  const text = elapsed(since);
  return text === "just now" ? text : `${text} ago`;
}

/** A message's time of day (`seconds` since the epoch; now when not given). */
export function clock(seconds) {
  const date = seconds ? new Date(seconds * 1000) : new Date(hubNow());
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A stored message's time (ms): the time of day today, else the date too. */
export function stamp(ms) {
  const date = new Date(ms);
  const today = new Date(hubNow()).toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return today ? time : `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
}

export function safeUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url : null;
  } catch {
    return null;
  }
}

let toastTimer = null;

export function toast(text, kind = "") {
  const box = $("toast");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, 4000);
}
