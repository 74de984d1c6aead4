// @ts-check
// What the user sees and does once logged in: the conversation list (unread counts, last
// message, presence), one open chat (history, ticks, typing, presence), the composer, starting
// a chat by name, joining and leaving groups, the connection state, and in a group the "Message
// info" of one's own message: each member with their tick, read on demand (GetReceipts).
//
// It reads the client's state and calls the client only through Session.run (session.js); it
// decides nothing about the protocol. Every text goes in through dom.js (textContent).

import { h, replace, timeOf } from './dom.js';
import { NONE, cmp, convKey, convFromKey, direct, group as groupConv, isId, peerOf } from './wire.js';

/** @typedef {import('./wire.js').Conv} Conv */
/** @typedef {import('./wire.js').ChatMessage} ChatMessage */
/** @typedef {import('./session.js').Session} Session */
/** @typedef {import('./api.js').Directory} Directory */

// Messages rendered at first in an open chat; "Show earlier" adds this many more.
const kRenderWindow = 200;
// Typing: send "started" at most this often while keys come, "stopped" after this much quiet.
const kTypingRefreshMs = 3000;
const kTypingIdleMs = 4000;
// An open "Message info" panel reads the members' ticks again this often: a group pushes only its
// aggregate ("read by all"), so a member's read that does not move it is seen here at the latest.
const kInfoRefreshMs = 5000;

const kStatusText = {
  online: 'Online',
  connecting: 'Connecting…',
  offline: 'Offline: messages you write are sent when you are back online',
  expired: 'Your session expired: log in again',
  displaced: 'This account is open in another window',
};

export class ChatView {
  /**
   * @param {HTMLElement} root @param {Session} session @param {Directory} directory
   * @param {{name: string, onLogout: () => void, onRelogin: () => void}} options
   */
  constructor(root, session, directory, options) {
    this.session = session;
    this.client = session.client;
    this.directory = directory;
    this.options = options;
    this.openKey = sessionStorage.getItem(`chatlab.open.${this.client.user}`) ?? '';
    this.renderWindow = kRenderWindow;
    this.renderQueued = false;
    this.typingSentAt = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.typingIdle = undefined;
    // The skeleton, built once; render() only refreshes what changes.
    this.statusEl = h('span', { class: 'status', 'data-testid': 'status' });
    this.banner = h('div', { class: 'banner', 'data-testid': 'banner', role: 'status' });
    this.list = h('ul', { class: 'convs', 'data-testid': 'conversations' });
    this.newChat = /** @type {HTMLInputElement} */ (h('input', { name: 'peer', placeholder: 'Chat with… (user name)', 'aria-label': 'user name', autocomplete: 'off' }));
    this.newGroup = /** @type {HTMLInputElement} */ (h('input', { name: 'group', placeholder: 'Group number', 'aria-label': 'group number', inputmode: 'numeric', autocomplete: 'off' }));
    this.formError = h('p', { class: 'form-error', 'data-testid': 'form-error' });
    this.chatTitle = h('h2', { 'data-testid': 'chat-title' });
    this.chatSubtitle = h('span', { class: 'subtitle', 'data-testid': 'chat-presence' });
    this.typingEl = h('span', { class: 'typing', 'data-testid': 'typing' });
    this.leaveButton = h('button', { class: 'link', 'data-testid': 'leave-group', hidden: true }, ['Leave group']);
    this.messages = h('ol', { class: 'messages', 'data-testid': 'messages' });
    this.earlier = h('button', { class: 'link earlier', 'data-testid': 'show-earlier', hidden: true }, ['Show earlier messages']);
    this.input = /** @type {HTMLTextAreaElement} */ (h('textarea', { name: 'body', rows: '1', placeholder: 'Message', 'aria-label': 'message', 'data-testid': 'composer' }));
    this.sendError = h('p', { class: 'form-error', 'data-testid': 'send-error' });
    /** The message whose "Message info" is open, in the open chat: its conversation key and id.
     * @type {{key: string, id: string, body: string}|null} */
    this.info = null;
    /** The code of the last answer for the open info ('' while none came). */
    this.infoCode = '';
    this.infoPanel = h('aside', { class: 'info', 'data-testid': 'message-info-panel', 'aria-label': 'Message info', hidden: true });
    this.chatPane = h('section', { class: 'chat', 'data-testid': 'chat' });
    this.empty = h('section', { class: 'chat empty' }, ['Pick a conversation, or start one by name.']);
    this.main = h('div', { class: 'main' });
    this.build(root);
    setInterval(() => this.renderTyping(), 1000);
    setInterval(() => this.refreshInfo(), kInfoRefreshMs);
    document.addEventListener('visibilitychange', () => this.scheduleRender());
  }

  // ---- Skeleton (built once) --------------------------------------------------------------

  /** @param {HTMLElement} root */
  build(root) {
    const chatForm = h('form', { class: 'mini-form', 'data-testid': 'new-chat' }, [this.newChat, h('button', { type: 'submit' }, ['Chat'])]);
    const groupForm = h('form', { class: 'mini-form', 'data-testid': 'join-group' }, [this.newGroup, h('button', { type: 'submit' }, ['Join'])]);
    chatForm.addEventListener('submit', (ev) => { ev.preventDefault(); this.startChat(); });
    groupForm.addEventListener('submit', (ev) => { ev.preventDefault(); this.joinGroup(); });
    const logout = h('button', { class: 'link', 'data-testid': 'logout' }, ['Log out']);
    logout.addEventListener('click', () => this.options.onLogout());
    this.leaveButton.addEventListener('click', () => this.leaveGroup());
    this.earlier.addEventListener('click', () => { this.renderWindow += kRenderWindow; this.scheduleRender(); });
    const composer = h('form', { class: 'composer' }, [this.input, h('button', { type: 'submit', 'data-testid': 'send' }, ['Send'])]);
    composer.addEventListener('submit', (ev) => { ev.preventDefault(); this.sendMessage(); });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); this.sendMessage(); }
    });
    this.input.addEventListener('input', () => this.onTypingInput());
    replace(this.chatPane, [
      h('header', { class: 'chat-header' }, [h('div', {}, [this.chatTitle, this.chatSubtitle, this.typingEl]), this.leaveButton]),
      this.earlier, this.messages, this.infoPanel, this.sendError, composer,
    ]);
    replace(root, [
      h('header', { class: 'top' }, [h('h1', {}, ['ChatLab']), h('span', { class: 'me', 'data-testid': 'me' }, [this.options.name]), this.statusEl, logout]),
      this.banner,
      h('div', { class: 'layout' }, [h('nav', { class: 'side' }, [chatForm, groupForm, this.formError, this.list]), this.main]),
    ]);
  }

  // ---- Actions ----------------------------------------------------------------------------

  async startChat() {
    const name = this.newChat.value.trim();
    if (name === '') return;
    replace(this.formError, []);
    try {
      const id = await this.directory.idOf(name);
      const conv = direct(this.client.user, id);
      this.newChat.value = '';
      this.session.run((now, out) => { this.client.conv(conv); this.client.catchUp(now, conv, out); });
      this.open(convKey(conv));
    } catch (e) {
      replace(this.formError, [`${name}: ${e instanceof Error ? e.message : String(e)}`]);
    }
  }

  joinGroup() {
    const g = this.newGroup.value.trim();
    if (!isId(g)) {
      replace(this.formError, ['A group is a number from 1 up']);
      return;
    }
    replace(this.formError, []);
    this.newGroup.value = '';
    this.session.run((now, out) => { this.client.conv(groupConv(g)); this.client.joinGroup(now, g, out); });
    this.open(convKey(groupConv(g)));
  }

  leaveGroup() {
    const conv = this.openConv();
    if (conv === null || conv.type !== 'group') return;
    this.session.run((now, out) => this.client.leaveGroup(now, conv.low, out));
  }

  /** @param {string} key */
  open(key) {
    if (key !== this.openKey) this.info = null;
    this.openKey = key;
    this.renderWindow = kRenderWindow;
    sessionStorage.setItem(`chatlab.open.${this.client.user}`, key);
    this.scheduleRender();
    this.input.focus();
  }

  /** @returns {Conv|null} */
  openConv() {
    return this.openKey !== '' && this.client.convs.has(this.openKey) ? convFromKey(this.openKey) : null;
  }

  sendMessage() {
    const conv = this.openConv();
    const body = this.input.value;
    if (conv === null || body.trim() === '') return;
    try {
      this.session.run((now, out) => {
        this.client.send(now, conv, body, out);
        if (this.typingSentAt !== 0) this.client.setTyping(now, conv, false, out);
      });
      this.typingSentAt = 0;
      this.input.value = '';
      replace(this.sendError, []);
    } catch (e) {
      replace(this.sendError, [e instanceof Error ? e.message : String(e)]);
    }
  }

  onTypingInput() {
    const conv = this.openConv();
    if (conv === null) return;
    const nowMs = Date.now();
    if (nowMs - this.typingSentAt > kTypingRefreshMs && this.input.value !== '') {
      this.typingSentAt = nowMs;
      this.session.run((now, out) => this.client.setTyping(now, conv, true, out));
    }
    clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => {
      if (this.typingSentAt === 0) return;
      this.typingSentAt = 0;
      this.session.run((now, out) => this.client.setTyping(now, conv, false, out));
    }, kTypingIdleMs);
  }

  /** Opens the "Message info" of an own group message and reads the members' ticks.
   * @param {Conv} conv @param {ChatMessage} m */
  openInfo(conv, m) {
    this.info = { key: convKey(conv), id: m.message_id, body: m.body };
    this.infoCode = '';
    this.session.run((now, out) => this.client.getReceipts(now, conv, out));
  }

  closeInfo() {
    this.info = null;
    this.scheduleRender();
  }

  /** Reads the open info's ticks again (the client coalesces a read already in flight). */
  refreshInfo() {
    const conv = this.openConv();
    if (this.info === null || conv === null || this.info.key !== this.openKey || !this.client.connected) return;
    this.session.run((now, out) => this.client.getReceipts(now, conv, out));
  }

  /** The client showed a receipt: a group's aggregate moving while its info is open refreshes it.
   * (Not a member's own mark: those come from the info's reads.) @param {import('./wire.js').ReceiptUpdate} r */
  onReceiptShown(r) {
    if (this.info !== null && r.reader === NONE && convKey(r.conv) === this.info.key) this.refreshInfo();
  }

  /** A per-member receipts read completed. @param {Conv} conv @param {string} code */
  onMemberReceipts(conv, code) {
    if (this.info !== null && convKey(conv) === this.info.key) this.infoCode = code;
    this.scheduleRender();
  }

  // ---- Rendering --------------------------------------------------------------------------

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    setTimeout(() => { this.renderQueued = false; this.render(); }, 0);
  }

  /** A user's name, or "user N" until the directory answers. @param {string} id */
  name(id) {
    if (id === this.client.user) return this.options.name;
    return this.directory.nameOf(id, () => this.scheduleRender()) ?? `user ${id}`;
  }

  /** @param {Conv} conv */
  title(conv) {
    if (conv.type === 'group') return `Group ${conv.low}`;
    return this.name(peerOf(conv, this.client.user));
  }

  /** @param {import('./client.js').Conversation} c */
  unread(c) {
    let n = 0;
    for (const m of c.view) if (m.sender !== this.client.user && cmp(m.message_id, c.read_sent) > 0) n++;
    return n;
  }

  render() {
    const status = this.session.status;
    this.statusEl.dataset.state = status;
    replace(this.statusEl, [status === 'online' ? 'online' : status]);
    this.banner.dataset.state = status;
    /** @type {(Node|string)[]} */
    const bannerChildren = status === 'online' ? [] : [kStatusText[status]];
    if (status === 'displaced' || status === 'expired') {
      const b = h('button', { class: 'link' }, [status === 'displaced' ? 'Use here' : 'Log in']);
      b.addEventListener('click', () => (status === 'displaced' ? this.session.reconnect() : this.options.onRelogin()));
      bannerChildren.push(' ', b);
    }
    replace(this.banner, bannerChildren);
    this.renderList();
    this.renderChat();
  }

  renderList() {
    const rows = [...this.client.convs.entries()].map(([key, c]) => {
      const last = c.view.at(-1);
      const pending = [...this.client.outbox.values()].filter((e) => convKey(e.conv) === key).at(-1);
      return { key, c, last, pending, order: pending?.created_us ?? (last ? Number(last.sent_at_us) : 0) };
    });
    rows.sort((a, b) => b.order - a.order || a.key.localeCompare(b.key));
    replace(this.list, rows.map(({ key, c, last, pending }) => {
      const unread = key === this.openKey && document.visibilityState === 'visible' ? 0 : this.unread(c);
      const preview = pending ? pending.body : last ? last.body : '';
      const who = last && !pending && c.conv.type === 'group' ? `${this.name(last.sender)}: ` : '';
      const peerOnline = c.conv.type === 'direct' && this.client.presence.get(peerOf(c.conv, this.client.user))?.online;
      const item = h('button', { class: 'conv', 'data-conv': key, 'aria-current': key === this.openKey ? 'true' : undefined }, [
        h('span', { class: 'conv-title' }, [h('span', { class: peerOnline ? 'dot on' : 'dot' }), this.title(c.conv)]),
        h('span', { class: 'conv-last', 'data-testid': 'last-message' }, [who, preview]),
        unread > 0 ? h('span', { class: 'unread', 'data-testid': 'unread' }, [String(unread)]) : null,
      ]);
      item.addEventListener('click', () => this.open(key));
      return h('li', {}, [item]);
    }));
  }

  renderChat() {
    const conv = this.openConv();
    if (conv === null) {
      replace(this.main, [this.empty]);
      return;
    }
    if (this.main.firstChild !== this.chatPane) replace(this.main, [this.chatPane]);
    const key = convKey(conv);
    const c = this.client.conv(conv);
    this.chatPane.dataset.conv = key;
    replace(this.chatTitle, [this.title(conv)]);
    this.leaveButton.hidden = conv.type !== 'group';
    this.renderPresence(conv);
    this.renderTyping();
    const atBottom = this.messages.scrollHeight - this.messages.scrollTop - this.messages.clientHeight < 40;
    const shown = c.view.slice(-this.renderWindow);
    this.earlier.hidden = c.view.length <= shown.length;
    const items = shown.map((m) => this.messageItem(conv, m));
    for (const [id, e] of this.client.outbox) {
      if (convKey(e.conv) !== key) continue;
      items.push(h('li', { class: 'msg mine', 'data-client-msg-id': id, 'data-ticks': 'pending' }, [
        h('span', { class: 'body' }, [e.body]),
        h('span', { class: 'meta' }, [timeOf(e.created_us), ' ', h('span', { class: 'ticks', title: 'waiting to be sent' }, ['🕓'])]),
      ]));
    }
    replace(this.messages, items);
    if (atBottom) this.messages.scrollTop = this.messages.scrollHeight;
    this.renderInfo(conv);
    if (document.visibilityState === 'visible' && cmp(c.last_shown, c.read_sent) > 0 && this.client.connected) {
      setTimeout(() => this.session.run((now, out) => this.client.markRead(now, conv, out)), 0);
    }
  }

  /** @param {Conv} conv @param {ChatMessage} m */
  messageItem(conv, m) {
    const mine = m.sender === this.client.user;
    const ticks = mine ? this.ticks(conv, m) : null;
    return h('li', {
      class: mine ? 'msg mine' : 'msg theirs', 'data-message-id': m.message_id,
      'data-client-msg-id': m.client_msg_id, 'data-sender': m.sender, 'data-ticks': ticks?.state,
    }, [
      !mine && conv.type === 'group' ? h('span', { class: 'sender' }, [this.name(m.sender)]) : null,
      h('span', { class: 'body' }, [m.body]),
      h('span', { class: 'meta' }, [
        m.sent_at_us !== '0' ? timeOf(m.sent_at_us) : '',
        ticks ? ' ' : '', ticks ? h('span', { class: `ticks ${ticks.state}`, title: ticks.title }, [ticks.text]) : null,
        mine && conv.type === 'group' ? this.infoButton(conv, m) : null,
      ]),
    ]);
  }

  /** The "info" affordance of an own group message. @param {Conv} conv @param {ChatMessage} m */
  infoButton(conv, m) {
    const b = h('button', { class: 'link info-button', type: 'button', 'data-testid': 'message-info', title: 'Message info: who has it, who read it', 'aria-label': 'Message info' }, ['info']);
    b.addEventListener('click', () => this.openInfo(conv, m));
    return b;
  }

  /** The "Message info" panel of the open chat: every other member with their tick for the
   * message (read, delivered, sent), from the last read of the members' receipts. @param {Conv} conv */
  renderInfo(conv) {
    const info = this.info;
    if (info === null || info.key !== convKey(conv)) {
      this.infoPanel.hidden = true;
      replace(this.infoPanel, []);
      return;
    }
    this.infoPanel.hidden = false;
    this.infoPanel.dataset.infoFor = info.id;
    const members = this.client.memberReceiptsShown(conv);
    const close = h('button', { class: 'link', type: 'button', 'data-testid': 'message-info-close' }, ['Close']);
    close.addEventListener('click', () => this.closeInfo());
    /** @type {(Node|string)[]} */
    const status = [];
    if (this.infoCode === 'PERMISSION_DENIED' || this.infoCode === 'NOT_FOUND') status.push('Only members of the group see who has read its messages.');
    else if (this.infoCode !== '' && this.infoCode !== 'OK') status.push(`Could not read the ticks (${this.infoCode}); trying again.`);
    else if (this.infoCode === '' && members.length === 0) status.push('Loading…');
    else if (members.length === 0) status.push('No other members.');
    replace(this.infoPanel, [
      h('header', { class: 'info-header' }, [h('h3', {}, ['Message info']), close]),
      h('p', { class: 'info-body', 'data-testid': 'message-info-body' }, [info.body]),
      h('p', { class: 'info-status', 'data-testid': 'message-info-status' }, status),
      h('ul', { class: 'info-members', 'data-testid': 'message-info-members' }, members.map((r) => {
        const tick = cmp(r.read_up_to, info.id) >= 0 ? { state: 'read', text: '✓✓ read' }
          : cmp(r.delivered_up_to, info.id) >= 0 ? { state: 'delivered', text: '✓✓ delivered' }
            : { state: 'sent', text: '✓ sent' };
        return h('li', { 'data-user': r.user, 'data-tick': tick.state }, [
          h('span', { class: 'info-name' }, [this.name(r.user)]),
          h('span', { class: `ticks ${tick.state}` }, [tick.text]),
        ]);
      })),
    ]);
  }

  /** Ticks of an own message: the peer's watermark in a direct chat, the members' aggregate
   * ("all") in a group. @param {Conv} conv @param {ChatMessage} m */
  ticks(conv, m) {
    const reader = conv.type === 'group' ? NONE : peerOf(conv, this.client.user);
    const all = conv.type === 'group' ? ' by all members' : '';
    if (cmp(this.client.receiptShown(conv, 'read', reader), m.message_id) >= 0) {
      return { state: 'read', text: '✓✓', title: `read${all}` };
    }
    if (cmp(this.client.receiptShown(conv, 'delivered', reader), m.message_id) >= 0) {
      return { state: 'delivered', text: '✓✓', title: `delivered${all ? ' to all members' : ''}` };
    }
    return { state: 'sent', text: '✓', title: 'stored by the server' };
  }

  /** @param {Conv} conv */
  renderPresence(conv) {
    if (conv.type === 'group') {
      replace(this.chatSubtitle, [this.client.groups.has(conv.low) ? 'member' : 'not a member']);
      return;
    }
    const s = this.client.presence.get(peerOf(conv, this.client.user));
    this.chatSubtitle.dataset.online = s ? String(s.online) : 'unknown';
    if (s === undefined) replace(this.chatSubtitle, []);
    else if (s.online) replace(this.chatSubtitle, ['online']);
    else replace(this.chatSubtitle, [s.last_seen_us !== '0' ? `last seen ${timeOf(s.last_seen_us)}` : 'offline']);
  }

  renderTyping() {
    const conv = this.openConv();
    if (conv === null) return;
    const who = this.client.typing(conv, Date.now() * 1000).filter((u) => u !== this.client.user);
    replace(this.typingEl, who.length === 0 ? [] : [`${who.map((u) => this.name(u)).join(', ')} typing…`]);
  }
}
