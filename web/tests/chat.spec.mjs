// @ts-check
// The web client in a real browser against a real chatd: two (then three) browser contexts,
// each its own device with its own storage, chat 1:1 and in a group. What a person would check,
// and then the core's oracle on what every page recorded (docs/history-format.md).
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Chatd, historyCheckBin, kPassword, outDir } from './chatd.mjs';

test.describe.configure({ mode: 'serial' });

/** @type {Chatd} */
let chatd;
/** @type {Record<string, {context: import('@playwright/test').BrowserContext, page: import('@playwright/test').Page, errors: string[]}>} */
const users = {};
const kMarkup = '<b>bold?</b> <img src=x onerror="window.pwned=1"> & <script>window.pwned=2</script>';
const kGroup = '42';
const kInfoGroup = '43';  // the per-member ticks ("Message info") group of alice, bob and carol

/** Opens a device for `name` and logs in through the form. @param {import('@playwright/test').Browser} browser */
async function device(browser, name, query = '') {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${chatd.url}/${query}`);
  await page.getByLabel('user name').fill(name);
  await page.getByLabel('password').fill(kPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('status')).toHaveAttribute('data-state', 'online');
  users[name] = { context, page, errors };
  return page;
}

/** @param {import('@playwright/test').Page} page @param {string} title */
async function openConversation(page, title) {
  await page.getByTestId('conversations').locator('.conv', { hasText: title }).click();
  await expect(page.getByTestId('chat-title')).toHaveText(title);
}

/** @param {import('@playwright/test').Page} page @param {string} body */
async function send(page, body) {
  await page.getByTestId('composer').fill(body);
  await page.getByTestId('send').click();
}

/** The open chat's shown messages (not pending ones): ids and bodies, in display order.
 * @param {import('@playwright/test').Page} page */
function shown(page) {
  return page.getByTestId('messages').evaluate((ol) => [...ol.querySelectorAll('li[data-message-id]')].map((li) => ({
    id: li.getAttribute('data-message-id') ?? '',
    body: li.querySelector('.body')?.textContent ?? '',
    ticks: li.getAttribute('data-ticks'),
  })));
}

/** Ids strictly increasing (in order, none twice). @param {{id: string}[]} items */
function expectInOrderOnce(items) {
  for (let i = 1; i < items.length; i++) expect(BigInt(items[i].id) > BigInt(items[i - 1].id)).toBe(true);
}

test.beforeAll(async () => {
  fs.mkdirSync(outDir, { recursive: true });
  chatd = await Chatd.start();
});

test.afterAll(async () => {
  for (const u of Object.values(users)) await u.context.close();
  await chatd?.stop();
});

test('chatd serves the page with a CSP, nosniff and the right types', async ({ request }) => {
  const index = await request.get(`${chatd.url}/`);
  expect(index.status()).toBe(200);
  expect(index.headers()['content-type']).toBe('text/html; charset=utf-8');
  expect(index.headers()['content-security-policy']).toContain("script-src 'self'");
  expect(index.headers()['content-security-policy']).not.toContain('unsafe-inline');
  expect(index.headers()['x-content-type-options']).toBe('nosniff');
  const html = await index.text();
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);  // no inline script
  expect(html).not.toMatch(/\sstyle=/);                      // no inline style
  const js = await request.get(`${chatd.url}/js/main.js`);
  expect(js.headers()['content-type']).toBe('text/javascript; charset=utf-8');
  expect((await request.get(`${chatd.url}/js/nope.js`)).status()).toBe(404);
});

test('1:1: unread, live messages, ticks, typing, presence, markup shown as text', async ({ browser }) => {
  const alice = await device(browser, 'alice');
  const bob = await device(browser, 'bob');
  await alice.getByLabel('user name').fill('bob');
  await alice.getByTestId('new-chat').getByRole('button').click();
  await expect(alice.getByTestId('chat-title')).toHaveText('bob');
  await send(alice, 'hello bob');
  // Bob has not opened it: the list shows it unread, with the last message.
  const item = bob.getByTestId('conversations').locator('.conv', { hasText: 'alice' });
  await expect(item.getByTestId('unread')).toHaveText('1');
  await expect(item.getByTestId('last-message')).toHaveText('hello bob');
  await expect(alice.locator('[data-ticks="delivered"]')).toHaveCount(1);
  await openConversation(bob, 'alice');
  await expect(item.getByTestId('unread')).toHaveCount(0);
  await expect(alice.locator('[data-ticks="read"]')).toHaveCount(1);
  // Presence both ways, and typing.
  await expect(alice.getByTestId('chat-presence')).toHaveText('online');
  await expect(bob.getByTestId('chat-presence')).toHaveText('online');
  await bob.getByTestId('composer').pressSequentially('typing…', { delay: 20 });
  await expect(alice.getByTestId('typing')).toHaveText('bob typing…');
  await bob.getByTestId('composer').fill('');
  // Markup is text.
  await send(alice, kMarkup);
  const last = bob.getByTestId('messages').locator('li[data-message-id]').last();
  await expect(last.locator('.body')).toHaveText(kMarkup);
  await expect(bob.getByTestId('messages').locator('b, img, script')).toHaveCount(0);
  expect(await bob.evaluate(() => /** @type {any} */ (window).pwned)).toBeUndefined();
  expect((await shown(bob)).map((m) => m.body)).toEqual(['hello bob', kMarkup]);
});

test('offline: bob misses messages, comes back, sees each once and in order, with ticks', async () => {
  const { page: alice } = users.alice;
  const { page: bob, context: bobContext } = users.bob;
  await bobContext.setOffline(true);
  await expect(bob.getByTestId('status')).toHaveAttribute('data-state', 'offline');
  await expect(bob.getByTestId('banner')).toContainText('Offline');
  await expect(alice.getByTestId('chat-presence')).toContainText(/last seen|offline/);
  const missed = ['m1', 'm2', 'm3', 'm4', 'm5'];
  for (const body of missed) await send(alice, body);
  await expect(alice.locator('[data-ticks="sent"]')).toHaveCount(5);
  // Bob writes while offline: it waits, visibly.
  await send(bob, 'written offline');
  await expect(bob.locator('[data-ticks="pending"]')).toHaveCount(1);
  await bobContext.setOffline(false);
  await expect(bob.getByTestId('status')).toHaveAttribute('data-state', 'online');
  await expect.poll(async () => (await shown(bob)).map((m) => m.body))
    .toEqual(['hello bob', kMarkup, ...missed, 'written offline']);
  expectInOrderOnce(await shown(bob));
  await expect(bob.locator('[data-ticks="pending"]')).toHaveCount(0);
  // Bob has the chat open: alice sees everything read, and his message once.
  await expect(alice.locator('[data-ticks="read"]')).toHaveCount(7);
  await expect.poll(async () => (await shown(alice)).map((m) => m.body))
    .toEqual(['hello bob', kMarkup, ...missed, 'written offline']);
  expectInOrderOnce(await shown(alice));
});

test('a pending message survives a reload and is retried under the same client message id', async () => {
  const { page: bob, context } = users.bob;
  /** @type {{client_msg_id: string, body: string}[]} */
  const attempts = [];
  let reachServer = false;
  // Until reachServer, bob's WebSocket talks to no server: the page thinks it is connected and
  // its sends go unanswered (a server that stopped answering).
  await context.routeWebSocket(/\/ws/, (ws) => {
    if (reachServer) {
      ws.connectToServer();
      return;
    }
    ws.onMessage((m) => {
      const frame = JSON.parse(String(m));
      if (frame.type === 'SendMessage') attempts.push({ client_msg_id: frame.client_msg_id, body: frame.body });
    });
  });
  await bob.reload();
  await expect(bob.getByTestId('status')).toHaveAttribute('data-state', 'online');
  await send(bob, 'survives a reload');
  await expect(bob.locator('[data-ticks="pending"]')).toHaveCount(1);
  await expect.poll(() => attempts.length).toBeGreaterThanOrEqual(1);
  await bob.reload();
  await expect(bob.locator('[data-ticks="pending"]')).toHaveText(/survives a reload/);
  await expect.poll(() => attempts.length).toBeGreaterThanOrEqual(2);
  reachServer = true;
  await bob.reload();  // the mock sockets go with the page; the next one reaches chatd
  await expect(bob.locator('[data-ticks="pending"]')).toHaveCount(0);
  await expect(users.alice.page.getByTestId('messages').locator('.body', { hasText: 'survives a reload' })).toHaveCount(1);
  await expect(bob.getByTestId('messages').locator('.body', { hasText: 'survives a reload' })).toHaveCount(1);
  expect(new Set(attempts.map((a) => a.client_msg_id)).size).toBe(1);
  await context.unrouteAll();
});

test('an ack lost with its connection: the retry is answered duplicate, the message shows once', async () => {
  const { page: alice, context } = users.alice;
  const attempts = [];
  /** @type {Record<string, any>|null} */
  let dropped = null;
  // Alice's socket goes through the test: the first SendAck of "ack lost" is dropped and the
  // connection cut, as if the network failed between the store's write and the answer.
  await context.routeWebSocket(/\/ws/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const frame = JSON.parse(String(m));
      if (frame.type === 'SendMessage' && frame.body === 'ack lost') attempts.push(frame.client_msg_id);
      server.send(m);
    });
    server.onMessage((m) => {
      const frame = JSON.parse(String(m));
      if (dropped === null && frame.type === 'SendAck' && attempts.includes(frame.client_msg_id)) {
        dropped = frame;
        ws.close();
        server.close();
        return;
      }
      ws.send(m);
    });
  });
  await alice.reload();
  await expect(alice.getByTestId('status')).toHaveAttribute('data-state', 'online');
  await send(alice, 'ack lost');
  await expect.poll(() => dropped).not.toBeNull();
  await expect(alice.locator('li[data-message-id]', { hasText: 'ack lost' })).toHaveCount(1);
  await expect(users.bob.page.getByTestId('messages').locator('.body', { hasText: 'ack lost' })).toHaveCount(1);
  expect(attempts.length).toBeGreaterThanOrEqual(2);
  expect(new Set(attempts).size).toBe(1);
  const answers = await alice.evaluate((id) => /** @type {any} */ (window).chatlab.history().events
    .filter((e) => e.kind === 'answered' && e.ack.client_msg_id === id).map((e) => e.ack), attempts[0]);
  expect(answers.at(-1)).toMatchObject({ code: 'OK', duplicate: true });
  expect(answers.at(-1).message_id).toBe(dropped?.message_id);
});

test('group: join, live messages, ticks by all, leave; a late member pages through history', async ({ browser }) => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  for (const page of [alice, bob]) {
    await page.getByLabel('group number').fill(kGroup);
    await page.getByTestId('join-group').getByRole('button').click();
    await expect(page.getByTestId('chat-title')).toHaveText(`Group ${kGroup}`);
    await expect(page.getByTestId('chat-presence')).toHaveText('member');
  }
  for (const body of ['g1', 'g2', 'g3']) await send(alice, body);
  await send(bob, 'g4 from bob');
  await expect.poll(async () => (await shown(bob)).map((m) => m.body)).toEqual(['g1', 'g2', 'g3', 'g4 from bob']);
  await expect(bob.getByTestId('messages').locator('.sender').first()).toHaveText('alice');
  // Both have the group open: read by all members.
  await expect(alice.locator('[data-ticks="read"]')).toHaveCount(3);
  await expect(bob.locator('[data-ticks="read"]')).toHaveCount(1);
  await expect(alice.locator('[data-ticks="read"] .ticks').first()).toHaveAttribute('title', 'read by all members');
  await bob.getByTestId('leave-group').click();
  await expect(bob.getByTestId('chat-presence')).toHaveText('not a member');
  for (const body of ['g5', 'g6', 'g7']) await send(alice, body);
  // Carol joins late on a device that reads history 3 messages a page.
  const carol = await device(browser, 'carol', '?page_limit=3');
  await carol.getByLabel('group number').fill(kGroup);
  await carol.getByTestId('join-group').getByRole('button').click();
  const all = ['g1', 'g2', 'g3', 'g4 from bob', 'g5', 'g6', 'g7'];
  await expect.poll(async () => (await shown(carol)).map((m) => m.body)).toEqual(all);
  expectInOrderOnce(await shown(carol));
  await expect.poll(async () => (await shown(alice)).map((m) => m.body)).toEqual(all);
  expect((await shown(bob)).map((m) => m.body)).toEqual(['g1', 'g2', 'g3', 'g4 from bob']);
  const fetched = await carol.evaluate(() => /** @type {any} */ (window).chatlab.history().events
    .filter((e) => e.kind === 'history_fetched' && e.conv.type === 'group').length);
  expect(fetched).toBeGreaterThanOrEqual(3);  // 7 messages, 3 a page
});

test('group message info: each member with their tick, refreshed when the group read moves', async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  const { page: carol } = users.carol;
  const groupTitle = `Group ${kInfoGroup}`;
  for (const page of [alice, bob, carol]) {
    await page.getByLabel('group number').fill(kInfoGroup);
    await page.getByTestId('join-group').getByRole('button').click();
    await expect(page.getByTestId('chat-title')).toHaveText(groupTitle);
    await expect(page.getByTestId('chat-presence')).toHaveText('member');
  }
  // Carol stays away from the chat: another one is open on her page, so she gets the message
  // (delivered) but does not read it.
  await openConversation(carol, `Group ${kGroup}`);
  const body = 'who has read this? <b>not bold</b>';
  await send(alice, body);
  const mine = alice.locator('li[data-message-id]', { hasText: body });
  await expect(mine).toHaveCount(1);
  const id = await mine.getAttribute('data-message-id');
  await expect.poll(async () => (await shown(bob)).map((m) => m.body)).toContain(body);
  const state = (/** @type {import('@playwright/test').Page} */ page) => page.evaluate(([key, mid]) => {
    const c = /** @type {any} */ (window).chatlab.client.convs.get(key);
    return { shown: c?.view.some((/** @type {any} */ m) => m.message_id === mid) ?? false, read: c?.read_sent ?? '0' };
  }, [`g${kInfoGroup}`, id]);
  await expect.poll(() => state(carol)).toEqual({ shown: true, read: '0' });
  await expect.poll(async () => (await state(bob)).read).toBe(id);  // bob has it open: read
  // Only the sender's own messages have the affordance, and only in a group.
  await expect(bob.getByTestId('message-info')).toHaveCount(0);
  await mine.getByTestId('message-info').click();
  const panel = alice.getByTestId('message-info-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('message-info-body')).toHaveText(body);  // text, not markup
  await expect(panel.locator('b')).toHaveCount(0);
  const members = panel.getByTestId('message-info-members');
  const ids = Object.fromEntries(await Promise.all(['alice', 'bob', 'carol'].map(async (name) => [
    name, (await users[name].page.evaluate(() => /** @type {any} */ (window).chatlab.user())).user_id])));
  await expect(members.locator('li')).toHaveCount(2);  // alice herself is not listed
  await expect(members.locator(`li[data-user="${ids.bob}"]`)).toHaveAttribute('data-tick', 'read');
  await expect(members.locator(`li[data-user="${ids.bob}"]`)).toContainText('bob');
  await expect(members.locator(`li[data-user="${ids.carol}"]`)).toHaveAttribute('data-tick', 'delivered');
  await expect(mine).not.toHaveAttribute('data-ticks', 'read');  // not read by all
  // Carol opens the chat: read by all moves, the open panel reads the ticks again.
  await openConversation(carol, groupTitle);
  await expect(mine).toHaveAttribute('data-ticks', 'read');
  await expect(members.locator(`li[data-user="${ids.carol}"]`)).toHaveAttribute('data-tick', 'read');
  // The reads and what they showed are in alice's history (the oracle judges them below). The
  // read that showed carol's tick followed the group's "read by all" at once, not the panel's
  // 5 s refresh: it is the ReceiptUpdate that asked.
  const events = await alice.evaluate(() => /** @type {any} */ (window).chatlab.history().events);
  const allRead = events.findIndex((/** @type {any} */ e) => e.kind === 'receipt_shown' && e.receipt.reader === '0' &&
    e.receipt.kind === 'read' && e.receipt.conv.low === kInfoGroup && e.receipt.up_to === id);
  expect(allRead).toBeGreaterThan(0);
  const reread = events.slice(allRead).find((/** @type {any} */ e) => e.kind === 'member_receipts');
  expect(Number(reread.t_us) - Number(events[allRead].t_us)).toBeLessThan(1_000_000);
  expect(events.filter((/** @type {any} */ e) => e.kind === 'member_receipts').length).toBeGreaterThanOrEqual(2);
  await alice.getByTestId('message-info-close').click();
  await expect(panel).toBeHidden();
  // Someone no longer in a group is refused by the server: bob left group 42 (the Web Service
  // answers the same call as the WebSocket).
  const bobLogin = await chatd.login('bob');
  const ask = async (/** @type {string} */ group) => (await (await fetch(`${chatd.url}/api/receipts`, {
    method: 'POST', headers: { Authorization: `Bearer ${bobLogin.token}` },
    body: JSON.stringify({ conv: { type: 'group', low: group, high: '0' } }),
  })).json());
  expect(await ask(kGroup)).toMatchObject({ type: 'ReceiptsResult', code: 'PERMISSION_DENIED', members: [] });
  const answer = await ask(kInfoGroup);
  expect(answer.code).toBe('OK');
  const byId = (/** @type {string} */ a, /** @type {string} */ b) => (BigInt(a) < BigInt(b) ? -1 : 1);
  expect(answer.members.map((/** @type {any} */ m) => m.user)).toEqual([ids.alice, ids.bob, ids.carol].sort(byId));
});

test('a token in ?token= opens the page logged in, and leaves the address bar', async ({ browser }) => {
  const { token } = await chatd.login('carol');
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${chatd.url}/?token=${encodeURIComponent(token)}`);
  await expect(page.getByTestId('status')).toHaveAttribute('data-state', 'online');
  await expect(page.getByTestId('me')).toHaveText('carol');
  expect(page.url()).not.toContain('token');
  await context.close();
});

test('a screenshot of the chat shows the conversation', async () => {
  const { page: alice } = users.alice;
  await openConversation(alice, 'bob');
  const file = path.join(outDir, 'chat-alice-bob.png');
  await alice.screenshot({ path: file });
  // Not blank: the message area of a chat with messages compresses far worse than the same area
  // of an empty chat (text, bubbles, ticks), and the page is a real image.
  const area = await alice.getByTestId('messages').screenshot({ path: path.join(outDir, 'messages-alice-bob.png') });
  const { page: carol } = users.carol;
  await carol.getByLabel('user name').fill('alice');
  await carol.getByTestId('new-chat').getByRole('button').click();
  const empty = await carol.getByTestId('messages').screenshot();
  expect(fs.statSync(file).size).toBeGreaterThan(20_000);
  expect(area.length).toBeGreaterThan(3 * empty.length);
});

test('the core oracle checks every page history, and fails a doctored one', async () => {
  for (const u of Object.values(users)) {
    expect(u.errors.filter((e) => /Content Security Policy|Refused/.test(e))).toEqual([]);
  }
  const histories = [];
  for (const name of ['alice', 'bob', 'carol']) {
    histories.push(await users[name].page.evaluate(() => /** @type {any} */ (window).chatlab.history()));
  }
  const ids = Object.fromEntries(histories.map((h) => [h.name, h.user_id]));
  // The truth: the store's contents, read through the Web Service, and who must have seen it.
  const alice = await chatd.login('alice');
  const direct = BigInt(ids.alice) < BigInt(ids.bob)
    ? { type: 'direct', low: ids.alice, high: ids.bob } : { type: 'direct', low: ids.bob, high: ids.alice };
  const group = { type: 'group', low: kGroup, high: '0' };
  const infoGroup = { type: 'group', low: kInfoGroup, high: '0' };
  const truth = [
    { conv: direct, participants: [ids.alice, ids.bob], messages: await chatd.history(alice.token, direct) },
    // bob left before g5: the members at the end must each have seen every message.
    { conv: group, participants: [ids.alice, ids.carol], messages: await chatd.history(alice.token, group) },
    { conv: infoGroup, participants: [ids.alice, ids.bob, ids.carol], messages: await chatd.history(alice.token, infoGroup) },
  ];
  expect(truth[0].messages.length).toBe(10);
  expect(truth[1].messages.length).toBe(7);
  expect(truth[2].messages.length).toBe(1);
  const history = { format: 'chatlab-history/1', source: 'web client browser test', users: histories, truth };
  const check = (/** @type {string} */ name, /** @type {object} */ h) => {
    const file = path.join(outDir, name);
    fs.writeFileSync(file, JSON.stringify(h, null, 1));
    const r = spawnSync(historyCheckBin, [file], { encoding: 'utf8' });
    return { status: r.status, verdict: r.stdout ? JSON.parse(r.stdout) : null, stderr: r.stderr };
  };
  const good = check('history.json', history);
  expect(good.stderr).toContain('0 violations');
  expect(good.status).toBe(0);
  expect(good.verdict.final_checked).toBe(true);
  expect(good.verdict.sent).toBe(18);
  // Alice was shown each member's ticks in group 43 (the per-member reads), and they were judged.
  const memberTicks = histories.find((h) => h.name === 'alice').events
    .filter((/** @type {any} */ e) => e.kind === 'receipt_shown' && e.receipt.conv.low === kInfoGroup && e.receipt.reader !== '0');
  expect(memberTicks.length).toBeGreaterThanOrEqual(3);  // bob delivered and read, carol delivered, then read
  expect(good.verdict.counts.receipts_unfounded).toBe(0);
  expect(good.verdict.acked).toBe(good.verdict.sent);

  // Doctored: bob shows one message twice; alice shows two messages in the wrong order.
  const doctored = structuredClone(history);
  const bobEvents = doctored.users.find((u) => u.name === 'bob').events;
  const shownOnce = bobEvents.find((e) => e.kind === 'displayed');
  bobEvents.push({ ...shownOnce, t_us: String(Number(bobEvents.at(-1).t_us) + 1) });
  const bad = check('history-doctored-duplicate.json', doctored);
  expect(bad.status).toBe(1);
  expect(bad.verdict.counts.duplicates_shown).toBeGreaterThanOrEqual(1);
  const reordered = structuredClone(history);
  const aliceEvents = reordered.users.find((u) => u.name === 'alice').events;
  const at = aliceEvents.map((e, i) => (e.kind === 'displayed' ? i : -1)).filter((i) => i >= 0);
  [aliceEvents[at[0]].message, aliceEvents[at[1]].message] = [aliceEvents[at[1]].message, aliceEvents[at[0]].message];
  const worse = check('history-doctored-order.json', reordered);
  expect(worse.status).toBe(1);
  expect(worse.verdict.counts.order_violations).toBeGreaterThanOrEqual(1);
  // Doctored: alice's message info says carol read group 43 past anything carol ever displayed
  // there (a server that answered a per-member read wrongly).
  const unfounded = structuredClone(history);
  const aliceTicks = unfounded.users.find((u) => u.name === 'alice').events;
  const head = truth[2].messages.at(-1).message_id;
  aliceTicks.push({ t_us: String(Number(aliceTicks.at(-1).t_us) + 1), kind: 'receipt_shown',
    receipt: { conv: infoGroup, kind: 'read', reader: ids.carol, up_to: String(BigInt(head) + 1n) } });
  const lying = check('history-doctored-receipts.json', unfounded);
  expect(lying.status).toBe(1);
  expect(lying.verdict.counts.receipts_unfounded).toBe(1);
});
