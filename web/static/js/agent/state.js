// What the support console's modules share: the signed-in client, the queue whose board
// it watches, and the chats on it. Chats are keyed by their confId: the conversation's
// id, the same on the board (§9.3) and on every device's leg of the call (§4.5), whose
// own callId differs.

export const state = {
  client: null,
  queue: "support",
  // what SubscribeResult says we may do on this queue (docs/protocol.md 12.34)
  terms: { role: "agent", take_on_write: false },
  board: new Map(), // confId -> the board's chat object
  ringing: new Map(), // confId -> an offered Call of ours
  taking: new Set(), // confIds we asked to Take
  chats: new Map(), // confId -> ChatView
  changed: () => {}, // redraw the board (set by the console)
};

export function supervisor() {
  return state.terms.role === "supervisor";
}
