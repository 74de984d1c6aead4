// @ts-check
// The per-member receipts reads of the page's client ("Message info"): core/client.cc's
// ClientSession::GetReceipts and OnReceiptsResult, ported like the rest of client.js and kept
// beside it so that client.js stays one screenful of concerns. Sans-I/O: effects go out through
// the client's array, nothing here touches the DOM, the network or a clock.
//
// A group's members' own watermarks are not pushed (the store pushes only the aggregate, "read by
// all": pushing each member's receipt to every member costs O(n^2) per message). The page reads
// them on demand: GetReceipts, page by page (after_user = the last member of the page while
// has_more), and shows each member's watermark like a pushed ReceiptUpdate with reader = the
// member, through the client's onReceiptUpdate, so a shown watermark never goes back. One read
// per conversation at a time; asked again meanwhile, it reads once more after it completes. A
// page that times out is asked again; a read dies with its session.

import { NONE, cmp, convKey, lt } from './wire.js';

/** @typedef {import('./wire.js').Id} Id */
/** @typedef {import('./wire.js').Conv} Conv */
/** @typedef {import('./wire.js').Frame} Frame */
/** @typedef {import('./wire.js').MemberReceipts} MemberReceipts */
/** @typedef {import('./client.js').Effect} Effect */

/**
 * One conversation's reads: the page in flight (0 if none) and the after_user it asked with, the
 * members it gathered so far (the user left out), whether to read again once it completes, and
 * the members of the last completed read.
 * @typedef {{request: number, after: Id, gathered: Id[], again: boolean, members: Id[]}} Read
 */

export class ReceiptReads {
  /** @param {import('./client.js').ChatClient} client */
  constructor(client) {
    this.client = client;
    /** By conversation key. @type {Map<string, Read>} */
    this.reads = new Map();
  }

  /** @param {Conv} conv @returns {Read} */
  read(conv) {
    const key = convKey(conv);
    let r = this.reads.get(key);
    if (r === undefined) {
      r = { request: 0, after: NONE, gathered: [], again: false, members: [] };
      this.reads.set(key, r);
    }
    return r;
  }

  /** @param {number} now @param {Conv} conv @param {Effect[]} out @returns {number} */
  ask(now, conv, out) {
    if (!this.client.connected) return 0;
    this.client.conv(conv);
    const r = this.read(conv);
    if (r.request !== 0) {
      r.again = true;  // the marks may have moved since that read was asked
      return r.request;
    }
    r.gathered = [];
    this.sendPage(now, conv, NONE, out);
    return r.request;
  }

  /** @param {number} now @param {Conv} conv @param {Id} after @param {Effect[]} out */
  sendPage(now, conv, after, out) {
    const r = this.read(conv);
    r.request = this.client.newRequest(now, 'receipts', conv, out);
    r.after = after;
    out.push({ kind: 'send', frame: {
      type: 'GetReceipts', request_id: String(r.request), conv, after_user: after,
      limit: this.client.config.receipts_page_max,
    } });
  }

  /** A ReceiptsResult. @param {number} now @param {Frame} result @param {Effect[]} out */
  onResult(now, result, out) {
    const client = this.client;
    const request = Number(result.request_id);
    const asked = client.requests.get(request);
    if (asked === undefined || asked.conv === null) return;  // timed out or a previous session
    client.requests.delete(request);
    const conv = asked.conv;  // what we asked about, whatever the answer says
    const r = this.read(conv);
    if (r.request !== request) return;  // a page asked again after a timeout
    r.request = 0;
    if (result.code !== 'OK') {
      r.gathered = [];
      r.again = false;
      client.observer.onMemberReceipts?.(now, conv, result.code, []);
      return;
    }
    let last = r.after;
    for (const m of /** @type {MemberReceipts[]} */ (result.members ?? [])) {
      // Ascending above after_user, as asked: a broken answer can neither repeat a member nor
      // make the next page go back.
      if (cmp(m.user, last) <= 0) continue;
      last = m.user;
      if (m.user === client.user) continue;  // our own marks are what we sent
      client.onReceiptUpdate(now, { conv, kind: 'delivered', reader: m.user, up_to: m.delivered_up_to ?? NONE });
      client.onReceiptUpdate(now, { conv, kind: 'read', reader: m.user, up_to: m.read_up_to ?? NONE });
      r.gathered.push(m.user);
    }
    if (result.has_more && lt(r.after, last)) {
      this.sendPage(now, conv, last, out);
      return;
    }
    r.members = r.gathered;
    r.gathered = [];
    client.observer.onMemberReceipts?.(now, conv, 'OK', this.shown(conv));
    if (r.again) {
      r.again = false;
      this.ask(now, conv, out);
    }
  }

  /** The request `request` timed out: ask its page again.
   * @param {number} now @param {number} request @param {Conv} conv @param {Effect[]} out */
  onTimeout(now, request, conv, out) {
    const r = this.read(conv);
    if (r.request === request) this.sendPage(now, conv, r.after, out);
  }

  /** The session is gone: every read in flight with it. */
  drop() {
    for (const r of this.reads.values()) {
      r.request = 0;
      r.gathered = [];
      r.again = false;
    }
  }

  /** The members of conv from the last completed read, with the watermarks shown now.
   * @param {Conv} conv @returns {MemberReceipts[]} */
  shown(conv) {
    const r = this.reads.get(convKey(conv));
    if (r === undefined) return [];
    return r.members.map((user) => ({
      user,
      delivered_up_to: this.client.receiptShown(conv, 'delivered', user),
      read_up_to: this.client.receiptShown(conv, 'read', user),
    }));
  }
}
