// The queue's stored support chats in the console (docs/protocol.md 12.32): any agent of
// the queue reads the history of the chats licensed customers had with it (`ReadChats`
// and `ReadChat` with `queue`), read-only, and searches them (`Search`, whose hits in the
// queue's chats carry `queue`). Chats of anonymous visitors are never stored, so they are
// not here.

import { messageFragment as fragment } from "../html.js";
import { $, avatar, el, stamp } from "./ui.js";

const PAGE = 30;

const view = {
  client: null,
  queue: "",
  shown: false,
  chats: new Map(), // sip -> dn, from ReadChats
  open: null, // {sip, dn, hit, oldest, more, loading}
  loads: 0, // which load the list shows (a newer one wins)
};

function text(html) {
  return new DOMParser().parseFromString(html || "", "text/html").body.textContent || "";
}

function failure(error) {
  if (error.code === "unlicensed") return "Reading the queue's history needs the messages licence.";
  if (error.code === "forbidden") return `You are not an agent of the queue "${view.queue}".`;
  if (error.code === "not_found") return `There is no queue "${view.queue}".`;
  if (error.code === "unavailable") return "The history cannot be reached now. Please try again in a moment.";
  return `The history could not be loaded: ${error.message}`;
}

function showError(error) {
  $("history-error").textContent = error ? failure(error) : "";
  $("history-error").hidden = !error;
}

/** Is this entry of the list (a chat, or a search hit: `id`) the one that is open? */
function current(li) {
  const open = view.open;
  if (!open) return false;
  return li.dataset.id ? Number(li.dataset.id) === open.hit : li.dataset.sip === open.sip;
}

function markCurrent() {
  for (const li of $("history-items").children) li.firstChild.classList.toggle("current", current(li));
}

function item(sip, dn, detail, onclick, extra = {}) {
  const name = dn || sip;
  return el(
    "li",
    { dataset: { sip, ...extra } },
    el(
      "button",
      { type: "button", class: "history-item", onclick },
      avatar(name),
      el("span", { class: "history-who" }, el("strong", { text: name }), detail),
    ),
  );
}

function renderList(heading, items, emptyText, note = "") {
  $("history-heading").textContent = heading;
  $("history-count").textContent = String(items.length);
  $("history-items").replaceChildren(...items);
  markCurrent();
  $("history-empty").textContent = emptyText;
  $("history-empty").hidden = items.length > 0 || !emptyText;
  $("history-note").textContent = note;
  $("history-note").hidden = !note;
  $("history-clear").hidden = heading !== "Found";
}

/** The queue's stored chats, newest first. */
async function loadList() {
  const load = ++view.loads;
  showError(null);
  try {
    const { inds } = await view.client.messages("ReadChats", { queue: view.queue });
    if (load !== view.loads) return;
    const chats = inds.filter((ind) => ind.mt === "ReadChatsInd" && ind.sip && !ind.grp);
    chats.sort((a, b) => (b.timestamp || 0) - (a.timestamp || 0));
    view.chats = new Map(chats.map((chat) => [chat.sip, chat.dn]));
    const items = chats.map((chat) =>
      item(chat.sip, chat.dn, el("span", { class: "since", text: chat.timestamp ? `last message ${stamp(chat.timestamp)}` : chat.sip }), () => openChat(chat.sip, chat.dn)),
    );
    renderList("Stored chats", items, "No stored chats yet. Chats with signed-in customers are kept here.");
  } catch (error) {
    if (load !== view.loads) return;
    renderList("Stored chats", [], "");
    showError(error);
  }
}

function snippet(message, words) {
  const body = text(message.text).replace(/\s+/g, " ").trim();
  const at = body.toLowerCase().indexOf(words.toLowerCase());
  if (at < 0) return el("span", { class: "snippet", text: body });
  const start = Math.max(0, at - 40);
  return el(
    "span",
    { class: "snippet" },
    `${start ? "…" : ""}${body.slice(start, at)}`,
    el("mark", { text: body.slice(at, at + words.length) }),
    body.slice(at + words.length),
  );
}

async function search(event) {
  event.preventDefault();
  const words = $("history-text").value.trim();
  if (!words) return loadList();
  const load = ++view.loads;
  showError(null);
  try {
    const { inds } = await view.client.messages("Search", { text: words, count: 50 });
    if (load !== view.loads) return;
    // the agent's own chats are found too; this view shows the queue's (docs 12.32)
    const hits = inds.filter((ind) => ind.mt === "SearchInd" && ind.queue === view.queue && ind.msg);
    const items = hits.map((hit) => {
      const dn = view.chats.get(hit.sip) || (hit.msg.author === hit.sip ? hit.msg.dn : "");
      const detail = el("span", { class: "hit-detail" }, snippet(hit.msg, words), el("span", { class: "since", text: stamp(hit.msg.timestamp) }));
      return item(hit.sip, dn, detail, () => openChat(hit.sip, dn || hit.sip, hit.msg.id), { id: String(hit.msg.id) });
    });
    const note = items.length ? `${items.length === 1 ? "1 message matches" : `${items.length} messages match`} “${words}”.` : "";
    renderList("Found", items, `Nothing in the queue's chats matches “${words}”.`, note);
  } catch (error) {
    if (load !== view.loads) return;
    renderList("Found", [], "");
    showError(error);
  }
}

function messageItem(message, customer) {
  const theirs = message.author === customer;
  const attached = (message.attached || []).map((file) => el("span", { class: "chip", title: file.name }, el("b", { text: "File" }), file.name));
  return el(
    "li",
    { class: `msg ${theirs ? "visitor" : "colleague"}`, dataset: { id: String(message.id) } },
    el("span", { class: "author", text: message.dn || message.author }),
    el("div", { class: "bubble" }, fragment(message.text), ...attached),
    el("span", { class: "meta" }, el("span", { class: "time", text: stamp(message.timestamp) })),
  );
}

/** One page of the open chat, older than what is shown; true when it loaded. */
async function loadPage(open) {
  const body = { queue: view.queue, sip: open.sip, count: PAGE };
  if (open.oldest !== null) body.older = open.oldest;
  const { inds, result } = await view.client.messages("ReadChat", body);
  if (view.open !== open) return false;
  const messages = inds.map((ind) => ind.msg).filter(Boolean);
  for (const message of messages) if (open.oldest === null || message.id < open.oldest) open.oldest = message.id;
  open.more = Boolean(result.more);
  const box = $("transcript-messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  box.prepend(...messages.reverse().map((message) => messageItem(message, open.sip)));
  box.scrollTop = box.scrollHeight - fromBottom;
  $("transcript-more").hidden = !open.more;
  return true;
}

async function openChat(sip, dn, hit = null) {
  const open = { sip, dn: dn || sip, hit, oldest: null, more: false };
  view.open = open;
  markCurrent();
  $("transcript-empty").hidden = true;
  $("transcript-head").hidden = false;
  $("transcript-face").replaceWith(Object.assign(avatar(open.dn), { id: "transcript-face" }));
  $("transcript-title").textContent = open.dn;
  $("transcript-sub").textContent = `${sip} · stored chat with the queue ${view.queue}`;
  $("transcript-messages").replaceChildren();
  $("transcript-more").hidden = true;
  try {
    await loadPage(open);
    // a search hit: load older pages until its message is shown (a few at most)
    for (let page = 0; hit !== null && page < 10 && open.more && !found(hit); page += 1) await loadPage(open);
    const target = hit !== null ? found(hit) : null;
    if (target) {
      target.classList.add("hit");
      target.scrollIntoView({ block: "center" });
    } else $("transcript-messages").scrollTop = $("transcript-messages").scrollHeight;
  } catch (error) {
    if (view.open === open) showError(error);
  }
}

function found(id) {
  return $("transcript-messages").querySelector(`[data-id="${Number(id)}"]`);
}

function clearTranscript() {
  view.open = null;
  $("transcript-head").hidden = true;
  $("transcript-more").hidden = true;
  $("transcript-messages").replaceChildren();
  $("transcript-empty").hidden = false;
}

/** Show the history of `queue` (the console's client reads it). */
export function showHistory(client, queue) {
  const changed = view.queue !== queue || view.client !== client;
  view.client = client;
  view.queue = queue;
  view.shown = true;
  if (changed) {
    clearTranscript();
    $("history-text").value = "";
  }
  loadList();
}

export function hideHistory() {
  view.shown = false;
}

/** Signed out: nothing of the last user stays on the page. */
export function resetHistory() {
  view.client = null;
  view.queue = "";
  view.shown = false;
  view.chats = new Map();
  clearTranscript();
  renderList("Stored chats", [], "");
  $("history-text").value = "";
}

/** ChatDeleted (docs 12.32): a customer or another agent deleted a chat of the queue. */
export function historyChatDeleted(message) {
  if (!view.shown || message.queue !== view.queue) return;
  if (message.removed && view.open && view.open.sip === message.sip) clearTranscript();
  loadList();
}

$("history-search").addEventListener("submit", search);
$("history-clear").addEventListener("click", () => {
  $("history-text").value = "";
  loadList();
});
$("transcript-more").addEventListener("click", async () => {
  const open = view.open;
  if (!open || open.loading) return;
  open.loading = true;
  try {
    await loadPage(open);
  } catch (error) {
    showError(error);
  } finally {
    open.loading = false;
  }
});
