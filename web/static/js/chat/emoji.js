// The composer's emoji picker: Unicode emoji and the tenant's emoticons.

import { el, ui } from "./dom.js";
import { safeUrl } from "./format.js";
import { renderBody } from "./render.js";
import { state } from "./state.js";
import { typed } from "./typing.js";

export const EMOJI = [
  ["😀", "grinning face"], ["😂", "tears of joy"], ["😊", "smiling face"], ["😍", "heart eyes"],
  ["😉", "winking face"], ["😎", "sunglasses"], ["🤔", "thinking face"], ["😅", "sweat smile"],
  ["😢", "crying face"], ["😮", "surprised face"], ["😡", "angry face"], ["😴", "sleeping face"],
  ["👍", "thumbs up"], ["👎", "thumbs down"], ["👏", "clapping hands"], ["🙏", "folded hands"],
  ["🙌", "raising hands"], ["💪", "flexed biceps"], ["👋", "waving hand"], ["🤝", "handshake"],
  ["❤️", "red heart"], ["🔥", "fire"], ["🎉", "party popper"], ["✨", "sparkles"],
  ["✅", "check mark"], ["❌", "cross mark"], ["⭐", "star"], ["👀", "eyes"],
  ["☕", "coffee"], ["🍕", "pizza"], ["🚀", "rocket"], ["💡", "light bulb"],
];

export async function loadEmoticons() {
  try {
    const answer = await fetch(`/api/emoticons?domain=${encodeURIComponent(state.me.domain)}`);
    if (!answer.ok) return;
    const { emoticons } = await answer.json();
    state.emoticons = {};
    for (const [code, path] of Object.entries(emoticons || {})) {
      const url = safeUrl(path);
      if (url && url.origin === location.origin) state.emoticons[code] = url.pathname;
    }
    buildEmoticons();
    for (const conv of state.convs.values()) {
      for (const msg of conv.messages) {
        const body = msg.node && msg.node.querySelector(".body, .system-text");
        if (body) renderBody(body, msg.html);
      }
    }
  } catch {
    // no custom emoticons: the Unicode ones still work
  }
}

export function buildEmoji() {
  for (const [emoji, name] of EMOJI) {
    const button = el("button", "emoji", emoji);
    button.type = "button";
    button.setAttribute("aria-label", name);
    button.title = name;
    button.addEventListener("click", () => insertText(emoji));
    ui.emojiGrid.append(button);
  }
}

export function buildEmoticons() {
  ui.emoticonGrid.replaceChildren();
  const codes = Object.keys(state.emoticons);
  ui.emoticonGrid.hidden = ui.emoticonTitle.hidden = codes.length === 0;
  for (const code of codes) {
    const button = el("button", "emoji");
    button.type = "button";
    button.setAttribute("aria-label", `:${code}:`);
    button.title = `:${code}:`;
    const image = el("img", "emoticon");
    image.src = state.emoticons[code];
    image.alt = "";
    button.append(image);
    button.addEventListener("click", () => insertText(`:${code}:`));
    ui.emoticonGrid.append(button);
  }
}

export function insertText(text) {
  const input = ui.input;
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, "end");
  closeEmoji(false);
  input.focus();
  if (state.open) typed(state.open);
}

export function openEmoji() {
  ui.emojiPicker.hidden = false;
  ui.emojiButton.setAttribute("aria-expanded", "true");
  ui.emojiGrid.querySelector("button").focus();
}

export function closeEmoji(returnFocus = true) {
  if (ui.emojiPicker.hidden) return;
  ui.emojiPicker.hidden = true;
  ui.emojiButton.setAttribute("aria-expanded", "false");
  if (returnFocus) ui.emojiButton.focus();
}

export function emojiKeys(event) {
  if (event.key === "Escape") {
    event.preventDefault();
    closeEmoji();
    return;
  }
  const columns = getComputedStyle(ui.emojiGrid).gridTemplateColumns.split(" ").length;
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
  if (!(event.key in moves)) return;
  const buttons = [...ui.emojiPicker.querySelectorAll("button")];
  const index = buttons.indexOf(document.activeElement);
  if (index < 0) return;
  event.preventDefault();
  const next = Math.min(buttons.length - 1, Math.max(0, index + moves[event.key]));
  buttons[next].focus();
}
