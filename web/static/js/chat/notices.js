// Notices: one per conversation above the composer, and the connection banner.

import { ui } from "./dom.js";
import { state } from "./state.js";

export function renderNotice() {
  const conv = state.open;
  const text = conv ? conv.notice : "";
  ui.noticeText.textContent = text;
  ui.notice.hidden = !text;
}

export function setNotice(conv, text) {
  conv.notice = text;
  if (conv === state.open) renderNotice();
}

export function showBanner(text, kind, action = false) {
  ui.bannerText.textContent = text;
  ui.banner.className = `banner ${kind}`;
  ui.banner.hidden = false;
  ui.bannerAction.hidden = !action;
}

export function hideBanner() {
  ui.banner.hidden = true;
}
