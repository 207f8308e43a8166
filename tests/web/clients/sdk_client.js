// A small AppWebsocket + PbxSignal client written by Switchboard from innovaphone's public
// SDK pages (AppWebsocket, PbxSignal, Signal), not from their code: it logs in the way an
// App object's password login does, registers as a device and speaks Signal messages. The
// interop test (test_sdk_interop.py) drives it in Chromium against a real server.
(() => {
  const hex = (buffer) =>
    Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

  async function sha256(text) {
    return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  }

  class SdkClient {
    constructor(url) {
      this.url = url;
      this.inbox = [];
      this.waiting = [];
      this.received = 0;
    }

    /** Open the socket and log in as App object `app` acting as itself. */
    async login(app, password) {
      this.ws = new WebSocket(this.url);
      this.closed = new Promise((resolve) => {
        this.ws.onclose = (event) => resolve(event.code);
      });
      this.ws.onmessage = (event) => this.deliver(JSON.parse(event.data));
      await new Promise((resolve, reject) => {
        this.ws.onopen = resolve;
        this.ws.onerror = reject;
      });
      this.send({ mt: "AppChallenge" });
      const { challenge } = await this.next((m) => m.mt === "AppChallengeResult");
      // The login fields of an App object's own password login; the digest covers
      // app:domain:sip:guid:dn:challenge:password (no info property is sent).
      const login = { app, domain: "", sip: app, guid: "0".repeat(32), dn: "Admin" };
      const text = [app, "", app, login.guid, login.dn, challenge, password].join(":");
      this.send({ mt: "AppLogin", ...login, digest: await sha256(text), pbxObj: app });
      const result = await this.next((m) => m.mt === "AppLoginResult");
      if (!result.ok) throw new Error(`login failed: ${result.errorText}`);
      this.info = await this.next((m) => m.mt === "PbxInfo");
      return result;
    }

    async register() {
      this.send({ api: "PbxSignal", mt: "Register", src: "dev", flags: "NO_MEDIA_CALL" });
      return this.next((m) => m.mt === "RegisterResult");
    }

    signal(call, sig) {
      this.send({ api: "PbxSignal", mt: "Signaling", call, sig });
    }

    /** The next Signaling frame of `call` (any call when omitted) of Signal type `type`. */
    sig(type, call) {
      return this.next(
        (m) => m.mt === "Signaling" && m.sig.type === type && (call === undefined || m.call === call),
      );
    }

    send(message) {
      this.ws.send(JSON.stringify(message));
    }

    deliver(message) {
      this.received += 1;
      const index = this.waiting.findIndex((w) => w.match(message));
      if (index >= 0) this.waiting.splice(index, 1)[0].resolve(message);
      else this.inbox.push(message);
    }

    next(match, timeout = 5000) {
      const index = this.inbox.findIndex(match);
      if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0]);
      return new Promise((resolve, reject) => {
        const waiter = { match, resolve };
        this.waiting.push(waiter);
        setTimeout(() => {
          const at = this.waiting.indexOf(waiter);
          if (at >= 0) {
            this.waiting.splice(at, 1);
            reject(new Error(`nothing matching within ${timeout} ms`));
          }
        }, timeout);
      });
    }
  }

  window.SdkClient = SdkClient;
})();
