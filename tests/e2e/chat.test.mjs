// Data through the SFU, in real browsers: three pages in a call chat through the page's chat
// panel (over their reliable data channel to the server), both ways, with names, an unread count
// while the panel is closed, links made clickable and every text shown as text (no HTML
// injection); a message to one participant reaches only them; binary data on the unreliable
// channel arrives as bytes.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, receivedDigest, startServer, until, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-chat';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];

before(async () => {
  watchStalls();
  server = await startServer('chat');
  browser = await launchBrowser();
  // Cy is on a phone.
  const desk = { width: 960, height: 600 };
  for (const { name, viewport } of [{ name: 'Ada', viewport: desk }, { name: 'Ben', viewport: desk }, { name: 'Cy', viewport: { width: 390, height: 844 } }]) {
    people.push(await openParticipant(browser, server.url, { room: ROOM, name, query: { res: '360' }, viewport }));
  }
  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  for (const p of people) {
    await until(`${p.name}'s data channels to open`, () => p.page.evaluate(() => /** @type {any} */ (window).confab.client?.dataOpen === true), { timeout: 20_000 });
  }
});

after(async () => {
  for (const p of people) {
    await p.screenshot(`chat-${p.name}`);
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
  }
  await browser?.close();
  await server?.stop();
});

/**
 * The chat log of a page, as the user sees it.
 * @param {Awaited<ReturnType<typeof openParticipant>>} p
 */
const chatLog = (p) => p.page.evaluate(() => [...document.querySelectorAll('#chat-log .chat-message')].map((li) => ({
  name: li.querySelector('.chat-name')?.textContent,
  text: li.querySelector('.chat-text')?.textContent,
  links: [...li.querySelectorAll('.chat-text a')].map((a) => /** @type {HTMLAnchorElement} */ (a).href),
  elements: [...li.querySelectorAll('.chat-text *')].map((e) => e.tagName.toLowerCase()),
})));

test('chat both ways, with names, unread counts, links, and no HTML injection', { timeout: 60_000 }, async (t) => {
  const [ada, ben, cy] = people;
  const hostile = 'hello <b>bold</b> <img src=x onerror="window.__pwned=1"> see https://example.com/notes?a=1.';
  await ada.page.click('#chat-button');
  await ada.page.fill('#chat-input', hostile);
  await ada.page.press('#chat-input', 'Enter');
  assert.equal(await ada.page.inputValue('#chat-input'), '', 'the box empties once sent');

  // Ben's panel is closed: the button counts the message.
  await until('Ben\'s unread count', async () => (await ben.page.textContent('#chat-unread')) === '1' && !(await ben.page.isHidden('#chat-unread')), { timeout: 10_000 });
  await ben.page.click('#chat-button');
  assert.ok(await ben.page.isHidden('#chat-unread'), 'opening the panel reads everything');
  for (const p of [ben, cy]) {
    const log = await until(`${p.name} to show Ada's message`, async () => {
      const l = await chatLog(p);
      return l.length ? l : null;
    }, { timeout: 10_000 });
    assert.equal(log.length, 1);
    assert.equal(log[0].name, 'Ada');
    assert.equal(log[0].text, hostile, 'the text exactly as typed');
    assert.deepEqual(log[0].elements, ['a'], 'the only element made is the link');
    assert.deepEqual(log[0].links, ['https://example.com/notes?a=1'], 'the link, without the full stop after it');
    assert.equal(await p.page.evaluate(() => /** @type {any} */ (window).__pwned), undefined, 'nothing ran');
  }

  // Ben answers; Ada sees it under Ben's name, and her own message as hers.
  await ben.page.fill('#chat-input', 'hi Ada');
  await ben.page.click('#chat-send');
  const adaLog = await until('Ada to show Ben\'s answer', async () => {
    const l = await chatLog(ada);
    return l.length === 2 ? l : null;
  }, { timeout: 10_000 });
  assert.deepEqual(adaLog.map((m) => [m.name, m.text]), [['You', hostile], ['Ben', 'hi Ada']]);

  // On the phone, the open chat fits the screen: its box and the message field are in view.
  await cy.page.click('#chat-button');
  const box = await cy.page.locator('#chat-input').boundingBox();
  assert.ok(box && box.y >= 0 && box.y + box.height <= 844 && box.x >= 0 && box.x + box.width <= 390, `the message field on a 390x844 screen: ${JSON.stringify(box)}`);
  t.diagnostic(`Ada's log: ${JSON.stringify(adaLog.map((m) => m.name))}`);
});

test('a message to one participant reaches only them; bytes on the unreliable channel arrive as bytes', { timeout: 60_000 }, async () => {
  const [ada, ben, cy] = people;
  for (const p of people) {
    await p.page.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.__data = [];
      w.confab.client.on('data', (/** @type {any} */ d) => w.__data.push({
        from: d.from, reliable: d.reliable, private: d.private,
        data: typeof d.data === 'string' ? d.data : Array.from(d.data),
      }));
    });
  }
  const adaId = /** @type {string} */ (ada.id);
  const cyId = /** @type {string} */ (cy.id);
  assert.equal(await cy.page.evaluate((to) => /** @type {any} */ (window).confab.client.send(JSON.stringify({ kind: 'chat', text: 'just for you' }), { to }), adaId), true);
  assert.equal(await ada.page.evaluate(() => /** @type {any} */ (window).confab.client.send(new Uint8Array([0, 1, 2, 250]), { reliable: false })), true);

  const adaGot = await until('Ada to get Cy\'s private message', async () => {
    const got = await ada.page.evaluate(() => /** @type {any} */ (window).__data.filter((/** @type {any} */ d) => d.private));
    return got.length ? got : null;
  }, { timeout: 10_000 });
  assert.deepEqual(adaGot, [{ from: cyId, reliable: true, private: true, data: JSON.stringify({ kind: 'chat', text: 'just for you' }) }]);
  const shown = (await chatLog(ada)).at(-1);
  assert.deepEqual([shown?.name, shown?.text], ['Cy (to you)', 'just for you']);
  for (const p of [ben, cy]) {
    const bytes = await until(`${p.name} to get Ada's bytes`, async () => {
      const got = await p.page.evaluate(() => /** @type {any} */ (window).__data.filter((/** @type {any} */ d) => !d.reliable));
      return got.length ? got : null;
    }, { timeout: 10_000 });
    assert.deepEqual(bytes, [{ from: adaId, reliable: false, private: false, data: [0, 1, 2, 250] }]);
  }
  const benPrivate = await ben.page.evaluate(() => /** @type {any} */ (window).__data.filter((/** @type {any} */ d) => d.private));
  assert.deepEqual(benPrivate, [], 'Ben never sees Cy\'s message to Ada');
});

/**
 * Record every update of the page's file transfers in `window.__files` (runs in the page).
 */
function recordTransfers() {
  const w = /** @type {any} */ (window);
  w.__files = [];
  w.confab.files.addEventListener('update', (/** @type {CustomEvent} */ ev) => {
    const t = ev.detail;
    w.__files.push({ id: t.id, direction: t.direction, name: t.name, state: t.state, done: t.done, size: t.size, verified: t.verified, error: t.error, at: Date.now() });
  });
}

test('a 20 MB file sent to the room arrives intact at both others, with progress on every side', { timeout: 120_000 }, async (t) => {
  const [ada, ben, cy] = people;
  for (const p of people) await p.page.evaluate(recordTransfers);
  const content = randomBytes(20 * 1024 * 1024);
  const sha = createHash('sha256').update(content).digest('hex');
  const t0 = Date.now();
  await ada.page.setInputFiles('#chat-file', { name: 'big.bin', mimeType: 'application/octet-stream', buffer: content });
  for (const p of [ben, cy]) {
    const got = await until(`${p.name} to receive big.bin`, () => p.page.evaluate(receivedDigest, 'big.bin'), { timeout: 90_000, interval: 500 });
    assert.deepEqual(got, { sha256: sha, size: content.length, verified: true }, `${p.name} has the file, byte for byte`);
    const updates = await p.page.evaluate(() => /** @type {any} */ (window).__files.filter((/** @type {any} */ u) => u.name === 'big.bin'));
    const receiving = updates.filter((/** @type {any} */ u) => u.state === 'receiving').map((/** @type {any} */ u) => u.done);
    assert.ok(receiving.length > 50 && receiving.every((/** @type {number} */ d, /** @type {number} */ i) => i === 0 || d >= receiving[i - 1]), `${p.name}: ${receiving.length} progress updates, rising`);
    assert.ok(await p.page.locator('#chat-log a.file-save[download="big.bin"]').count() === 1, `${p.name}: a Save link`);
  }
  const span = async (/** @type {typeof ada} */ p) => p.page.evaluate(() => {
    const u = /** @type {any} */ (window).__files.filter((/** @type {any} */ x) => x.name === 'big.bin');
    return u.length ? `${u[u.length - 1].at - u[0].at} ms from its first update to its last` : 'no updates';
  });
  t.diagnostic(`20 MB to two receivers in ${Date.now() - t0} ms from setInputFiles; Ada ${await span(ada)}, Ben ${await span(ben)}, Cy ${await span(cy)}`);
  const sent = await until('Ada\'s transfer to finish', () => ada.page.evaluate(() => /** @type {any} */ (window).__files.find((/** @type {any} */ u) => u.name === 'big.bin' && u.state === 'done')), { timeout: 20_000 });
  assert.equal(sent.done, content.length);
  const adaSending = await ada.page.evaluate(() => /** @type {any} */ (window).__files.filter((/** @type {any} */ u) => u.name === 'big.bin' && u.state === 'sending').length);
  assert.ok(adaSending > 50, `Ada: ${adaSending} progress updates`);
  assert.match(await ada.page.locator('li.chat-file[data-state="done"] .file-status').first().innerText(), /Sent/);
});

test('a file to one participant reaches only them, and the receiver can cancel it', { timeout: 90_000 }, async () => {
  const [ada, ben, cy] = people;
  await ada.page.selectOption('#chat-to', /** @type {string} */ (ben.id));
  await ada.page.setInputFiles('#chat-file', { name: 'private.bin', mimeType: 'application/octet-stream', buffer: randomBytes(8 * 1024 * 1024) });
  // Ben sees it coming, and cancels part way.
  await until('Ben to be receiving private.bin', () => ben.page.evaluate(() => /** @type {any} */ (window).__files.some((/** @type {any} */ u) => u.name === 'private.bin' && u.state === 'receiving' && u.done > 0)), { timeout: 20_000, interval: 50 });
  // The button is shown while it runs; clicked from the page itself, because Playwright's
  // actionability wait once timed out here while the entry redrew on every chunk of a loaded
  // machine.
  const cancel = ben.page.locator('li.chat-file', { hasText: 'private.bin' }).locator('.file-cancel');
  assert.ok(await cancel.isVisible(), 'a Cancel button on the transfer');
  await cancel.evaluate((b) => /** @type {HTMLButtonElement} */ (b).click());
  const adaSide = await until('Ada to see it cancelled', () => ada.page.evaluate(() => /** @type {any} */ (window).__files.find((/** @type {any} */ u) => u.name === 'private.bin' && u.state === 'cancelled')), { timeout: 20_000 });
  assert.match(adaSide.error ?? '', /Ben cancelled/);
  assert.ok(adaSide.done < 8 * 1024 * 1024, 'the sender stopped before the end');
  const benState = await ben.page.locator('li.chat-file').last().getAttribute('data-state');
  assert.equal(benState, 'cancelled');
  const cySaw = await cy.page.evaluate(() => /** @type {any} */ (window).__files.filter((/** @type {any} */ u) => u.name === 'private.bin'));
  assert.deepEqual(cySaw, [], 'Cy never hears of it');
  await ada.page.selectOption('#chat-to', '');
});

test('when the person chosen to write to leaves, nothing typed for them goes to everyone', { timeout: 60_000 }, async () => {
  const [ada, ben, cy] = people;
  await ada.page.selectOption('#chat-to', /** @type {string} */ (cy.id));
  await cy.page.click('#leave-button');
  await until('Ada\'s list to mark Cy as gone', async () => (await ada.page.locator('#chat-to option:checked').innerText()) === 'Cy (left)', { timeout: 10_000 });
  const benBefore = (await chatLog(ben)).length;
  await ada.page.fill('#chat-input', 'for Cy only');
  await ada.page.press('#chat-input', 'Enter');
  const note = await until('Ada to be told', () => ada.page.evaluate(() => document.querySelector('#chat-log .chat-system:last-child')?.textContent ?? null), { timeout: 5000 });
  assert.match(note, /Cy has left the call: nothing was sent/);
  assert.equal(await ada.page.inputValue('#chat-input'), 'for Cy only', 'the text stays in the box');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal((await chatLog(ben)).length, benBefore, 'Ben got nothing');
  // Choosing Everyone again sends to the room.
  await ada.page.selectOption('#chat-to', '');
  await ada.page.press('#chat-input', 'Enter');
  await until('Ben to get it', async () => (await chatLog(ben)).length === benBefore + 1, { timeout: 10_000 });
});

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name}: ${p.pageErrors.join(' | ')}`);
});
