// ginws JavaScript client: the client side of the ginws wire protocol
// (docs/PROTOCOL.md) for browsers and Node.js 20+. No runtime dependencies.

/** The WebSocket subprotocol of the ginws wire protocol. */
export const SUBPROTOCOL = 'ginws.v1';

/** Close codes after which the client never reconnects (PROTOCOL.md section 4). */
export const TERMINAL_CODES = Object.freeze([1000, 1002, 1007, 1008, 1009, 4403]);

/**
 * An error the server answered a request with, or a client-side failure
 * (codes `timeout`, `queue_full`, `connection_lost`, `closed`).
 */
export class GinwsError extends Error {
  /**
   * @param {string} code stable error code
   * @param {string} message readable message
   * @param {Array<{field:string,rule:string,param?:string,message:string}>} [fields] failing fields of validation_failed
   */
  constructor(code, message, fields) {
    super(message);
    this.name = 'GinwsError';
    this.code = code;
    this.fields = fields || [];
  }
}

/**
 * The delay before reconnect attempt `attempt` (0-based): full jitter over
 * base·2^attempt, capped at max.
 * @param {number} attempt
 * @param {number} base milliseconds
 * @param {number} max milliseconds
 * @param {number} r a number in [0,1)
 * @returns {number} milliseconds
 */
export function backoff(attempt, base, max, r) {
  return r * Math.min(max, base * 2 ** Math.min(attempt, 30));
}

/**
 * The milliseconds a Retry-After header asks for (seconds, or an HTTP
 * date), at most max; 0 without a usable one.
 * @param {string | undefined} value
 * @param {number} max milliseconds
 * @returns {number}
 */
export function retryAfter(value, max) {
  if (!value) return 0;
  const v = value.trim();
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), max) : 0;
}

// The key of binary frames' listeners among the events' (no event type is empty).
const BINARY = '';

const defaults = {
  baseDelay: 500,
  maxDelay: 30000,
  resetAfter: 10000,
  rateLimitDelay: 5000,
  queueSize: 256,
  requestTimeout: 10000,
};

/**
 * A ginws connection that stays up: it reconnects with back-off and jitter,
 * keeps a heartbeat, re-joins its rooms with their last offsets and queues
 * requests while offline. It connects as soon as it is created.
 */
export class Client {
  /**
   * @param {object} opts
   * @param {string} opts.url WebSocket endpoint (ws:// or wss://)
   * @param {() => string | Promise<string>} opts.token token provider, asked before every connection
   * @param {any} [opts.WebSocket] WebSocket implementation (Node: the `ws` package); the global one by default
   * @param {number} [opts.baseDelay=500] back-off base in ms
   * @param {number} [opts.maxDelay=30000] back-off cap in ms
   * @param {number} [opts.resetAfter=10000] an open connection this long resets the back-off
   * @param {number} [opts.rateLimitDelay=5000] minimum delay after a 4429 close
   * @param {() => number} [opts.random=Math.random] jitter source in [0,1)
   * @param {number} [opts.queueSize=256] requests that may wait while offline
   * @param {number} [opts.requestTimeout=10000] default request time-out in ms
   * @param {(state: string, info: {code?: number, reason?: string, error?: any, retryAt?: number, status?: number, retryAfter?: number}) => void} [opts.onState] state changes
   *   (status and retryAfter: an upgrade refused with an HTTP status, seen in Node only)
   * @param {(room: string, recovered: boolean) => void} [opts.onRecover] after each re-join: whether missed messages were replayed
   */
  constructor(opts) {
    if (!opts || !opts.url) throw new TypeError('ginws: opts.url is required');
    if (typeof opts.token !== 'function') throw new TypeError('ginws: opts.token must be a function');
    this._o = { ...defaults, random: Math.random, ...opts };
    this._WS = this._o.WebSocket || globalThis.WebSocket;
    if (!this._WS) throw new TypeError('ginws: no WebSocket implementation: pass opts.WebSocket');
    /** @type {'connecting'|'open'|'reconnecting'|'closed'} */
    this.state = 'connecting';
    /** Epoch milliseconds of the next reconnect attempt, or null. */
    this.nextRetryAt = null;
    /** The last close: {code, reason}, or null. */
    this.lastClose = null;
    /** The current session id, or null while disconnected. */
    this.session = null;
    this._ws = null;
    this._attempt = 0;
    this._nextId = 0;
    this._pending = new Map(); // id -> {resolve, reject, timer, sent}
    this._queue = []; // [{id, frame}]
    this._rooms = new Map(); // room -> {epoch, offset, joined}
    this._handlers = new Map(); // type -> Set(fn)
    this._stopped = false;
    // A browser knows when the network is back or the page is looked at
    // again: waiting out the back-off then only delays the user.
    this._wake = () => {
      if (globalThis.document?.visibilityState !== 'hidden') this.reconnectNow();
    };
    globalThis.window?.addEventListener?.('online', this._wake);
    globalThis.document?.addEventListener?.('visibilitychange', this._wake);
    this._connect();
  }

  /**
   * Reconnects at once, with the back-off reset, when the client is waiting
   * to reconnect; does nothing otherwise. Browsers call it by themselves
   * when the page comes back online or visible.
   */
  reconnectNow() {
    if (this._stopped || this.state !== 'reconnecting') return;
    clearTimeout(this._timer);
    this._attempt = 0;
    this._setState('connecting');
    this._connect();
  }

  /**
   * Listen to events of a type pushed by the server.
   * @param {string} type event type, e.g. "chat.message"
   * @param {(data: any, event: {type: string, room?: string, offset?: number, data: any}) => void} fn
   * @param {{room?: string}} [opts] only events of this room
   * @returns {() => void} a function that removes the listener
   */
  on(type, fn, opts = {}) {
    const wrapped = opts.room ? (d, ev) => { if (ev.room === opts.room) fn(d, ev); } : fn;
    wrapped._orig = fn;
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(wrapped);
    return () => this._handlers.get(type)?.delete(wrapped);
  }

  /**
   * Remove a listener added with on().
   * @param {string} type
   * @param {Function} fn
   */
  /**
   * Listen to the binary frames the server sends (its EmitBinary).
   * @param {(data: ArrayBuffer | Buffer) => void} fn ArrayBuffer in browsers, Buffer with the ws package
   * @returns {() => void} a function that removes the listener
   */
  onBinary(fn) {
    return this.on(BINARY, fn);
  }

  /**
   * Send one binary frame, for the server's binary handler (HandleBinary);
   * it answers nothing unless that handler does. Unlike requests, binary
   * frames are not queued: while not connected this throws a GinwsError
   * with code `not_connected`.
   * @param {ArrayBuffer | ArrayBufferView | Blob} data
   */
  sendBinary(data) {
    if (!this._ws || this.state !== 'open') throw new GinwsError('not_connected', 'not connected: binary frames are not queued');
    this._ws.send(data);
  }

  off(type, fn) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const h of set) if (h === fn || h._orig === fn) set.delete(h);
  }

  /**
   * Send a request and wait for its ack.
   * @param {string} type event type
   * @param {any} [data] payload, validated by the server
   * @param {{room?: string, timeout?: number, repeat?: boolean}} [opts] repeat: the request is
   *   safe to handle twice, so when the connection drops before its answer it is sent again after
   *   the reconnect instead of failing with `connection_lost`
   * @returns {Promise<any>} the ack's data; rejects with a GinwsError
   */
  request(type, data, opts = {}) {
    const frame = { type };
    if (opts.room) frame.room = opts.room;
    if (data !== undefined) frame.data = data;
    return this._send(frame, opts.timeout ?? this._o.requestTimeout, !!opts.repeat);
  }

  /**
   * Join a room; it is joined again after every reconnect, resuming from the
   * last offset seen.
   * @param {string} room
   * @returns {Promise<{room: string, members: number, epoch: string, offset: number, recovered: boolean}>}
   */
  async join(room) {
    if (!this._rooms.has(room)) this._rooms.set(room, { epoch: '', offset: 0, joined: false });
    try {
      const ack = await this._send(this._joinFrame(room), this._o.requestTimeout);
      this._joined(room, ack);
      return ack;
    } catch (e) {
      if (e instanceof GinwsError && !['timeout', 'connection_lost', 'queue_full'].includes(e.code)) this._rooms.delete(room);
      throw e;
    }
  }

  /**
   * Leave a room; it is no longer re-joined.
   * @param {string} room
   * @returns {Promise<void>}
   */
  async leave(room) {
    this._rooms.delete(room);
    await this._send({ type: 'leave', room }, this._o.requestTimeout);
  }

  /** Close for good: no reconnect; waiting requests are rejected with code `closed`. */
  close() {
    this._stop(1000, 'client_closed');
  }

  _setState(state, info = {}) {
    this.state = state;
    this.nextRetryAt = info.retryAt ?? null;
    if (this._o.onState) {
      try { this._o.onState(state, info); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  async _connect() {
    let token;
    try {
      token = await this._o.token();
    } catch (error) {
      this._retry({ error });
      return;
    }
    if (this._stopped) return;
    let ws;
    try {
      ws = new this._WS(this._o.url, [SUBPROTOCOL, 'bearer.' + token]);
    } catch (error) {
      this._retry({ error });
      return;
    }
    this._ws = ws;
    let openedAt = 0;
    let welcomed = false;
    ws.onopen = () => { openedAt = Date.now(); };
    // Binary frames as ArrayBuffer in browsers; the ws package gives Buffer.
    if (typeof ws.on !== 'function') ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') {
        this._dispatch(BINARY, ev.data);
        return;
      }
      if (ev.data === 'pong') return;
      let parsed;
      try { parsed = JSON.parse(ev.data); } catch { return; }
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) {
        if (!welcomed && f.type === 'welcome') {
          welcomed = true;
          this._open(ws, f.data || {});
        } else {
          this._frame(f);
        }
      }
    };
    // The ws package (Node) shows a refused upgrade's response, which
    // browsers hide: a node draining or full says when to come back.
    let refused = null;
    if (typeof ws.on === 'function') {
      ws.on('unexpected-response', (_req, res) => {
        refused = { status: res.statusCode, retryAfter: retryAfter(res.headers['retry-after'], this._o.maxDelay) };
        ws.terminate();
      });
    }
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._closed(ws, { code: ev.code, reason: ev.reason, ...refused }, openedAt);
    };
  }

  _open(ws, welcome) {
    this.session = welcome.session || null;
    const hb = welcome.heartbeat > 0 ? welcome.heartbeat : 25000;
    this._lastPong = Date.now();
    this._hb = setInterval(() => {
      if (Date.now() - this._lastPong > 2 * hb) {
        // A dead peer may never finish the closing handshake: give up on it.
        this._closed(ws, { code: 4000, reason: 'heartbeat_timeout' }, 0);
        try { ws.close(); } catch { /* already closing */ }
        return;
      }
      this._write(ws, { type: 'ping' });
    }, hb);
    this._setState('open');
    // Rooms joined before; a first join still queued goes out with the queue.
    for (const [room, r] of this._rooms) {
      if (!r.joined) continue;
      this._send(this._joinFrame(room), this._o.requestTimeout).then((ack) => {
        this._joined(room, ack);
        if (this._o.onRecover) this._o.onRecover(room, !!ack.recovered);
      }, () => { /* retried after the next reconnect */ });
    }
    const queue = this._queue;
    this._queue = [];
    for (const q of queue) {
      const p = this._pending.get(q.id);
      if (!p) continue;
      p.sent = true;
      this._write(ws, q.frame);
    }
  }

  _closed(ws, close, openedAt) {
    if (this._ws !== ws) return;
    this._ws = null;
    this.session = null;
    clearInterval(this._hb);
    ws.onopen = ws.onmessage = ws.onclose = null;
    this.lastClose = close;
    const again = [];
    for (const [id, p] of this._pending) {
      if (!p.sent) continue;
      if (p.repeat) {
        // Marked safe to repeat: it goes again, ahead of what was queued.
        p.sent = false;
        again.push({ id, frame: p.frame });
        continue;
      }
      this._pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new GinwsError('connection_lost', 'the connection dropped before the answer'));
    }
    this._queue = again.concat(this._queue);
    if (this._stopped) return;
    if (openedAt && Date.now() - openedAt >= this._o.resetAfter) this._attempt = 0;
    if (TERMINAL_CODES.includes(close.code)) {
      this._stop(close.code, close.reason);
      return;
    }
    this._retry(close);
  }

  _retry(info) {
    if (this._stopped) return;
    let delay = backoff(this._attempt++, this._o.baseDelay, this._o.maxDelay, this._o.random());
    if (info.code === 4429) delay = Math.max(delay, this._o.rateLimitDelay);
    // Retry-After, and as long again in jitter, so that the clients a node
    // refused together do not come back together.
    if (info.retryAfter > 0) delay = Math.max(delay, Math.min(this._o.maxDelay, info.retryAfter * (1 + this._o.random())));
    this._setState('reconnecting', { ...info, retryAt: Date.now() + delay });
    this._timer = setTimeout(() => {
      this._setState('connecting');
      this._connect();
    }, delay);
  }

  _stop(code, reason) {
    if (this._stopped) return;
    this._stopped = true;
    globalThis.window?.removeEventListener?.('online', this._wake);
    globalThis.document?.removeEventListener?.('visibilitychange', this._wake);
    clearTimeout(this._timer);
    clearInterval(this._hb);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(1000); } catch { /* not open */ }
    }
    for (const p of this._pending.values()) {
      clearTimeout(p.timer);
      p.reject(new GinwsError('closed', `the client is closed (${code} ${reason || ''})`.trim()));
    }
    this._pending.clear();
    this._queue = [];
    this.lastClose = { code, reason };
    this._setState('closed', { code, reason });
  }

  _frame(f) {
    switch (f.type) {
      case 'pong':
        this._lastPong = Date.now();
        if (f.id) this._settle(f.id, null, null);
        return;
      case 'ack':
        this._settle(f.id, null, f.data ?? null);
        return;
      case 'error': {
        const e = f.error || {};
        const err = new GinwsError(e.code || 'internal', e.message || 'error', e.fields);
        // An error without id answers a frame that had none (a binary
        // frame, say): on('error') listeners get it.
        if (f.id) this._settle(f.id, err);
        else this._dispatch('error', err, f);
        return;
      }
    }
    if (f.type === 'token.expiring') this._refresh();
    if (f.type === 'room.joined' && f.room) {
      // The application joined this session to the room: it is joined
      // again after a reconnect, as if join() had been called.
      if (!this._rooms.has(f.room)) this._rooms.set(f.room, { epoch: '', offset: 0, joined: false });
      this._joined(f.room, f.data);
    }
    if (f.room && typeof f.offset === 'number') {
      const r = this._rooms.get(f.room);
      if (r && f.offset > r.offset) r.offset = f.offset;
    }
    this._dispatch(f.type, f.data, f);
  }

  _dispatch(type, ...args) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try { fn(...args); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  /**
   * Sends the server a new token from the token provider before the
   * session's expires. When that fails the server closes with 4401 at the
   * expiry, and the client reconnects with a token it asks for then.
   */
  async _refresh() {
    if (this._refreshing) return; // one at a time, however many notices come
    this._refreshing = true;
    try {
      const token = await this._o.token();
      await this.request('refresh', { token });
    } catch (error) {
      if (!this._stopped) console.warn('ginws: token refresh failed; reconnecting at the expiry', error);
    } finally {
      this._refreshing = false;
    }
  }

  _settle(id, err, data) {
    const p = this._pending.get(id);
    if (!p) return;
    this._pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err); else p.resolve(data);
  }

  _joinFrame(room) {
    const r = this._rooms.get(room);
    const frame = { type: 'join', room };
    if (r && r.epoch) frame.data = { since: { epoch: r.epoch, offset: r.offset } };
    return frame;
  }

  _joined(room, ack) {
    const r = this._rooms.get(room);
    if (!r || !ack) return;
    r.joined = true;
    r.epoch = ack.epoch || '';
    if (!ack.recovered || ack.offset > r.offset) r.offset = ack.offset || 0;
  }

  _send(frame, timeout, repeat = false) {
    if (this._stopped) return Promise.reject(new GinwsError('closed', 'the client is closed'));
    const id = String(++this._nextId);
    frame = { ...frame, id };
    const open = this._ws && this.state === 'open';
    if (!open && this._queue.length >= this._o.queueSize) {
      return Promise.reject(new GinwsError('queue_full', 'too many requests wait for a connection'));
    }
    return new Promise((resolve, reject) => {
      const p = { resolve, reject, sent: open, repeat, frame };
      p.timer = setTimeout(() => {
        this._pending.delete(id);
        this._queue = this._queue.filter((q) => q.id !== id);
        reject(new GinwsError('timeout', `no answer to ${frame.type} within ${timeout} ms`));
      }, timeout);
      this._pending.set(id, p);
      if (open) this._write(this._ws, frame);
      else this._queue.push({ id, frame });
    });
  }

  _write(ws, frame) {
    try { ws.send(JSON.stringify(frame)); } catch { /* the close handler fails the request */ }
  }
}
