// What the page knows of this login: one object, shared by every module.

export const state = {
  client: null,
  me: null, // {sip, domain}
  licensed: false,
  activity: "available",
  convs: new Map(), // peer sip -> Conv
  open: null, // the Conv on screen
  callConv: new WeakMap(), // Call -> Conv
  callsByNumber: new Map(), // call number -> Call (Error frames name the number only)
  selfWatch: null,
  badge: null, // our unread count, as the hub last said (licensed users)
  badgeTimer: null,
  watches: new Map(), // sip -> presence Call
  emoticons: {}, // shortcode -> image path
  upload: null, // the XMLHttpRequest of the upload running
  loggingOut: false,
  wasReconnecting: false,
  order: 0,
  maxMessage: 64 * 1024, // limits.max_message, from GET /api/limits at login
  maxFile: 25 * 1024 * 1024, // files.max_size, likewise
  stickToBottom: true, // keep the newest message in view as pictures load
};
