// Browser test of the example chat: two users in Debian's Chromium chat,
// see presence, typing and validation errors, and keep chatting after the
// server restarts on the same port; the page at phone and desktop sizes;
// the admin view's live figures.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const artifacts = process.env.ARTIFACTS || path.join(root, 'artifacts');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 15000;

let binary;
let browser;

// The example drains for 10 s on SIGTERM by default; the tests restart it at once.
function startExample(addr, ...flags) {
  const proc = spawn(binary, ['-addr', addr, '-drain', '0s', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('example did not start')); }, 30000);
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/url=http:\/\/(\S+)/);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        addr: m[1],
        async stop() {
          if (proc.exitCode === null) proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
          await exited;
          clearTimeout(t);
        },
      });
    });
    proc.stderr.on('data', (chunk) => process.stderr.write(chunk));
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`example exited with ${code}: ${out}`)); });
  });
}

before(() => {
  binary = path.join(mkdtempSync(path.join(tmpdir(), 'ginws-example-')), 'example');
  execFileSync('go', ['build', '-o', binary, './example'], { cwd: root, stdio: 'inherit' });
});

after(async () => {
  if (browser) await browser.close();
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** Reports whether the server at port is the redis-server with this pid. */
function answersAs(port, pid) {
  return new Promise((resolve) => {
    let reply = '';
    const s = net.connect(port, '127.0.0.1', () => s.write('INFO server\r\n'));
    s.setTimeout(1000, () => s.destroy());
    s.on('data', (d) => {
      reply += d;
      if (reply.includes(`process_id:${pid}\r\n`)) { s.destroy(); resolve(true); }
    });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(false));
  });
}

/**
 * Starts redis-server (Debian's package) on a free loopback port, no
 * persistence. A port is free only until freePort closes it: a busy
 * machine's connections can take it first, and redis-server then exits.
 * It is started again on fresh ports (extra(port) gives the arguments
 * beyond the port, for each try), and only its own answer counts.
 */
async function startRedisServer(extra = () => []) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(await extra(port))], { stdio: 'ignore' });
    let gone = false;
    const exited = new Promise((resolve) => proc.on('exit', () => { gone = true; resolve(); }));
    const deadline = Date.now() + 30000;
    while (!gone && !(await answersAs(port, proc.pid))) {
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not answer in 30 s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!gone) return { port, addr: `127.0.0.1:${port}`, async stop() { proc.kill('SIGKILL'); await exited; } };
  }
  throw new Error('redis-server exited at start five times: is the machine out of ports?');
}

/** Starts one redis-server; the example takes its URL with -redis. */
async function startRedis() {
  const srv = await startRedisServer();
  return { flags: ['-redis', `redis://${srv.addr}/0`], stop: srv.stop };
}

/**
 * Starts a Redis Cluster of three masters and three replicas on free
 * loopback ports (redis-cli --cluster create); the example takes its
 * addresses with -redis-cluster.
 */
async function startRedisCluster() {
  const dir = mkdtempSync(path.join(tmpdir(), 'ginws-cluster-'));
  const nodes = [];
  const stop = async () => {
    for (const n of nodes) await n.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      nodes.push(await startRedisServer(async (port) => ['--cluster-enabled', 'yes', '--cluster-port', String(await freePort()),
        '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--dir', dir]));
    }
    execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => n.addr), '--cluster-replicas', '1', '--cluster-yes'],
      { stdio: 'ignore', timeout: 60000 });
    const deadline = Date.now() + 30000;
    const ready = (n) => execFileSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).includes('cluster_state:ok');
    while (!nodes.every(ready)) {
      if (Date.now() > deadline) throw new Error('the Redis Cluster did not become ready');
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { flags: ['-redis-cluster', nodes.map((n) => n.addr).join(',')], stop };
}

/** The status badge once its data-state (open, connecting or closed) is s. */
const status = (page, s) => page.locator(`[data-testid="status"][data-state="${s}"]`);

async function signIn(page, base, user, role = 'member') {
  await page.goto(base);
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-role').selectOption(role);
  await page.getByTestId('login-submit').click();
  await status(page, 'open').waitFor({ timeout: WAIT });
  await page.getByTestId('login').waitFor({ state: 'hidden' });
  assert.equal(await page.getByTestId('announce').isVisible(), role === 'admin', 'the announcement box is for admins');
}

async function join(page, room) {
  await page.getByTestId('join-room').fill(room);
  await page.getByTestId('join-submit').click();
  await page.locator(`#rooms li[data-room="${room}"]`).waitFor({ timeout: WAIT });
}

/** Sends a message and, unless it is expected to fail, waits for its ack (the input empties). */
async function say(page, text, { fails = false } = {}) {
  await page.getByTestId('send-text').fill(text);
  await page.getByTestId('send-submit').click();
  if (!fails) await page.waitForFunction(() => document.querySelector('[data-testid="send-text"]').value === '', null, { timeout: WAIT });
}

function launch() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/**
 * Starts the example with flags, signs alice and bob in on pages of their
 * own, both in #lobby, and runs fn; the server stops after it. before, if
 * given, runs on alice's page before she signs in.
 */
async function twoUsers(flags, fn, before) {
  browser ??= await launch();
  const server = await startExample('127.0.0.1:0', ...flags);
  try {
    const base = `http://${server.addr}/`;
    const [alice, bob] = [await (await browser.newContext()).newPage(), await (await browser.newContext()).newPage()];
    if (before) await before(alice);
    for (const [p, user] of [[alice, 'alice'], [bob, 'bob']]) {
      p.setDefaultTimeout(WAIT);
      await signIn(p, base, user);
      await join(p, 'lobby');
    }
    await fn({ base, alice, bob });
  } finally {
    await server.stop();
  }
}

const messages = (page) => page.getByTestId('messages').locator('li .text');

test('two users chat, and keep chatting after a server restart', async () => {
  browser ??= await launch();
  let server = await startExample('127.0.0.1:0');
  const base = `http://${server.addr}/`;
  try {
    const alice = await (await browser.newContext()).newPage();
    const bob = await (await browser.newContext()).newPage();
    for (const p of [alice, bob]) p.setDefaultTimeout(WAIT);
    await signIn(alice, base, 'alice');
    await signIn(bob, base, 'bob');
    await join(alice, 'lobby');
    await join(bob, 'lobby');

    // Presence: each sees both.
    for (const p of [alice, bob]) {
      await p.getByTestId('presence').locator('li', { hasText: 'alice' }).waitFor();
      await p.getByTestId('presence').locator('li', { hasText: 'bob' }).waitFor();
    }

    // Typing reaches the other page.
    await alice.getByTestId('send-text').pressSequentially('hel');
    await bob.getByTestId('typing').filter({ hasText: 'alice is typing' }).waitFor();

    await say(alice, 'hello bob');
    await bob.getByTestId('messages').locator('li', { hasText: 'hello bob' }).waitFor();
    // A new message is appended, not the list rebuilt, and a screen reader
    // hears it alone: the list is not a live region, the newest message is.
    await alice.evaluate(() => { /** @type {HTMLElement} */ (document.querySelector('[data-testid="messages"] li')).dataset.kept = 'yes'; });
    await say(bob, 'hi alice');
    await alice.getByTestId('messages').locator('li', { hasText: 'hi alice' }).waitFor();
    assert.deepEqual(await messages(alice).allTextContents(), ['hello bob', 'hi alice']);
    assert.equal(await alice.locator('[data-testid="messages"] li[data-kept="yes"]').textContent().then((t) => t.includes('hello bob')), true, 'the first item was kept');
    assert.equal(await alice.getByTestId('messages').getAttribute('aria-live'), null);
    assert.equal(await alice.locator('[aria-live="polite"]', { hasText: 'bob: hi alice' }).count(), 1, 'the newest message is announced');

    // A newcomer sees the recent chat.
    const carol = await (await browser.newContext()).newPage();
    carol.setDefaultTimeout(WAIT);
    await signIn(carol, base, 'carol');
    await join(carol, 'lobby');
    await carol.getByTestId('messages').locator('li', { hasText: 'hi alice' }).waitFor();
    assert.deepEqual(await messages(carol).allTextContents(), ['hello bob', 'hi alice']);
    await carol.context().close();

    // Alice's connection is cut while Bob keeps sending: after she is back
    // she shows every message, replayed from the room's history.
    // The page cannot get back until the route is released: its token
    // provider (a login request) fails meanwhile.
    await alice.route('**/api/login', (route) => route.abort());
    await alice.evaluate(() => window.ginws._ws.close(3000, 'network cut'));
    await status(alice, 'connecting').waitFor();
    for (const text of ['missed one', 'missed two', 'missed three']) await say(bob, text);
    assert.equal(await alice.getByTestId('status').getAttribute('data-state'), 'connecting', 'alice was away while bob sent');
    await alice.unroute('**/api/login');
    await status(alice, 'open').waitFor({ timeout: 40000 });
    await alice.getByTestId('messages').locator('li', { hasText: 'missed three' }).waitFor();
    assert.deepEqual(await messages(alice).allTextContents(), ['hello bob', 'hi alice', 'missed one', 'missed two', 'missed three']);
    assert.equal(await alice.getByTestId('recovery').isVisible(), false, 'recovered: no warning');

    // A message of 501 characters shows the validation error by the input.
    await say(alice, 'x'.repeat(501), { fails: true });
    await alice.getByTestId('send-error').filter({ hasText: 'text must be at most 500 characters long' }).waitFor();

    // The server restarts on the same port: both pages reconnect by themselves.
    const addr = server.addr;
    await server.stop();
    for (const p of [alice, bob]) await status(p, 'connecting').waitFor();
    server = await startExample(addr);
    for (const p of [alice, bob]) await status(p, 'open').waitFor({ timeout: 40000 });

    // They re-joined lobby: chat goes on without clicking anything.
    await say(bob, 'back again');
    await alice.getByTestId('messages').locator('li', { hasText: 'back again' }).waitFor();
    assert.equal(await alice.getByTestId('recovery').isVisible(), false, 'nothing was missed across the restart: no warning');
    await say(alice, 'welcome back');
    await bob.getByTestId('messages').locator('li', { hasText: 'welcome back' }).waitFor();

    // An admin's announcement reaches everyone.
    const root = await (await browser.newContext()).newPage();
    root.setDefaultTimeout(WAIT);
    await signIn(root, base, 'root', 'admin');
    await root.getByTestId('announce-text').fill('maintenance at noon');
    await root.getByTestId('announce-submit').click();
    for (const p of [alice, bob, root]) await p.getByTestId('announcements').filter({ hasText: 'maintenance at noon' }).waitFor();

    mkdirSync(artifacts, { recursive: true });
    await alice.screenshot({ path: path.join(artifacts, 'example-chat.png'), fullPage: true });
  } finally {
    await server.stop();
  }
});

test('with tokens of 2 s the page keeps its session across several lifetimes, refreshing in-band', async () => {
  browser ??= await launch();
  const server = await startExample('127.0.0.1:0', '-token-ttl', '2s');
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(WAIT);
    let logins = 0;
    page.on('request', (req) => { if (req.url().endsWith('/api/login')) logins++; });
    await signIn(page, `http://${server.addr}/`, 'alice');
    await join(page, 'lobby');
    const session = await page.evaluate(() => /** @type {any} */ (window).ginws.session);
    // The sign-in, the first connection and one refresh per lifetime.
    const deadline = Date.now() + 30000;
    while (logins < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(logins >= 5, `${logins} logins`);
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).ginws.session), session, 'the same session');
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).ginws.lastClose), null, 'never closed');
    await say(page, 'still here');
    await page.getByTestId('messages').locator('li', { hasText: 'still here' }).waitFor();
  } finally {
    await server.stop();
  }
});

test('an image shared in a room reaches the other page intact; one too large is refused in words', async () => {
  await twoUsers([], async ({ alice, bob }) => {
    // A 1x1 PNG: the other page decodes it, so its bytes arrived intact.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');
    // The hidden input is reached with the keyboard, and the choice is shown.
    await alice.getByTestId('send-text').focus();
    await alice.keyboard.press('Tab');
    await alice.keyboard.press('Tab');
    assert.equal(await alice.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'share-file', 'Tab reaches the file input');
    await alice.getByTestId('share-file').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: png });
    await alice.locator('#share-chosen', { hasText: 'dot.png' }).waitFor();
    await alice.getByTestId('share-submit').click();
    const img = bob.getByTestId('shared-image');
    await img.waitFor();
    await bob.waitForFunction(() => /** @type {HTMLImageElement} */ (document.querySelector('[data-testid="shared-image"]')).naturalWidth === 1);
    assert.equal(await img.getAttribute('alt'), 'an image shared by alice');

    await alice.getByTestId('share-file').setInputFiles({ name: 'big.png', mimeType: 'image/png', buffer: Buffer.alloc(60 << 10) });
    await alice.getByTestId('share-submit').click();
    await alice.getByTestId('share-error').filter({ hasText: 'at most 48 KiB' }).waitFor();
  });
});

test('a page waiting to reconnect gets back at once: "reconnect now", and when the network returns', async () => {
  browser ??= await launch();
  const server = await startExample('127.0.0.1:0');
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(WAIT);
    await signIn(page, `http://${server.addr}/`, 'alice');
    await join(page, 'lobby');
    const button = page.getByTestId('reconnect-now');
    assert.equal(await button.isVisible(), false, 'no button while connected');
    for (const how of ['button', 'online']) {
      // The connection drops while logins fail, and the next attempt is a
      // minute away: only an immediate reconnect gets back within WAIT.
      await page.route('**/api/login', (route) => route.abort());
      await page.evaluate(() => {
        const c = /** @type {any} */ (window).ginws;
        c._o.baseDelay = 60000;
        c._o.random = () => 0.99;
        c._ws.close(3000, 'network cut');
      });
      await page.getByTestId('status').filter({ hasText: /reconnecting in [1-9]\d s/ }).waitFor();
      // The countdown is shown but not in the live region, which a screen
      // reader would otherwise read out every second.
      assert.equal(await page.getByTestId('status').getByRole('status').textContent(), 'Offline · reconnecting');
      await page.unroute('**/api/login');
      if (how === 'button') {
        await button.click();
      } else {
        await page.context().setOffline(true);
        await page.context().setOffline(false);
      }
      await status(page, 'open').waitFor();
      assert.equal(await button.isVisible(), false, `${how}: the button goes once connected`);
    }
  } finally {
    await server.stop();
  }
});

for (const [name, start] of [['one Redis', startRedis], ['a Redis Cluster', startRedisCluster]]) {
  test(`two processes sharing ${name}: a page on each chats in the same room`, async () => {
    browser ??= await launch();
    const redis = await start();
    const nodes = [];
    try {
      nodes.push(await startExample('127.0.0.1:0', ...redis.flags));
      nodes.push(await startExample('127.0.0.1:0', ...redis.flags));
      const [alice, bob] = [await (await browser.newContext()).newPage(), await (await browser.newContext()).newPage()];
      for (const p of [alice, bob]) p.setDefaultTimeout(WAIT);
      await signIn(alice, `http://${nodes[0].addr}/`, 'alice');
      await signIn(bob, `http://${nodes[1].addr}/`, 'bob');
      await join(alice, 'lobby');
      await join(bob, 'lobby');
      await alice.getByTestId('presence').locator('li', { hasText: 'bob' }).waitFor();
      await say(alice, 'from node one');
      await bob.getByTestId('messages').locator('li', { hasText: 'from node one' }).waitFor();
      await say(bob, 'from node two');
      await alice.getByTestId('messages').locator('li', { hasText: 'from node two' }).waitFor();
    } finally {
      for (const n of nodes) await n.stop();
      await redis.stop();
    }
  });
}

test('with -compress Chromium negotiates permessage-deflate, and a long message goes through compressed both ways', async () => {
  const handshakes = [];
  await twoUsers(['-compress'], async ({ alice, bob }) => {
    const ext = handshakes.map((h) => h['Sec-WebSocket-Extensions'] ?? h['sec-websocket-extensions'] ?? '');
    assert.ok(ext.some((e) => e.includes('permessage-deflate')), `extensions: ${JSON.stringify(ext)}`);
    // Chromium compresses what it sends; the hub compresses events of 256
    // bytes or more.
    const long = 'compressed '.repeat(40).trim();
    await say(alice, long);
    await messages(bob).filter({ hasText: long }).waitFor();
  }, async (alice) => {
    const cdp = await alice.context().newCDPSession(alice);
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => handshakes.push(e.response.headers));
  });
});

/** Collects what a page logs as an error: console errors, uncaught exceptions, failed loads. */
function problems(page) {
  const seen = [];
  page.on('console', (m) => { if (m.type() === 'error') seen.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => seen.push(`exception: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) seen.push(`${r.status()} ${r.url()}`); });
  return seen;
}

/** Whether the page is wider than its viewport (it scrolls sideways). */
const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

for (const [label, viewport] of [['a phone (390x844)', { width: 390, height: 844 }], ['a desktop (1280x800)', { width: 1280, height: 800 }]]) {
  test(`on ${label}: no console errors, nothing wider than the screen, Enter sends, blank messages refused`, async () => {
    browser ??= await launch();
    const server = await startExample('127.0.0.1:0');
    try {
      const page = await (await browser.newContext({ viewport })).newPage();
      page.setDefaultTimeout(WAIT);
      const seen = problems(page);
      await signIn(page, `http://${server.addr}/`, 'alice');
      // The page lands in the default room by itself.
      await page.locator('#rooms li[data-room="lobby"]').waitFor();
      assert.equal(await page.locator('#room-title').textContent(), '# lobby');
      assert.equal(await overflows(page), false, 'the signed-in page fits');
      // The message box is in view without scrolling: the messages, not
      // the page, take the height that is left.
      const composer = await page.getByTestId('send-text').boundingBox();
      assert.ok(composer && composer.y >= 0 && composer.y + composer.height <= viewport.height,
        `the message box is within the ${viewport.height} px screen: ${JSON.stringify(composer)}`);
      assert.equal(await page.evaluate(() => document.documentElement.scrollHeight <= innerHeight), true, 'the page does not scroll');

      // Enter sends; Shift+Enter makes a new line.
      const box = page.getByTestId('send-text');
      await box.fill('sent with Enter');
      await box.press('Enter');
      await page.getByTestId('messages').locator('li.mine', { hasText: 'sent with Enter' }).waitFor();
      assert.equal(await box.inputValue(), '', 'the box empties once sent');
      await box.pressSequentially('line one');
      await box.press('Shift+Enter');
      await box.pressSequentially('line two');
      assert.equal(await box.inputValue(), 'line one\nline two', 'Shift+Enter is a new line, not a send');
      await box.press('Enter');
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="messages"] li .text')].some((e) => e.textContent === 'line one\nline two'));

      // A blank message is refused by the page, and by the server too.
      await box.fill('   \n  ');
      await page.getByTestId('send-submit').click();
      await page.getByTestId('send-error').filter({ hasText: 'must not be blank' }).waitFor();
      const refused = await page.evaluate(() => /** @type {any} */ (window).ginws.request('chat.send', { room: 'lobby', text: ' \t ' })
        .then(() => null, (e) => ({ code: e.code, fields: e.fields })));
      assert.deepEqual(refused, { code: 'validation_failed', fields: [{ field: 'text', rule: 'notblank', message: 'text must not be blank' }] });
      assert.deepEqual(await messages(page).allTextContents(), ['sent with Enter', 'line one\nline two'], 'no blank line was delivered');

      // A 300-character word wraps instead of widening the page.
      const word = 'w'.repeat(300);
      await say(page, word);
      await page.getByTestId('messages').locator('li', { hasText: word }).waitFor();
      assert.equal(await overflows(page), false, 'a long word does not widen the page');

      // The room field's pattern compiles (no console error) and checks names.
      const validity = await page.evaluate(() => {
        const input = /** @type {HTMLInputElement} */ (document.querySelector('[data-testid="join-room"]'));
        const check = (v) => { input.value = v; return input.validity.patternMismatch; };
        const r = { bad: check('no spaces'), good: check('team/dev.ops:1-a_b') };
        input.value = '';
        return r;
      });
      assert.deepEqual(validity, { bad: true, good: false });

      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, `example-chat-${viewport.width}.png`) });
      assert.deepEqual(seen, [], 'nothing went wrong on the page');
    } finally {
      await server.stop();
    }
  });
}

test('while reconnecting: sends wait and go, a failed recovery reloads the history, the warning goes after a recovery', async () => {
  browser ??= await launch();
  const server = await startExample('127.0.0.1:0');
  try {
    const base = `http://${server.addr}/`;
    const [alice, bob] = [await (await browser.newContext()).newPage(), await (await browser.newContext()).newPage()];
    for (const p of [alice, bob]) p.setDefaultTimeout(WAIT);
    await signIn(alice, base, 'alice');
    await signIn(bob, base, 'bob');
    for (const p of [alice, bob]) await p.getByTestId('presence').locator('li', { hasText: 'alice' }).waitFor();
    await bob.getByTestId('presence').locator('li', { hasText: 'bob' }).waitFor();
    await alice.getByTestId('presence').locator('li', { hasText: 'bob' }).waitFor();

    // bob's message clears "bob is typing" at once, not 3 s later.
    await bob.getByTestId('send-text').pressSequentially('hel');
    await alice.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor();
    await say(bob, 'hello');
    await alice.getByTestId('messages').locator('li', { hasText: 'hello' }).waitFor();
    assert.equal(await alice.getByTestId('typing').textContent(), '', 'the message ends the typing indicator');

    /** Cuts alice's connection; she stays away until back() (her token provider fails meanwhile). */
    const away = async ({ staleEpoch = false } = {}) => {
      await alice.route('**/api/login', (route) => route.abort());
      await alice.evaluate((stale) => {
        const c = /** @type {any} */ (window).ginws;
        // As if the server had lost the room's history: it cannot replay.
        if (stale) c._rooms.get('lobby').epoch = 'stale';
        c._ws.close(3000, 'network cut');
      }, staleEpoch);
      await status(alice, 'connecting').waitFor();
    };
    const back = async () => {
      await alice.unroute('**/api/login');
      await status(alice, 'open').waitFor({ timeout: 40000 });
    };
    const bobSends = (texts) => bob.evaluate(async (list) => {
      for (const text of list) await /** @type {any} */ (window).ginws.request('chat.send', { room: 'lobby', text });
    }, texts);

    // A message written while away waits, then goes: no time-out, no error.
    await away();
    await alice.getByTestId('send-text').fill('written while away');
    await alice.getByTestId('send-text').press('Enter');
    await alice.getByTestId('outbox').locator('li', { hasText: 'written while away' }).waitFor();
    assert.equal(await alice.getByTestId('send-text').inputValue(), '', 'the box is free for the next one');
    await back();
    await bob.getByTestId('messages').locator('li', { hasText: 'written while away' }).waitFor();
    await alice.getByTestId('outbox').locator('li').waitFor({ state: 'detached' });
    assert.equal(await alice.getByTestId('send-error').textContent(), '');

    // Recovery fails, but the history holds what was missed: it is reloaded,
    // each message once, and there is nothing to warn about.
    await away({ staleEpoch: true });
    await bobSends(['missed one', 'missed two']);
    await back();
    await alice.getByTestId('messages').locator('li', { hasText: 'missed two' }).waitFor();
    assert.deepEqual(await messages(alice).allTextContents(), ['hello', 'written while away', 'missed one', 'missed two']);
    assert.equal(await alice.getByTestId('recovery').isVisible(), false, 'nothing is missing: no warning');

    // More was missed than the page reloads (200, the most chat.history
    // answers): the warning says how many are not shown...
    await away({ staleEpoch: true });
    await bobSends(Array.from({ length: 205 }, (_, i) => `flood ${i + 1}`));
    await back();
    await alice.getByTestId('recovery').filter({ hasText: 'Reconnected to #lobby: 5 earlier messages are not shown.' }).waitFor();
    await alice.getByTestId('messages').locator('li', { hasText: 'flood 205' }).waitFor();
    const texts = await messages(alice).allTextContents();
    assert.ok(!texts.includes('flood 5') && texts.includes('flood 6'), 'the 200 newest were reloaded, once each');
    assert.equal(texts.filter((t) => t.startsWith('flood ')).length, 200);

    // ...until a later recovery replays everything missed: then it goes.
    await away();
    await bobSends(['after the flood']);
    await back();
    await alice.getByTestId('messages').locator('li', { hasText: 'after the flood' }).waitFor();
    await alice.getByTestId('recovery').waitFor({ state: 'hidden' });
  } finally {
    await server.stop();
  }
});

test('the admin view: figures move while messages flow, members of a room, a user disconnected', async () => {
  await twoUsers([], async ({ base, alice, bob }) => {
    const admin = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    admin.setDefaultTimeout(WAIT);
    const seen = problems(admin);
    await admin.goto(`${base}admin`);
    await admin.getByTestId('login-user').fill('root');
    await admin.getByTestId('login-submit').click();
    await status(admin, 'open').waitFor();
    await admin.waitForFunction(() => Number(document.querySelector('[data-testid="figure-connections"]').dataset.value) === 2);
    await admin.locator('[data-testid="room-list"] tr[data-room="lobby"]').waitFor();
    const total = () => admin.getByTestId('figure-deliveries').getAttribute('data-total').then(Number);
    const before = await total();
    for (let i = 0; i < 5; i++) await say(i % 2 ? bob : alice, `flowing ${i}`);
    // Each message reaches both pages: ten deliveries at least.
    await admin.waitForFunction((n) => Number(document.querySelector('[data-testid="figure-deliveries"]').dataset.total) >= n, before + 10);
    assert.ok(await admin.locator('[data-testid="chart-deliveries"] polyline').count() === 1, 'a chart is drawn');
    // Its scale is HTML, not text stretched with the SVG.
    assert.match(await admin.locator('[data-testid="chart-deliveries"] .chart-max').textContent(), /^max \d+$/);
    assert.equal(await admin.locator('[data-testid="chart-deliveries"] svg text').count(), 0);

    await admin.locator('[data-testid="room-list"] tr[data-room="lobby"] button').click();
    await admin.getByTestId('members').locator('li[data-user="alice"]').waitFor();
    await admin.getByTestId('disconnect-bob').click();
    await status(bob, 'closed').waitFor();
    assert.match(await bob.getByTestId('status').textContent(), /administrator/);
    // Kicked for good, the page no longer looks alive: nobody "here now",
    // nothing to click that could not work, and the reason in words.
    assert.equal(await bob.getByTestId('presence').locator('li').count(), 0, 'no one is shown here');
    for (const id of ['send-submit', 'join-submit', 'share-submit']) {
      assert.equal(await bob.getByTestId(id).isDisabled(), true, `${id} is disabled`);
    }
    assert.match(await bob.getByTestId('send-error').textContent(), /^An administrator disconnected you: .*Reload/);
    await admin.getByTestId('members').locator('li[data-user="bob"]').waitFor({ state: 'detached' });
    await admin.getByTestId('close-codes').locator('li[data-code="4403"]').waitFor();
    await admin.waitForFunction(() => Number(document.querySelector('[data-testid="figure-connections"]').dataset.value) === 1);

    // A member's token gets no figures.
    const refused = await alice.evaluate(async () => {
      const login = await fetch('/api/login', { method: 'POST', body: JSON.stringify({ user: 'alice', role: 'member' }) }).then((r) => r.json());
      return (await fetch('/api/admin/stats', { headers: { Authorization: `Bearer ${login.token}` } })).status;
    });
    assert.equal(refused, 403);

    mkdirSync(artifacts, { recursive: true });
    await admin.screenshot({ path: path.join(artifacts, 'example-admin.png'), fullPage: true });
    assert.deepEqual(seen, [], 'nothing went wrong on the admin page');
  });
});
