// Drives the console in Debian's headless Chromium (playwright-core, no browser download) for
// tests/api/console_browser.rs, as a person would with the keyboard, 360 px wide.
//
// Environment: BASE (the service, http://127.0.0.1:<port>), TOKEN (scope camara-webrtc:network),
// CHROMIUM (the executable), SHOTS (a directory for a screenshot of each state).
// It speaks JSON lines: it writes {"step":"live"} once the console is live, reads
// {"session":"<id>"} (a call the test then created through the API), and writes
// {"step":"done","observed":{...}} — or {"step":"failed","error":"..."} and exits 1.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const { BASE, TOKEN, CHROMIUM, SHOTS } = process.env;
const WAIT = { timeout: 30000 };
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const shots = [];
const problems = [];

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 360, height: 780 } });
page.on('console', (message) => {
  if (message.type() === 'error' && !message.text().includes('favicon')) problems.push(message.text());
});
page.on('pageerror', (error) => problems.push(String(error)));

async function shot(name) {
  const path = `${SHOTS}/${shots.length + 1}-${name}.png`;
  await page.screenshot({ path, fullPage: true });
  shots.push(path);
}

// What the page shows of the session `id`: its row, its detail, timeline and deliveries.
const look = (id) => page.evaluate((id) => {
  const row = document.querySelector(`#sessions tr[data-session="${id}"]`);
  const text = (node) => node && node.textContent.trim();
  return {
    row: row && [...row.cells].slice(1, 4).map(text),
    detailStatus: document.querySelector('#detail-facts').dataset.status || null,
    moves: [...document.querySelectorAll('#moves button')].map(text),
    timeline: [...document.querySelectorAll('#timeline li')].map((li) => text(li.querySelector('.status'))),
    deliveries: [...document.querySelectorAll('#deliveries tr[data-event]')].map((tr) => ({
      event: tr.dataset.event,
      type: tr.dataset.type,
      outcome: tr.dataset.outcome,
      http: text(tr.cells[3]),
      attempts: text(tr.cells[4]),
    })).sort((a, b) => a.event.localeCompare(b.event)),
    fitsWidth: document.documentElement.scrollWidth <= window.innerWidth,
  };
}, id);

// Focuses `selector` and presses Enter: what a keyboard user does.
async function press(selector) {
  await page.focus(selector);
  await page.keyboard.press('Enter');
}

try {
  await page.goto(`${BASE}/console`);
  await page.focus('#token');
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#live[data-state="live"]', WAIT);
  await page.waitForSelector('#sessions tr[data-session]', WAIT);
  const stored = await page.evaluate(() => ({
    kept: Object.keys(sessionStorage),
    url: location.href,
    cookies: document.cookie,
  }));
  await shot('live');
  say({ step: 'live' });

  const { value } = await lines.next();
  const { session: id } = JSON.parse(value);
  const row = `#sessions tr[data-session="${id}"]`;
  await page.waitForSelector(row, WAIT);
  const appeared = await look(id);
  await shot('call-appeared');

  await press(`${row} button`);
  await page.waitForSelector('#moves button[data-move="Ringing"]', WAIT);
  await press('#moves button[data-move="Ringing"]');
  await page.waitForSelector(`${row} td[data-status="Ringing"]`, WAIT);
  await page.waitForFunction(() => document.querySelectorAll(
    '#deliveries tr[data-type="session-status"][data-outcome="delivered"]').length === 1, null, WAIT);
  const ringing = await look(id);
  await shot('ringing');

  // With Tab alone from the reason field to the fifth move, Connected; the records it causes
  // redraw the page, and the focus stays on the Connected button drawn anew.
  await page.focus('#move-reason');
  for (let i = 0; i < 5; i += 1) await page.keyboard.press('Tab');
  const focused = () => page.evaluate(() => document.activeElement.dataset.focus || null);
  const tabbedTo = await focused();
  await page.keyboard.press('Enter');
  await page.waitForSelector(`${row} td[data-status="Connected"]`, WAIT);
  await page.waitForFunction(() => document.querySelectorAll(
    '#deliveries tr[data-type="session-status"][data-outcome="delivered"]').length === 2, null, WAIT);
  const connected = await look(id);
  const keyboard = { tabbedTo, afterRecords: await focused() };
  await shot('connected');
  // The same state on a desktop-sized page: README's docs/console.png is a copy of this one.
  await page.setViewportSize({ width: 1100, height: 1250 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/readme.png` });
  await page.setViewportSize({ width: 360, height: 780 });

  await press('#show-sdp');
  await page.waitForSelector('#sdp:not([hidden])', WAIT);
  const sdp = await page.evaluate(() => ({
    offer: document.querySelector('#sdp-offer').textContent,
    answer: document.querySelector('#sdp-answer').textContent,
  }));
  await shot('sdp');

  // The form places an incoming call to Bob's registered phone; the page selects it.
  await page.fill('#call-to', 'tel:+17085854000');
  await press('#call-form button[type="submit"]');
  await page.waitForFunction((id) => {
    const shown = document.querySelector('#detail-id').textContent;
    return shown && shown !== id && document.querySelectorAll(
      '#deliveries tr[data-type="session-invitation"][data-outcome="delivered"]').length === 1;
  }, id, WAIT);
  const placedId = await page.evaluate(() => document.querySelector('#detail-id').textContent);
  const placed = { id: placedId, ...(await look(placedId)) };
  await shot('incoming-call');
  say({
    step: 'done',
    observed: { stored, appeared, ringing, connected, keyboard, sdp, placed, problems },
    shots,
  });
  await browser.close();
} catch (error) {
  await shot('failure').catch(() => {});
  say({ step: 'failed', error: String(error && error.stack || error), problems, shots });
  await browser.close().catch(() => {});
  process.exit(1);
}
