// The feed service's widget in a real browser (Debian's Chromium, driven by playwright-core):
// `igdisplay feeds serve` on one origin, against `igdisplay mock serve`; a host page on another
// origin with a strict Content Security Policy embeds two feeds (a grid and a carousel). The
// tiles paint their BlurHash placeholders, the lightbox opens and moves with the keyboard, a
// video plays, a page on an origin the feed does
// not allow gets no feed, nothing sets a cookie or asks another host, and axe-core finds no
// serious or critical accessibility violation. Everything stays on 127.0.0.1.
//
// Run by `cargo xtask ci` (which builds the CLI first) or by hand:
//   cargo build -p igdisplay-cli && (cd crates/igdisplay-feeds/e2e && npm ci && npm test)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { decode as blurhashDecode } from 'blurhash';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const binary = process.env.IGDISPLAY_BIN ?? join(root, 'target/debug/igdisplay');
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const children = [];
const hosts = [];
let dir;
let mock;
let service;
let adminToken;
let browser;
let grid;
let carousel;
let hostAllowed;
let hostOther;

// Runs the CLI with `args` and resolves with its first line of output, the process kept.
function start(args, env, log = 'inherit') {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', log], env });
  children.push(child);
  return new Promise((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolvePromise(line));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

function run(args, env) {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  child.stdout.on('data', (chunk) => { out += chunk; });
  return new Promise((resolvePromise, reject) => {
    child.once('exit', (code) => (code === 0 ? resolvePromise(out.trim()) : reject(new Error(`${args.join(' ')}: ${code}`))));
  });
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

// A host page server on its own origin (`port`, or a free one): the page at / with a strict
// policy that names only the service.
async function host(body, port = 0) {
  const server = createServer((request, response) => {
    if (request.url !== '/') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': [
        "default-src 'none'",
        `script-src ${service}`,
        `connect-src ${service}`,
        `img-src ${service}`,
        `media-src ${service}`,
        "style-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
      ].join('; '),
    });
    response.end(body);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  hosts.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

function page(feeds) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Café Nova</title>
<script src="${service}/v1/widget.js"></script></head>
<body><main><h1>Café Nova</h1>${feeds}</main></body></html>`;
}

async function admin(method, path, body) {
  const response = await fetch(`${service}/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status}`);
  return response.json();
}

// Creates a feed and connects `username` through its link, in the browser, as the account's
// owner would.
async function connectedFeed(name, username, settings) {
  const created = await admin('POST', '/feeds', { name, settings });
  const context = await browser.newContext();
  const tab = await context.newPage();
  await tab.goto(created.connect_url);
  await tab.waitForURL((url) => url.href.startsWith(`${mock}/oauth/authorize`));
  await tab.click(`text=Continue as @${username}`);
  await tab.waitForSelector('text=Connected');
  await context.close();
  return created.feed.id;
}

async function fresh(id) {
  for (let attempt = 0; attempt < 120; attempt += 1) {
    const answer = await (await fetch(`${service}/v1/feeds/${id}`)).json();
    if (answer.state === 'fresh' && answer.items.length > 0) return answer;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`feed ${id} did not sync`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'igdisplay-feeds-e2e-'));
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('IGDISPLAY_')) delete env[name];
  env.IGDISPLAY_STORE = `sqlite:${join(dir, 'feeds.db')}`;
  env.IGDISPLAY_PLATFORM = 'instagram-login';
  // The mock's request log stays out of the test's output.
  const line = await start(['mock', 'serve', '--addr', '127.0.0.1:0'], env, 'ignore');
  mock = line.slice(line.indexOf('http'));
  env.IGDISPLAY_STORE_KEYS = await run(['store', 'generate-key', '--id', 'k1'], env);
  adminToken = await run(['feeds', 'admin-token', '--label', 'e2e'], env);
  const port = await freePort();
  service = `http://127.0.0.1:${port}`;
  const listening = await start(['--mock', mock, 'feeds', 'serve', '--addr', `127.0.0.1:${port}`,
    '--public-url', service, '--out', join(dir, 'mirror'), '--idle', '1'], env);
  assert.equal(listening, `feeds: listening on ${service}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--autoplay-policy=no-user-gesture-required'],
  });
  // The grid's feed allows the host's origin alone; the host's port is chosen first.
  const hostPort = await freePort();
  grid = await connectedFeed('Café Nova', 'cafe_nova', { allowed_origins: [`http://127.0.0.1:${hostPort}`] });
  carousel = await connectedFeed('Jay', 'jayposiris', { max_posts: 12 });
  await fresh(grid);
  await fresh(carousel);
  const body = page(`<h2>Grid</h2><ig-feed id="grid" feed="${grid}" layout="grid" columns="3"></ig-feed>
<h2>Carousel</h2><ig-feed id="carousel" feed="${carousel}" layout="carousel" columns="4"></ig-feed>`);
  hostAllowed = await host(body, hostPort);
  hostOther = await host(page(`<ig-feed id="grid" feed="${grid}"></ig-feed>`));
});

after(async () => {
  await browser?.close();
  for (const server of hosts) server.close();
  for (const child of children) child.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// A page of the host, watched: errors, CSP violations, and every request's origin.
async function open(origin, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  const tab = await context.newPage();
  const problems = [];
  const origins = new Set();
  tab.on('pageerror', (e) => problems.push(String(e)));
  tab.on('console', (m) => { if (/Content Security Policy|Refused/.test(m.text())) problems.push(m.text()); });
  tab.on('request', (r) => origins.add(new URL(r.url()).origin));
  await tab.goto(origin);
  return { context, tab, problems, origins };
}

const shadow = (id, selector) => `#${id} >> ${selector}`;

test('the grid and the carousel render on a strict page, asking nothing but the service', async () => {
  const { context, tab, problems, origins } = await open(hostAllowed);
  await tab.waitForSelector(shadow('grid', 'ul.grid > li'));
  await tab.waitForSelector(shadow('carousel', 'ul.carousel > li'));
  const tiles = await tab.locator(shadow('grid', 'ul.grid > li')).count();
  assert.ok(tiles >= 3, `${tiles} tiles`);
  assert.ok(await tab.locator(shadow('carousel', 'ul.carousel > li')).count() >= 4);
  // Every picture of the grid really loads.
  await tab.waitForFunction(() => [...document.querySelector('#grid').shadowRoot.querySelectorAll('img')]
    .every((img) => img.complete && img.naturalWidth > 0));
  assert.equal(await tab.locator('#grid').getAttribute('data-state'), 'fresh');
  assert.deepEqual(problems, []);
  assert.deepEqual([...origins].sort(), [hostAllowed, service].sort());
  assert.deepEqual(await context.cookies(), [], 'no cookie');
  await context.close();
});

test('each tile paints its post\'s BlurHash, as the reference decoder does, under its picture', async () => {
  const { context, tab, problems } = await open(hostAllowed);
  await tab.waitForSelector(shadow('carousel', 'ul.carousel > li canvas'));
  const painted = await tab.evaluate(() => [...document.querySelector('#carousel').shadowRoot.querySelectorAll('.tile')]
    .map((tile) => {
      const canvas = tile.querySelector('canvas');
      const below = canvas && tile.firstElementChild === canvas && tile.querySelector('img') !== null;
      return canvas && below ? [...canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data] : null;
    }));
  const feed = await (await fetch(`${service}/v1/feeds/${carousel}`)).json();
  assert.ok(painted.length >= 4, `${painted.length} tiles`);
  for (const [n, pixels] of painted.entries()) {
    const hash = feed.items[n].image.blurhash;
    assert.ok(hash && pixels, `tile ${n}: a hash (${hash}) and a canvas under the picture`);
    const expected = blurhashDecode(hash, 32, 32);
    assert.equal(pixels.length, expected.length);
    const off = pixels.findIndex((value, i) => Math.abs(value - expected[i]) > 1);
    assert.equal(off, -1, `tile ${n}: byte ${off} is ${pixels[off]}, the reference ${expected[off]}`);
  }
  assert.deepEqual(problems, []);
  await context.close();
});

test('the lightbox opens, moves with the keyboard, keeps focus and gives it back', async () => {
  const { context, tab, problems } = await open(hostAllowed);
  const first = tab.locator(shadow('grid', 'ul.grid > li:first-child button'));
  await first.click();
  const dialog = tab.locator(shadow('grid', '[role=dialog]'));
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await tab.evaluate(() => document.querySelector('#grid').shadowRoot.activeElement?.className), 'close');
  const position = () => tab.locator(shadow('grid', '[role=dialog] .sr')).textContent();
  assert.match(await position(), /^Post 1 of \d+$/);
  await tab.keyboard.press('ArrowRight');
  assert.match(await position(), /^Post 2 of \d+$/);
  await tab.keyboard.press('ArrowLeft');
  await tab.keyboard.press('ArrowLeft');
  assert.match(await position(), /^Post (\d+) of \1$/, 'it wraps to the last');
  // Tab stays inside the dialog.
  for (let i = 0; i < 6; i += 1) {
    await tab.keyboard.press('Tab');
    const inside = await tab.evaluate(() => {
      const root = document.querySelector('#grid').shadowRoot;
      return root.querySelector('[role=dialog]').contains(root.activeElement);
    });
    assert.ok(inside, 'focus left the dialog');
  }
  await tab.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await tab.evaluate(() => document.querySelector('#grid').shadowRoot.activeElement
    === document.querySelector('#grid').shadowRoot.querySelector('ul.grid > li:first-child button')), true);
  assert.deepEqual(problems, []);
  await context.close();
});

test('a video plays inline from the service', async () => {
  const { context, tab, problems } = await open(hostAllowed);
  const videoTile = tab.locator(shadow('grid', 'ul.grid > li button:has(.badge)')).filter({ hasText: '▶' }).first();
  await videoTile.click();
  const video = tab.locator(shadow('grid', '[role=dialog] video'));
  await video.waitFor();
  const played = await tab.evaluate(async () => {
    const element = document.querySelector('#grid').shadowRoot.querySelector('video');
    element.muted = true;
    await element.play();
    await new Promise((r) => (element.currentTime > 0 ? r() : element.addEventListener('timeupdate', r, { once: true })));
    return { src: element.currentSrc, playing: !element.paused, time: element.currentTime };
  });
  assert.ok(played.playing && played.time > 0, JSON.stringify(played));
  assert.ok(played.src.startsWith(`${service}/v1/media/`), played.src);
  assert.deepEqual(problems, []);
  await context.close();
});

test('a page on an origin the feed does not allow gets no feed', async () => {
  const { context, tab } = await open(hostOther);
  await tab.waitForFunction(() => document.querySelector('#grid')?.dataset.state === 'error');
  assert.equal(await tab.locator(shadow('grid', 'li')).count(), 0);
  await context.close();
});

test('axe-core finds no serious or critical violation, lightbox open or not', async () => {
  // axe is injected, so this page runs without the host's policy; the policy is tested above.
  const { context, tab } = await open(hostAllowed, { bypassCSP: true });
  await tab.waitForSelector(shadow('grid', 'ul.grid > li'));
  await tab.waitForSelector(shadow('carousel', 'ul.carousel > li'));
  await tab.addScriptTag({ path: axePath });
  const serious = async () => (await tab.evaluate(async () => (await window.axe.run()).violations))
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(await serious(), []);
  await tab.locator(shadow('carousel', 'ul.carousel > li:first-child button')).click();
  await tab.locator(shadow('carousel', '[role=dialog]')).waitFor({ state: 'visible' });
  assert.deepEqual(await serious(), []);
  await context.close();
});
