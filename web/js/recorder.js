// @ts-check
// Records what this user saw as a history (docs/history-format.md): sends, the server's answers,
// acknowledgements, every message displayed with its ids, receipts shown, and informational
// events (connects, typing, presence). The browser test exports it (window.chatlab.history())
// and history_check replays it into the core's oracle, the one the simulator runs.
//
// Kept in localStorage beside the client state, so a reload continues the same history (a
// message shown before and again after a reload is a duplicate the oracle must see). Limit:
// kHistoryEventsMax events; past it the oldest are dropped and the history says "truncated".

/** @typedef {import('./wire.js').Id} Id */

export const kHistoryEventsMax = 20000;

export class Recorder {
  /** @param {Id} user @param {string} name */
  constructor(user, name) {
    this.user = user;
    this.name = name;
    this.key = `chatlab.v1.history.${user}`;
    /** @type {Record<string, any>[]} */
    this.events = [];
    this.truncated = false;
    const saved = localStorage.getItem(this.key);
    if (saved !== null) {
      try {
        const h = JSON.parse(saved);
        this.events = h.events;
        this.truncated = h.truncated;
      } catch {
        this.events = [];
      }
    }
  }

  /** @param {number} now @param {string} kind @param {Record<string, any>} fields */
  add(now, kind, fields = {}) {
    this.events.push({ t_us: String(now), kind, ...fields });
    if (this.events.length > kHistoryEventsMax) {
      this.events.splice(0, this.events.length - kHistoryEventsMax);
      this.truncated = true;
    }
  }

  save() {
    localStorage.setItem(this.key, JSON.stringify({ events: this.events, truncated: this.truncated }));
  }

  /** The observer calls of client.js, as history events. @returns {import('./client.js').Observer} */
  observer() {
    return {
      onSent: (now, id, conv) => this.add(now, 'sent', { client_msg_id: id, conv }),
      onSendAnswered: (now, ack) => this.add(now, 'answered', { ack }),
      onAcked: (now, ack) => this.add(now, 'acked', { ack }),
      onSendFailed: (now, ack) => this.add(now, 'send_failed', { ack }),
      onDisplayed: (now, m, outOfOrder, duplicate) =>
        this.add(now, 'displayed', { message: m, out_of_order: outOfOrder, duplicate }),
      onReceiptShown: (now, r) => this.add(now, 'receipt_shown', { receipt: r }),
      onTypingShown: (now, t) => this.add(now, 'typing_shown', { typing: t }),
      onPresenceShown: (now, s, pushed) => this.add(now, 'presence_shown', { status: s, pushed }),
      onHistoryFetched: (now, conv, n) => this.add(now, 'history_fetched', { conv, count: n }),
      onMemberReceipts: (now, conv, code, members) => this.add(now, 'member_receipts', { conv, code, members }),
    };
  }

  /** This user's part of a history file. */
  export() {
    return { user_id: this.user, name: this.name, truncated: this.truncated, events: this.events };
  }
}
