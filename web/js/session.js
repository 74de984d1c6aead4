// @ts-check
// The runtime around the sans-I/O client (client.js), as chatd's environment is around the core:
// it turns browser activity into client inputs and carries out the client's effects in order.
//   open   -> a WebSocket to /ws?token=T (browsers cannot set headers on a WebSocket);
//   close  -> closes it;
//   send   -> one JSON text frame;
//   timer  -> setTimeout (one per timer id: arming an id again replaces it, which the client
//             allows, since it checks every timer against its state when it fires).
// After every input the client's durable part and the history are saved (persist.js,
// recorder.js), so a reload loses nothing.
//
// Offline: when the browser says it is offline (navigator.onLine, the "offline" event) the page
// drops its socket at once and shows it, rather than wait for TCP to notice; it does not try to
// connect while offline, and connects at once when the browser is back online. A SessionClosed
// with UNAUTHENTICATED (the token expired) or FAILED_PRECONDITION (the user opened the chat
// elsewhere) stops reconnecting until the user says so.

import { ChatClient } from './client.js';
import { loadClient, saveClient } from './persist.js';
import { Recorder } from './recorder.js';

/** @typedef {import('./client.js').Effect} Effect */
/** @typedef {'online'|'connecting'|'offline'|'expired'|'displaced'} Status */

/** Now in microseconds, never going back within this page (the client's `now`). */
let lastNowUs = 0;
export function nowUs() {
  lastNowUs = Math.max(lastNowUs, Date.now() * 1000);
  return lastNowUs;
}

export class Session {
  /**
   * @param {{user: string, name: string, token: string, expiresAtUs: number,
   *          config?: Partial<import('./client.js').ClientConfig>,
   *          onChange: () => void, observer?: import('./client.js').Observer}} options
   */
  constructor(options) {
    this.options = options;
    this.recorder = new Recorder(options.user, options.name);
    const record = this.recorder.observer();
    const ui = options.observer ?? {};
    /** @type {import('./client.js').Observer} */
    const observer = {};
    for (const key of /** @type {(keyof import('./client.js').Observer)[]} */ (Object.keys(record))) {
      observer[key] = /** @type {any} */ ((/** @type {any[]} */ ...args) => {
        /** @type {any} */ (record[key])(...args);
        /** @type {any} */ (ui[key])?.(...args);
      });
    }
    observer.onSessionClosed = (_now, code) => this.onSessionClosed(code);
    observer.onError = ui.onError;
    this.client = new ChatClient({
      user: options.user,
      config: options.config,
      observer,
      // Never below the wall clock in us: a device that lost its storage does not reuse ids.
      clientMsgIdFirst: String(nowUs()),
    });
    this.restored = loadClient(this.client);
    /** @type {WebSocket|null} */
    this.ws = null;
    this.wsOpen = false;
    /** @type {Map<string, ReturnType<typeof setTimeout>>} */
    this.timers = new Map();
    /** @type {Status} */
    this.status = 'connecting';
    this.onOnline = () => this.run((now, out) => this.client.connect(now, out));
    this.onOffline = () => {
      this.dropSocket();
      this.updateStatus();
      this.options.onChange();
    };
  }

  start() {
    this.recorder.add(nowUs(), 'loaded', { restored: this.restored, outbox: this.client.outbox.size });
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.run((now, out) => this.client.connect(now, out));
  }

  /** Ends the session (log out): no reconnect, listeners removed. */
  stop() {
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    this.run((now, out) => this.client.disconnect(now, out));
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Runs one client input and carries out its effects, then saves and redraws.
   * @param {(now: number, out: Effect[]) => void} input */
  run(input) {
    /** @type {Effect[]} */
    const out = [];
    input(nowUs(), out);
    for (const e of out) this.execute(e);
    this.updateStatus();
    saveClient(this.client);
    this.recorder.save();
    this.options.onChange();
  }

  /** @param {Effect} e */
  execute(e) {
    switch (e.kind) {
      case 'open': return this.open();
      case 'close': return this.dropSocket();
      case 'send':
        if (this.ws !== null && this.wsOpen) this.ws.send(JSON.stringify(e.frame));
        return;
      case 'timer': {
        const old = this.timers.get(e.id);
        if (old !== undefined) clearTimeout(old);
        const delayMs = Math.max(0, (e.at - nowUs()) / 1000);
        this.timers.set(e.id, setTimeout(() => {
          this.timers.delete(e.id);
          this.run((now, out) => this.client.onTimer(now, e.id, out));
        }, delayMs));
        return;
      }
    }
  }

  open() {
    const failed = () => setTimeout(() => this.run((now, out) => this.client.onConnectFailed(now, out)), 0);
    if (!navigator.onLine) return failed();
    if (nowUs() >= this.options.expiresAtUs) {
      this.status = 'expired';
      this.client.wants_online = false;
      return failed();
    }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(this.options.token)}`);
    this.ws = ws;
    this.wsOpen = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.wsOpen = true;
      this.recorder.add(nowUs(), 'connected');
      this.run((now, out) => this.client.onConnected(now, out));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;  // chatd sends JSON only; a broken frame is ignored like an unexpected one
      }
      this.run((now, out) => this.client.onServerMessage(now, frame, out));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      const wasOpen = this.wsOpen;
      this.ws = null;
      this.wsOpen = false;
      this.recorder.add(nowUs(), 'disconnected');
      this.run((now, out) => (wasOpen ? this.client.onDisconnected(now, out)
        : this.client.onConnectFailed(now, out)));
    };
  }

  /** Drops the socket now (offline, log out) and tells the client if it was connected. */
  dropSocket() {
    const ws = this.ws;
    if (ws === null) return;
    const wasOpen = this.wsOpen;
    this.ws = null;
    this.wsOpen = false;
    ws.close();
    if (wasOpen && this.client.connected) {
      this.recorder.add(nowUs(), 'disconnected');
      this.run((now, out) => this.client.onDisconnected(now, out));
    } else {
      this.client.connecting = false;
      this.run((now, out) => this.client.onConnectFailed(now, out));
    }
  }

  /** @param {string} code */
  onSessionClosed(code) {
    if (code === 'UNAUTHENTICATED') this.status = 'expired';
    else if (code === 'FAILED_PRECONDITION') this.status = 'displaced';
    else return;  // UNAVAILABLE (server shutting down): reconnect with backoff
    this.client.wants_online = false;
  }

  /** The user asked to use this window again after a displacement. */
  reconnect() {
    this.status = 'connecting';
    this.run((now, out) => this.client.connect(now, out));
  }

  updateStatus() {
    if (this.status === 'expired' || (this.status === 'displaced' && !this.client.wants_online)) return;
    if (this.client.connected) this.status = 'online';
    else if (!navigator.onLine) this.status = 'offline';
    else this.status = this.client.connecting ? 'connecting' : 'offline';
  }
}
