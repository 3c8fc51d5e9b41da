import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, GinwsError, backoff, retryAfter } from '../ginws.js';
import { build, start } from '../testing/server.js';

let server;
const clients = [];

before(async () => {
  build();
  server = await start();
});

after(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

function client(opts) {
  const c = new Client({ url: server.url, token: () => 'alice', WebSocket, ...opts });
  clients.push(c);
  return c;
}

/** Resolves when pred() holds, polling; rejects after ms. */
async function until(pred, ms = 10000, what = 'condition') {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function nextEvent(c, type, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${type} within ${ms} ms`)); }, ms);
    const off = c.on(type, (data, ev) => { clearTimeout(timer); off(); resolve({ data, ev }); });
  });
}

test('connects with the token as a subprotocol and gets acks', async () => {
  const c = client({ token: async () => 'alice' });
  assert.deepEqual(await c.request('echo', { n: 1 }), { n: 1 });
  assert.equal(c.state, 'open');
  assert.ok(c.session);
  c.close();
  assert.equal(c.state, 'closed');
});

test('validation errors carry code and fields', async () => {
  const c = client();
  await c.join('lobby');
  await assert.rejects(c.request('chat.send', { room: 'lobby', text: 'x'.repeat(501) }), (e) => {
    assert.ok(e instanceof GinwsError);
    assert.equal(e.code, 'validation_failed');
    assert.deepEqual(e.fields, [{ field: 'text', rule: 'max', param: '500', message: 'text must be at most 500 characters long' }]);
    return true;
  });
  await assert.rejects(c.request('nope'), { code: 'unknown_type' });
  await assert.rejects(c.request('chat.send', { room: 'elsewhere', text: 'hi' }), { code: 'not_member' });
  c.close();
});

test('events, per room listeners, presence and off', async () => {
  const a = client();
  const b = client({ token: () => 'bob' });
  await a.join('r1');
  const joined = nextEvent(a, 'presence.join');
  await b.join('r1');
  assert.equal((await joined).data.user, 'bob');

  const inRoom = [];
  const other = [];
  const fn = (d) => inRoom.push(d.text);
  a.on('chat.message', fn, { room: 'r1' });
  a.on('chat.message', (d) => other.push(d.text), { room: 'r2' });
  const got = nextEvent(a, 'chat.message');
  await b.request('chat.send', { room: 'r1', text: 'hello' });
  const { ev } = await got;
  assert.equal(ev.room, 'r1');
  assert.deepEqual(inRoom, ['hello']);
  assert.deepEqual(other, []);
  a.off('chat.message', fn);
  const again = nextEvent(a, 'chat.message');
  await b.request('chat.send', { room: 'r1', text: 'second' });
  await again;
  assert.deepEqual(inRoom, ['hello'], 'off removes the listener');
  a.close();
  b.close();
});

test('back-off follows full jitter, doubling from the base', async () => {
  const delays = [];
  const c = new Client({
    url: 'ws://127.0.0.1:1/ws', token: () => 't', WebSocket, baseDelay: 40, maxDelay: 200, random: () => 0.5,
    onState: (s, info) => { if (s === 'reconnecting') delays.push(Math.round(info.retryAt - Date.now())); },
  });
  await until(() => delays.length >= 5, 10000, 'five attempts');
  c.close();
  assert.deepEqual(delays.slice(0, 5).map((d) => Math.round(d / 10) * 10), [20, 40, 80, 100, 100]);
  assert.equal(backoff(3, 500, 30000, 0.5), 2000);
  assert.equal(backoff(40, 500, 30000, 0.5), 15000);
});

test('the offline queue is bounded', async () => {
  const c = new Client({ url: 'ws://127.0.0.1:1/ws', token: () => 't', WebSocket, queueSize: 2, baseDelay: 100000 });
  const p1 = c.request('echo', 1, { timeout: 100 });
  const p2 = c.request('echo', 2, { timeout: 100 });
  await assert.rejects(c.request('echo', 3), { code: 'queue_full' });
  await assert.rejects(p1, { code: 'timeout' });
  await assert.rejects(p2, { code: 'timeout' });
  c.close();
});

test('a silent server is detected by the heartbeat', async () => {
  const reasons = [];
  const c = new Client({
    url: server.url.replace('/ws', '/silent'), token: () => 't', WebSocket, baseDelay: 10, maxDelay: 20,
    onState: (s, info) => { if (s === 'reconnecting') reasons.push(info.reason); },
  });
  await until(() => reasons.length >= 2, 10000, 'two heartbeat time-outs');
  c.close();
  assert.deepEqual(reasons.slice(0, 2), ['heartbeat_timeout', 'heartbeat_timeout']);
});

test('an expired token (4401) is replaced on reconnect when the in-band refresh fails', async () => {
  let calls = 0;
  const codes = [];
  const c = client({
    token: () => {
      calls++;
      if (calls === 1) return 'alice.300';
      if (calls === 2) throw new Error('the identity provider is down');
      return 'alice';
    },
    baseDelay: 10,
    onState: (s, info) => { if (s === 'reconnecting') codes.push(info.code); },
  });
  await until(() => codes.length === 1 && c.state === 'open', 10000, 'reconnect after 4401');
  assert.deepEqual(codes, [4401]);
  assert.equal(calls, 3);
  assert.deepEqual(await c.request('echo', 'still'), 'still');
  c.close();
});

test('a terminal close code stops the client', async () => {
  const c = client({ token: () => 'banned', baseDelay: 10 });
  await until(() => c.state === 'closed', 10000, 'closed');
  assert.equal(c.lastClose.code, 4403);
  await assert.rejects(c.request('echo', 1), { code: 'closed' });
});

test('after a dropped connection it re-joins from its last offset and gets exactly what it missed', async () => {
  const recovered = [];
  const a = client({ baseDelay: 200, maxDelay: 200, random: () => 1, onRecover: (room, ok) => recovered.push([room, ok]) });
  const b = client({ token: () => 'bob' });
  const got = [];
  a.on('chat.message', (m, ev) => got.push([ev.offset, m.text]), { room: 'h/recover' });
  const first = await a.join('h/recover');
  assert.equal(first.recovered, false);
  assert.ok(first.epoch);
  await b.join('h/recover');
  await b.request('chat.send', { room: 'h/recover', text: 'one' });
  await until(() => got.length === 1, 10000, 'first message');

  a._ws.terminate(); // the network drops: no close frame
  await until(() => a.state === 'reconnecting', 10000, 'reconnecting');
  for (const text of ['two', 'three']) await b.request('chat.send', { room: 'h/recover', text });
  await until(() => recovered.length === 1, 10000, 're-joined');
  assert.deepEqual(recovered, [['h/recover', true]]);
  await b.request('chat.send', { room: 'h/recover', text: 'four' });
  await until(() => got.length === 4, 10000, 'all four');
  assert.deepEqual(got.map(([, t]) => t), ['one', 'two', 'three', 'four']);
  assert.deepEqual(got.map(([o]) => o), [1, 2, 3, 4]);
  a.close();
  b.close();
});

test('a room the server joined it to is joined again after a reconnect', async () => {
  const recovered = [];
  const a = client({ token: () => 'carol', baseDelay: 10, maxDelay: 10, onRecover: (room) => recovered.push(room) });
  const b = client({ token: () => 'bob' });
  const joined = nextEvent(a, 'room.joined');
  await a.request('join.me', { room: 'h/team' });
  assert.equal((await joined).data.room, 'h/team');
  a._ws.terminate();
  await until(() => recovered.includes('h/team'), 10000, 're-joined');
  await b.join('h/team');
  const got = nextEvent(a, 'chat.message');
  await b.request('chat.send', { room: 'h/team', text: 'still here' });
  assert.equal((await got).data.text, 'still here');
  a.close();
  b.close();
});

test('reconnects after a server restart, re-joins and keeps chatting', async () => {
  const own = await start();
  const recovered = new Map();
  const states = [];
  const onRecover = (who) => (room, ok) => recovered.set(who, [room, ok]);
  const a = client({ url: own.url, baseDelay: 20, maxDelay: 100, onRecover: onRecover('a'), onState: (s, i) => states.push([s, i.code]) });
  const b = client({ url: own.url, token: () => 'bob', baseDelay: 20, maxDelay: 100, onRecover: onRecover('b') });
  await a.join('lobby');
  await b.join('lobby');
  const firstSession = a.session;

  await own.stop();
  await until(() => a.state === 'reconnecting', 10000, 'reconnecting');
  assert.ok(states.some(([s, code]) => s === 'reconnecting' && code === 1001), 'the server said going away');
  const echoed = nextEvent(a, 'chat.message');
  const queued = a.request('chat.send', { room: 'lobby', text: 'sent while offline' });
  const restarted = await start(own.addr);
  try {
    assert.equal(await queued, 'ok');
    assert.equal((await echoed).data.text, 'sent while offline', 'a re-joined lobby before its queued request went out');
    assert.notEqual(a.session, firstSession);
    await until(() => recovered.has('a') && recovered.has('b'), 10000, 'both re-joined');
    assert.deepEqual(recovered.get('a'), ['lobby', false], 'a hub without history cannot replay');
    // b may or may not have been back in time for the queued message.
    const texts = [];
    b.on('chat.message', (m) => texts.push(m.text));
    await a.request('chat.send', { room: 'lobby', text: 'after restart' });
    await until(() => texts.includes('after restart'), 10000, 'b gets the next message');
  } finally {
    a.close();
    b.close();
    await restarted.stop();
  }
});

test('a refused upgrade with Retry-After is retried no sooner than it and its jitter', async () => {
  const http = await import('node:http');
  const attempts = [];
  const front = http.createServer();
  front.on('upgrade', (_req, socket) => {
    attempts.push(Date.now());
    socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve));
  const states = [];
  const c = client({
    url: `ws://127.0.0.1:${front.address().port}/ws`, baseDelay: 1, random: () => 0.5,
    onState: (state, info) => { if (state === 'reconnecting') states.push(info); },
  });
  try {
    await until(() => attempts.length >= 2, 10000, 'a second attempt');
    assert.equal(states[0].status, 503);
    assert.equal(states[0].retryAfter, 1000);
    assert.ok(attempts[1] - attempts[0] >= 1500, `retried after ${attempts[1] - attempts[0]} ms`);
  } finally {
    c.close();
    front.close();
  }
});

test('retryAfter reads seconds and dates, and caps them', () => {
  assert.equal(retryAfter('2', 30000), 2000);
  assert.equal(retryAfter('3600', 30000), 30000);
  assert.equal(retryAfter(undefined, 30000), 0);
  assert.equal(retryAfter('soon', 30000), 0);
  const inFive = new Date(Date.now() + 5000).toUTCString();
  assert.ok(Math.abs(retryAfter(inFive, 30000) - 5000) <= 1000);
});

test('a session whose tokens last 2 s stays up across three lifetimes by refreshing in-band', async () => {
  let asked = 0;
  const states = [];
  const c = client({ token: () => { asked++; return 'alice.2000'; }, onState: (s) => states.push(s) });
  await until(() => c.state === 'open', 10000, 'open');
  const session = c.session;
  await until(() => asked >= 4, 30000, 'three refreshes');
  assert.ok(!states.includes('reconnecting'), `states: ${states}`);
  assert.equal(c.session, session, 'the same session throughout');
  await assert.rejects(c.request('refresh', { token: 'bob.60000' }), (e) => e.code === 'forbidden');
  c.close();
});

test('a request marked repeat is sent again after the connection drops; others fail with connection_lost', async () => {
  const c = client({ baseDelay: 10 });
  await until(() => c.state === 'open', 10000, 'open');
  const lost = c.request('echo', 1);
  const again = c.request('echo', 2, { repeat: true });
  c._ws.terminate(); // the socket goes before any answer is read
  await assert.rejects(lost, (e) => e.code === 'connection_lost');
  assert.equal(await again, 2);
  c.close();
});

test('binary frames go both ways: sendBinary to the binary handler, onBinary gets a Buffer', async () => {
  const c = client();
  await until(() => c.state === 'open', 10000, 'open');
  const got = new Promise((resolve) => c.onBinary(resolve));
  c.sendBinary(Uint8Array.from([0, 1, 2, 255, 120, 128]));
  const data = await got;
  assert.ok(Buffer.isBuffer(data), 'a Buffer in Node');
  assert.deepEqual([...data], [128, 120, 255, 2, 1, 0]);
  c.close();
  assert.throws(() => c.sendBinary(new Uint8Array(1)), (e) => e.code === 'not_connected');
});

test('with -compress the ws package negotiates permessage-deflate: large frames go compressed both ways, a bomb closes with 1009', async () => {
  const zipped = await start('127.0.0.1:0', ['-compress']);
  try {
    const sockets = [];
    class Spy extends WebSocket {
      constructor(...args) { super(...args); sockets.push(this); }
    }
    const c = new Client({ url: zipped.url, token: () => 'alice', WebSocket: Spy });
    clients.push(c);
    await until(() => c.state === 'open', 10000, 'open');
    assert.match(sockets[0].extensions, /permessage-deflate/);
    const got = new Promise((resolve) => c.onBinary(resolve));
    const data = Buffer.alloc(50000);
    for (let i = 0; i < data.length; i++) data[i] = i % 7;
    c.sendBinary(data);
    const back = await got;
    assert.deepEqual(back, Buffer.from(data).reverse());
    // 50,000 bytes came back in far fewer: the server compressed them.
    assert.ok(sockets[0]._socket.bytesRead < 5000, `${sockets[0]._socket.bytesRead} bytes read`);
    c.close();

    // 4 MiB of zeros compress to some 4 KiB, within the 64 KiB frame
    // limit; inflated they are far past it.
    const bomb = new WebSocket(zipped.url, ['ginws.v1', 'bearer.mallory'], { perMessageDeflate: { threshold: 0 } });
    await new Promise((resolve, reject) => { bomb.once('open', resolve); bomb.once('error', reject); });
    const closed = new Promise((resolve) => bomb.once('close', resolve));
    bomb.send(Buffer.alloc(4 << 20), { binary: true, compress: true });
    assert.equal(await closed, 1009);
  } finally {
    await zipped.stop();
  }
});
