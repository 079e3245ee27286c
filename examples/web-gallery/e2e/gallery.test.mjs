// The web gallery in a real browser (Debian's Chromium, driven by playwright-core), against the
// example server running an embedded igdisplay mock. Everything stays on 127.0.0.1.
//
// Run by `cargo xtask ci` (which builds the server first) or by hand:
//   cargo build -p web-gallery && (cd examples/web-gallery/e2e && npm ci && npm test)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const binary = process.env.WEB_GALLERY_BIN ?? join(root, 'target/debug/web-gallery');
const screenshot = process.env.GALLERY_SCREENSHOT ?? join(root, 'target/e2e/gallery.png');

let app;
let mock;
let browser;

const servers = [];

// Starts the example with `args` and waits for the addresses it prints: its own, and its
// embedded mock's when it runs one.
async function startServer(args, env = process.env) {
  // Each server keeps its records (owner binding, deletions answered) under target/, never in
  // the checkout.
  if (!args.includes('--records')) {
    args = [...args, '--records', join(root, 'target/e2e', `records-${process.pid}-${servers.length}.json`)];
  }
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  servers.push(child);
  const lines = createInterface({ input: child.stdout });
  const embedsMock = args.includes('--mock');
  let site;
  let itsMock;
  let setup;
  for await (const line of lines) {
    if (line.startsWith('owner setup link')) setup = line.slice(line.indexOf(': ') + 2);
    if (line.startsWith('web-gallery listening on ')) site = line.slice('web-gallery listening on '.length);
    if (line.startsWith('mock Instagram at ')) itsMock = line.slice('mock Instagram at '.length);
    if (site && (itsMock || !embedsMock)) break;
  }
  assert.ok(site, `the server (${args.join(' ')}) printed its address`);
  return { site, mock: itsMock, setup };
}

before(async () => {
  ({ site: app, mock } = await startServer(['--mock', '--addr', '127.0.0.1:0']));
  assert.ok(app && mock, 'the server printed its addresses');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  for (const child of servers) child.kill();
});

async function freshPage() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
  return { context, page, errors };
}

test('log in, browse the gallery and an album, load more, log out', async () => {
  const { context, page, errors } = await freshPage();
  await page.goto(app);
  await page.click('#login');
  // The mock's authorization window.
  await page.waitForURL((url) => url.href.startsWith(`${mock}/oauth/authorize`));
  assert.match(await page.textContent('h1'), /would like to access your Instagram account/);
  await page.click('text=Continue as @jayposiris');
  // Browsers keep Instagram's `#_` across the site's redirect; the URL is otherwise clean.
  await page.waitForURL((url) => url.href.startsWith(`${app}/gallery`));
  assert.doesNotMatch(page.url(), /code=|state=/);

  assert.equal(await page.textContent('#username'), '@jayposiris');
  assert.equal(await page.textContent('#media-count'), '40');
  assert.equal(await page.locator('#grid > li').count(), 12);
  assert.ok(await page.locator('#grid > li.video .play').count() > 0, 'videos carry a play marker');
  // The caption that looks like HTML is shown as text, and nothing ran.
  const caption = page.locator('.caption', { hasText: "<script>alert('caption')</script> is just text" });
  assert.ok((await caption.count()) >= 1, 'the caption is shown as text');
  assert.equal(await caption.first().textContent(), "<script>alert('caption')</script> is just text");
  assert.equal(await page.locator('script').count(), 0);
  assert.ok((await page.locator('.caption', { hasText: '🌅' }).count()) > 0, 'emoji intact');
  // Images really load from the mock's CDN.
  const loaded = await page.locator('#grid img').first().evaluate((img) => img.complete && img.naturalWidth > 0);
  assert.ok(loaded, 'the first image loaded');

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot });

  // An album opens to its items.
  const album = page.locator('#grid > li.album').first();
  const expected = Number(await album.getAttribute('data-children'));
  assert.ok(expected >= 2);
  await album.locator('a.open').click();
  await page.waitForURL(/\/album\//);
  assert.equal(await page.locator('#album > li').count(), expected);
  await page.click('#back');

  await page.click('#load-more');
  await page.waitForURL(/after=/);
  assert.equal(await page.locator('#grid > li').count(), 12);
  const firstOfSecondPage = await page.locator('#grid > li').first().getAttribute('data-id');
  assert.ok(firstOfSecondPage);

  await page.click('#logout');
  await page.waitForURL((url) => url.pathname === '/' && url.origin === app);
  assert.equal(await page.locator('#login').count(), 1);
  assert.deepEqual(errors, []);
  await context.close();
});

test('cancelling in the window shows a friendly message', async () => {
  const { context, page, errors } = await freshPage();
  await page.goto(app);
  await page.click('#login');
  await page.waitForURL((url) => url.href.startsWith(`${mock}/oauth/authorize`));
  await page.click('#cancel');
  await page.waitForURL((url) => url.pathname === '/' && url.origin === app);
  assert.match(await page.textContent('#notice'), /You cancelled the login/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a signed data-deletion request is answered and its status page is shown', async () => {
  // The mock signs a request with the app secret and posts it to the site, as Meta would.
  const delivered = await fetch(`${mock}/_mock/data_deletion?username=jayposiris`, { method: 'POST' });
  const { status, body } = await delivered.json();
  assert.equal(status, 200);
  const answer = JSON.parse(body);
  assert.match(answer.confirmation_code, /^[A-Za-z0-9]+$/);
  assert.ok(answer.url.startsWith(`${app}/deletion?code=`));

  const { context, page } = await freshPage();
  await page.goto(answer.url);
  assert.equal(await page.textContent('#code'), answer.confirmation_code);
  assert.match(await page.textContent('#status'), /Completed: .* we deleted everything we held/);
  await context.close();

  const forged = await fetch(`${app}/data-deletion`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'signed_request=abc.def',
  });
  assert.equal(forged.status, 400);
});

// Two instances on one PostgreSQL database (`cargo xtask ci` makes it): tokens and sessions
// live there, so a login on one instance is served by the other.
const database = process.env.GALLERY_DATABASE_URL;
const noDatabase = !database && !process.env.IGDISPLAY_REQUIRE_POSTGRES && 'no GALLERY_DATABASE_URL';
test('two instances on one PostgreSQL: a login on one is served by the other', { skip: noDatabase }, async () => {
  assert.ok(database, 'IGDISPLAY_REQUIRE_POSTGRES is set but GALLERY_DATABASE_URL is not');
  const env = {
    ...process.env,
    DATABASE_URL: database,
    IGDISPLAY_STORE_KEYS: `browser:${randomBytes(32).toString('base64')}`,
  };
  const first = await startServer(['--mock', '--addr', '127.0.0.1:0'], env);
  const second = await startServer(['--mock-url', first.mock, '--addr', '127.0.0.1:0'], env);
  assert.notEqual(first.site, second.site);

  const { context, page, errors } = await freshPage();
  await page.goto(first.site);
  await page.click('#login');
  await page.waitForURL((url) => url.href.startsWith(`${first.mock}/oauth/authorize`));
  await page.click('text=Continue as @jayposiris');
  await page.waitForURL((url) => url.href.startsWith(`${first.site}/gallery`));
  assert.equal(await page.textContent('#username'), '@jayposiris');

  // The other instance knows the session and holds the token: it serves the gallery.
  await page.goto(`${second.site}/gallery`);
  assert.equal(new URL(page.url()).origin, second.site);
  assert.equal(await page.textContent('#username'), '@jayposiris');
  assert.equal(await page.locator('#grid > li').count(), 12);

  // Logging out on the second instance logs out of the first one too.
  await page.click('#logout');
  await page.waitForURL((url) => url.pathname === '/' && url.origin === second.site);
  await page.goto(`${first.site}/gallery`);
  await page.waitForURL((url) => url.pathname === '/login' || url.href.startsWith(`${first.mock}/oauth/authorize`));
  assert.deepEqual(errors, []);
  await context.close();
});

// Owner mode: the owner connects the site once; anonymous visitors see the feed from the
// site's own mirror, and the browser talks to no host but the site, even after Instagram's
// links expire and after the token is revoked.
test('owner mode: anonymous visitors, every kind of post, load more, an album, expired links and a revoked token', async () => {
  const mirror = join(root, 'target/e2e', `mirror-${process.pid}`);
  const records = join(root, 'target/e2e', `records-${process.pid}.json`);
  const site = await startServer(['--mock', '--owner', '--mirror-dir', mirror, '--records', records, '--addr', '127.0.0.1:0']);

  // The owner connects the account through the one-time setup link printed at start (a
  // login syncs the feed at once); later logins start at /owner.
  assert.ok(site.setup, 'the site printed its setup link');
  const owner = await freshPage();
  const ownerLogsIn = async (through) => {
    if (through) {
      await owner.page.goto(through);
    } else {
      await owner.page.goto(`${site.site}/owner`);
      await owner.page.click('#login');
    }
    await owner.page.waitForURL((url) => url.href.startsWith(`${site.mock}/oauth/authorize`));
    await owner.page.click('text=Continue as @jayposiris');
    await owner.page.waitForURL((url) => url.href.startsWith(`${site.site}/owner`));
  };
  await ownerLogsIn(site.setup);
  assert.match(await owner.page.textContent('#status'), /posts mirrored/);

  // An anonymous visitor, every request of whose browser is recorded.
  const visitor = await freshPage();
  const hosts = new Set();
  visitor.page.on('request', (request) => hosts.add(new URL(request.url()).origin));
  // Every tile shows its picture: an image that has loaded, or a video whose poster loads.
  const expectTilesShown = async (count, list = '#grid') => {
    await visitor.page.waitForFunction(async ([n, selector]) => {
      const tiles = [...document.querySelectorAll(`${selector} > li`)];
      if (tiles.length !== n) return false;
      const shown = await Promise.all(tiles.map((tile) => {
        const img = tile.querySelector('img');
        if (img) return img.complete && img.naturalWidth > 0;
        const video = tile.querySelector('video');
        if (!video || !video.poster) return false;
        return new Promise((resolve) => {
          const probe = new Image();
          probe.onload = () => resolve(probe.naturalWidth > 0);
          probe.onerror = () => resolve(false);
          probe.src = video.poster;
        });
      }));
      return shown.every(Boolean);
    }, [count, list]);
  };
  // Every video in `list` plays from the site: its time advances after play().
  const expectVideosPlay = async (list = '#grid') => {
    const count = await visitor.page.locator(`${list} video`).count();
    for (let i = 0; i < count; i += 1) {
      await visitor.page.evaluate(([selector, n]) => {
        const video = document.querySelectorAll(`${selector} video`)[n];
        return video.play();
      }, [list, i]);
      await visitor.page.waitForFunction(([selector, n]) => document.querySelectorAll(`${selector} video`)[n].currentTime > 0, [list, i]);
      const origin = await visitor.page.evaluate(([selector, n]) => {
        const video = document.querySelectorAll(`${selector} video`)[n];
        video.pause();
        return new URL(video.currentSrc).origin;
      }, [list, i]);
      assert.equal(origin, site.site, 'the video plays from the site');
    }
    return count;
  };
  await visitor.page.goto(site.site);
  await expectTilesShown(12);
  assert.ok((await visitor.page.getAttribute('#grid img >> nth=0', 'alt')) !== null, 'images carry alt text');
  // The first page holds every case of the demo library: videos and reels play inline; the
  // video Meta sent without its file (licensed audio) shows its poster and links to Instagram;
  // the album that opens with a video shows that video's poster; the tall and the wide photo.
  assert.ok(await expectVideosPlay() >= 2, 'the video and the reels play');
  // The live stories, above the grid: a photo and a video that plays.
  await expectTilesShown(2, '#stories');
  assert.equal(await expectVideosPlay('#stories'), 1, 'the video story plays');
  await visitor.page.screenshot({ path: join(root, 'target/e2e/owner-mode.png') });
  const unplayable = visitor.page.locator('#grid > li.video:not(:has(video))');
  assert.equal(await unplayable.count(), 1, 'one video without its file');
  assert.equal(await unplayable.locator('.permalink').textContent(), 'watch on Instagram');
  const shapes = await visitor.page.$$eval('#grid img', (images) => images.map((img) => img.naturalWidth / img.naturalHeight));
  assert.ok(shapes.some((ratio) => ratio > 8) && shapes.some((ratio) => ratio < 1 / 8), `a wide and a tall photo: ${shapes}`);

  // Load more appends, in place.
  await visitor.page.click('#load-more');
  await expectTilesShown(24);
  assert.equal(new URL(visitor.page.url()).pathname, '/');

  // An album opens to its items, with its link; its videos play too.
  const album = visitor.page.locator('#grid > li.album').first();
  await album.locator('a.open').click();
  await visitor.page.waitForURL(/\/album\//);
  const items = await visitor.page.locator('#album > li').count();
  assert.ok(items >= 2);
  await expectTilesShown(items, '#album');
  assert.ok(await expectVideosPlay('#album') >= 1, 'the album\'s video plays');
  await visitor.page.click('#back');

  // Thirty days later every Instagram link has expired (and the example's sessions, which
  // follow the mock's clock): the owner logs in again, which syncs; all images still load.
  await fetch(`${site.mock}/_mock/clock/advance?seconds=${30 * 86400}`, { method: 'POST' });
  await ownerLogsIn();
  assert.match(await owner.page.textContent('#status'), /posts mirrored/);
  await visitor.page.goto(site.site);
  await expectTilesShown(12);
  assert.ok(await expectVideosPlay() >= 2, 'the videos still play');
  assert.equal(await visitor.page.locator('#stories').count(), 0, 'the stories expired');

  // The token revoked: the last good feed is still shown, marked as such.
  await fetch(`${site.mock}/_mock/tokens/revoke`, { method: 'POST', body: JSON.stringify({ username: 'jayposiris' }) });
  await owner.page.click('#sync-now');
  await owner.page.waitForURL((url) => url.pathname === '/owner');
  assert.match(await owner.page.textContent('#status'), /log in again/);
  await visitor.page.goto(site.site);
  await expectTilesShown(12);
  assert.equal(await visitor.page.locator('#stale').count(), 1);

  assert.deepEqual([...hosts], [site.site], 'the visitor\'s browser asked no host but the site');
  assert.deepEqual(visitor.errors, []);
  assert.deepEqual(owner.errors, []);
  await visitor.context.close();
  await owner.context.close();
});
