// The operator's pages at /admin: trace flags and the live trace, users, queues, agents,
// visitors and App objects of each tenant, and the tenants themselves. Everything comes from
// the admin API (docs/protocol.md 12.14, 12.15, 12.36). The password the operator types is
// sent once, to `POST /admin/login`; what this tab keeps (sessionStorage) is the token it
// answers, sent as `Authorization: Bearer`, never as browser credentials, and revoked by
// `POST /admin/logout` on signing out.

const STORE = "switchboard.admin";
const POLL_MS = 1000;
const LOG_LIMIT = 500; // records per request; a full page is followed at once
const LOG_KEEP = 2000; // rows kept on screen

const FLAGS = [
  ["signalling", "Call states and routing: offers, answers, refusals"],
  ["pbx", "Every frame between clients and the hub"],
  ["appwebsocket", "The hub's link to the messages service"],
  ["database", "Units of work of the message store"],
  ["http", "HTTP requests: method, path, status, time"],
  ["app", "Start and stop"],
  ["browser", "Web clients log their traffic to the console"],
];

const FIELD_LABELS = {
  sip: "SIP",
  dn: "Name",
  num: "Number",
  password: "Password",
  licences: "Licences",
  max_chats: "Max chats",
  role: "Role",
  take_on_write: "Take by writing",
  agents: "Agents",
  act_for: "Acts for",
  apis: "APIs",
};

const $ = (id) => document.getElementById(id);

/** One failed admin API request: the server's `{code, text}`, or what went wrong instead. */
class ApiError extends Error {
  constructor(status, code, text) {
    super(text);
    this.status = status;
    this.code = code;
    this.text = text;
  }
}

// -- credentials and the API --------------------------------------------------------------

let auth = loadAuth();

function loadAuth() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
    if (saved && typeof saved.user === "string" && typeof saved.token === "string") return saved;
  } catch {
    // Unreadable: sign in again.
  }
  return null;
}

function bearer() {
  return auth ? `Bearer ${auth.token}` : "";
}

async function request(method, path, body, header = bearer()) {
  const headers = { Accept: "application/json", Authorization: header || "" };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check the connection and try again.");
  }
  if (response.ok) return response;
  let code = `http_${response.status}`;
  let text = response.statusText || "The request failed";
  try {
    const answer = await response.json();
    if (answer && typeof answer.code === "string") code = answer.code;
    if (answer && typeof answer.text === "string") text = answer.text;
  } catch {
    // Not JSON: keep the status.
  }
  throw new ApiError(response.status, code, text);
}

async function api(method, path, body) {
  try {
    const response = await request(method, path, body);
    return response.status === 204 ? null : await response.json();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && auth) {
      signOut("The server no longer accepts this admin login. Sign in again.");
    }
    throw error;
  }
}

const enc = encodeURIComponent;

/** A sentence for an error of the API: its text with config paths in plain words. */
function describe(error) {
  if (!(error instanceof ApiError)) return String(error?.message || error);
  const text = error.text.replace(/^(?:user|queue|app)\.(\w+):\s*/, (_, field) => `${FIELD_LABELS[field] || field}: `);
  return error.code && error.status ? `${text} (${error.code})` : text;
}

function fieldOf(error) {
  return error instanceof ApiError ? error.text.match(/^(?:user|queue|app)\.(\w+):/)?.[1] : undefined;
}

// -- small DOM helpers ----------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function showAlert(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

function pageError(message) {
  showAlert($("page-error"), message);
}

function announce(message) {
  $("page-status").textContent = "";
  requestAnimationFrame(() => {
    $("page-status").textContent = message;
  });
}

// -- sign in and out ------------------------------------------------------------------------

const loginForm = $("login-form");

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  const error = $("login-error");
  if (!user || !password) {
    showAlert(error, "Enter the admin user name and password.");
    (user ? $("login-password") : $("login-user")).focus();
    return;
  }
  const submit = $("login-submit");
  submit.disabled = true;
  submit.textContent = "Signing in…";
  showAlert(error, "");
  try {
    const answer = await request("POST", "/admin/login", { user, password }, "").then((r) => r.json());
    auth = { user, token: answer.token, domain: answer.domain ?? null };
    sessionStorage.setItem(STORE, JSON.stringify(auth));
    $("login-password").value = "";
    await start();
  } catch (failure) {
    const message =
      failure instanceof ApiError && failure.status === 401
        ? "Wrong user name or password. After several failed attempts the server waits a minute before it accepts any."
        : failure instanceof ApiError && failure.status === 429
          ? "Too many failed attempts: wait a minute, then try again."
          : describe(failure);
    showAlert(error, message);
    $("login-password").select();
    $("login-password").focus();
  } finally {
    submit.disabled = false;
    submit.textContent = "Sign in";
  }
});

$("logout").addEventListener("click", () => signOut(""));

function signOut(message) {
  if (auth && !message) {
    // the token stops working at once; the page forgets it either way
    fetch("/admin/logout", { method: "POST", headers: { Authorization: bearer() }, credentials: "omit" }).catch(() => {});
  }
  auth = null;
  sessionStorage.removeItem(STORE);
  stopPolling();
  closeDialogs();
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  showAlert($("login-error"), message);
  $("login-password").focus();
}

function closeDialogs() {
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

// -- sections -------------------------------------------------------------------------------

const SECTIONS = ["trace", "users", "queues", "agents", "visitors", "apps", "tenants"];
const tabs = [...document.querySelectorAll('[role="tab"]')];
let section = "";
let canTrace = false;

async function start() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("account-name").textContent = auth.user;
  pageError("");
  // A tenant admin has no trace (it spans tenants): its flags answer 401 to them.
  try {
    const state = await request("GET", "/admin/trace").then((r) => r.json());
    canTrace = true;
    renderTraceState(state);
  } catch (error) {
    canTrace = false;
    if (!(error instanceof ApiError && error.status === 401)) pageError(describe(error));
  }
  $("tab-trace").hidden = !canTrace;
  $("tab-tenants").hidden = auth.domain !== null; // only the server's admin adds or removes tenants
  try {
    await loadTenants();
  } catch (error) {
    pageError(describe(error));
  }
  const wanted = location.hash.slice(1);
  const allowed = (name) => SECTIONS.includes(name) && !$(`tab-${name}`).hidden;
  select(allowed(wanted) ? wanted : canTrace ? "trace" : "users");
}

function select(name, focus = false) {
  section = name;
  for (const tab of tabs) {
    const on = tab.dataset.section === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
    $(tab.getAttribute("aria-controls")).hidden = !on;
  }
  history.replaceState(null, "", `#${name}`);
  pageError("");
  if (name === "trace") startPolling();
  else {
    stopPolling();
    refreshDirectory();
  }
}

for (const tab of tabs) {
  tab.addEventListener("click", () => select(tab.dataset.section));
  tab.addEventListener("keydown", (event) => {
    const shown = tabs.filter((t) => !t.hidden);
    const at = shown.indexOf(tab);
    const next = {
      ArrowRight: shown[(at + 1) % shown.length],
      ArrowLeft: shown[(at - 1 + shown.length) % shown.length],
      Home: shown[0],
      End: shown[shown.length - 1],
    }[event.key];
    if (next) {
      event.preventDefault();
      select(next.dataset.section, true);
    }
  });
}

// -- trace: flags and filter ----------------------------------------------------------------

const flagInputs = new Map();

function buildFlags() {
  const box = $("flags");
  for (const [name, about] of FLAGS) {
    const input = el("input", {
      type: "checkbox",
      role: "switch",
      id: `flag-${name}`,
      class: "switch-input",
      dataset: { flag: name },
      "aria-describedby": `flag-${name}-about`,
    });
    input.addEventListener("change", () => switchFlag(name, input));
    flagInputs.set(name, input);
    box.append(
      el(
        "div",
        { class: "flag" },
        el(
          "label",
          { class: "flag-label", for: `flag-${name}` },
          el("span", { class: "flag-name", text: name }),
          el("span", { class: "flag-about muted", id: `flag-${name}-about`, text: about }),
        ),
        input,
      ),
    );
  }
}

function renderTraceState(state) {
  for (const [name, input] of flagInputs) {
    input.checked = Boolean(state.flags?.[name]);
    input.closest(".flag").classList.toggle("on", input.checked);
  }
  const filter = state.filter || {};
  const user = $("filter-user");
  const domain = $("filter-domain");
  if (document.activeElement !== user) user.value = filter.user || "";
  if (document.activeElement !== domain) domain.value = filter.domain || "";
  const parts = [filter.user && `user ${filter.user}`, filter.domain && `tenant ${filter.domain}`].filter(Boolean);
  const summary = $("filter-summary");
  summary.textContent = parts.length ? parts.join(", ") : "everyone";
  summary.classList.toggle("chip-accent", parts.length > 0);
}

async function switchFlag(name, input) {
  const wanted = input.checked;
  input.disabled = true;
  pageError("");
  try {
    renderTraceState(await api("PUT", "/admin/trace", { flags: { [name]: wanted } }));
    announce(`Trace flag ${name} ${wanted ? "on" : "off"}`);
  } catch (error) {
    input.checked = !wanted;
    pageError(`Could not switch ${name}: ${describe(error)}`);
  } finally {
    input.disabled = false;
    input.closest(".flag").classList.toggle("on", input.checked);
  }
}

async function putFilter(user, domain) {
  pageError("");
  try {
    renderTraceState(await api("PUT", "/admin/trace", { filter: { user, domain } }));
    announce(user || domain ? "Filter applied" : "Filter cleared");
  } catch (error) {
    pageError(`Could not set the filter: ${describe(error)}`);
  }
}

$("filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  putFilter($("filter-user").value.trim(), $("filter-domain").value.trim());
});

$("filter-clear").addEventListener("click", () => {
  $("filter-user").value = "";
  $("filter-domain").value = "";
  putFilter("", "");
});

// -- trace: live records --------------------------------------------------------------------

const log = $("log");
const live = { since: 0, boot: null, timer: 0, running: false, paused: false, busy: false, rows: 0 };

function startPolling() {
  live.running = true;
  if (!live.paused) poll();
}

function stopPolling() {
  live.running = false;
  clearTimeout(live.timer);
}

function schedule(delay) {
  clearTimeout(live.timer);
  if (live.running && !live.paused) live.timer = setTimeout(poll, delay);
}

async function poll() {
  if (live.busy || !live.running || live.paused || !auth) return;
  live.busy = true;
  clearTimeout(live.timer);
  let again = POLL_MS;
  try {
    const answer = await api("GET", `/admin/trace/log?since=${live.since}&limit=${LOG_LIMIT}`);
    if (live.boot !== null && answer.boot !== live.boot) {
      // The server started again and numbers its records from 1: read from the start.
      live.boot = answer.boot;
      live.since = 0;
      addNote("The server restarted; records continue from its start.");
      again = 0;
    } else {
      if (live.boot !== null && answer.first > live.since + 1 && answer.records.length) {
        const lost = answer.first - live.since - 1;
        addNote(`${lost} record${lost === 1 ? "" : "s"} were overwritten before they could be shown.`);
      }
      live.boot = answer.boot;
      addRecords(answer.records);
      live.since = answer.last;
      if (answer.records.length >= LOG_LIMIT) again = 0;
    }
    setLiveState(live.paused ? "paused" : "live");
  } catch (error) {
    setLiveState("error");
    if (auth) pageError(`The live trace could not be read: ${describe(error)}`);
    again = POLL_MS * 3;
  } finally {
    live.busy = false;
  }
  schedule(again);
}

function setLiveState(state) {
  const badge = $("live-state");
  badge.dataset.state = state;
  badge.textContent = { live: "Live", paused: "Paused", error: "Not updating" }[state];
}

function clock(seconds) {
  const date = new Date(seconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  const millis = String(date.getMilliseconds()).padStart(3, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${millis}`;
}

function addRecords(records) {
  if (!records.length) return;
  const fragment = document.createDocumentFragment();
  for (const record of records) {
    const who = record.user && record.domain ? `${record.user}@${record.domain}` : record.user || record.domain || "";
    const stamp = new Date(record.time * 1000);
    fragment.append(
      el(
        "div",
        { class: "rec", dataset: { subsystem: record.subsystem, seq: String(record.seq) } },
        el("time", { class: "rec-time", datetime: stamp.toISOString(), title: stamp.toISOString(), text: clock(record.time) }),
        el("span", { class: "rec-sub", text: record.subsystem }),
        el("span", { class: "rec-who", title: record.conn == null ? "" : `connection ${record.conn}`, text: who || "—" }),
        el("span", { class: "rec-text", text: record.text }),
      ),
    );
  }
  appendToLog(fragment, records.length);
}

function addNote(text) {
  appendToLog(el("div", { class: "rec rec-note", role: "note", text }), 1);
}

function appendToLog(node, count) {
  $("log-empty").hidden = true;
  log.append(node);
  live.rows += count;
  while (live.rows > LOG_KEEP && log.children.length > 1) {
    const first = log.querySelector(".rec");
    if (!first) break;
    first.remove();
    live.rows -= 1;
  }
  $("log-count").textContent = `${live.rows} shown`;
  if ($("autoscroll").checked) log.scrollTop = log.scrollHeight;
}

log.addEventListener("scroll", () => {
  // Scrolling up to read stops following; scrolling back to the end follows again.
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  $("autoscroll").checked = atEnd;
});

$("autoscroll").addEventListener("change", () => {
  if ($("autoscroll").checked) log.scrollTop = log.scrollHeight;
});

$("pause").addEventListener("click", () => {
  live.paused = !live.paused;
  const button = $("pause");
  button.setAttribute("aria-pressed", String(live.paused));
  button.textContent = live.paused ? "Resume" : "Pause";
  setLiveState(live.paused ? "paused" : "live");
  if (live.paused) clearTimeout(live.timer);
  else poll();
});

$("clear-log").addEventListener("click", () => {
  for (const row of log.querySelectorAll(".rec")) row.remove();
  live.rows = 0;
  $("log-count").textContent = "";
  $("log-empty").hidden = false;
});

$("download").addEventListener("click", async () => {
  const button = $("download");
  button.disabled = true;
  pageError("");
  try {
    const response = await request("GET", "/admin/trace/download");
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
    const link = el("a", { href: url, download: `switchboard-trace-${stamp}.txt`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    announce("Trace downloaded");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) signOut("The server no longer accepts this admin login. Sign in again.");
    else pageError(`The trace could not be downloaded: ${describe(error)}`);
  } finally {
    button.disabled = false;
  }
});

// -- tenants --------------------------------------------------------------------------------

const tenantSelects = [...document.querySelectorAll(".tenant-select")];
const directory = { tenants: [], domain: "", users: [], queues: [], visitors: [], apps: [] };

async function loadTenants() {
  const { tenants } = await api("GET", "/admin/tenants");
  directory.tenants = tenants;
  if (!tenants.some((t) => t.domain === directory.domain)) directory.domain = tenants[0]?.domain || "";
  for (const select of tenantSelects) {
    select.replaceChildren(...tenants.map((t) => el("option", { value: t.domain, text: t.domain })));
    select.value = directory.domain;
    select.disabled = tenants.length < 2;
  }
  $("tenant-list").replaceChildren(...tenants.map((t) => el("option", { value: t.domain })));
  renderTenants();
}

for (const select of tenantSelects) {
  select.addEventListener("change", () => {
    directory.domain = select.value;
    for (const other of tenantSelects) other.value = select.value;
    refreshDirectory();
  });
}

async function refreshDirectory() {
  if (!directory.domain) return;
  const domain = enc(directory.domain);
  try {
    const [users, queues, visitors, apps] = await Promise.all([
      api("GET", `/admin/users?domain=${domain}`),
      api("GET", `/admin/queues?domain=${domain}`),
      api("GET", `/admin/visitors?domain=${domain}`),
      api("GET", `/admin/apps?domain=${domain}`),
    ]);
    directory.users = users.users;
    directory.queues = queues.queues;
    directory.visitors = visitors.visitors;
    directory.apps = apps.apps;
  } catch (error) {
    pageError(`The tenant ${directory.domain} could not be read: ${describe(error)}`);
    return;
  }
  renderUsers();
  renderQueues();
  renderAgents();
  renderVisitors();
  renderApps();
}

function cell(label, ...content) {
  return el("td", { dataset: { label } }, ...content);
}

function rowActions(kind, name, onEdit, onDelete) {
  return el(
    "td",
    { class: "row-actions" },
    el("button", { class: "btn btn-small", type: "button", text: "Edit", "aria-label": `Edit ${kind} ${name}`, onclick: onEdit }),
    el("button", { class: "btn btn-small btn-danger-ghost", type: "button", text: "Delete", "aria-label": `Delete ${kind} ${name}`, onclick: onDelete }),
  );
}

// -- users ----------------------------------------------------------------------------------

/** A user's role in live support (docs/protocol.md 12.34): an agent, or a supervisor who
 * also closes and transfers other agents' chats. */
function roleBadge(user) {
  return user.role === "supervisor"
    ? el("span", { class: "badge chip-accent", text: "Supervisor" })
    : el("span", { class: "muted", text: "Agent" });
}

function renderUsers() {
  const rows = directory.users.map((user) => {
    const licensed = user.licences.includes("messages");
    const others = user.licences.filter((l) => l !== "messages");
    return el(
      "tr",
      { dataset: { sip: user.sip } },
      cell("SIP", el("code", { text: user.sip })),
      cell("Name", user.dn || user.sip),
      cell("Number", user.num ? user.num : el("span", { class: "muted", text: "—" })),
      cell(
        "Messages licence",
        licensed
          ? el("span", { class: "badge badge-on", text: "Messages" })
          : el("span", { class: "badge", text: "Volatile" }),
        others.map((l) => el("span", { class: "badge", text: l })),
      ),
      cell("Role", roleBadge(user)),
      cell("Max chats", String(user.max_chats)),
      rowActions("user", user.sip, () => openUser(user), () => confirmDelete("user", user.sip)),
    );
  });
  $("users-body").replaceChildren(...rows);
  $("users-empty").hidden = rows.length > 0;
}

const userDialog = $("user-dialog");
let editingUser = null;

function openUser(user = null) {
  editingUser = user;
  const form = $("user-form");
  form.reset();
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  showAlert($("user-error"), "");
  $("user-dialog-title").textContent = user ? `Edit user ${user.sip}` : `Add a user to ${directory.domain}`;
  $("user-sip").value = user?.sip || "";
  $("user-sip").readOnly = Boolean(user);
  $("user-dn").value = user?.dn || "";
  $("user-num").value = user?.num || "";
  $("user-max").value = String(user?.max_chats ?? 3);
  $("user-role").value = user?.role === "supervisor" ? "supervisor" : "";
  $("user-messages").checked = Boolean(user?.licences.includes("messages"));
  $("user-password").required = !user;
  $("user-password-hint").textContent = user ? "Leave empty to keep the current password." : "Required for a new user.";
  userDialog.showModal();
  (user ? $("user-dn") : $("user-sip")).focus();
}

$("user-add").addEventListener("click", () => openUser(null));

$("user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("user-error");
  const sip = $("user-sip").value.trim();
  const password = $("user-password").value;
  const maxText = $("user-max").value.trim();
  const fail = (message, input) => {
    showAlert(error, message);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  };
  for (const input of event.target.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  if (!sip) return fail("Enter the user's SIP name.", $("user-sip"));
  if (!editingUser && directory.users.some((u) => u.sip === sip)) {
    return fail(`There is a user ${sip} already; edit that one instead.`, $("user-sip"));
  }
  if (!editingUser && !password) return fail("A new user needs a password.", $("user-password"));
  if (maxText && !/^\d+$/.test(maxText)) return fail("Max chats: expected a whole number from 0 to 1000.", $("user-max"));
  const others = editingUser ? editingUser.licences.filter((l) => l !== "messages") : [];
  const body = {
    dn: $("user-dn").value.trim() || sip,
    num: $("user-num").value.trim(),
    licences: [...others, ...($("user-messages").checked ? ["messages"] : [])],
    role: $("user-role").value,
  };
  if (maxText) body.max_chats = Number(maxText);
  if (password) body.password = password;
  const save = event.target.querySelector('[type="submit"]');
  save.disabled = true;
  try {
    await api("PUT", `/admin/users/${enc(directory.domain)}/${enc(sip)}`, body);
    userDialog.close();
    announce(`User ${sip} saved`);
    await Promise.all([refreshDirectory(), loadTenants()]);
  } catch (failure) {
    const field = { dn: "user-dn", num: "user-num", password: "user-password", max_chats: "user-max", role: "user-role" }[fieldOf(failure)];
    fail(`Could not save user ${sip}: ${describe(failure)}`, field ? $(field) : null);
  } finally {
    save.disabled = false;
  }
});

// -- queues ---------------------------------------------------------------------------------

function userName(sip) {
  return directory.users.find((u) => u.sip === sip)?.dn || sip;
}

function renderQueues() {
  const rows = directory.queues.map((queue) =>
    el(
      "tr",
      { dataset: { sip: queue.sip } },
      cell("SIP", el("code", { text: queue.sip })),
      cell("Name", queue.dn || queue.sip),
      cell(
        "Agents",
        queue.agents.length
          ? el("span", { class: "chips" }, queue.agents.map((a) => el("span", { class: "chip", title: userName(a), text: a })))
          : el("span", { class: "muted", text: "No agents" }),
      ),
      // writing into a ringing chat takes it (docs/protocol.md 12.34)
      cell("Take by writing", queue.take_on_write ? el("span", { class: "badge badge-on", text: "On" }) : el("span", { class: "muted", text: "Off" })),
      rowActions("queue", queue.sip, () => openQueue(queue), () => confirmDelete("queue", queue.sip)),
    ),
  );
  $("queues-body").replaceChildren(...rows);
  $("queues-empty").hidden = rows.length > 0;
}

const queueDialog = $("queue-dialog");
let editingQueue = null;

function openQueue(queue = null) {
  editingQueue = queue;
  $("queue-form").reset();
  showAlert($("queue-error"), "");
  $("queue-dialog-title").textContent = queue ? `Edit queue ${queue.sip}` : `Add a queue to ${directory.domain}`;
  $("queue-sip").value = queue?.sip || "";
  $("queue-sip").readOnly = Boolean(queue);
  $("queue-dn").value = queue?.dn || "";
  $("queue-take-on-write").checked = Boolean(queue?.take_on_write);
  const chosen = new Set(queue?.agents || []);
  const options = directory.users.map((user) =>
    el(
      "label",
      { class: "check agent-option" },
      el("input", { type: "checkbox", name: "agents", value: user.sip, checked: chosen.has(user.sip) }),
      el("span", {}, el("strong", { text: user.sip }), " ", el("span", { class: "muted", text: user.dn })),
    ),
  );
  $("queue-agents").replaceChildren(...(options.length ? options : [el("p", { class: "muted", text: "This tenant has no users to choose." })]));
  queueDialog.showModal();
  (queue ? $("queue-dn") : $("queue-sip")).focus();
}

$("queue-add").addEventListener("click", () => openQueue(null));

$("queue-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("queue-error");
  const sip = $("queue-sip").value.trim();
  if (!sip) {
    showAlert(error, "Enter the queue's SIP name.");
    $("queue-sip").focus();
    return;
  }
  if (!editingQueue && directory.queues.some((q) => q.sip === sip)) {
    showAlert(error, `There is a queue ${sip} already; edit that one instead.`);
    $("queue-sip").focus();
    return;
  }
  const agents = [...$("queue-agents").querySelectorAll('input[name="agents"]:checked')].map((i) => i.value);
  const body = { dn: $("queue-dn").value.trim() || sip, agents, take_on_write: $("queue-take-on-write").checked };
  const save = event.target.querySelector('[type="submit"]');
  save.disabled = true;
  try {
    await api("PUT", `/admin/queues/${enc(directory.domain)}/${enc(sip)}`, body);
    queueDialog.close();
    announce(`Queue ${sip} saved`);
    await refreshDirectory();
  } catch (failure) {
    showAlert(error, `Could not save queue ${sip}: ${describe(failure)}`);
  } finally {
    save.disabled = false;
  }
});

// -- agents ---------------------------------------------------------------------------------

function renderAgents() {
  const queuesOf = new Map();
  for (const queue of directory.queues) {
    for (const agent of queue.agents) queuesOf.set(agent, [...(queuesOf.get(agent) || []), queue.sip]);
  }
  const agents = directory.users.filter((u) => queuesOf.has(u.sip));
  const rows = agents.map((user) => {
    const input = el("input", {
      type: "number",
      min: "0",
      max: "1000",
      step: "1",
      value: String(user.max_chats),
      id: `agent-max-${user.sip}`,
      class: "input-small",
      required: true,
    });
    const status = el("span", { class: "saved", role: "status" });
    const form = el(
      "form",
      { class: "inline-form", novalidate: true },
      el("label", { class: "visually-hidden", for: input.id, text: `Max chats for ${user.sip}` }),
      input,
      el("button", { class: "btn btn-small", type: "submit", text: "Save", "aria-label": `Save max chats for ${user.sip}` }),
      status,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      saveMaxChats(user, input, status);
    });
    input.addEventListener("input", () => {
      status.textContent = "";
    });
    return el(
      "tr",
      { dataset: { sip: user.sip } },
      cell("SIP", el("code", { text: user.sip })),
      cell("Name", user.dn || user.sip),
      cell("Queues", el("span", { class: "chips" }, queuesOf.get(user.sip).map((q) => el("span", { class: "chip", text: q })))),
      cell("Role", roleBadge(user)),
      cell("Max chats", form),
    );
  });
  $("agents-body").replaceChildren(...rows);
  $("agents-empty").hidden = rows.length > 0;
}

async function saveMaxChats(user, input, status) {
  const text = input.value.trim();
  pageError("");
  if (!/^\d+$/.test(text)) {
    input.setAttribute("aria-invalid", "true");
    pageError(`Max chats for ${user.sip}: expected a whole number from 0 to 1000.`);
    input.focus();
    return;
  }
  input.removeAttribute("aria-invalid");
  try {
    const saved = await api("PUT", `/admin/users/${enc(directory.domain)}/${enc(user.sip)}`, { max_chats: Number(text) });
    user.max_chats = saved.max_chats;
    status.textContent = "Saved";
    renderUsers();
  } catch (error) {
    input.setAttribute("aria-invalid", "true");
    pageError(`Could not save max chats for ${user.sip}: ${describe(error)}`);
  }
}

// -- visitors -------------------------------------------------------------------------------

function renderVisitors() {
  const rows = directory.visitors.map((visitor) =>
    el(
      "tr",
      { dataset: { sip: visitor.sip } },
      cell("SIP", el("code", { text: visitor.sip })),
      cell("Name they gave", visitor.dn || visitor.sip),
    ),
  );
  $("visitors-body").replaceChildren(...rows);
  $("visitors-empty").hidden = rows.length > 0;
}

// -- App objects ----------------------------------------------------------------------------

function listText(values) {
  return values
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);
}

function renderApps() {
  const rows = directory.apps.map((app) =>
    el(
      "tr",
      { dataset: { name: app.name } },
      cell("Name", el("code", { text: app.name })),
      cell("Display name", app.dn || app.name),
      cell(
        "APIs",
        app.apis.length
          ? el("span", { class: "chips" }, app.apis.map((a) => el("span", { class: "chip", text: a })))
          : el("span", { class: "muted", text: "—" }),
      ),
      cell(
        "Acts for",
        app.act_for.length
          ? el("span", { class: "chips" }, app.act_for.map((a) => el("span", { class: "chip", text: a === "*" ? "every user" : a })))
          : el("span", { class: "muted", text: "itself only" }),
      ),
      rowActions("App object", app.name, () => openApp(app), () => confirmDelete("app", app.name)),
    ),
  );
  $("apps-body").replaceChildren(...rows);
  $("apps-empty").hidden = rows.length > 0;
}

const appDialog = $("app-dialog");
let editingApp = null;

function openApp(app = null) {
  editingApp = app;
  $("app-form").reset();
  showAlert($("app-error"), "");
  $("app-dialog-title").textContent = app ? `Edit App object ${app.name}` : `Add an App object to ${directory.domain}`;
  $("app-name").value = app?.name || "";
  $("app-name").readOnly = Boolean(app);
  $("app-dn").value = app?.dn || "";
  $("app-apis").value = (app?.apis || []).join(", ");
  $("app-act-for").value = (app?.act_for || []).join(", ");
  $("app-password-hint").textContent = app ? "Leave empty to keep the current password." : "Required for a new App object.";
  appDialog.showModal();
  (app ? $("app-dn") : $("app-name")).focus();
}

$("app-add").addEventListener("click", () => openApp(null));

$("app-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("app-error");
  const name = $("app-name").value.trim();
  const password = $("app-password").value;
  if (!name) {
    showAlert(error, "Enter the App object's name.");
    $("app-name").focus();
    return;
  }
  if (!editingApp && directory.apps.some((a) => a.name === name)) {
    showAlert(error, `There is an App object ${name} already; edit that one instead.`);
    $("app-name").focus();
    return;
  }
  if (!editingApp && !password) {
    showAlert(error, "A new App object needs a password.");
    $("app-password").focus();
    return;
  }
  const body = {
    dn: $("app-dn").value.trim() || name,
    apis: listText($("app-apis").value),
    act_for: listText($("app-act-for").value),
  };
  if (password) body.password = password;
  const save = event.target.querySelector('[type="submit"]');
  save.disabled = true;
  try {
    await api("PUT", `/admin/apps/${enc(directory.domain)}/${enc(name)}`, body);
    appDialog.close();
    announce(`App object ${name} saved`);
    await Promise.all([refreshDirectory(), loadTenants()]);
  } catch (failure) {
    showAlert(error, `Could not save App object ${name}: ${describe(failure)}`);
  } finally {
    save.disabled = false;
  }
});

// -- tenants (the server's admin only) ------------------------------------------------------

function renderTenants() {
  const rows = directory.tenants.map((tenant) =>
    el(
      "tr",
      { dataset: { domain: tenant.domain } },
      cell("Domain", el("code", { text: tenant.domain })),
      cell("Users", String(tenant.users)),
      cell("App objects", String(tenant.apps)),
      el(
        "td",
        { class: "row-actions" },
        el("button", {
          class: "btn btn-small btn-danger-ghost",
          type: "button",
          text: "Delete",
          "aria-label": `Delete tenant ${tenant.domain}`,
          onclick: () => confirmDelete("tenant", tenant.domain),
        }),
      ),
    ),
  );
  $("tenants-body").replaceChildren(...rows);
}

$("tenant-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("tenant-domain");
  const domain = input.value.trim().toLowerCase();
  showAlert($("tenant-error"), "");
  if (!domain) {
    showAlert($("tenant-error"), "Enter the new tenant's domain, such as shop.example.");
    input.focus();
    return;
  }
  const add = $("tenant-add");
  add.disabled = true;
  try {
    await api("PUT", `/admin/tenants/${enc(domain)}`);
    input.value = "";
    announce(`Tenant ${domain} added`);
    await loadTenants();
  } catch (failure) {
    showAlert($("tenant-error"), `Could not add tenant ${domain}: ${describe(failure)}`);
    input.focus();
  } finally {
    add.disabled = false;
  }
});

// -- delete with confirmation ---------------------------------------------------------------

const confirmDialog = $("confirm-dialog");
let pendingDelete = null;

const DELETE_TEXT = {
  user: (name, domain) => `${name} can no longer log in to ${domain}. This cannot be undone.`,
  queue: (name, domain) => `Chats to ${name} in ${domain} are refused from now on. This cannot be undone.`,
  app: (name, domain) => `The App object ${name} can no longer log in to ${domain}. This cannot be undone.`,
  tenant: (name) => `Every user, queue and App object of ${name} is deleted with it, and nobody can log in there any more. This cannot be undone.`,
};

function confirmDelete(kind, name) {
  pendingDelete = { kind, name, domain: directory.domain };
  $("confirm-title").textContent = `Delete ${kind} ${name}?`;
  $("confirm-text").textContent = DELETE_TEXT[kind](name, directory.domain);
  $("confirm-ok").textContent = `Delete ${kind}`;
  showAlert($("confirm-error"), "");
  confirmDialog.showModal();
  confirmDialog.querySelector("[data-close]").focus();
}

$("confirm-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!pendingDelete) return;
  const { kind, name, domain } = pendingDelete;
  const button = $("confirm-ok");
  button.disabled = true;
  try {
    await api("DELETE", kind === "tenant" ? `/admin/tenants/${enc(name)}` : `/admin/${kind}s/${enc(domain)}/${enc(name)}`);
    confirmDialog.close();
    announce(`${kind} ${name} deleted`);
    await loadTenants(); // first: a deleted tenant is no longer the one shown
    await refreshDirectory();
  } catch (failure) {
    showAlert($("confirm-error"), `Could not delete ${kind} ${name}: ${describe(failure)}`);
  } finally {
    button.disabled = false;
  }
});

for (const button of document.querySelectorAll("dialog [data-close]")) {
  button.addEventListener("click", () => button.closest("dialog").close());
}

// -- start ----------------------------------------------------------------------------------

buildFlags();
if (auth) {
  start();
} else {
  $("login-view").hidden = false;
  $("login-password").focus();
}
