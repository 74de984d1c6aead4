// @ts-check
// The wire vocabulary of docs/protocol-client.md section 15, as the page uses it: ids are decimal
// strings (Snowflake ids exceed 2^53, the largest integer a JavaScript number holds), compared
// as BigInt; conversations are {type, low, high} objects with a string key for maps.

/** @typedef {string} Id  a uint64 as a decimal string; "0" means none */
/** @typedef {{type: 'direct'|'group', low: Id, high: Id}} Conv */
/**
 * @typedef {{conv: Conv, message_id: Id, prev_msg_id: Id, sender: Id, client_msg_id: Id,
 *            sent_at_us: string, body: string}} ChatMessage
 */
/**
 * @typedef {{client_msg_id: Id, conv: Conv, code: string, message_id: Id, prev_msg_id: Id,
 *            duplicate: boolean, queued: boolean}} SendAck
 */
/** @typedef {{conv: Conv, kind: 'delivered'|'read', reader: Id, up_to: Id}} ReceiptUpdate */
/** @typedef {{user: Id, delivered_up_to: Id, read_up_to: Id}} MemberReceipts */
/** @typedef {{conv: Conv, user: Id, active: boolean}} TypingUpdate */
/** @typedef {{conv: Conv, mode: string, head_id: Id}} GroupModeUpdate */
/** @typedef {{user: Id, online: boolean, last_seen_us: string}} PresenceStatus */
/** @typedef {{conv: Conv, head_id: Id, group_mode: string}} ConversationHead */
/** @typedef {Record<string, any> & {type: string}} Frame  one JSON frame, either way */

export const NONE = '0';

/** @param {Id} a @param {Id} b @returns {number} -1, 0 or 1 */
export function cmp(a, b) {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
/** @param {Id} a @param {Id} b */
export const lt = (a, b) => cmp(a, b) < 0;
/** @param {Id} a @param {Id} b */
export const maxId = (a, b) => (cmp(a, b) >= 0 ? a : b);

/** A direct conversation of two users (ordered pair, as ConversationId::Direct).
 * @param {Id} a @param {Id} b @returns {Conv} */
export function direct(a, b) {
  return lt(a, b) ? { type: 'direct', low: a, high: b } : { type: 'direct', low: b, high: a };
}
/** @param {Id} group @returns {Conv} */
export function group(group) {
  return { type: 'group', low: group, high: NONE };
}
/** The map key of a conversation, "d1-2" or "g5" (DebugString's form). @param {Conv} c */
export function convKey(c) {
  return c.type === 'group' ? `g${c.low}` : `d${c.low}-${c.high}`;
}
/** @param {string} key @returns {Conv} */
export function convFromKey(key) {
  if (key[0] === 'g') return group(key.slice(1));
  const [low, high] = key.slice(1).split('-');
  return { type: 'direct', low, high };
}
/** The other party of a direct conversation (the user themself for a self-chat).
 * @param {Conv} c @param {Id} me */
export function peerOf(c, me) {
  return c.low === me ? c.high : c.low;
}
/** Is the id a valid non-zero uint64 decimal? @param {string} s */
export function isId(s) {
  return /^[1-9][0-9]{0,19}$/.test(s) && BigInt(s) < 1n << 64n;
}
/** UTF-8 length of a body (body_bytes_max counts bytes). @param {string} s */
export function utf8Bytes(s) {
  return new TextEncoder().encode(s).length;
}
