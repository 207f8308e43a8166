// Pure text helpers: names, presence words, times, sizes, and text <-> HTML.

export const ACTIVITY_TEXT = { available: "Online", away: "Away", busy: "Busy", dnd: "Do not disturb" };

export { initials } from "../initials.js";

/** The first word of a display name, for short mentions ("Alice: see you"). */
export function firstName(name) {
  return String(name || "").trim().split(/\s+/)[0] || String(name || "");
}

export function avatarClass(sip) {
  let hash = 0;
  for (const ch of String(sip)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `av-${hash % 8}`;
}

export function presenceClass(presence) {
  if (!presence) return "unknown";
  if (presence.unknown) return "unknown";
  if (presence.status !== "open") return "closed";
  return `open ${presence.activity || "available"}`;
}

export function presenceText(presence) {
  if (!presence) return "";
  if (presence.unknown) return "No such user";
  if (presence.status !== "open") return "Offline";
  const text = ACTIVITY_TEXT[presence.activity] || "Online";
  return presence.note ? `${text} · ${presence.note}` : text;
}

export function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** What we send: our text as HTML (escaped, line breaks as <br>), as other clients expect. */
export function textToHtml(text) {
  return escapeHtml(text).replace(/\r?\n/g, "<br>");
}

/** The plain text of sanitized HTML, for previews and announcements (never rendered). */
export function htmlToText(html) {
  const spaced = (html || "").replace(/<br\s*\/?>|<\/(p|div|li|pre|blockquote)>/gi, " $&");
  const doc = new DOMParser().parseFromString(`<body>${spaced}</body>`, "text/html");
  return (doc.body.textContent || "").replace(/\s+/g, " ").trim();
}

/** URL-encode what PROTOCOL §4.6 does not allow in `attach`, keep the rest as it is. */
export function encodeAttach(url) {
  return Array.from(url, (ch) => (/[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/.test(ch) ? ch : encodeURIComponent(ch))).join("");
}

/** A link target we are willing to put in the page: http(s) only. */
export function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed : null;
  } catch {
    return null;
  }
}

export function formatTime(ms) {
  const date = new Date(ms);
  const now = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })}, ${time}`;
}

export function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}
