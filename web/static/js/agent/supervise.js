// Closing or transferring a chat another agent has (docs/protocol.md 12.34). Only that
// agent or a supervisor of the queue may; the board says which the console's user is
// (SubscribeResult's `role`), so the buttons show for supervisors only. The hub checks
// again: a refusal is shown in the dialog, and the board is subscribed again to learn
// the role as it is now.

import { $ } from "./ui.js";

/** Why the hub refused a Close or Transfer, in the words an agent reads. */
export function refusal(error, action, to = "") {
  if (error.code === "forbidden") {
    return `Only the agent who has this chat or a supervisor of the queue may ${action} it.`;
  }
  if (error.code === "not_found") return action === "transfer" ? `There is no agent or queue "${to}".` : "This chat has ended already.";
  if (error.code === "unavailable") return `${to} cannot take the chat now.`;
  return error.message;
}

const dialog = $("manage-dialog");
let current = null; // {action, chat, client, refresh}

function agentName(chat) {
  return chat.agent ? chat.agent.dn || chat.agent.sip : "nobody";
}

/** Ask to close (`action` "close") or transfer ("transfer") a chat on the board.
 * `targets` are the names offered for a transfer; `refresh` subscribes the board again. */
export function manage(action, chat, { client, targets = [], refresh }) {
  current = { action, chat, client, refresh };
  const visitor = chat.visitor.dn || chat.visitor.sip;
  const transfer = action === "transfer";
  $("manage-title").textContent = transfer ? `Transfer the chat with ${visitor}` : `Close the chat with ${visitor}?`;
  $("manage-text").textContent = transfer
    ? `${agentName(chat)} has this chat now. Whoever you name is offered it, with what was said so far.`
    : `${agentName(chat)} has this chat now. It ends for ${visitor} and for ${agentName(chat)}.`;
  $("manage-transfer").hidden = !transfer;
  $("manage-to").value = "";
  $("manage-to").required = transfer;
  $("manage-targets").replaceChildren(...targets.map((value) => Object.assign(document.createElement("option"), { value })));
  $("manage-error").hidden = true;
  const ok = $("manage-ok");
  ok.textContent = transfer ? "Transfer" : "Close chat";
  ok.className = transfer ? "primary small" : "danger small";
  ok.disabled = false;
  dialog.showModal();
  (transfer ? $("manage-to") : ok).focus();
}

async function confirm(event) {
  event.preventDefault();
  if (!current) return;
  const { action, chat, client, refresh } = current;
  const to = $("manage-to").value.trim();
  if (action === "transfer" && !to) return $("manage-to").focus();
  const ok = $("manage-ok");
  ok.disabled = true;
  try {
    if (action === "close") await client.request("Queue", "Close", { confId: chat.confId });
    else await client.request("Queue", "Transfer", { confId: chat.confId, to });
    current = null;
    dialog.close();
  } catch (error) {
    $("manage-error").textContent = refusal(error, action, to);
    $("manage-error").hidden = false;
    if (error.code === "forbidden") refresh(); // our role or the queue changed: learn it
    else ok.disabled = false;
  }
}

$("manage-form").addEventListener("submit", confirm);
$("manage-cancel").addEventListener("click", () => {
  current = null;
  dialog.close();
});
dialog.addEventListener("close", () => {
  current = null;
});
