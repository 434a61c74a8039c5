// A whole meeting in confab's page (issue 8, "Done when"): three people in a call, one on a
// phone-sized window, hold a meeting with a shared screen, chat and a file passed around, and
// look at their connection; every page is then looked at in both sizes the issue names
// (390x844 and 1440x900): nothing runs off the side, the call bar and the shared screen are in
// view, and the page can be used from the keyboard. The screenshots (artifacts/meeting-*.png)
// are for a person to look at after a run.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, receivedDigest, startServer, until, waitForVideoFrom, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-meeting';
/** Three browsers encode on two cores: cameras at 640x360. */
const QUERY = { res: '360' };
const PHONE = { width: 390, height: 844 };
const DESK = { width: 1440, height: 900 };

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @typedef {Awaited<ReturnType<typeof openParticipant>>} Person */
/** @type {Person[]} */
const people = [];

before(async () => {
  watchStalls();
  server = await startServer('meeting');
  browser = await launchBrowser();
  for (const { name, viewport } of [{ name: 'Ada', viewport: DESK }, { name: 'Ben', viewport: DESK }, { name: 'Cy', viewport: PHONE }]) {
    people.push(await openParticipant(browser, server.url, { room: ROOM, name, query: QUERY, viewport }));
  }
  for (const p of people) {
    await p.clickJoin();
    await p.waitJoined();
  }
});

after(async () => {
  for (const p of people) {
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
    await p.close();
  }
  await browser?.close();
  await server?.stop();
});

/** @param {Person} p */
const othersOf = (p) => people.filter((q) => q !== p).map((q) => /** @type {string} */ (q.id));

/**
 * What is wrong with the layout of a page as it is now: elements that run off the window, a
 * page wider than its window, controls too small to touch. Runs in the page.
 */
function layoutProblems() {
  const problems = [];
  const w = window.innerWidth;
  const h = window.innerHeight;
  if (document.documentElement.scrollWidth > w + 1) problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${w} px window`);
  const visible = (/** @type {Element} */ el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const inside = (/** @type {Element} */ el, /** @type {string} */ what) => {
    const r = el.getBoundingClientRect();
    if (r.left < -1 || r.right > w + 1 || r.top < -1 || r.bottom > h + 1) {
      problems.push(`${what} runs off the window: ${Math.round(r.left)},${Math.round(r.top)} to ${Math.round(r.right)},${Math.round(r.bottom)} in ${w}x${h}`);
    }
  };
  for (const b of document.querySelectorAll('#call button')) {
    if (!visible(b) || b.closest('[hidden]')) continue;
    const name = b.getAttribute('aria-label') || b.textContent?.trim() || '';
    if (!name) problems.push(`a button with no name: #${b.id}`);
    const r = b.getBoundingClientRect();
    if (r.width < 24 || r.height < 24) problems.push(`button ${b.id || name} is ${Math.round(r.width)}x${Math.round(r.height)} px`);
    if (b.closest('.controls, #controls, footer')) inside(b, `button ${b.id || name}`);
  }
  for (const sel of ['#spotlight > .tile.screen', '#chat-panel', '#stats-panel']) {
    const el = document.querySelector(sel);
    if (el && visible(el) && !el.closest('[hidden]')) inside(el, sel);
  }
  for (const tile of document.querySelectorAll('#grid > .tile')) {
    const r = tile.getBoundingClientRect();
    if (visible(tile) && (r.left < -1 || r.right > w + 1)) problems.push(`a tile runs off the side: ${Math.round(r.left)} to ${Math.round(r.right)}`);
  }
  return problems;
}

test('three people hold a meeting: video, a shared screen, chat, a file passed around, the stats', { timeout: 150_000 }, async (t) => {
  const [ada, ben, cy] = people;
  for (const p of people) await waitForVideoFrom(p, othersOf(p), 30_000);

  // Ada shares her screen: the others see it large.
  await ada.page.click('#share-button');
  for (const p of [ben, cy]) {
    await until(`${p.name} to show Ada's screen in the spotlight`, async () => (await p.page.getAttribute('#spotlight > .tile.screen', 'data-video-ready').catch(() => null)) === 'true', { timeout: 30_000 });
    assert.equal(await p.page.getAttribute('#tiles', 'data-layout'), 'spotlight', `${p.name}'s layout`);
  }

  // Ben writes, with a link; Cy, chat closed, sees an unread count, then answers.
  await ben.page.click('#chat-button');
  await ben.page.fill('#chat-input', 'Agenda: https://example.com/agenda <b>not bold</b>');
  await ben.page.press('#chat-input', 'Enter');
  await until('Cy\'s unread count', async () => (await cy.page.locator('#chat-unread').innerText().catch(() => '')) === '1', { timeout: 10_000 });
  await cy.page.click('#chat-button');
  const line = cy.page.locator('#chat-log .chat-message').last();
  assert.equal(await line.locator('.chat-name').innerText(), 'Ben');
  assert.equal(await line.locator('.chat-text a').getAttribute('href'), 'https://example.com/agenda');
  assert.equal(await line.locator('.chat-text b').count(), 0, 'the text is shown as text');
  await cy.page.fill('#chat-input', 'Got it, sending my notes');
  await cy.page.press('#chat-input', 'Enter');
  await until('Ben to show Cy\'s answer', async () => (await ben.page.locator('#chat-log').innerText()).includes('Got it, sending my notes'), { timeout: 10_000 });

  // Cy sends a file to the room; Ada and Ben get it intact; Ben passes it on to Ada alone.
  const notes = randomBytes(2 * 1024 * 1024);
  const sha = createHash('sha256').update(notes).digest('hex');
  await cy.page.setInputFiles('#chat-file', { name: 'notes.bin', mimeType: 'application/octet-stream', buffer: notes });
  for (const p of [ada, ben]) {
    const got = await until(`${p.name} to receive notes.bin`, () => p.page.evaluate(receivedDigest, 'notes.bin'), { timeout: 60_000, interval: 300 });
    assert.deepEqual(got, { sha256: sha, size: notes.length, verified: true }, `${p.name} has Cy's notes, byte for byte`);
  }
  await ben.page.selectOption('#chat-to', /** @type {string} */ (ada.id));
  await ben.page.setInputFiles('#chat-file', { name: 'notes-from-ben.bin', mimeType: 'application/octet-stream', buffer: notes });
  const passed = await until('Ada to receive the notes from Ben', () => ada.page.evaluate(receivedDigest, 'notes-from-ben.bin'), { timeout: 60_000, interval: 300 });
  assert.deepEqual(passed, { sha256: sha, size: notes.length, verified: true });
  await ada.page.click('#chat-button');
  assert.equal(await ada.page.locator('#chat-log a.file-save[download="notes-from-ben.bin"]').count(), 1, 'Ada can save the file Ben passed on');

  // Ada looks at her connection.
  await ada.page.click('#stats-button');
  await until('Ada\'s stats panel to show her route and media received', async () => {
    const text = await ada.page.locator('#stats-panel').innerText();
    return /↔/.test(text) && /\d+(\.\d+)?\s*(kbit|Mbit)\/s/.test(text);
  }, { timeout: 15_000 });

  // Everyone still sees everyone after all that.
  for (const p of people) await waitForVideoFrom(p, othersOf(p), 20_000, { from: 'now' });
  t.diagnostic('video from everyone, a shared screen, chat both ways, a file to the room and one passed on, stats: all on three pages');
});

test('every page fits 390x844 and 1440x900 during the meeting, with screenshots', { timeout: 60_000 }, async (t) => {
  for (const p of people) {
    for (const size of [PHONE, DESK]) {
      await p.page.setViewportSize(size);
      // Layout runs on resize; give it a frame or two.
      await p.page.waitForTimeout(300);
      const label = `meeting-${p.name}-${size.width}x${size.height}`;
      await p.screenshot(label);
      const problems = await p.page.evaluate(layoutProblems);
      t.diagnostic(`${label}: ${problems.length ? problems.join('; ') : 'fits'}`);
      assert.deepEqual(problems, [], `${p.name} at ${size.width}x${size.height}`);
    }
  }
  // With the side panels closed too: the call itself, at both sizes.
  const [ada] = people;
  for (const id of ['#stats-close', '#chat-close']) {
    if (await ada.page.locator(id).isVisible()) await ada.page.click(id);
  }
  for (const size of [PHONE, DESK]) {
    await ada.page.setViewportSize(size);
    await ada.page.waitForTimeout(300);
    await ada.screenshot(`meeting-Ada-call-${size.width}x${size.height}`);
    assert.deepEqual(await ada.page.evaluate(layoutProblems), [], `Ada's call at ${size.width}x${size.height}`);
  }
});

test('the call can be used from the keyboard', { timeout: 30_000 }, async () => {
  const cy = people[2];
  await cy.page.setViewportSize(PHONE);
  if (await cy.page.locator('#chat-close').isVisible()) await cy.page.click('#chat-close');
  await cy.page.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.blur());
  // Tab through the page (round it, from wherever the focus starts): every control of the call
  // bar takes the focus, in the order shown.
  /** @type {string[]} */
  const reached = [];
  for (let i = 0; i < 40; i++) {
    await cy.page.keyboard.press('Tab');
    reached.push(await cy.page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName.toLowerCase() || ''));
  }
  const bar = ['mic-button', 'camera-button', 'share-button', 'stats-button', 'chat-button', 'leave-button'];
  const from = reached.indexOf('mic-button');
  assert.ok(from >= 0, `Tab reaches #mic-button: ${reached.join(', ')}`);
  const round = reached.slice(from);
  for (const id of bar) assert.ok(round.includes(id), `Tab reaches #${id}: ${reached.join(', ')}`);
  const order = bar.map((id) => round.indexOf(id));
  assert.deepEqual(order, [...order].sort((a, b) => a - b), `in the order they are shown: ${reached.join(', ')}`);
  // The focused control shows it has the focus.
  await cy.page.focus('#chat-button');
  const outline = await cy.page.evaluate(() => {
    const s = getComputedStyle(/** @type {Element} */ (document.activeElement));
    return { outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0, shadow: s.boxShadow !== 'none' };
  });
  assert.ok(outline.outline || outline.shadow, `the focused button is outlined: ${JSON.stringify(outline)}`);
  // Enter opens the chat, the focus goes to its input; Escape closes it again.
  await cy.page.keyboard.press('Enter');
  await until('the chat panel to open', () => cy.page.locator('#chat-panel').isVisible(), { timeout: 5000 });
  await cy.page.keyboard.type('typed from the keyboard');
  await cy.page.keyboard.press('Enter');
  await until('Ada to get the typed message', async () => (await people[0].page.locator('#chat-log').innerText()).includes('typed from the keyboard'), { timeout: 10_000 });
  await cy.page.keyboard.press('Escape');
  await until('the chat panel to close on Escape', async () => !(await cy.page.locator('#chat-panel').isVisible()), { timeout: 5000 });
});

test('no console errors and no uncaught errors in the pages', () => {
  for (const p of people) {
    assert.deepEqual(p.pageErrors, [], `${p.name}: ${p.pageErrors.join(' | ')}`);
    assert.deepEqual(p.consoleErrors, [], `${p.name}: ${p.consoleErrors.join(' | ')}`);
  }
});
