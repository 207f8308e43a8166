/*
 * Switchboard chat widget: the one script a shop page includes.
 *
 *   <script src="https://HUB/static/widget.js" data-product="Lamp 7" data-seller="..." async></script>
 *
 * Optional: data-domain (the tenant whose visitor the chat makes, default the hub's default
 * tenant; the tenant's widget_origins must list this page's origin), data-queue (default
 * "support"), data-title (the chat's heading), data-color
 * (the bubble's colour), data-label (the bubble's accessible name).
 *
 * It adds a chat bubble to the page; a click opens a panel holding a frame of HUB/visit,
 * where all of the chat runs (same origin as the hub). The chat learns nothing of the page
 * but its address and the data-* above; the page keeps the frame's state for the tab (the
 * throwaway visitor account and the live chat), so that a reload keeps the chat. Styles are set
 * through the DOM (no inline <style>), inside a shadow root, so neither the page's CSS nor
 * a strict Content-Security-Policy of the page gets in the way (such a policy must allow
 * HUB in script-src and frame-src).
 */
(function () {
  "use strict";

  var script =
    document.currentScript ||
    Array.prototype.slice.call(document.getElementsByTagName("script")).filter(function (s) {
      return /\/static\/widget\.js(\?|#|$)/.test(s.src);
    })[0];
  if (!script || window.__switchboardWidget) return;
  window.__switchboardWidget = true;

  var hub = new URL(script.src, location.href).origin;
  var data = script.dataset || {};
  var color = /^#[0-9a-f]{3,8}$/i.test(data.color || "") ? data.color : "#2457c5";
  var OPEN_KEY = "switchboard-widget-open";
  var STATE_KEY = "switchboard-widget-state"; // the chat's state, for the frame (see below)
  var PHONE = window.matchMedia("(max-width: 520px)");

  function visitUrl() {
    var params = new URLSearchParams();
    if (data.product) params.set("product", data.product);
    if (data.seller) params.set("seller", data.seller);
    if (data.domain) params.set("domain", data.domain);
    if (data.queue) params.set("queue", data.queue);
    if (data.title) params.set("title", data.title);
    // the page, not its query: a query may hold tokens, addresses or order numbers
    params.set("url", (location.origin + location.pathname).slice(0, 2000));
    params.set("embed", "1");
    params.set("origin", location.origin);
    var saved = read(STATE_KEY);
    return hub + "/visit?" + params.toString() + (saved ? "#state=" + encodeURIComponent(saved) : "");
  }

  // The frame is a third-party frame: browsers refuse or partition its storage. So that a
  // reload of this page keeps the chat, the frame's state (its visitor account, resume
  // token and chat) lives here, in this page's sessionStorage, for this tab only.
  function read(key) {
    try {
      return sessionStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function write(key, value) {
    try {
      if (value) sessionStorage.setItem(key, value);
      else sessionStorage.removeItem(key);
    } catch (e) {
      /* storage refused: a reload starts afresh */
    }
  }

  function remember(open) {
    write(OPEN_KEY, open ? "1" : "");
  }

  function wasOpen() {
    return read(OPEN_KEY) === "1";
  }

  function css(element, styles) {
    for (var key in styles) element.style.setProperty(key, styles[key]);
    return element;
  }

  var SVG = "http://www.w3.org/2000/svg";

  function icon(paths) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "28");
    svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true");
    paths.forEach(function (d) {
      var path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "currentColor");
      svg.appendChild(path);
    });
    return svg;
  }

  var CHAT_ICON = icon([
    "M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16.9A2.5 2.5 0 0 1 4 14.5z",
  ]);
  var CLOSE_ICON = icon([
    "M6.3 6.3a1 1 0 0 1 1.4 0L12 10.6l4.3-4.3a1 1 0 1 1 1.4 1.4L13.4 12l4.3 4.3a1 1 0 0 1-1.4 1.4L12 13.4l-4.3 4.3a1 1 0 0 1-1.4-1.4l4.3-4.3-4.3-4.3a1 1 0 0 1 0-1.4z",
  ]);

  var host = document.createElement("div");
  host.setAttribute("data-switchboard-widget", "");
  css(host, { position: "fixed", "z-index": "2147483000", right: "0", bottom: "0", width: "0", height: "0" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  var bubble = document.createElement("button");
  bubble.type = "button";
  bubble.className = "switchboard-bubble";
  bubble.setAttribute("aria-label", data.label || "Chat with us");
  bubble.setAttribute("aria-expanded", "false");
  bubble.appendChild(CHAT_ICON);
  css(bubble, {
    position: "fixed",
    right: "20px",
    bottom: "20px",
    width: "60px",
    height: "60px",
    "border-radius": "50%",
    border: "0",
    padding: "0",
    margin: "0",
    display: "grid",
    "place-items": "center",
    background: color,
    color: "#fff",
    cursor: "pointer",
    "box-shadow": "0 6px 20px rgba(16, 24, 40, 0.25), 0 2px 6px rgba(16, 24, 40, 0.15)",
    transition: "transform 0.18s ease, box-shadow 0.18s ease",
  });

  var badge = document.createElement("span");
  badge.setAttribute("aria-hidden", "true");
  css(badge, {
    position: "absolute",
    top: "2px",
    right: "2px",
    width: "14px",
    height: "14px",
    "border-radius": "50%",
    background: "#f04438",
    border: "2px solid #fff",
    display: "none",
  });
  bubble.appendChild(badge);

  var panel = document.createElement("div");
  panel.className = "switchboard-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", data.title || "Chat with us");
  css(panel, {
    position: "fixed",
    display: "none",
    overflow: "hidden",
    background: "#f5f7fb",
    "box-shadow": "0 12px 48px rgba(16, 24, 40, 0.28), 0 2px 8px rgba(16, 24, 40, 0.12)",
  });

  var frame = null;

  function layout() {
    var phone = PHONE.matches;
    css(panel, phone
      ? { left: "0", top: "0", right: "0", bottom: "0", width: "100%", height: "100%", "border-radius": "0" }
      : {
          left: "auto",
          top: "auto",
          right: "20px",
          bottom: "92px",
          width: "380px",
          height: "min(620px, calc(100vh - 116px))",
          "border-radius": "16px",
        });
    var open = panel.style.display !== "none";
    css(bubble, { display: phone && open ? "none" : "grid" });
  }

  function setOpen(open, byUser) {
    if (open && !frame) {
      frame = document.createElement("iframe");
      frame.src = visitUrl();
      frame.title = data.title || "Chat with us";
      frame.setAttribute("allow", "clipboard-write");
      css(frame, { border: "0", width: "100%", height: "100%", display: "block", background: "#f5f7fb" });
      panel.appendChild(frame);
    }
    css(panel, { display: open ? "block" : "none" });
    bubble.setAttribute("aria-expanded", open ? "true" : "false");
    bubble.replaceChild(open ? CLOSE_ICON : CHAT_ICON, bubble.firstChild);
    if (open) css(badge, { display: "none" });
    remember(open);
    layout();
    if (byUser && open) frame.focus(); // keyboard users land in the chat
    if (byUser && !open) bubble.focus(); // and come back to the button that opened it
  }

  bubble.addEventListener("click", function () {
    setOpen(panel.style.display === "none", true);
  });
  root.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && panel.style.display !== "none") setOpen(false, true);
  });
  bubble.addEventListener("mouseenter", function () {
    css(bubble, { transform: "scale(1.06)" });
  });
  bubble.addEventListener("mouseleave", function () {
    css(bubble, { transform: "none" });
  });

  window.addEventListener("message", function (event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== hub) return;
    var type = event.data && event.data.type;
    if (type === "switchboard:close") setOpen(false, true);
    if (type === "switchboard:state") {
      var state = event.data.state;
      write(STATE_KEY, state && state.account ? JSON.stringify(state) : "");
    }
    if (type === "switchboard:message" && panel.style.display === "none") css(badge, { display: "block" });
  });

  if (PHONE.addEventListener) PHONE.addEventListener("change", layout);

  // the button first, then the panel it opens: Tab goes from one into the other
  root.appendChild(bubble);
  root.appendChild(panel);

  function mount() {
    document.body.appendChild(host);
    layout();
    if (wasOpen()) setOpen(true);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
