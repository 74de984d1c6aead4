// @ts-check
// The client session of the web page: core/client.cc's ClientSession, ported to JavaScript and
// kept sans-I/O in the same way. Inputs go in with `now` (microseconds); effects come out in an
// array the runtime (session.js) carries out: open or close the WebSocket, send a frame, arm a
// timer. It never touches the DOM, the network, a clock or storage. What the user sees is
// reported to an observer (the UI and the history recorder).
//
// It follows docs/protocol.md to the letter: an outbox retried with backoff and equal jitter
// under the same client_msg_id; de-duplication by message id; prev_msg_id gap detection that
// holds a message and catches up with GetMessages after the last shown id, paging on has_more;
// SyncRequest on every connect and every client_sync_interval; delivery receipts after showing,
// read receipts on MarkRead; receipt watermarks that never go back; typing with a TTL; presence
// read on connect and polled; joins and leaves kept until answered; per-member receipts
// ("Message info") read on demand with GetReceipts, page by page. Names follow client.cc so
// the two can be read side by side.

import { NONE, cmp, lt, maxId, convKey, group as groupConv, peerOf, utf8Bytes } from './wire.js';
import { ReceiptReads } from './receipts.js';

/** @typedef {import('./wire.js').Id} Id */
/** @typedef {import('./wire.js').Conv} Conv */
/** @typedef {import('./wire.js').ChatMessage} ChatMessage */
/** @typedef {import('./wire.js').SendAck} SendAck */
/** @typedef {import('./wire.js').ReceiptUpdate} ReceiptUpdate */
/** @typedef {import('./wire.js').MemberReceipts} MemberReceipts */
/** @typedef {import('./wire.js').Frame} Frame */

/** core/config.h's client timings and limits (chatd's defaults). */
export const kDefaultConfig = {
  client_retry_initial_us: 500_000,
  client_retry_max_us: 8_000_000,
  client_sync_interval_us: 30_000_000,
  client_request_timeout_us: 5_000_000,
  group_poll_interval_us: 5_000_000,
  presence_poll_interval_us: 60_000_000,
  typing_ttl_us: 10_000_000,
  hybrid_mode_check_us: 0,  // off: the server announces a switch to pull (GroupModeUpdate)
  body_bytes_max: 64 * 1024,
  client_outbox_max: 1024,
  client_held_max: 4096,
  // GetMessages limit per page (the server clamps at get_messages_limit_max = 500).
  page_limit: 100,
  lookup_users_max: 4096,
  // GetReceipts limit per page (the server clamps at receipts_page_max = 256).
  receipts_page_max: 256,
};
/** @typedef {typeof kDefaultConfig} ClientConfig */

/**
 * @typedef {{kind: 'open'} | {kind: 'close'} | {kind: 'send', frame: Frame} |
 *           {kind: 'timer', id: string, at: number}} Effect
 */

/**
 * What the user sees. Every call is synchronous from inside a client call.
 * @typedef {{
 *   onSent?: (now: number, id: Id, conv: Conv, body: string) => void,
 *   onSendAnswered?: (now: number, ack: SendAck) => void,
 *   onAcked?: (now: number, ack: SendAck) => void,
 *   onSendFailed?: (now: number, ack: SendAck) => void,
 *   onDisplayed?: (now: number, m: ChatMessage, outOfOrder: boolean, duplicate: boolean) => void,
 *   onReceiptShown?: (now: number, r: ReceiptUpdate) => void,
 *   onTypingShown?: (now: number, t: import('./wire.js').TypingUpdate) => void,
 *   onPresenceShown?: (now: number, s: import('./wire.js').PresenceStatus, pushed: boolean) => void,
 *   onHistoryFetched?: (now: number, conv: Conv, n: number) => void,
 *   onMemberReceipts?: (now: number, conv: Conv, code: string, members: MemberReceipts[]) => void,
 *   onError?: (now: number, frame: Frame) => void,
 *   onSessionClosed?: (now: number, code: string, reason: string) => void,
 * }} Observer
 */

/**
 * @typedef {{conv: Conv, body: string, created_us: number, attempts: number,
 *            next_retry_us: number}} OutboxEntry
 */

/** One conversation as this device holds it (client.h's Conversation). */
export class Conversation {
  /** @param {Conv} conv */
  constructor(conv) {
    this.conv = conv;
    /** Every message id received (the de-duplication set). @type {Set<Id>} */
    this.log = new Set();
    /** The newest id shown; shown only in chain order. */
    this.last_shown = NONE;
    /** Out-of-order arrivals waiting for a catch-up, by id. @type {Map<Id, ChatMessage>} */
    this.held = new Map();
    /** Request id of the catch-up in flight (0 if none). */
    this.catchup_request = 0;
    /** The first request id issued after the newest held message arrived. */
    this.held_covered_from = 0;
    this.delivered_sent = NONE;
    this.read_sent = NONE;
    this.group_mode = 'none';
    /** "kind/reader" -> watermark shown. @type {Map<string, Id>} */
    this.receipts = new Map();
    /** user -> shown until (us). @type {Map<Id, number>} */
    this.typing_until = new Map();
    /** Shown messages in display order. @type {ChatMessage[]} */
    this.view = [];
  }
}

/** @param {string} code */
function isPermanentFailure(code) {
  return code === 'INVALID_ARGUMENT' || code === 'PERMISSION_DENIED' || code === 'NOT_FOUND' ||
    code === 'UNAUTHENTICATED';
}

export class ChatClient {
  /**
   * @param {{user: Id, config?: Partial<ClientConfig>, observer?: Observer,
   *          clientMsgIdFirst: Id, random?: () => number}} options
   *   clientMsgIdFirst: the first client message id (ids of a device that lost its counter
   *   must not repeat: the page starts at max(saved counter, now in us), like chatcli).
   *   random: uniform in [0, 1) for the retry jitter (Math.random by default).
   */
  constructor(options) {
    this.user = options.user;
    /** @type {ClientConfig} */
    this.config = { ...kDefaultConfig, ...(options.config ?? {}) };
    /** @type {Observer} */
    this.observer = options.observer ?? {};
    this.random = options.random ?? Math.random;
    this.wants_online = false;
    this.connecting = false;
    this.connected = false;
    this.connection_epoch = 0;
    this.reconnect_attempts = 0;
    this.client_msg_id_next = BigInt(options.clientMsgIdFirst);
    this.request_id_next = 1;
    /** @type {Map<Id, OutboxEntry>} ordered by insertion = by id */
    this.outbox = new Map();
    /** @type {Map<string, Conversation>} */
    this.convs = new Map();
    /** @type {Set<Id>} */
    this.groups = new Set();
    /** Joins (true) and leaves (false) not yet answered. @type {Map<Id, boolean>} */
    this.membership_intent = new Map();
    /** @type {Map<number, {kind: string, conv: Conv|null}>} */
    this.requests = new Map();
    /** @type {Set<string>} */
    this.receipt_dirty = new Set();
    /** @type {Map<Id, import('./wire.js').PresenceStatus>} */
    this.presence = new Map();
    /** Peers of direct conversations that appeared since the last presence read. @type {Set<Id>} */
    this.presence_wanted = new Set();
    /** Per-member receipts reads in flight and their answers (receipts.js). */
    this.receipt_reads = new ReceiptReads(this);
  }

  // ---- User actions ----------------------------------------------------------------------

  /** Go online. @param {number} now @param {Effect[]} out */
  connect(now, out) {
    this.wants_online = true;
    this.reconnect_attempts = 0;
    if (this.connected || this.connecting) return;
    this.connecting = true;
    out.push({ kind: 'open' });
  }

  /** Go offline; no automatic reconnect until connect. @param {number} now @param {Effect[]} out */
  disconnect(now, out) {
    this.wants_online = false;
    if (!this.connected) return;
    out.push({ kind: 'close' });
    this.dropSession();
  }

  /**
   * Queues a message. Returns its client message id, or throws an Error naming the limit
   * (client_outbox_max, body_bytes_max) or the bad conversation.
   * @param {number} now @param {Conv} conv @param {string} body @param {Effect[]} out
   * @returns {Id}
   */
  send(now, conv, body, out) {
    if (conv.type === 'direct' && conv.low !== this.user && conv.high !== this.user) {
      throw new Error(`cannot send to conversation ${convKey(conv)}`);
    }
    const bytes = utf8Bytes(body);
    if (bytes > this.config.body_bytes_max) {
      throw new Error(`body of ${bytes} bytes is over body_bytes_max=${this.config.body_bytes_max}`);
    }
    if (this.outbox.size >= this.config.client_outbox_max) {
      throw new Error(`outbox holds client_outbox_max=${this.config.client_outbox_max} messages`);
    }
    const id = String(this.client_msg_id_next++);
    /** @type {OutboxEntry} */
    const e = { conv, body, created_us: now, attempts: 0, next_retry_us: 0 };
    this.outbox.set(id, e);
    this.conv(conv);
    this.observer.onSent?.(now, id, conv, body);
    if (this.connected && !this.waitsForJoin(e)) this.transmit(now, id, e, out);
    return id;
  }

  /** Everything shown in conv is read. @param {number} now @param {Conv} conv @param {Effect[]} out */
  markRead(now, conv, out) {
    const c = this.convs.get(convKey(conv));
    if (c === undefined || !this.connected) return;
    if (cmp(c.last_shown, c.read_sent) <= 0) return;
    c.read_sent = c.last_shown;
    out.push({ kind: 'send', frame: { type: 'Receipt', conv, kind: 'read', up_to: c.read_sent } });
  }

  /** @param {number} now @param {Conv} conv @param {boolean} active @param {Effect[]} out */
  setTyping(now, conv, active, out) {
    if (!this.connected) return;
    out.push({ kind: 'send', frame: { type: 'Typing', conv, active } });
  }

  /** @param {number} now @param {Id} group @param {Effect[]} out */
  joinGroup(now, group, out) {
    this.membership_intent.set(group, true);
    if (this.connected) this.sendMembership(now, group, true, out);
  }

  /** @param {number} now @param {Id} group @param {Effect[]} out */
  leaveGroup(now, group, out) {
    this.membership_intent.set(group, false);
    if (this.connected) this.sendMembership(now, group, false, out);
  }

  /** @param {number} now @param {Id} group @param {boolean} join @param {Effect[]} out */
  sendMembership(now, group, join, out) {
    const req = this.newRequest(now, 'group', groupConv(group), out);
    out.push({ kind: 'send', frame: { type: join ? 'JoinGroup' : 'LeaveGroup', request_id: String(req), group } });
  }

  /** Ask for a full catch-up now. @param {number} now @param {Effect[]} out */
  sync(now, out) {
    if (!this.connected) return;
    const req = this.newRequest(now, 'sync', null, out);
    out.push({ kind: 'send', frame: { type: 'SyncRequest', request_id: String(req) } });
  }

  /**
   * Reads the per-member receipt watermarks of conv ("Message info") page by page; each member's
   * watermark is shown like a pushed ReceiptUpdate with reader = the member (never going back),
   * and onMemberReceipts reports the members when the last page is in. Returns the request id,
   * or 0 when offline. As ClientSession::GetReceipts (receipts.js).
   * @param {number} now @param {Conv} conv @param {Effect[]} out
   */
  getReceipts(now, conv, out) {
    return this.receipt_reads.ask(now, conv, out);
  }

  /** Fetch what is newer than what conv shows (a conversation opened by the user). */
  /** @param {number} now @param {Conv} conv @param {Effect[]} out */
  catchUp(now, conv, out) {
    this.startCatchUp(now, conv, out);
    this.readNewPresence(now, out);
  }

  // ---- Connection lifecycle --------------------------------------------------------------

  /** @param {number} now @param {Effect[]} out */
  onConnected(now, out) {
    this.connecting = false;
    if (!this.wants_online) {
      out.push({ kind: 'close' });
      return;
    }
    this.connected = true;
    this.connection_epoch++;
    this.reconnect_attempts = 0;
    const config = this.config;
    this.transmitOutbox(now, out);
    // Receipts sent while the last session was dying may be lost; watermarks are idempotent.
    for (const c of this.convs.values()) {
      if (c.delivered_sent !== NONE) {
        out.push({ kind: 'send', frame: { type: 'Receipt', conv: c.conv, kind: 'delivered', up_to: c.delivered_sent } });
      }
    }
    for (const [group, join] of this.membership_intent) this.sendMembership(now, group, join, out);
    this.sync(now, out);
    const epoch = this.connection_epoch;
    if (config.client_sync_interval_us > 0) {
      out.push({ kind: 'timer', id: `sync:${epoch}`, at: now + config.client_sync_interval_us });
    }
    // The page does not know the server's group_delivery: it polls the groups it was told are
    // pull (none in a push deployment) and re-reads push groups now and then (hybrid's check).
    if (config.group_poll_interval_us > 0) {
      out.push({ kind: 'timer', id: `grouppoll:${epoch}`, at: now + config.group_poll_interval_us });
    }
    if (config.hybrid_mode_check_us > 0) {
      out.push({ kind: 'timer', id: `modecheck:${epoch}`, at: now + config.hybrid_mode_check_us });
    }
    if (config.presence_poll_interval_us > 0) {
      this.pollPresence(now, out);
      out.push({ kind: 'timer', id: `presencepoll:${epoch}`, at: now + config.presence_poll_interval_us });
    }
  }

  /** @param {number} now @param {Effect[]} out */
  onConnectFailed(now, out) {
    this.connecting = false;
    this.scheduleReconnect(now, out);
  }

  /** @param {number} now @param {Effect[]} out */
  onDisconnected(now, out) {
    if (!this.connected) return;
    this.dropSession();
    this.scheduleReconnect(now, out);
  }

  dropSession() {
    this.connected = false;
    this.requests.clear();
    for (const c of this.convs.values()) {
      c.catchup_request = 0;
      c.typing_until.clear();
    }
    this.receipt_reads.drop();  // a receipts read dies with its session
  }

  /** @param {number} now @param {Effect[]} out */
  scheduleReconnect(now, out) {
    if (!this.wants_online) return;
    this.reconnect_attempts++;
    out.push({ kind: 'timer', id: 'reconnect', at: now + this.backoff(this.reconnect_attempts) });
  }

  // ---- Server messages -------------------------------------------------------------------

  /** @param {number} now @param {Frame} msg @param {Effect[]} out */
  onServerMessage(now, msg, out) {
    if (!this.connected) return;
    switch (msg.type) {
      case 'SendAck': this.onSendAck(now, /** @type {any} */ (msg), out); break;
      case 'Deliver': this.ingest(now, msg.message, out); break;
      case 'MessagesResult': this.onMessagesResult(now, msg, out); break;
      case 'SyncResult': this.onSyncResult(now, msg, out); break;
      case 'GroupResult': this.onGroupResult(now, msg, out); break;
      case 'ReceiptUpdate': this.onReceiptUpdate(now, /** @type {any} */ (msg)); break;
      case 'ReceiptsResult': this.receipt_reads.onResult(now, msg, out); break;
      case 'TypingUpdate': this.onTypingUpdate(now, /** @type {any} */ (msg)); break;
      case 'GroupModeUpdate': this.onGroupModeUpdate(now, /** @type {any} */ (msg), out); break;
      case 'PresenceUpdate': this.onPresenceUpdate(now, msg.status, true); break;
      case 'PresenceResult':
        this.requests.delete(Number(msg.request_id));
        for (const s of msg.statuses ?? []) this.onPresenceUpdate(now, s, false);
        break;
      case 'ErrorReply': this.observer.onError?.(now, msg); break;
      case 'SessionClosed': this.observer.onSessionClosed?.(now, msg.code, msg.reason ?? ''); break;
      default: break;  // a type this page does not know: ignored, as the core ignores
    }
    this.sendReceipts(out);
    this.readNewPresence(now, out);
  }

  /** @param {number} now @param {SendAck} ack @param {Effect[]} out */
  onSendAck(now, ack, out) {
    this.observer.onSendAnswered?.(now, ack);
    const e = this.outbox.get(ack.client_msg_id);
    if (ack.code === 'OK') {
      /** @type {ChatMessage} */
      const m = {
        conv: ack.conv, message_id: ack.message_id, prev_msg_id: ack.prev_msg_id,
        sender: this.user, client_msg_id: ack.client_msg_id, sent_at_us: '0', body: '',
      };
      if (e !== undefined) {
        m.sent_at_us = String(e.created_us);
        m.body = e.body;
        this.outbox.delete(ack.client_msg_id);
        this.observer.onAcked?.(now, ack);
      }
      // A direct-path ack tells where our own message sits: show it like any delivery. (A late
      // duplicate ack of a message already shown is suppressed by the log.)
      if (!ack.queued && ack.message_id !== NONE) this.ingest(now, m, out);
      return;
    }
    if (e === undefined) return;
    if (isPermanentFailure(ack.code)) {
      this.outbox.delete(ack.client_msg_id);
      this.observer.onSendFailed?.(now, ack);
    }
    // UNAVAILABLE / RESOURCE_EXHAUSTED / FAILED_PRECONDITION: the retry timer resends it.
  }

  /** @param {Conversation} c @param {string} mode */
  setGroupMode(c, mode) {
    c.group_mode = mode;
  }

  // ---- Ordering, de-duplication, gap detection -------------------------------------------

  /** A message arrived live (Deliver or a direct ack). @param {number} now @param {ChatMessage} m @param {Effect[]} out */
  ingest(now, m, out) {
    const c = this.conv(m.conv);
    if (c.log.has(m.message_id) || c.held.has(m.message_id)) return;  // a duplicate
    if (m.prev_msg_id === c.last_shown || lt(m.message_id, c.last_shown)) {
      // In chain order, or an old message the chain skipped (only timestamp ids under clock
      // faults do that): show it now.
      c.log.add(m.message_id);
      this.show(now, c, m);
      this.drainHeld(now, c);
      return;
    }
    // prev_msg_id is not what we show last: something is missing. Hold this one, catch up.
    if (c.held.size >= this.config.client_held_max) {
      // Drop the newest held message: the catch-up fetches it again from the store.
      const newest = [...c.held.keys()].reduce(maxId);
      c.held.delete(newest);
    }
    c.held.set(m.message_id, m);
    c.held_covered_from = this.request_id_next;
    this.startCatchUp(now, m.conv, out);
  }

  /** @param {number} now @param {Conversation} c @param {ChatMessage} m */
  show(now, c, m) {
    const outOfOrder = lt(m.message_id, c.last_shown);
    c.last_shown = maxId(c.last_shown, m.message_id);
    c.view.push(m);
    this.observer.onDisplayed?.(now, m, outOfOrder, false);
    if (m.sender !== this.user) this.receipt_dirty.add(convKey(c.conv));
  }

  /** Shows held messages that now continue the chain. @param {number} now @param {Conversation} c */
  drainHeld(now, c) {
    while (c.held.size > 0) {
      const id = [...c.held.keys()].reduce((a, b) => (lt(a, b) ? a : b));
      const m = /** @type {ChatMessage} */ (c.held.get(id));
      if (cmp(id, c.last_shown) <= 0 && c.log.has(id)) {
        c.held.delete(id);  // a catch-up showed it already
        continue;
      }
      if (m.prev_msg_id !== c.last_shown) return;
      c.held.delete(id);
      c.log.add(id);
      this.show(now, c, m);
    }
  }

  /** @param {number} now @param {Conv} conv @param {Effect[]} out */
  startCatchUp(now, conv, out) {
    const c = this.conv(conv);
    if (!this.connected || c.catchup_request !== 0) return;
    c.catchup_request = this.newRequest(now, 'catchup', conv, out);
    out.push({ kind: 'send', frame: {
      type: 'GetMessages', request_id: String(c.catchup_request), conv, after_id: c.last_shown,
      limit: this.config.page_limit,
    } });
  }

  /** @param {number} now @param {Frame} r @param {Effect[]} out */
  onMessagesResult(now, r, out) {
    const request = Number(r.request_id);
    if (!this.requests.delete(request)) return;  // timed out or from a previous session
    const c = this.conv(r.conv);
    if (c.catchup_request === request) c.catchup_request = 0;
    if (r.code !== 'OK') return;  // e.g. left the group; the next sync decides
    if (r.conv.type === 'group') this.setGroupMode(c, r.group_mode);
    /** @type {ChatMessage[]} */
    const messages = r.messages ?? [];
    this.observer.onHistoryFetched?.(now, r.conv, messages.length);
    for (const m of messages) {
      // History is authoritative and ascending: show whatever is new, in its order.
      if (c.log.has(m.message_id)) continue;
      c.held.delete(m.message_id);
      c.log.add(m.message_id);
      this.show(now, c, m);
    }
    this.drainHeld(now, c);
    if (r.has_more || (c.held.size > 0 && request < c.held_covered_from)) {
      // More pages, or messages held while this read was on its way: read again from here.
      this.startCatchUp(now, r.conv, out);
      return;
    }
    // A read issued after every held message arrived found nothing linking them to what we
    // show: the sequencer's order has a hole (timestamp ids under clock faults). Show them in
    // id order rather than lose them.
    const rest = [...c.held.values()].sort((a, b) => cmp(a.message_id, b.message_id));
    c.held.clear();
    for (const m of rest) {
      if (c.log.has(m.message_id)) continue;
      c.log.add(m.message_id);
      this.show(now, c, m);
    }
  }

  /** @param {number} now @param {Frame} r @param {Effect[]} out */
  onSyncResult(now, r, out) {
    if (!this.requests.delete(Number(r.request_id))) return;
    if (r.code !== 'OK') return;
    /** @type {Set<Id>} */
    const groups = new Set();
    for (const h of r.heads ?? []) {
      const c = this.conv(h.conv);
      if (h.conv.type === 'group') {
        groups.add(h.conv.low);
        this.setGroupMode(c, h.group_mode);
      }
      if (lt(c.last_shown, h.head_id)) this.startCatchUp(now, h.conv, out);
    }
    this.groups = groups;
  }

  /** @param {number} now @param {Frame} r @param {Effect[]} out */
  onGroupResult(now, r, out) {
    const request = Number(r.request_id);
    if (!this.requests.has(request)) return;
    if (r.code !== 'OK' && !isPermanentFailure(r.code)) return;  // its timeout re-sends it
    this.requests.delete(request);
    const intent = this.membership_intent.get(r.group);
    // The answer settles the intent if it answers the latest one.
    const answersIntent = intent !== undefined && (r.code !== 'OK' || r.joined === intent);
    if (answersIntent) this.membership_intent.delete(r.group);
    const conv = groupConv(r.group);
    if (answersIntent && this.connected) {
      // Messages written while the join was pending go now (a refused join refuses them too).
      for (const [id, e] of this.outbox) {
        if (e.conv.type === 'group' && e.conv.low === r.group && !this.waitsForJoin(e)) {
          this.transmit(now, id, e, out);
        }
      }
    }
    if (r.code !== 'OK') return;
    if (r.joined) {
      this.groups.add(r.group);
      this.setGroupMode(this.conv(conv), r.group_mode);
      this.startCatchUp(now, conv, out);  // show the group's history
    } else {
      this.groups.delete(r.group);
    }
  }

  /** @param {number} now @param {ReceiptUpdate} r */
  onReceiptUpdate(now, r) {
    const c = this.conv(r.conv);
    const key = `${r.kind}/${r.reader}`;
    const shown = c.receipts.get(key) ?? NONE;
    if (cmp(r.up_to, shown) <= 0) return;  // watermarks only move forward
    c.receipts.set(key, r.up_to);
    this.observer.onReceiptShown?.(now, r);
  }

  /** @param {number} now @param {import('./wire.js').TypingUpdate} t */
  onTypingUpdate(now, t) {
    const c = this.conv(t.conv);
    if (t.active) c.typing_until.set(t.user, now + this.config.typing_ttl_us);
    else c.typing_until.delete(t.user);
    this.observer.onTypingShown?.(now, t);
  }

  /**
   * A hybrid group switched to pull (ClientSession::OnGroupModeUpdate): the message that switched
   * it was not pushed, so read it now; the poll timer reads the group from then on.
   * @param {number} now @param {import('./wire.js').GroupModeUpdate} u @param {Effect[]} out
   */
  onGroupModeUpdate(now, u, out) {
    if (u.conv.type !== 'group' || !this.groups.has(u.conv.low)) return;  // left since
    const c = this.conv(u.conv);
    this.setGroupMode(c, u.mode);
    if (u.mode === 'pull' && lt(c.last_shown, u.head_id)) this.startCatchUp(now, u.conv, out);
  }

  /** @param {number} now @param {import('./wire.js').PresenceStatus} s @param {boolean} pushed */
  onPresenceUpdate(now, s, pushed) {
    this.presence.set(s.user, s);
    this.observer.onPresenceShown?.(now, s, pushed);
  }

  // ---- Outbox and periodic work ----------------------------------------------------------

  /** @param {number} now @param {Effect[]} out */
  transmitOutbox(now, out) {
    for (const [id, e] of this.outbox) {
      if (!this.waitsForJoin(e)) this.transmit(now, id, e, out);
    }
  }

  /** A group message written while the user's join is pending waits for the join's answer.
   * @param {OutboxEntry} e */
  waitsForJoin(e) {
    return e.conv.type === 'group' && this.membership_intent.get(e.conv.low) === true;
  }

  /** @param {number} now @param {Id} id @param {OutboxEntry} e @param {Effect[]} out */
  transmit(now, id, e, out) {
    // 0 on the first transmission, then 1, 2, ...: a resend may repeat a stored message, and
    // the store looks it up however long ago that was (the count survives a reload: persist.js).
    const attempt = e.attempts;
    e.attempts++;
    e.next_retry_us = now + this.backoff(e.attempts);
    out.push({ kind: 'send', frame: {
      type: 'SendMessage', client_msg_id: id, conv: e.conv, sent_at_us: String(e.created_us),
      body: e.body, attempt,
    } });
    out.push({ kind: 'timer', id: `retry:${id}`, at: e.next_retry_us });
  }

  /** Exponential backoff with equal jitter (half fixed, half random). @param {number} attempts */
  backoff(attempts) {
    let base = this.config.client_retry_initial_us;
    for (let i = 1; i < attempts && base < this.config.client_retry_max_us; i++) base *= 2;
    base = Math.min(base, this.config.client_retry_max_us);
    const half = Math.max(Math.floor(base / 2), 1);
    return half + Math.floor(this.random() * (half + 1));
  }

  /** @param {Effect[]} out */
  sendReceipts(out) {
    if (this.receipt_dirty.size === 0) return;
    if (this.connected) {
      for (const key of this.receipt_dirty) {
        const c = /** @type {Conversation} */ (this.convs.get(key));
        if (cmp(c.last_shown, c.delivered_sent) <= 0) continue;
        c.delivered_sent = c.last_shown;
        out.push({ kind: 'send', frame: { type: 'Receipt', conv: c.conv, kind: 'delivered', up_to: c.delivered_sent } });
      }
    }
    this.receipt_dirty.clear();
  }

  /** @param {number} now @param {Effect[]} out */
  pollPresence(now, out) {
    this.presence_wanted.clear();
    /** @type {Id[]} */
    const contacts = [];
    for (const c of this.convs.values()) {
      if (c.conv.type === 'direct' && c.conv.low !== c.conv.high) contacts.push(peerOf(c.conv, this.user));
    }
    const chunk = this.config.lookup_users_max;
    for (let i = 0; i < contacts.length; i += chunk) {
      const req = this.newRequest(now, 'presence', null, out);
      out.push({ kind: 'send', frame: { type: 'PresenceQuery', request_id: String(req), users: contacts.slice(i, i + chunk) } });
    }
  }

  /** A contact that appeared since the last read (a new chat, a first message) is read now,
   * not at the next poll: the page shows presence as soon as it shows the chat. The same
   * PresenceQuery as the connect-time read. @param {number} now @param {Effect[]} out */
  readNewPresence(now, out) {
    if (!this.connected || this.presence_wanted.size === 0 || this.config.presence_poll_interval_us === 0) return;
    const users = [...this.presence_wanted].slice(0, this.config.lookup_users_max);
    for (const u of users) this.presence_wanted.delete(u);
    const req = this.newRequest(now, 'presence', null, out);
    out.push({ kind: 'send', frame: { type: 'PresenceQuery', request_id: String(req), users } });
  }

  /** @param {number} now @param {Effect[]} out @param {(mode: string) => boolean} which */
  readGroups(now, out, which) {
    for (const g of this.groups) {
      const conv = groupConv(g);
      if (which(this.conv(conv).group_mode)) this.startCatchUp(now, conv, out);
    }
  }

  /** @param {number} now @param {string} kind @param {Conv|null} conv @param {Effect[]} out */
  newRequest(now, kind, conv, out) {
    const id = this.request_id_next++;
    this.requests.set(id, { kind, conv });
    out.push({ kind: 'timer', id: `request:${id}`, at: now + this.config.client_request_timeout_us });
    return id;
  }

  /** @param {number} now @param {string} timer @param {Effect[]} out */
  onTimer(now, timer, out) {
    const [kind, payload] = timer.split(':');
    const config = this.config;
    const current = this.connected && Number(payload) === this.connection_epoch;
    switch (kind) {
      case 'retry': {
        const e = this.outbox.get(payload);
        if (e !== undefined && this.connected && now >= e.next_retry_us && !this.waitsForJoin(e)) {
          this.transmit(now, payload, e, out);
        }
        break;
      }
      case 'sync':
        if (!current) break;
        this.sync(now, out);
        out.push({ kind: 'timer', id: timer, at: now + config.client_sync_interval_us });
        break;
      case 'grouppoll':
        if (!current) break;
        this.readGroups(now, out, (mode) => mode === 'pull');
        out.push({ kind: 'timer', id: timer, at: now + config.group_poll_interval_us });
        break;
      case 'modecheck':
        if (!current) break;
        // A read answers with the group's mode: a group that went pull is then polled.
        this.readGroups(now, out, (mode) => mode !== 'pull');
        out.push({ kind: 'timer', id: timer, at: now + config.hybrid_mode_check_us });
        break;
      case 'presencepoll':
        if (!current) break;
        this.pollPresence(now, out);
        out.push({ kind: 'timer', id: timer, at: now + config.presence_poll_interval_us });
        break;
      case 'reconnect':
        if (this.wants_online && !this.connected && !this.connecting) {
          this.connecting = true;
          out.push({ kind: 'open' });
        }
        break;
      case 'request': {
        const id = Number(payload);
        const r = this.requests.get(id);
        if (r === undefined) break;
        this.requests.delete(id);
        if (r.kind === 'catchup' && r.conv !== null) {
          const c = this.conv(r.conv);
          if (c.catchup_request === id) c.catchup_request = 0;
          this.startCatchUp(now, r.conv, out);
        } else if (r.kind === 'sync') {
          this.sync(now, out);
        } else if (r.kind === 'receipts' && this.connected && r.conv !== null) {
          this.receipt_reads.onTimeout(now, id, r.conv, out);
        } else if (r.kind === 'group' && this.connected && r.conv !== null) {
          const intent = this.membership_intent.get(r.conv.low);
          if (intent !== undefined) this.sendMembership(now, r.conv.low, intent, out);
        }
        break;
      }
      default:
        break;
    }
    this.sendReceipts(out);
    this.readNewPresence(now, out);
  }

  // ---- Queries ---------------------------------------------------------------------------

  /** The conversation, created on first use. @param {Conv} conv */
  conv(conv) {
    const key = convKey(conv);
    let c = this.convs.get(key);
    if (c === undefined) {
      c = new Conversation(conv);
      this.convs.set(key, c);
      if (conv.type === 'direct' && conv.low !== conv.high) this.presence_wanted.add(peerOf(conv, this.user));
    }
    return c;
  }

  /** @param {Conv} conv @param {'delivered'|'read'} kind @param {Id} reader */
  receiptShown(conv, kind, reader) {
    return this.convs.get(convKey(conv))?.receipts.get(`${kind}/${reader}`) ?? NONE;
  }

  /** The members of conv (the user left out) as of the last completed getReceipts, with the
   * watermarks shown now. @param {Conv} conv */
  memberReceiptsShown(conv) {
    return this.receipt_reads.shown(conv);
  }

  /** Who is typing in conv now. @param {Conv} conv @param {number} now @returns {Id[]} */
  typing(conv, now) {
    const c = this.convs.get(convKey(conv));
    if (c === undefined) return [];
    return [...c.typing_until].filter(([, until]) => now < until).map(([user]) => user);
  }
}
