// @ts-check
// web/js/client.js alone, as tests/core/ tests the core's ClientSession: inputs in, effects out,
// no browser, no socket, no clock (node --test; run.sh runs it before the browser tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatClient } from '../js/client.js';

const alice = '1';
const conv = { type: /** @type {'direct'} */ ('direct'), low: '1', high: '2' };

/** A connected client whose observer records what the user sees. */
function connected() {
  /** @type {string[]} */
  const shown = [];
  const client = new ChatClient({
    user: alice, clientMsgIdFirst: '1000', random: () => 0.5,
    observer: { onDisplayed: (_now, m) => shown.push(m.message_id) },
  });
  /** @type {any[]} */
  let out = [];
  client.connect(0, out);
  assert.deepEqual(out, [{ kind: 'open' }]);
  client.onConnected(1, (out = []));
  return { client, shown, out };
}

/** @param {any[]} out @param {string} type */
const frames = (out, type) => out.filter((e) => e.kind === 'send' && e.frame.type === type).map((e) => e.frame);

/** @param {string} id @param {string} prev @param {string} [sender] */
function message(id, prev, sender = '2') {
  return { conv, message_id: id, prev_msg_id: prev, sender, client_msg_id: `c${id}`, sent_at_us: '1', body: `b${id}` };
}

test('connecting sends a sync', () => {
  const { out } = connected();
  assert.equal(frames(out, 'SyncRequest').length, 1);
});

test('a gap holds the message and catches up after the last shown id; each shows once, in order', () => {
  const { client, shown } = connected();
  /** @type {any[]} */
  let out = [];
  client.onServerMessage(2, { type: 'Deliver', message: message('10', '0') }, out);
  assert.deepEqual(shown, ['10']);
  client.onServerMessage(3, { type: 'Deliver', message: message('30', '20') }, (out = []));
  assert.deepEqual(shown, ['10']);  // held: 20 is missing
  const [read] = frames(out, 'GetMessages');
  assert.equal(read.after_id, '10');
  client.onServerMessage(4, { type: 'Deliver', message: message('10', '0') }, (out = []));  // a duplicate
  client.onServerMessage(5, {
    type: 'MessagesResult', request_id: read.request_id, code: 'OK', conv,
    messages: [message('20', '10'), message('30', '20')], has_more: false, group_mode: 'none',
  }, (out = []));
  assert.deepEqual(shown, ['10', '20', '30']);
  // Delivered receipt up to the newest shown.
  assert.deepEqual(frames(out, 'Receipt').map((r) => [r.kind, r.up_to]), [['delivered', '30']]);
});

test('has_more reads the next page from the last id', () => {
  const { client, shown } = connected();
  /** @type {any[]} */
  let out = [];
  client.catchUp(2, conv, out);
  const [first] = frames(out, 'GetMessages');
  client.onServerMessage(3, {
    type: 'MessagesResult', request_id: first.request_id, code: 'OK', conv,
    messages: [message('5', '0'), message('6', '5')], has_more: true, group_mode: 'none',
  }, (out = []));
  const [next] = frames(out, 'GetMessages');
  assert.equal(next.after_id, '6');
  assert.deepEqual(shown, ['5', '6']);
});

test('ids beyond 2^53 compare exactly', () => {
  const { client, shown } = connected();
  const big = '9007199254740993';  // 2^53 + 1: a Number would round it to 2^53
  client.onServerMessage(2, { type: 'Deliver', message: message('9007199254740992', '0') }, []);
  client.onServerMessage(3, { type: 'Deliver', message: message(big, '9007199254740992') }, []);
  assert.deepEqual(shown, ['9007199254740992', big]);
});

test('an unacked message is retried under the same id until OK; a late ack changes nothing', () => {
  const { client, shown } = connected();
  /** @type {any[]} */
  let out = [];
  const id = client.send(10, conv, 'hello', out);
  assert.equal(id, '1000');
  const [first] = frames(out, 'SendMessage');
  const retry = out.find((e) => e.kind === 'timer' && e.id === `retry:${id}`);
  assert.ok(retry.at >= 10 + 250_000 && retry.at <= 10 + 500_000);  // equal jitter on 500 ms
  client.onServerMessage(20, { type: 'SendAck', client_msg_id: id, conv, code: 'UNAVAILABLE', message_id: '0', prev_msg_id: '0', duplicate: false, queued: false }, (out = []));
  assert.equal(client.outbox.size, 1);
  client.onTimer(retry.at, retry.id, (out = []));
  const [second] = frames(out, 'SendMessage');
  assert.equal(first.attempt, 0);
  assert.deepEqual(second, { ...first, attempt: 1 });  // the same message, marked as a resend
  const ack = { type: 'SendAck', client_msg_id: id, conv, code: 'OK', message_id: '77', prev_msg_id: '0', duplicate: true, queued: false };
  client.onServerMessage(30, ack, (out = []));
  assert.equal(client.outbox.size, 0);
  assert.deepEqual(shown, ['77']);
  client.onServerMessage(31, ack, (out = []));
  assert.deepEqual(shown, ['77']);
});

test('a permanent refusal drops the message; the id counter never goes back', () => {
  const { client } = connected();
  const id = client.send(10, conv, 'x', []);
  client.onServerMessage(11, { type: 'SendAck', client_msg_id: id, conv, code: 'PERMISSION_DENIED', message_id: '0', prev_msg_id: '0', duplicate: false, queued: false }, []);
  assert.equal(client.outbox.size, 0);
  assert.equal(client.send(12, conv, 'y', []), '1001');
  assert.throws(() => client.send(13, conv, 'x'.repeat(64 * 1024 + 1), []), /body_bytes_max/);
  assert.throws(() => client.send(13, { type: 'direct', low: '2', high: '3' }, 'x', []), /cannot send/);
});

test('receipt watermarks never go back', () => {
  const { client } = connected();
  const r = (/** @type {string} */ up_to) => ({ type: 'ReceiptUpdate', conv, kind: 'read', reader: '2', up_to });
  client.onServerMessage(2, r('50'), []);
  client.onServerMessage(3, r('40'), []);
  assert.equal(client.receiptShown(conv, 'read', '2'), '50');
});

test('a group message written while the join is pending waits for its answer', () => {
  const { client } = connected();
  /** @type {any[]} */
  let out = [];
  const g = { type: /** @type {'group'} */ ('group'), low: '5', high: '0' };
  client.joinGroup(2, '5', out);
  const [join] = frames(out, 'JoinGroup');
  client.send(3, g, 'early', (out = []));
  assert.equal(frames(out, 'SendMessage').length, 0);
  client.onServerMessage(4, { type: 'GroupResult', request_id: join.request_id, code: 'OK', group: '5', joined: true, group_mode: 'push' }, (out = []));
  assert.equal(frames(out, 'SendMessage').length, 1);
  assert.ok(client.groups.has('5'));
});

test('typing shows for the TTL; offline drops it and schedules a reconnect', () => {
  const { client } = connected();
  client.onServerMessage(2, { type: 'TypingUpdate', conv, user: '2', active: true }, []);
  assert.deepEqual(client.typing(conv, 3), ['2']);
  assert.deepEqual(client.typing(conv, 2 + 10_000_000), []);
  /** @type {any[]} */
  const out = [];
  client.onDisconnected(5, out);
  assert.equal(client.connected, false);
  assert.ok(out.some((e) => e.kind === 'timer' && e.id === 'reconnect'));
});

test('per-member receipts: pages through the members, leaves the viewer out, never goes back', () => {
  /** @type {any[]} */
  const reports = [];
  const client = new ChatClient({
    user: alice, clientMsgIdFirst: '1000', random: () => 0.5, config: { receipts_page_max: 2 },
    observer: { onMemberReceipts: (_now, c, code, members) => reports.push({ c, code, members }) },
  });
  client.connect(0, []);
  client.onConnected(1, []);
  const g = { type: /** @type {'group'} */ ('group'), low: '5', high: '0' };
  /** @type {any[]} */
  let out = [];
  const id = client.getReceipts(2, g, out);
  const [first] = frames(out, 'GetReceipts');
  assert.equal(first.request_id, String(id));
  assert.deepEqual([first.after_user, first.limit], ['0', 2]);
  assert.equal(client.getReceipts(2, g, (out = [])), id);  // in flight: the same read
  assert.equal(frames(out, 'GetReceipts').length, 0);
  client.onServerMessage(3, { type: 'ReceiptsResult', request_id: first.request_id, code: 'OK', conv: g, has_more: true,
    members: [{ user: '1', delivered_up_to: '9', read_up_to: '9' }, { user: '2', delivered_up_to: '9', read_up_to: '8' }] }, (out = []));
  const [second] = frames(out, 'GetReceipts');
  assert.equal(second.after_user, '2');
  client.onServerMessage(4, { type: 'ReceiptsResult', request_id: second.request_id, code: 'OK', conv: g, has_more: false,
    members: [{ user: '3', delivered_up_to: '9', read_up_to: '0' }] }, (out = []));
  assert.deepEqual(reports.map((r) => r.members), [[
    { user: '2', delivered_up_to: '9', read_up_to: '8' }, { user: '3', delivered_up_to: '9', read_up_to: '0' }]]);
  assert.equal(client.receiptShown(g, 'read', '2'), '8');
  // The refresh asked during the read goes now; its lower answer shows nothing lower.
  const [again] = frames(out, 'GetReceipts');
  assert.equal(again.after_user, '0');
  client.onServerMessage(5, { type: 'ReceiptsResult', request_id: again.request_id, code: 'OK', conv: g, has_more: false,
    members: [{ user: '2', delivered_up_to: '3', read_up_to: '3' }, { user: '3', delivered_up_to: '9', read_up_to: '9' }] }, []);
  assert.deepEqual(client.memberReceiptsShown(g), [
    { user: '2', delivered_up_to: '9', read_up_to: '8' }, { user: '3', delivered_up_to: '9', read_up_to: '9' }]);
  // A refusal is reported with its code.
  client.getReceipts(6, g, (out = []));
  const [refused] = frames(out, 'GetReceipts');
  client.onServerMessage(7, { type: 'ReceiptsResult', request_id: refused.request_id, code: 'PERMISSION_DENIED', conv: g, has_more: false, members: [] }, []);
  assert.equal(reports.at(-1).code, 'PERMISSION_DENIED');
  assert.deepEqual(reports.at(-1).members, []);
});

test('per-member receipts: a lost page is asked again; offline asks nothing', () => {
  const { client } = connected();
  const g = { type: /** @type {'group'} */ ('group'), low: '5', high: '0' };
  /** @type {any[]} */
  let out = [];
  client.getReceipts(2, g, out);
  const [page] = frames(out, 'GetReceipts');
  const timeout = out.find((e) => e.kind === 'timer' && e.id === `request:${page.request_id}`);
  client.onTimer(timeout.at, timeout.id, (out = []));
  const [retry] = frames(out, 'GetReceipts');
  assert.equal(retry.after_user, '0');
  assert.notEqual(retry.request_id, page.request_id);
  client.onDisconnected(9, []);
  assert.equal(client.getReceipts(10, g, (out = [])), 0);
  assert.equal(frames(out, 'GetReceipts').length, 0);
});
