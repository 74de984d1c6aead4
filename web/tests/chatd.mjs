// @ts-check
// A real chatd for the browser tests: a fresh data directory, the demo users (alice, bob, carol:
// what scripts/chatd-up.sh creates), a free 127.0.0.1 port, started and stopped by the test.
// CHATD_BIN and HISTORY_CHECK_BIN come from ctest (tests/CMakeLists.txt); WEB_TEST_OUT is where
// artefacts go (screenshots, histories), never the source tree.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const kPassword = 'secret';
export const kUsers = ['alice', 'bob', 'carol'];

export const chatdBin = process.env.CHATD_BIN ?? path.resolve('../../build/release/real-transport/chatd');
export const historyCheckBin = process.env.HISTORY_CHECK_BIN ??
  path.resolve('../../build/release/real-transport/history_check');
export const outDir = process.env.WEB_TEST_OUT ?? path.resolve('../../out/web-test');

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(a.port));
    });
    s.on('error', reject);
  });
}

export class Chatd {
  /** @param {import('node:child_process').ChildProcess} proc @param {string} url @param {string} dir */
  constructor(proc, url, dir) {
    this.proc = proc;
    this.url = url;
    this.dir = dir;
  }

  /** Starts chatd with the demo users and waits until /healthz answers. */
  static async start() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-web-'));
    for (const u of kUsers) {
      const r = spawnSync(chatdBin, ['adduser', '--data_dir', dir, '--password', kPassword,
        '--pbkdf2_iterations', '1000', u], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`chatd adduser ${u}: ${r.stderr}`);
    }
    const port = await freePort();
    const log = fs.openSync(path.join(dir, 'chatd.log'), 'a');
    const args = ['--data_dir', dir, '--listen', `127.0.0.1:${port}`];
    // Development only: CHATD_WEB_DIR=web serves the files being edited (no rebuild).
    if (process.env.CHATD_WEB_DIR) args.push('--web_dir', process.env.CHATD_WEB_DIR);
    const proc = spawn(chatdBin, args, { stdio: ['ignore', log, log] });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) return new Chatd(proc, url, dir);
      } catch { /* not yet listening */ }
      if (proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`chatd did not start; log:\n${fs.readFileSync(path.join(dir, 'chatd.log'), 'utf8')}`);
  }

  /** SIGTERM, as an operator stops it; the data directory goes too (CHATD_TEST_KEEP=1 keeps it). */
  async stop() {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    if (process.env.CHATD_TEST_KEEP) console.log(`kept ${this.dir}`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** A token for user (POST /login). @param {string} user */
  async login(user) {
    const res = await fetch(`${this.url}/login`, {
      method: 'POST', body: JSON.stringify({ user, password: kPassword }),
    });
    if (!res.ok) throw new Error(`login ${user}: ${res.status}`);
    return /** @type {{token: string, user_id: string}} */ (await res.json());
  }

  /** A Web Service call as user (POST /api/NAME). @param {string} token @param {string} call @param {object} body */
  async api(token, call, body) {
    const res = await fetch(`${this.url}/api/${call}`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify(body),
    });
    return res.json();
  }

  /** Every message of conv as the store holds it, read by user, page by page (has_more).
   * @param {string} token @param {object} conv */
  async history(token, conv) {
    const messages = [];
    let after = '0';
    for (;;) {
      const r = await this.api(token, 'get_messages', { request_id: '1', conv, after_id: after, limit: 500 });
      if (r.code !== 'OK') throw new Error(`get_messages: ${JSON.stringify(r)}`);
      messages.push(...r.messages);
      if (!r.has_more || r.messages.length === 0) return messages;
      after = r.messages.at(-1).message_id;
    }
  }
}
