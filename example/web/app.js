// @ts-check
// The example's page: everything goes through the ginws JavaScript client.
// Its requests and events are type-checked against the server's handlers:
// ginws-events.d.ts is generated from them (see jsconfig.json).
import { Client } from '/js/ginws.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The room every page lands in, unless the address names another (#room). */
const DEFAULT_ROOM = 'lobby';
/**
 * How long a message sent while disconnected waits for the connection:
 * the client queues it meanwhile, so a short network cut loses nothing.
 */
const QUEUED_WAIT = 5 * 60 * 1000;
/** How many recent messages the page asks for after a join. */
const HISTORY = 50;
/**
 * How many it asks for when a recovery failed: as many as chat.history
 * answers (HistoryRequest in app.go), so that a longer cut still shows
 * everything it can.
 */
const RELOAD = 200;

/**
 * @typedef {{user: string, text?: string, image?: string, at: string, offset?: number}} Message
 * @typedef {{messages: Message[], members: Map<string, string>, firstLive: number,
 *   epoch: string, lastOffset: number, reloadFrom: number, warning: string,
 *   joining: Promise<void> | null}} Room
 */
/**
 * @type {{client: Client, user: string, role: string, active: string, closed: boolean,
 *   rooms: Map<string, Room>, typing: Map<string, any>, lastTyping: number}}
 */
const state = {
  client: /** @type {any} */ (null), user: '', role: '', active: '', closed: false, rooms: new Map(), typing: new Map(), lastTyping: 0,
};

async function login(user, role) {
  const res = await fetch('/api/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user, role }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error?.message || 'login failed');
  return body.token;
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = new FormData(/** @type {HTMLFormElement} */ (e.target));
  state.user = String(form.get('user'));
  state.role = String(form.get('role'));
  $('login-error').textContent = '';
  try {
    await login(state.user, state.role);
  } catch (err) {
    $('login-error').textContent = err.message;
    return;
  }
  $('login').hidden = true;
  $('signin').hidden = true;
  $('chat').hidden = false;
  $('announce').hidden = state.role !== 'admin';
  $('admin-link').hidden = state.role !== 'admin';
  /** @type {HTMLAnchorElement} */ ($('admin-link')).href = `/admin#as=${encodeURIComponent(state.user)}`;
  $('me').textContent = `${state.user} · ${state.role}`;
  connect();
  const wanted = decodeURIComponent(location.hash.slice(1));
  joinRoom(/^[A-Za-z0-9._:/-]{1,128}$/.test(wanted) ? wanted : DEFAULT_ROOM).catch(() => {});
  $('send-text').focus();
});

function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  // The token provider logs in again before every connection, so an
  // expired token (4401) is replaced.
  state.client = new Client({ url, token: () => login(state.user, state.role), onState: showState, onRecover });
  const c = state.client;
  /** @type {any} */ (window).ginws = c; // for the browser console
  c.on('chat.message', (m, ev) => addMessage(ev.room, { ...m, offset: ev.offset }));
  c.onBinary((data) => {
    const { name, user, image } = decodeShare(data);
    const m = { user, image: URL.createObjectURL(new Blob([image])), at: new Date().toISOString() };
    room(name).messages.push(m);
    if (name === state.active) appendMessage(m);
  });
  // Errors without a request id answer a binary frame: a refused image.
  c.on('error', (err) => { $('share-error').textContent = err.message; });
  c.on('typing', (t, ev) => showTyping(ev.room, t.user || ''));
  c.on('announcement', (a) => {
    const div = document.createElement('div');
    div.textContent = `Announcement: ${a.text}`;
    $('announcements').prepend(div);
  });
  c.on('presence.join', (p, ev) => { room(ev.room).members.set(p.session, p.user); renderPresence(); });
  c.on('presence.leave', (p, ev) => { room(ev.room).members.delete(p.session); renderPresence(); });
  // Under churn or a crowd joining the server sums changes up: ask again.
  c.on('presence.changed', (_, ev) => { if (ev.room === state.active) refreshPresence(); });
}

/** Words for a close reason the server or the client gives. */
const closeWords = {
  forbidden: 'an administrator disconnected you',
  client_closed: 'you left',
  token_expired: 'your sign-in expired',
  too_many_errors: 'too many invalid messages',
};

let countdown = 0;
/**
 * Shows the connection's state in words, and in data-state for tests and
 * scripts: open, connecting (reconnecting included) or closed.
 */
function showState(s, info) {
  $('status').dataset.state = s === 'reconnecting' ? 'connecting' : s;
  $('reconnect-now').hidden = s !== 'reconnecting';
  clearInterval(countdown);
  $('status-countdown').textContent = '';
  const words = $('status-words');
  if (s === 'reconnecting') {
    words.textContent = 'Offline · reconnecting';
    const tick = () => {
      const secs = Math.max(0, Math.ceil((info.retryAt - Date.now()) / 1000));
      $('status-countdown').textContent = ` in ${secs} s`;
    };
    tick();
    countdown = setInterval(tick, 250);
  } else if (s === 'closed') {
    const why = closeWords[info.reason] || info.reason || `code ${info.code}`;
    words.textContent = `Disconnected: ${why}`;
    // The client does not come back from here: nothing on the page may
    // look as if it still worked.
    for (const id of ['send-submit', 'join-submit', 'share-submit', 'announce-submit', 'share-file']) {
      /** @type {HTMLButtonElement | HTMLInputElement} */ (document.querySelector(`[data-testid="${id}"]`)).disabled = true;
    }
    state.closed = true;
    state.typing.forEach(clearTimeout);
    state.typing.clear();
    renderTyping();
    renderPresence();
    $('empty').hidden = true; // "Say hello!" no longer can be done
    $('send-error').textContent = `${why[0].toUpperCase()}${why.slice(1)}: this page is disconnected for good. Reload it to sign in again.`;
  } else {
    words.textContent = s === 'open' ? 'Connected' : 'Connecting…';
  }
}

/**
 * After a re-join: when the missed messages were replayed, any earlier
 * warning is obsolete; when they were not (the server lost its history, or
 * too much was missed), the recent history is loaded instead, and the
 * warning stays only when that cannot reach back to what the page saw.
 */
function onRecover(name, recovered) {
  refreshPresence();
  const r = room(name);
  if (recovered) {
    setWarning(name, '');
    return;
  }
  // Live messages from now on are in the room's current epoch, as is the
  // history asked for below: from this index on, the list is rebuilt.
  r.reloadFrom = r.messages.length;
  const seen = r.lastOffset;
  r.lastOffset = 0;
  state.client.request('chat.history', { room: name, limit: RELOAD }).then((h) => {
    const same = h.epoch === r.epoch;
    const from = same ? seen : 0;
    const live = r.messages.splice(r.reloadFrom);
    const byOffset = new Map();
    for (const ev of h.events) if (ev.offset > from) byOffset.set(ev.offset, { ...ev.data, offset: ev.offset });
    for (const m of live) if (m.offset) byOffset.set(m.offset, m);
    const merged = [...byOffset.values()].sort((a, b) => (a.offset || 0) - (b.offset || 0));
    r.messages.push(...merged, ...live.filter((m) => !m.offset));
    r.epoch = h.epoch;
    r.lastOffset = Math.max(0, ...merged.map((m) => m.offset || 0));
    // The oldest offset reloaded; with nothing reloaded, the next one. What
    // lies between the last one seen and it may still be in the room's
    // history, beyond what one chat.history answers, or may be gone: "not
    // shown" is true of both.
    const oldest = h.events.length ? h.events[0].offset : h.offset + 1;
    const gap = oldest - from - 1;
    setWarning(name, gap > 0
      ? `Reconnected to #${name}: ${gap} earlier ${gap === 1 ? 'message is' : 'messages are'} not shown.`
      : '');
    if (name === state.active) renderMessages();
  }, () => {
    setWarning(name, `Reconnected to #${name}; messages sent meanwhile may be missing.`);
  });
}

function setWarning(name, text) {
  room(name).warning = text;
  if (name === state.active) renderWarning();
}

function renderWarning() {
  const text = state.active ? room(state.active).warning : '';
  $('recovery').textContent = text;
  $('recovery').hidden = !text;
}

/** @returns {Room} */
function room(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = { messages: [], members: new Map(), firstLive: 0, epoch: '', lastOffset: 0, reloadFrom: 0, warning: '', joining: null };
    state.rooms.set(name, r);
  }
  return r;
}

$('reconnect-now').addEventListener('click', () => state.client?.reconnectNow());

$('join').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.target);
  const name = String(new FormData(form).get('room')).trim();
  $('join-error').textContent = '';
  if (!name) return;
  try {
    await joinRoom(name);
    form.reset();
  } catch (err) {
    $('join-error').textContent = err.message;
  }
});

/**
 * Joins a room once, however often it is asked for (the page joins the
 * default room by itself while a user may type its name too), and shows it.
 */
async function joinRoom(name) {
  const known = state.rooms.get(name);
  if (known?.joining) {
    await known.joining;
    select(name);
    return;
  }
  // Live messages may arrive as soon as the join is acknowledged, before
  // this function resumes: firstLive must be reset before joining.
  const r = room(name);
  r.firstLive = 0;
  r.joining = (async () => {
    const ack = await state.client.join(name);
    r.epoch = ack.epoch;
  })();
  try {
    await r.joining;
  } catch (err) {
    r.joining = null;
    if (!r.messages.length) state.rooms.delete(name);
    throw err;
  }
  select(name);
  // Recent messages from before the join. Those that also arrived live
  // (offset from the first live one on) are shown already.
  try {
    const h = await state.client.request('chat.history', { room: name, limit: HISTORY });
    const older = h.events.filter((ev) => !r.firstLive || ev.offset < r.firstLive)
      .map((ev) => ({ ...ev.data, offset: ev.offset }));
    r.messages.unshift(...older);
    r.lastOffset = Math.max(r.lastOffset, ...older.map((m) => m.offset));
    if (name === state.active) renderMessages();
  } catch { /* the room keeps no history */ }
}

function renderRooms() {
  const ul = $('rooms');
  ul.replaceChildren();
  for (const name of state.rooms.keys()) {
    const li = document.createElement('li');
    li.className = name === state.active ? 'active' : '';
    li.dataset.room = name;
    const label = document.createElement('button');
    label.type = 'button';
    label.className = 'room-name';
    label.textContent = `# ${name}`;
    if (name === state.active) label.setAttribute('aria-current', 'true');
    label.addEventListener('click', () => select(name));
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.className = 'leave';
    leave.textContent = '×';
    leave.title = `Leave #${name}`;
    leave.setAttribute('aria-label', `Leave #${name}`);
    leave.dataset.testid = `leave-${name}`;
    leave.addEventListener('click', async () => {
      await state.client.leave(name).catch(() => {});
      state.rooms.delete(name);
      select(state.rooms.keys().next().value || '');
    });
    li.append(label, leave);
    ul.append(li);
  }
}

function select(name) {
  state.active = name;
  $('room-title').textContent = name ? `# ${name}` : 'Join a room to chat';
  if (name && location.hash.slice(1) !== name) history.replaceState(null, '', `#${name}`);
  state.typing.forEach(clearTimeout);
  state.typing.clear();
  renderTyping();
  renderRooms();
  renderMessages();
  renderWarning();
  refreshPresence();
}

async function refreshPresence() {
  const name = state.active;
  if (!name || state.client?.state !== 'open') return renderPresence();
  try {
    const p = await state.client.request('presence', undefined, { room: name });
    const r = room(name);
    r.members = new Map(p.members.map((m) => [m.session, m.user]));
  } catch { /* not joined yet */ }
  renderPresence();
}

function renderPresence() {
  const ul = $('presence');
  ul.replaceChildren();
  // Once closed for good the page no longer hears who comes and goes.
  if (!state.active || state.closed) return;
  const users = [...new Set(room(state.active).members.values())].sort();
  for (const u of users) {
    const li = document.createElement('li');
    li.textContent = u;
    if (u === state.user) li.className = 'mine';
    ul.append(li);
  }
}

// addMessage shows a live message. The client delivers each event once,
// replays after a reconnect included, so no deduplication is needed here.
/** @param {string} name @param {Message} m */
function addMessage(name, m) {
  const r = room(name);
  if (m.offset && !r.firstLive) r.firstLive = m.offset;
  if (m.offset && m.offset > r.lastOffset) r.lastOffset = m.offset;
  r.messages.push(m);
  if (name === state.active) {
    // Their message is what they were typing.
    clearTimeout(state.typing.get(m.user));
    if (state.typing.delete(m.user)) renderTyping();
    appendMessage(m);
  }
}

/**
 * Shows a message that came after all those shown: one more item, so that
 * the list is not rebuilt under a reader's cursor, and its words alone in
 * the live region, not one's own (just typed) nor the whole list again.
 * @param {Message} m
 */
function appendMessage(m) {
  const ol = $('messages');
  ol.append(messageItem(m));
  $('empty').hidden = true;
  ol.scrollTop = ol.scrollHeight;
  if (m.user !== state.user) $('latest').textContent = m.image ? `${m.user} shared an image` : `${m.user}: ${m.text || ''}`;
}

// Images go as binary frames (see share.go): [room length][room][image]
// out, [room length][room][user length][user][image] in. 48 KiB keeps the
// frame within the server's 64 KiB.
const MAX_IMAGE = 48 << 10;

/** @param {string} name @param {ArrayBuffer} image */
function encodeShare(name, image) {
  const r = new TextEncoder().encode(name);
  const out = new Uint8Array(1 + r.length + image.byteLength);
  out[0] = r.length;
  out.set(r, 1);
  out.set(new Uint8Array(image), 1 + r.length);
  return out;
}

/** @param {ArrayBuffer} data */
function decodeShare(data) {
  const b = new Uint8Array(data);
  const dec = new TextDecoder();
  const n = b[0];
  const m = b[1 + n];
  return { name: dec.decode(b.subarray(1, 1 + n)), user: dec.decode(b.subarray(2 + n, 2 + n + m)), image: b.subarray(2 + n + m) };
}

const NO_IMAGE = `Up to ${MAX_IMAGE >> 10} KiB`;

$('share-file').addEventListener('change', () => {
  const file = /** @type {HTMLInputElement} */ ($('share-file')).files?.[0];
  $('share-chosen').textContent = file ? `${file.name} (${Math.ceil(file.size / 1024)} KiB)` : NO_IMAGE;
});

$('share').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('share-file'));
  const file = input.files?.[0];
  $('share-error').textContent = '';
  if (!file || !state.active) {
    $('share-error').textContent = 'Join a room and choose an image first.';
    return;
  }
  if (file.size > MAX_IMAGE) {
    $('share-error').textContent = `The image is ${Math.ceil(file.size / 1024)} KiB; at most ${MAX_IMAGE >> 10} KiB can be shared.`;
    return;
  }
  try {
    state.client.sendBinary(encodeShare(state.active, await file.arrayBuffer()));
    input.value = '';
    $('share-chosen').textContent = NO_IMAGE;
  } catch {
    $('share-error').textContent = 'Images are not queued while offline: share it again once connected.';
  }
});

/**
 * Shows the active room's messages afresh: on a switch of room, and when
 * history comes in before or among those shown. Live ones are appended.
 */
function renderMessages() {
  const ol = $('messages');
  const list = state.active ? room(state.active).messages : [];
  $('empty').hidden = !state.active || list.length > 0 || state.closed;
  ol.replaceChildren(...list.map(messageItem));
  ol.scrollTop = ol.scrollHeight;
}

/** @param {Message} m */
function messageItem(m) {
  const li = document.createElement('li');
  li.className = m.user === state.user ? 'msg mine' : 'msg';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = m.user; // the user alone: scripts read it; style.css marks one's own
  const at = document.createElement('time');
  at.className = 'at';
  at.dateTime = m.at;
  at.textContent = new Date(m.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  let body;
  if (m.image) {
    body = document.createElement('img');
    body.className = 'image';
    body.src = m.image;
    body.alt = `an image shared by ${m.user}`;
    body.dataset.testid = 'shared-image';
  } else {
    body = document.createElement('span');
    body.className = 'text';
    body.textContent = m.text || '';
  }
  li.append(who, at, body);
  return li;
}

function showTyping(name, user) {
  if (name !== state.active || !user) return;
  clearTimeout(state.typing.get(user));
  state.typing.set(user, setTimeout(() => { state.typing.delete(user); renderTyping(); }, 3000));
  renderTyping();
}

function renderTyping() {
  const users = [...state.typing.keys()].sort();
  $('typing').textContent = users.length === 0 ? ''
    : users.length === 1 ? `${users[0]} is typing…`
      : `${users.slice(0, -1).join(', ')} and ${users.at(-1)} are typing…`;
}

const text = /** @type {HTMLTextAreaElement} */ ($('send-text'));

// Enter sends, Shift+Enter makes a new line; Enter that confirms an input
// method's composition (Japanese, say) does neither.
text.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter' || e.shiftKey || e.isComposing) return;
  e.preventDefault();
  /** @type {HTMLFormElement} */ ($('send')).requestSubmit();
});

text.addEventListener('input', () => {
  if (!state.active || state.client?.state !== 'open' || Date.now() - state.lastTyping < 1000) return;
  state.lastTyping = Date.now();
  state.client.request('typing', { room: state.active }).catch(() => {});
});

/** Words for what went wrong with a request. */
function problem(err) {
  if (err.fields?.length) return err.fields.map((f) => f.message).join('; ');
  switch (err.code) {
    case 'timeout': return 'The server did not answer in time: try again.';
    case 'connection_lost': return 'The connection dropped before the server confirmed the message: it may not have been sent.';
    case 'queue_full': return 'Too many messages wait for the connection: try again once connected.';
    case 'closed': return 'Disconnected for good: reload the page to sign in again.';
    default: return err.message;
  }
}

$('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.target);
  const value = text.value;
  $('send-error').textContent = '';
  if (!state.active) {
    $('send-error').textContent = 'Join a room first.';
    return;
  }
  // The server refuses it too (notblank); saying so here saves the trip.
  if (!value.trim()) {
    $('send-error').textContent = 'text must not be blank';
    text.focus();
    return;
  }
  const name = state.active;
  // While reconnecting the client queues the request; the page shows it
  // as waiting and frees the box for the next one.
  let waiting = null;
  if (state.client.state !== 'open') {
    waiting = document.createElement('li');
    waiting.textContent = value;
    waiting.title = 'Waiting for the connection';
    $('outbox').append(waiting);
    form.reset();
  }
  try {
    await state.client.request('chat.send', { room: name, text: value }, waiting ? { timeout: QUEUED_WAIT } : {});
    if (!waiting) form.reset();
  } catch (err) {
    $('send-error').textContent = problem(err);
    if (waiting && !text.value) text.value = value;
  } finally {
    waiting?.remove();
  }
});

$('announce').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.target);
  $('announce-error').textContent = '';
  try {
    await state.client.request('admin.announce', { text: /** @type {HTMLInputElement} */ (form.elements.namedItem('text')).value });
    form.reset();
  } catch (err) {
    $('announce-error').textContent = problem(err);
  }
});
