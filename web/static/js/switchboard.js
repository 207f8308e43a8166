// Switchboard's browser client: the public protocol (docs/protocol.md), nothing more.
//
// One Client is one logged-in device. It logs in (AppChallenge, AppLogin with the SHA-256
// digest of PROTOCOL 3.2), registers with NO_MEDIA_CALL, and keeps the registration alive
// across network blinks: on a lost connection it reconnects with backoff and registers with
// its resume token and the last seq it saw of each call, keyed by the call's confId
// (PROTOCOL 4.9), answers the calls
// the hub offers again, and drops replayed messages it already has.
//
// A page that outlives its own reload (the visitor widget) keeps `client.resumeToken` and
// passes it back as `new Client({..., resume, seqs})`: the first Register then takes the
// old registration over and the hub offers its live calls again (setup with `resumed`).
//
// It is an EventTarget. Events (detail in parentheses):
//   status    ({status: "connecting"|"online"|"reconnecting"|"offline", error?})
//   registered ({resumed, resume}) every RegisterResult; resume is the token for next time
//   call      ({call}) a call was offered (call.incoming) or placed
//   proceeding ({call}) the hub accepted a call we placed; call.confId (the conversation,
//              the id stored messages carry as callId) and call.callId (our leg) are known
//   connected ({call}) the other side answered
//   message   ({call, message}) an im_message (message.mine for our own, message.system)
//   ack       ({call, ack}) what became of a message we sent (delivered, held, stored, ...)
//   typing    ({call, sip, dn, typing})
//   seen      ({call, seq}) the peer read up to seq
//   released  ({call, cause}) the call ended; cause is the Q.931 number
//   presence  ({sip, status, activity, note, badge, lastSeen, recent})
//   queue     ({message}) a board update (api Queue)
//   error     ({message}) an Error frame about nothing we asked

const TEXT = new TextEncoder();

export async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", TEXT.encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function hubUrl(base = location) {
  const scheme = base.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${base.host}/PBX0/APPS/websocket`;
}

/** The acks an im_ack stands for, each in the single form {id, seq, time, state}: a
 * cumulative one (docs/protocol.md 12.31) lists `ids`, oldest first, whose seqs run up by
 * one to its `seq`. */
export function singleAcks(item) {
  if (!Array.isArray(item.ids)) return [item];
  const last = item.ids.length - 1;
  return item.ids.map((id, n) => ({ type: "im_ack", id, seq: item.seq - last + n, time: item.time, state: item.state }));
}

export const CAUSES = {
  1: "no such user or queue",
  16: "ended",
  17: "busy",
  18: "not reachable (offline)",
  19: "nobody answered",
  21: "not allowed",
  26: "answered elsewhere",
  41: "connection lost",
  47: "too many chats",
  102: "closed for inactivity",
  111: "protocol error",
};

// Identifiers, as innovaphone's Signal page defines them (PROTOCOL 4.5): `confId` names the
// conversation and is the same for every device in it; `callId` names this device's leg.
export class Call {
  constructor(client, number, ids, peer, incoming) {
    this.client = client;
    this.number = number;
    this.confId = (ids && ids.confId) || null;
    this.callId = (ids && ids.callId) || null;
    this.peer = peer; // {sip, dn}
    this.incoming = incoming;
    this.state = incoming ? "offered" : "calling";
    this.lastSeq = 0;
    this.fty = [];
    this.presence = false;
    this.context = null;
    this.queue = null;
  }

  answer() {
    this.client._signal(this.number, { type: "conn" });
    this.state = "connected";
    this.client._emit("connected", { call: this });
  }

  release() {
    this.client._signal(this.number, { type: "rel" });
    this.client._ended(this, 16);
  }

  /** Send text (plain text unless mime says otherwise); returns the message id. A retry
   * passes the first try's `id`: the hub acknowledges it again and never relays it twice. */
  send(data, { mime = "text/plain", attach = null, id = null } = {}) {
    id = id || this.client._newId();
    const message = { type: "im_message", mime, data, id };
    if (attach) message.attach = attach;
    this.client._signal(this.number, { type: "facility", fty: [message] });
    return id;
  }

  typing(on) {
    this.client._signal(this.number, { type: "facility", fty: [{ type: "im_message", typing: on }] });
  }
}

export class Client extends EventTarget {
  constructor({ sip, password, domain = "", url = hubUrl(), app = "switchboard-web", resume = null, seqs = null }) {
    super();
    this.sip = sip;
    this.password = password;
    this.domain = domain;
    this.dn = ""; // our display name, as the server knows it (docs/protocol.md 12.42)
    this.url = url;
    this.app = app;
    this.calls = new Map(); // by call number
    this.byConfId = new Map(); // the conversation's id -> Call
    this.trace = false;
    this._src = 0;
    this._pending = new Map();
    this._ids = 0;
    this._nextCall = 1;
    this._resume = resume; // PROTOCOL 4.9: a token from an earlier page of the same tab
    this._seqs = { ...(seqs || {}) }; // confId -> last seq seen, for that first Register
    this._keepalives = []; // one entry per KeepAlive in flight: a sync() resolver or null
    this.resumed = false;
    this._retry = 0;
    this._closing = false;
    this._session = null;
    this._keepalive = null;
    this.status = "offline";
  }

  // -- connection ----------------------------------------------------------------------

  /** Log in and register; resolves once registered, rejects if the login fails. */
  connect() {
    this._closing = false;
    return new Promise((resolve, reject) => {
      this._firstConnect = { resolve, reject };
      this._open();
    });
  }

  close() {
    this._closing = true;
    clearInterval(this._keepalive);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this._send({ api: "PbxSignal", mt: "Unregister" });
      this.ws.close(1000);
    }
    this._setStatus("offline");
  }

  _open() {
    this._setStatus(this._resume && !this._firstConnect ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => this._send({ mt: "AppChallenge" });
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) => this._lost(event);
  }

  /** The resume token of the current registration (PROTOCOL 4.9), null before the first. */
  get resumeToken() {
    return this._resume;
  }

  /** Resolves once the hub has answered everything sent before (a KeepAlive round trip). */
  sync() {
    return new Promise((resolve) => {
      this._keepalives.push(resolve);
      this._send({ mt: "KeepAlive" });
    });
  }

  _lost(event) {
    clearInterval(this._keepalive);
    for (const waiting of this._keepalives.splice(0)) if (waiting) waiting();
    this._session = null;
    for (const { reject } of this._pending.values()) reject(new Error("connection lost"));
    this._pending.clear();
    if (this._firstConnect) {
      this._firstConnect.reject(new Error(event.reason || "connection failed"));
      this._firstConnect = null;
      this._setStatus("offline");
      return;
    }
    if (this._closing || event.code === 4001 || event.code === 4005) {
      this._setStatus("offline", event.reason);
      return;
    }
    const delay = Math.min(10000, 250 * 2 ** this._retry) * (0.5 + Math.random() / 2);
    this._retry += 1;
    this._setStatus("reconnecting");
    setTimeout(() => this._open(), delay);
  }

  _setStatus(status, error) {
    this.status = status;
    this._emit("status", { status, error });
  }

  _send(message) {
    if (this.trace) console.debug("switchboard >", message);
    this.ws.send(JSON.stringify(message));
  }

  async _login(challenge) {
    const info = "";
    const digest = await sha256Hex(
      [this.app, this.domain, this.sip, "", "", challenge, this.password].join(":") + info,
    );
    this._send({ mt: "AppLogin", app: this.app, domain: this.domain, sip: this.sip, guid: "", dn: "", digest });
  }

  _register() {
    // CUMULATIVE_ACK: one im_ack may cover a run of our messages (docs/protocol.md 12.31)
    const flags = "NO_MEDIA_CALL|CUMULATIVE_ACK";
    const register = { api: "PbxSignal", mt: "Register", src: "reg", flags, hw: "web" };
    if (this._resume) {
      register.resume = this._resume;
      register.seqs = { ...this._seqs };
      for (const call of this.calls.values()) if (call.confId) register.seqs[call.confId] = call.lastSeq;
    }
    this._send(register);
  }

  // -- receiving -----------------------------------------------------------------------

  _receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (this.trace) console.debug("switchboard <", message);
    const mt = message.mt;
    if (mt === "AppChallengeResult") return this._login(message.challenge);
    if (mt === "AppLoginResult") {
      if (!message.ok) {
        const error = new Error(message.errorText || "login failed");
        if (this._firstConnect) this._firstConnect.reject(error);
        this._firstConnect = null;
        this._closing = true;
        return;
      }
      this.domain = message.domain || this.domain;
      this.dn = message.dn || this.dn || this.sip;
      return this._register();
    }
    if (mt === "TraceFlags") {
      this.trace = Boolean(message.browser);
      return;
    }
    if (mt === "KeepAlive") {
      const waiting = this._keepalives.shift();
      if (waiting) waiting();
      return;
    }
    if (message.api === "PbxSignal" && mt === "RegisterResult") return this._registered(message);
    if (message.api === "PbxSignal" && mt === "Signaling") return this._signaling(message);
    if (message.api === "PbxMessages" && mt === "Error" && message.src === undefined) {
      this._session = null; // the hub lost the messages service: sessions ended (PROTOCOL 6.3)
    }
    if (message.src !== undefined && this._pending.has(message.src)) return this._answer(message);
    if (message.api === "Queue") return this._emit("queue", { message });
    if (message.api === "PbxMessages" && mt === "ChatDeleted") return this._emit("chatdeleted", { message });
    if (mt === "Error") return this._emit("error", { message });
  }

  _registered(message) {
    if (message.err) {
      if (this._firstConnect) this._firstConnect.reject(new Error(message.err));
      this._firstConnect = null;
      return;
    }
    if (this._resume && !message.resumed) {
      // the hub forgot us (grace over): every call we knew has ended
      for (const call of [...this.calls.values()]) this._ended(call, 41);
    }
    this._resume = message.resume;
    this._seqs = {};
    this.resumed = Boolean(message.resumed);
    this._retry = 0;
    clearInterval(this._keepalive);
    this._keepalive = setInterval(() => {
      this._keepalives.push(null);
      this._send({ mt: "KeepAlive" });
    }, 30000);
    this._emit("registered", { resumed: this.resumed, resume: this._resume });
    this._setStatus("online");
    if (this._firstConnect) {
      this._firstConnect.resolve(this);
      this._firstConnect = null;
    }
  }

  _signaling(message) {
    const sig = message.sig || {};
    const number = message.call;
    let call = this.calls.get(number);
    if (sig.type === "setup") return this._offered(number, sig);
    if (!call && sig.type === "rel" && sig.confId) {
      // a call that ended while we were away, told at the resume (docs/protocol.md 12.35)
      const cause = sig.cau ? sig.cau.num : 16;
      const known = this.byConfId.get(sig.confId);
      if (known) return this._ended(known, cause);
      return this._emit("gone", { confId: sig.confId, callId: sig.callId, cause });
    }
    if (!call) return;
    if (sig.type === "call_proc") {
      this._learnIds(call, sig);
      call.state = "waiting";
      return this._emit("proceeding", { call });
    }
    if (sig.type === "alert") return;
    if (sig.type === "conn") {
      // a presence subscription learns its ids here (PROTOCOL 12.11), so that a resume
      // finds it again instead of keeping a stale call number
      if (sig.confId && !call.confId) this._learnIds(call, sig);
      call.state = "connected";
      const name = (sig.fty || []).find((item) => item.type === "name_identification");
      if (name && !call.presence) call.peer = { ...call.peer, dn: name.name };
      return this._emit("connected", { call });
    }
    if (sig.type === "rel" || sig.type === "disc") return this._ended(call, sig.cau ? sig.cau.num : 16);
    if (sig.type === "facility") for (const item of sig.fty || []) this._facility(call, item);
  }

  _learnIds(call, sig) {
    if (sig.confId) call.confId = sig.confId;
    if (sig.callId) call.callId = sig.callId;
    if (call.confId) this.byConfId.set(call.confId, call);
  }

  _offered(number, sig) {
    const fty = sig.fty || [];
    const resumed = fty.some((item) => item.type === "resumed");
    const known = resumed ? this.byConfId.get(sig.confId) : null;
    if (known) {
      // the same call after a reconnect: new number, answer it, the replay follows
      this.calls.delete(known.number);
      known.number = number;
      known.callId = sig.callId || known.callId;
      this.calls.set(number, known);
      this._signal(number, { type: "conn" });
      return;
    }
    const name = fty.find((item) => item.type === "name_identification");
    const peer = sig.cg ? { sip: sig.cg.sip, dn: name ? name.name : sig.cg.sip } : { sip: "", dn: "" };
    const call = new Call(this, number, { confId: sig.confId, callId: sig.callId }, peer, true);
    call.fty = fty;
    call.context = fty.find((item) => item.type === "context") || null;
    call.queue = fty.find((item) => item.type === "queue") || null;
    call.presence = fty.some((item) => item.type === "presence_subscribe");
    this.calls.set(number, call);
    if (call.confId) this.byConfId.set(call.confId, call);
    if (resumed) {
      // a call we no longer knew (e.g. after a page reload): take it back
      call.state = "connected";
      this._signal(number, { type: "conn" });
    }
    this._emit("call", { call });
  }

  _facility(call, item) {
    if (item.type === "presence_notify") {
      const match = /^#badge:(\d+)$/.exec(item.note || "");
      return this._emit("presence", {
        sip: call.peer.sip,
        status: item.status,
        activity: item.activity,
        note: match ? "" : item.note,
        badge: match ? Number(match[1]) : null,
        // a visitor's: when last seen (ms) and whether recently (docs/protocol.md 12.37)
        lastSeen: typeof item.last_seen === "number" ? item.last_seen : null,
        recent: typeof item.recent === "boolean" ? item.recent : null,
      });
    }
    if (item.type === "im_ack") {
      if (item.seq) call.lastSeq = Math.max(call.lastSeq, item.seq);
      for (const ack of singleAcks(item)) this._emit("ack", { call, ack });
      return;
    }
    if (item.type === "im_seen") return this._emit("seen", { call, seq: item.seq });
    if (item.type === "name_identification") {
      call.peer = { ...call.peer, dn: item.name };
      return this._emit("connected", { call });
    }
    if (item.type !== "im_message") return;
    if (item.typing !== undefined && item.data === undefined && !item.attach) {
      return this._emit("typing", { call, sip: item.sender, dn: item.sender_dn, typing: item.typing });
    }
    if (item.seq) {
      if (item.seq <= call.lastSeq && !item.id) return; // already shown (a replay)
      call.lastSeq = Math.max(call.lastSeq, item.seq);
    }
    const message = { ...item, mine: item.sender === this.sip, system: Boolean(item.system) };
    this._emit("message", { call, message });
  }

  _ended(call, cause) {
    if (call.state === "released") return;
    call.state = "released";
    this.calls.delete(call.number);
    if (this.byConfId.get(call.confId) === call) this.byConfId.delete(call.confId);
    this._emit("released", { call, cause });
  }

  // -- calls ---------------------------------------------------------------------------

  _signal(number, sig) {
    this._send({ api: "PbxSignal", mt: "Signaling", call: number, sig });
  }

  _newId() {
    this._ids += 1;
    return `w${Date.now().toString(36)}-${this._ids}`;
  }

  /** Start a chat with a user, a group or a queue; extra fty (e.g. a context) ride along.
   * `first` (text, or {data, mime, attach}) travels in the setup itself, so a callee who
   * is offline is reported at once (im_ack not_delivered, rel 18); its id is call.firstId. */
  chat(to, { context = null, first = null } = {}) {
    const number = this._nextCall++;
    const call = new Call(this, number, null, { sip: to, dn: to }, false);
    const fty = [{ type: "im_setup" }];
    if (context) fty.push({ type: "context", ...context });
    if (first) {
      const message = typeof first === "string" ? { data: first } : first;
      call.firstId = this._newId();
      fty.push({ type: "im_message", mime: "text/plain", ...message, id: call.firstId });
    }
    this.calls.set(number, call);
    this._signal(number, { type: "setup", channel: 0, cd: { sip: to }, fty });
    this._emit("call", { call });
    return call;
  }

  /** Follow a user's presence (PROTOCOL 4.10); one subscription per user. */
  watch(sip) {
    const number = this._nextCall++;
    const call = new Call(this, number, null, { sip, dn: sip }, false);
    call.presence = true;
    this.calls.set(number, call);
    this._signal(number, { type: "setup", channel: 0, cd: { sip }, fty: [{ type: "presence_subscribe" }] });
    return call;
  }

  publish(activity, note = "") {
    let own = [...this.calls.values()].find((call) => call.presence && call.peer.sip === this.sip);
    if (!own) own = this.watch(this.sip);
    this._signal(own.number, { type: "facility", fty: [{ type: "presence_publish", activity, note }] });
  }

  // -- requests (PbxMessages, Queue) ---------------------------------------------------

  /** A request; resolves with {inds: [...], result} or rejects with the Error frame.
   * The promise carries the request's `src` (updates that follow on it, e.g. a Queue
   * board's, arrive as `queue` events with that `src`). */
  request(api, mt, body = {}) {
    this._src += 1;
    const src = `q${this._src}`;
    const promise = new Promise((resolve, reject) => {
      this._pending.set(src, { resolve, reject, inds: [] });
      this._send({ api, mt, src, ...body });
    });
    promise.src = src;
    return promise;
  }

  _answer(message) {
    const pending = this._pending.get(message.src);
    if (message.mt === "Error" || (message.mt.endsWith("Result") && message.error)) {
      this._pending.delete(message.src);
      const error = new Error(message.text || message.code || "error");
      error.code = message.code;
      error.frame = message;
      return pending.reject(error);
    }
    if (message.mt.endsWith("Ind")) return pending.inds.push(message);
    if (message.mt.endsWith("Result")) {
      this._pending.delete(message.src);
      return pending.resolve({ inds: pending.inds, result: message });
    }
    this._emit(message.api === "Queue" ? "queue" : "error", { message });
  }

  /** PbxMessages (licensed users): opens the session on first use. */
  async messages(mt, body = {}) {
    if (!this._session) {
      const { result } = await this.request("PbxMessages", "Session");
      this._session = result.session;
    }
    try {
      return await this.request("PbxMessages", mt, body);
    } catch (error) {
      if (error.code !== "bad_state") throw error;
      this._session = null; // the session ended meanwhile: open a new one, once
      const { result } = await this.request("PbxMessages", "Session");
      this._session = result.session;
      return this.request("PbxMessages", mt, body);
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
