// @ts-check
// The device's storage: what a phone keeps across app restarts, the page keeps in localStorage
// across reloads, per user: the outbox (pending messages are retried after a reload under the
// same client message ids), the client message id counter, every conversation's log, view,
// watermarks and receipts, and the unanswered joins and leaves. Not kept: the session, requests
// in flight and held out-of-order messages (a reconnect's sync and catch-up fetch them again).
//
// Saved synchronously after every input that changed the client (session.js), so a reload at
// any moment loses nothing that was sent, shown or acked. Limits: view_messages_max per
// conversation are kept for display (the log keeps every id: de-duplication needs them).

import { Conversation } from './client.js';
import { convKey } from './wire.js';

/** @typedef {import('./client.js').ChatClient} ChatClient */

const kVersion = 1;
export const kViewMessagesMax = 1000;

/** @param {string} user */
export function stateKey(user) {
  return `chatlab.v${kVersion}.state.${user}`;
}

/** The client's durable part as JSON. @param {ChatClient} client */
export function saveClient(client) {
  const convs = [];
  for (const c of client.convs.values()) {
    convs.push({
      conv: c.conv,
      log: [...c.log],
      last_shown: c.last_shown,
      delivered_sent: c.delivered_sent,
      read_sent: c.read_sent,
      group_mode: c.group_mode,
      receipts: [...c.receipts],
      view: c.view.slice(-kViewMessagesMax),
    });
  }
  const state = {
    version: kVersion,
    user: client.user,
    client_msg_id_next: String(client.client_msg_id_next),
    outbox: [...client.outbox],
    convs,
    groups: [...client.groups],
    membership_intent: [...client.membership_intent],
  };
  localStorage.setItem(stateKey(client.user), JSON.stringify(state));
}

/**
 * Restores what saveClient kept into a fresh client (not connected). The counter only moves
 * forward: a restored client never reuses a client message id. Returns false when nothing was
 * saved for this user, or it is of another version.
 * @param {ChatClient} client
 */
export function loadClient(client) {
  const text = localStorage.getItem(stateKey(client.user));
  if (text === null) return false;
  let state;
  try {
    state = JSON.parse(text);
  } catch {
    return false;
  }
  if (state.version !== kVersion || state.user !== client.user) return false;
  const next = BigInt(state.client_msg_id_next);
  if (next > client.client_msg_id_next) client.client_msg_id_next = next;
  client.outbox = new Map(state.outbox);
  // Whether a message went out just before the page was closed is not known: its next
  // transmission is marked as a resend, so the store looks it up (docs/protocol.md, attempt).
  for (const e of client.outbox.values()) e.attempts = Math.max(e.attempts, 1);
  for (const s of state.convs) {
    const c = new Conversation(s.conv);
    c.log = new Set(s.log);
    c.last_shown = s.last_shown;
    c.delivered_sent = s.delivered_sent;
    c.read_sent = s.read_sent;
    c.group_mode = s.group_mode;
    c.receipts = new Map(s.receipts);
    c.view = s.view;
    client.convs.set(convKey(c.conv), c);
  }
  client.groups = new Set(state.groups);
  client.membership_intent = new Map(state.membership_intent);
  return true;
}
