// The page's elements by id, and small DOM helpers.

export const $ = (id) => document.getElementById(id);

export const ui = {
  announcer: $("announcer"),
  login: $("login"),
  loginForm: $("login-form"),
  loginUser: $("login-user"),
  loginPassword: $("login-password"),
  loginDomain: $("login-domain"),
  loginError: $("login-error"),
  loginSubmit: $("login-submit"),
  app: $("app"),
  banner: $("banner"),
  bannerText: $("banner-text"),
  bannerAction: $("banner-action"),
  meAvatar: $("me-avatar"),
  meInitials: $("me-initials"),
  meDot: $("me-dot"),
  meName: $("me-name"),
  meStatus: $("me-status"),
  logout: $("logout"),
  addForm: $("add-form"),
  addSip: $("add-sip"),
  addError: $("add-error"),
  newGroup: $("new-group"),
  groupForm: $("group-form"),
  groupName: $("group-name"),
  groupMembers: $("group-members"),
  groupError: $("group-error"),
  groupCreate: $("group-create"),
  groupCancel: $("group-cancel"),
  contacts: $("contacts"),
  contactsEmpty: $("contacts-empty"),
  chatEmpty: $("chat-empty"),
  chatPane: $("chat-pane"),
  back: $("back"),
  chatAvatar: $("chat-avatar"),
  chatInitials: $("chat-initials"),
  chatDot: $("chat-dot"),
  chatName: $("chat-name"),
  chatStatus: $("chat-status"),
  addMemberButton: $("add-member-button"),
  memberForm: $("member-form"),
  memberSip: $("member-sip"),
  memberAdd: $("member-add"),
  memberCancel: $("member-cancel"),
  messages: $("messages"),
  historyStatus: $("history-status"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeClose: $("notice-close"),
  upload: $("upload"),
  uploadName: $("upload-name"),
  uploadProgress: $("upload-progress"),
  uploadCancel: $("upload-cancel"),
  typing: $("typing"),
  composer: $("composer"),
  input: $("composer-input"),
  emojiButton: $("emoji-button"),
  emojiPicker: $("emoji-picker"),
  emojiGrid: $("emoji-grid"),
  emoticonTitle: $("emoticon-title"),
  emoticonGrid: $("emoticon-grid"),
  attachButton: $("attach-button"),
  fileInput: $("file-input"),
  searchForm: $("search-form"),
  searchInput: $("search-input"),
  searchClear: $("search-clear"),
  searchStatus: $("search-status"),
  searchResults: $("search-results"),
  deleteChat: $("delete-chat"),
  deleteChatDialog: $("delete-chat-dialog"),
  deleteChatForm: $("delete-chat-form"),
  deleteChatText: $("delete-chat-text"),
  deleteChatError: $("delete-chat-error"),
  deleteChatConfirm: $("delete-chat-confirm"),
  deleteChatCancel: $("delete-chat-cancel"),
};

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function announce(text) {
  ui.announcer.textContent = "";
  // a fresh text node, so that screen readers announce the same words twice in a row too
  setTimeout(() => {
    ui.announcer.textContent = text;
  }, 50);
}

export function isPhone() {
  return window.matchMedia("(max-width: 640px)").matches;
}
