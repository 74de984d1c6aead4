// @ts-check
// chatd's HTTP calls the page needs besides the WebSocket (docs/chatd.md, "Interfaces"):
// POST /login for a token, and the user directory (name -> id, id -> name). Every answer is
// JSON; errors carry {"error"}.

/** @typedef {import('./wire.js').Id} Id */

/** @param {Response} res */
async function json(res) {
  /** @type {any} */
  let body = {};
  try {
    body = await res.json();
  } catch {
    body = {};
  }
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

/** @param {string} user @param {string} password
 * @returns {Promise<{token: string, user_id: Id, expires_at_us: string}>} */
export async function login(user, password) {
  const res = await fetch('/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  return json(res);
}

/** The user id a token names (its first field: USERID.EXPIRES_US.MAC). @param {string} token */
export function tokenUser(token) {
  const [user, expires] = token.split('.');
  return /^[1-9][0-9]*$/.test(user ?? '') && /^[0-9]+$/.test(expires ?? '') ? user : null;
}

export class Directory {
  /** @param {() => string} token */
  constructor(token) {
    this.token = token;
    /** @type {Map<Id, string>} */
    this.names = new Map();
    /** @type {Map<Id, Promise<string>>} */
    this.pending = new Map();
  }

  /** @param {string} path */
  async get(path) {
    const res = await fetch(path, { headers: { Authorization: `Bearer ${this.token()}` } });
    return json(res);
  }

  /** The id of a user name (throws "no such user"). @param {string} name @returns {Promise<Id>} */
  async idOf(name) {
    const r = await this.get(`/api/users/${encodeURIComponent(name)}`);
    this.names.set(r.user_id, r.user);
    return r.user_id;
  }

  /** The name of a user id, if known yet; asks chatd once and calls back when it answers.
   * @param {Id} id @param {() => void} onLearned @returns {string|null} */
  nameOf(id, onLearned) {
    const known = this.names.get(id);
    if (known !== undefined) return known;
    if (!this.pending.has(id)) {
      const p = this.get(`/api/user_names/${id}`).then((r) => {
        this.names.set(id, r.user);
        onLearned();
        return r.user;
      });
      p.catch(() => this.pending.delete(id));  // offline: ask again later
      this.pending.set(id, p);
    }
    return null;
  }
}
