// @ts-check
// The live view of the hub: it polls /api/admin/stats every second (the
// activity of the last minutes, kept by the server in a ring of one slot per
// second) and draws each series as a small SVG chart. No library, no CDN:
// it works offline.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const POLL = 1000;
/** Seconds the per-second figures average over, so that they do not flicker. */
const AVERAGE = 10;
/** Colours of the close codes' lines, in order of appearance. */
const SWATCHES = ['#4338ca', '#b45309', '#b91c1c', '#047857', '#7c3aed', '#0e7490'];

const state = { user: '', token: '', room: '', timer: 0 };

async function login(user) {
  const res = await fetch('/api/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user, role: 'admin' }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error?.message || 'login failed');
  return body.token;
}

/** Calls the admin API; a token that expired (401) is replaced once. */
async function api(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, { ...init, headers: { ...init.headers, Authorization: `Bearer ${state.token}` } });
    if (res.status === 401 && attempt === 0) {
      state.token = await login(state.user);
      continue;
    }
    const body = await res.json();
    if (!res.ok) throw new Error(body.error?.message || `${res.status} ${res.statusText}`);
    return body;
  }
}

async function signIn(user) {
  $('login-error').textContent = '';
  try {
    state.user = user;
    state.token = await login(user);
  } catch (err) {
    $('login-error').textContent = err.message;
    return;
  }
  $('signin').hidden = true;
  $('dashboard').hidden = false;
  $('me').textContent = `${user} · admin`;
  setStatus('connecting', 'Connecting…');
  poll();
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn(String(new FormData(/** @type {HTMLFormElement} */ (e.target)).get('user')));
});

// Called on every poll: the words of the live region (role="status") are
// rewritten only when they change, or a screen reader may say them again
// every second.
function setStatus(s, words) {
  $('status').dataset.state = s;
  if ($('status').textContent !== words) $('status').textContent = words;
}

async function poll() {
  clearTimeout(state.timer);
  try {
    render(await api('/api/admin/stats'));
    setStatus('open', 'Live');
    $('admin-error').textContent = '';
  } catch (err) {
    setStatus('connecting', 'Cannot reach the server: retrying');
    $('admin-error').textContent = err.message;
  }
  state.timer = setTimeout(poll, POLL);
}

/** The average of the last complete seconds: the newest one is still counting. */
function rate(series) {
  const done = series.slice(-AVERAGE - 1, -1);
  if (!done.length) return 0;
  return done.reduce((a, b) => a + b, 0) / done.length;
}

const sum = (series) => series.reduce((a, b) => a + b, 0);

function figure(id, value, total) {
  const out = $(id);
  out.textContent = Number.isInteger(value) ? String(value) : value.toFixed(1);
  out.dataset.value = String(value);
  if (total !== undefined) {
    out.dataset.total = String(total);
    out.title = `${total} in the window`;
  }
}

/**
 * Draws series (one value per second, the newest last) into svg, scaled to
 * the largest value and to the whole window, so that a fresh server's few
 * seconds sit at the right as they will later.
 * @param {SVGElement} svg
 * @param {{values: number[], color?: string}[]} lines
 * @param {number} window
 */
function draw(svg, lines, window) {
  const top = Math.max(1, ...lines.flatMap((l) => l.values));
  const ns = 'http://www.w3.org/2000/svg';
  const parts = [];
  for (const [i, l] of lines.entries()) {
    const x0 = window - l.values.length;
    const pts = l.values.map((v, j) => `${((x0 + j) * 300) / (window - 1)},${58 - (v / top) * 54}`);
    if (lines.length === 1 && pts.length) {
      const area = document.createElementNS(ns, 'polygon');
      area.setAttribute('class', 'area');
      area.setAttribute('points', `${pts[0].split(',')[0]},60 ${pts.join(' ')} 300,60`);
      parts.push(area);
    }
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('class', 'line');
    line.setAttribute('points', pts.join(' '));
    if (l.color) line.style.stroke = l.color;
    line.dataset.series = String(i);
    parts.push(line);
  }
  svg.replaceChildren(...parts);
  // The scale is HTML beside the chart: text inside the SVG would be
  // stretched with it (preserveAspectRatio="none") and tiny.
  let label = /** @type {HTMLElement | null} */ (svg.parentElement?.querySelector('.chart-max'));
  if (!label) {
    label = document.createElement('span');
    label.className = 'chart-max';
    svg.before(label);
  }
  label.textContent = `max ${top}`;
}

const chart = (name) => /** @type {SVGElement} */ ($(`figure-${name}`).closest('figure')?.querySelector('svg'));

function render(s) {
  $('window').textContent = s.window % 60 === 0 ? `${s.window / 60} minutes` : `${s.window} s`;
  figure('figure-connections', s.connections.at(-1) ?? 0);
  figure('figure-rooms', s.roomCount);
  figure('figure-deliveries', rate(s.deliveries), sum(s.deliveries));
  figure('figure-messages', rate(s.messages), sum(s.messages));
  figure('figure-errors', rate(s.errors), sum(s.errors));
  for (const name of ['connections', 'rooms', 'deliveries', 'messages', 'errors']) {
    draw(chart(name), [{ values: s[name] }], s.window);
  }
  const codes = Object.keys(s.closes).sort();
  const closes = codes.map((code, i) => ({ code, values: s.closes[code], color: SWATCHES[i % SWATCHES.length] }));
  figure('figure-closes', sum(closes.flatMap((c) => c.values)), sum(closes.flatMap((c) => c.values)));
  draw(chart('closes'), closes, s.window);
  $('close-codes').replaceChildren(...closes.map((c) => {
    const li = document.createElement('li');
    li.style.setProperty('--swatch', c.color);
    li.dataset.code = c.code;
    li.textContent = `${c.code}${CLOSE_NAMES[c.code] ? ` ${CLOSE_NAMES[c.code]}` : ''}: ${sum(c.values)}`;
    return li;
  }));
  renderRooms(s.roomList, s.roomCount);
  if (state.room) showMembers(state.room);
}

/** Words for the close codes of the protocol (docs/PROTOCOL.md section 4). */
const CLOSE_NAMES = {
  1000: 'normal', 1001: 'going away', 1006: 'connection lost', 1008: 'too many errors', 1009: 'too big',
  1011: 'internal', 1013: 'slow consumer', 4401: 'token expired', 4403: 'forbidden', 4429: 'rate limited',
};

function renderRooms(list, count) {
  $('room-list').replaceChildren(...list.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.room = r.room;
    const name = document.createElement('td');
    name.textContent = `# ${r.room}`;
    const n = document.createElement('td');
    n.textContent = String(r.sessions);
    const act = document.createElement('td');
    const show = document.createElement('button');
    show.type = 'button';
    show.className = 'small';
    show.textContent = 'Members';
    show.setAttribute('aria-label', `Members of #${r.room}`);
    show.addEventListener('click', () => { state.room = r.room; showMembers(r.room); });
    act.append(show);
    tr.append(name, n, act);
    return tr;
  }));
  $('room-more').textContent = count > list.length ? `and ${count - list.length} more rooms` : (count ? '' : 'No rooms yet.');
}

$('lookup').addEventListener('submit', (e) => {
  e.preventDefault();
  state.room = String(new FormData(/** @type {HTMLFormElement} */ (e.target)).get('room'));
  showMembers(state.room);
});

let membersAsked = 0;
async function showMembers(room) {
  const asked = ++membersAsked;
  let body;
  try {
    body = await api(`/api/admin/members?room=${encodeURIComponent(room)}`);
  } catch (err) {
    $('admin-error').textContent = err.message;
    return;
  }
  if (asked !== membersAsked) return; // a later answer is on its way
  $('members-title').textContent = `Members of # ${room}`;
  const users = [...new Set(body.members.map((m) => m.user))].sort();
  $('members-hint').textContent = users.length ? '' : 'Nobody is in this room.';
  $('members').replaceChildren(...users.map((user) => {
    const li = document.createElement('li');
    li.dataset.user = user;
    const name = document.createElement('span');
    const sessions = body.members.filter((m) => m.user === user).length;
    name.textContent = sessions > 1 ? `${user} (${sessions} sessions)` : user;
    const kick = document.createElement('button');
    kick.type = 'button';
    kick.className = 'small';
    kick.textContent = 'Disconnect';
    kick.setAttribute('aria-label', `Disconnect ${user}`);
    kick.dataset.testid = `disconnect-${user}`;
    kick.addEventListener('click', () => disconnect(user));
    li.append(name, kick);
    return li;
  }));
  // The server lists at most a few hundred sessions of a crowded room.
  const more = body.total - body.members.length;
  $('members-more').textContent = body.truncated && more > 0 ? `and ${more} more sessions` : '';
}

// No confirmation: the user can sign in again at once, so a wrong click
// costs little.
async function disconnect(user) {
  try {
    await api('/api/admin/disconnect', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user }),
    });
    $('admin-error').textContent = '';
  } catch (err) {
    $('admin-error').textContent = err.message;
  }
  if (state.room) showMembers(state.room);
}

// The chat page's "Live view" link names its admin: /admin#as=root.
const as = new URLSearchParams(location.hash.slice(1)).get('as');
if (as && /^[A-Za-z0-9]{1,32}$/.test(as)) signIn(as);
