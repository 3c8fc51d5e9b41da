// @ts-check
// The example's page: everything goes through the ginws JavaScript client.
// Its requests and events are type-checked against the server's handlers:
// ginws-events.d.ts is generated from them (see jsconfig.json).
import { Client } from '/js/ginws.js';

const $ = (id) => document.getElementById(id);
/**
 * @type {{client: Client, user: string, role: string, active: string,
 *   rooms: Map<string, {messages: any[], members: Map<string, string>, firstLive: number}>,
 *   typingTimer: any, lastTyping: number}}
 */
const state = { client: /** @type {any} */ (null), user: '', role: '', active: '', rooms: new Map(), typingTimer: 0, lastTyping: 0 };

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
  try {
    await login(state.user, state.role);
  } catch (err) {
    $('login-error').textContent = err.message;
    return;
  }
  $('login').hidden = true;
  $('chat').hidden = false;
  $('announce').hidden = state.role !== 'admin';
  $('me').textContent = `${state.user} (${state.role})`;
  connect();
});

function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  // The token provider logs in again before every connection, so an
  // expired token (4401) is replaced.
  state.client = new Client({ url, token: () => login(state.user, state.role), onState: showState, onRecover });
  const c = state.client;
  /** @type {any} */ (window).ginws = c; // for the browser console
  c.on('chat.message', (m, ev) => addMessage(ev.room, m, ev.offset));
  c.onBinary((data) => {
    const { name, user, image } = decodeShare(data);
    room(name).messages.push({ user, image: URL.createObjectURL(new Blob([image])), at: new Date().toISOString() });
    if (name === state.active) renderMessages();
  });
  // Errors without a request id answer a binary frame: a refused image.
  c.on('error', (err) => { $('share-error').textContent = err.message; });
  c.on('typing', (t, ev) => showTyping(ev.room, t.user));
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

let countdown = 0;
function showState(s, info) {
  const badge = $('status');
  badge.className = `badge ${s}`;
  $('reconnect-now').hidden = s !== 'reconnecting';
  clearInterval(countdown);
  if (s === 'reconnecting') {
    const tick = () => {
      const secs = Math.max(0, Math.ceil((info.retryAt - Date.now()) / 1000));
      badge.textContent = `reconnecting in ${secs} s`;
    };
    tick();
    countdown = setInterval(tick, 250);
  } else if (s === 'closed') {
    badge.textContent = `closed (${info.reason || info.code || 'by you'})`;
  } else {
    badge.textContent = s;
  }
  if (s === 'open') refreshPresence();
}

function onRecover(name, recovered) {
  refreshPresence();
  if (!recovered) {
    const note = $('recovery');
    note.hidden = false;
    note.textContent = `Reconnected to ${name}; messages sent meanwhile may be missing.`;
  }
}

function room(name) {
  if (!state.rooms.has(name)) state.rooms.set(name, { messages: [], members: new Map(), firstLive: 0 });
  return state.rooms.get(name);
}

$('reconnect-now').addEventListener('click', () => state.client?.reconnectNow());

$('join').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.target);
  const name = String(new FormData(form).get('room')).trim();
  if (!name) return;
  // Live messages may arrive as soon as the join is acknowledged, before
  // this function resumes: firstLive must be reset before joining.
  const r = room(name);
  r.firstLive = 0;
  try {
    await state.client.join(name);
  } catch (err) {
    if (!r.messages.length) state.rooms.delete(name);
    $('send-error').textContent = err.message;
    return;
  }
  form.reset();
  select(name);
  // Recent messages from before the join. Those that also arrived live
  // (offset from the first live one on) are shown already.
  try {
    const h = await state.client.request('chat.history', { room: name });
    const older = h.events.filter((ev) => !r.firstLive || ev.offset < r.firstLive).map((ev) => ev.data);
    r.messages.unshift(...older);
    if (name === state.active) renderMessages();
  } catch { /* the room keeps no history */ }
});

function renderRooms() {
  const ul = $('rooms');
  ul.replaceChildren();
  for (const name of state.rooms.keys()) {
    const li = document.createElement('li');
    li.className = name === state.active ? 'active' : '';
    li.dataset.room = name;
    const label = document.createElement('span');
    label.textContent = `# ${name}`;
    label.addEventListener('click', () => select(name));
    const leave = document.createElement('button');
    leave.textContent = 'leave';
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
  renderRooms();
  renderMessages();
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
  if (!state.active) return;
  const users = [...new Set(room(state.active).members.values())].sort();
  for (const u of users) {
    const li = document.createElement('li');
    li.textContent = u;
    ul.append(li);
  }
}

// addMessage shows a live message. The client delivers each event once,
// replays after a reconnect included, so no deduplication is needed here.
function addMessage(name, m, offset) {
  const r = room(name);
  if (offset && !r.firstLive) r.firstLive = offset;
  r.messages.push(m);
  if (name === state.active) renderMessages();
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

$('share').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('share').querySelector('input[name="image"]'));
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
  } catch (err) {
    $('share-error').textContent = 'Not connected: try again once the status says open.';
  }
});

function renderMessages() {
  const ol = $('messages');
  ol.replaceChildren();
  if (!state.active) return;
  for (const m of room(state.active).messages) {
    const li = document.createElement('li');
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = m.user;
    let text;
    if (m.image) {
      text = document.createElement('img');
      text.className = 'image';
      text.src = m.image;
      text.alt = `an image shared by ${m.user}`;
      text.dataset.testid = 'shared-image';
    } else {
      text = document.createElement('span');
      text.className = 'text';
      text.textContent = m.text;
    }
    const at = document.createElement('span');
    at.className = 'at';
    at.textContent = new Date(m.at).toLocaleTimeString();
    li.append(who, text, at);
    ol.append(li);
  }
  ol.scrollTop = ol.scrollHeight;
}

function showTyping(name, user) {
  if (name !== state.active) return;
  $('typing').textContent = `${user} is typing…`;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => { $('typing').textContent = ''; }, 3000);
}

$('send').addEventListener('input', () => {
  if (!state.active || Date.now() - state.lastTyping < 1000) return;
  state.lastTyping = Date.now();
  state.client.request('typing', { room: state.active }).catch(() => {});
});

$('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.target);
  const text = /** @type {HTMLTextAreaElement} */ (form.elements.namedItem('text')).value;
  $('send-error').textContent = '';
  if (!state.active) {
    $('send-error').textContent = 'Join a room first.';
    return;
  }
  try {
    await state.client.request('chat.send', { room: state.active, text });
    form.reset();
  } catch (err) {
    $('send-error').textContent = err.fields?.length ? err.fields.map((f) => f.message).join('; ') : err.message;
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
    $('announce-error').textContent = err.fields?.length ? err.fields.map((f) => f.message).join('; ') : err.message;
  }
});
