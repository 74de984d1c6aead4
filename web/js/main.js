// @ts-check
// The page's entry point: log in (or take the token from ?token=), then run a Session with its
// ChatView. Exposes window.chatlab for tests and people at the console: the recorded history
// (docs/history-format.md), the connection state and the client.

import { Directory, login, tokenUser } from './api.js';
import { h, replace } from './dom.js';
import { Session } from './session.js';
import { ChatView } from './ui.js';

/** @typedef {{token: string, user: string, name: string, expiresAtUs: number}} Login */

const kLoginKey = 'chatlab.login';
const root = /** @type {HTMLElement} */ (document.getElementById('app'));
/** @type {Session|null} */
let session = null;

/** The client's page size for history reads: ?page_limit=N (1..500), for trying paging out. */
function pageLimit() {
  const n = Number(new URLSearchParams(location.search).get('page_limit'));
  return Number.isInteger(n) && n >= 1 && n <= 500 ? n : undefined;
}

/** @param {string} message @param {string} [name] */
function showLogin(message = '', name = '') {
  const user = /** @type {HTMLInputElement} */ (h('input', { name: 'user', autocomplete: 'username', required: true, 'aria-label': 'user name', placeholder: 'user name' }));
  const password = /** @type {HTMLInputElement} */ (h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'aria-label': 'password', placeholder: 'password' }));
  user.value = name;
  const error = h('p', { class: 'form-error', 'data-testid': 'login-error' }, [message]);
  const form = h('form', { class: 'login', 'data-testid': 'login' }, [
    h('h1', {}, ['ChatLab']), user, password, h('button', { type: 'submit' }, ['Log in']), error,
  ]);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await login(user.value.trim(), password.value);
      start({ token: r.token, user: r.user_id, name: user.value.trim(), expiresAtUs: Number(r.expires_at_us) });
    } catch (e) {
      replace(error, [e instanceof Error ? e.message : String(e)]);
    }
  });
  replace(root, [form]);
  (name === '' ? user : password).focus();
}

/** @param {Login} l */
function start(l) {
  sessionStorage.setItem(kLoginKey, JSON.stringify(l));
  session?.stop();
  const directory = new Directory(() => l.token);
  /** @type {ChatView|null} */
  let view = null;
  const s = new Session({
    user: l.user, name: l.name, token: l.token, expiresAtUs: l.expiresAtUs,
    config: { page_limit: pageLimit() ?? 100 },
    onChange: () => view?.scheduleRender(),
    observer: {
      onReceiptShown: (_now, r) => view?.onReceiptShown(r),
      onMemberReceipts: (_now, conv, code) => view?.onMemberReceipts(conv, code),
    },
  });
  session = s;
  view = new ChatView(root, s, directory, {
    name: l.name,
    onLogout: () => {
      s.stop();
      session = null;
      sessionStorage.removeItem(kLoginKey);
      showLogin();
    },
    onRelogin: () => {
      s.stop();
      session = null;
      showLogin('Your session expired.', l.name);
    },
  });
  /** @type {any} */ (window).chatlab = {
    history: () => s.recorder.export(),
    status: () => s.status,
    user: () => ({ user_id: l.user, name: l.name }),
    client: s.client,
  };
  s.start();
  view.scheduleRender();
}

/** A token given in the URL (?token=T) logs in without a password; it is taken out of the
 * address bar at once. @returns {Promise<Login|null>} */
async function loginFromUrl() {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  if (token === null) return null;
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}`);
  const user = tokenUser(token);
  if (user === null) return null;
  const expiresAtUs = Number(token.split('.')[1]);
  const res = await fetch(`/api/user_names/${user}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) return null;
  const { user: name } = await res.json();
  return { token, user, name, expiresAtUs };
}

async function boot() {
  const fromUrl = await loginFromUrl().catch(() => null);
  if (fromUrl !== null) return start(fromUrl);
  const saved = sessionStorage.getItem(kLoginKey);
  if (saved !== null) {
    /** @type {Login} */
    const l = JSON.parse(saved);
    if (l.expiresAtUs > Date.now() * 1000) return start(l);
    return showLogin('Your session expired.', l.name);
  }
  showLogin();
}

boot();
