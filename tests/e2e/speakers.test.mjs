// Active speaker, in real browsers: the SFU reads the audio-level header extension of each
// page's microphone (Chromium's fake device plays a tone) and tells the room who speaks. With
// one microphone unmuted, every page is told that one speaks and is the active speaker, and
// rings its tile; when the speaker mutes and another unmutes, the events follow.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, startServer, until, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-speakers';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];

before(async () => {
  watchStalls();
  server = await startServer('speakers');
  browser = await launchBrowser();
  // Ada on a wide screen (1440x900), the others at the suite's usual 960x600.
  for (const [name, width, height] of /** @type {const} */ ([['Ada', 1440, 900], ['Ben', 960, 600], ['Cy', 960, 600]])) {
    people.push(await openParticipant(browser, server.url, { room: ROOM, name, query: { res: '360' }, viewport: { width, height } }));
  }
  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  for (const p of people) {
    await p.page.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.__speakers = [];
      w.confab.client.on('speakers', (/** @type {any} */ m) => w.__speakers.push({ ...m, at: Date.now() }));
    });
  }
});

after(async () => {
  for (const p of people) {
    await p.screenshot(`speakers-${p.name}`);
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
  }
  await browser?.close();
  await server?.stop();
});

/**
 * Wait until every page's last `speakers` message names `who` as the active speaker and the
 * only one speaking; returns how long that took.
 * @param {Awaited<ReturnType<typeof openParticipant>>} who
 */
async function allSee(who) {
  const t0 = Date.now();
  for (const p of people) {
    await until(`${p.name} to be told ${who.name} speaks`, () => p.page.evaluate((id) => {
      const last = /** @type {any} */ (window).__speakers.at(-1);
      return last && last.active === id && last.speaking.length === 1 && last.speaking[0].participant === id && last.speaking[0].level > 0;
    }, who.id), { timeout: 15_000 });
  }
  return Date.now() - t0;
}

test('the active speaker follows the one unmuted microphone, and its tile is ringed', { timeout: 90_000 }, async (t) => {
  const [ada, ben, cy] = people;
  await ben.page.click('#mic-button');
  await cy.page.click('#mic-button');
  t.diagnostic(`Ada alone unmuted: every page told in ${await allSee(ada)} ms`);
  for (const p of [ben, cy]) {
    const tile = p.page.locator(`.tile[data-participant="${ada.id}"]`);
    assert.equal(await tile.getAttribute('data-speaking'), 'true', `${p.name} rings Ada's tile`);
    assert.match(await tile.getAttribute('class') ?? '', /active-speaker/);
    const other = p.page.locator(`.tile[data-participant="${p === ben ? cy.id : ben.id}"]`);
    assert.notEqual(await other.getAttribute('data-speaking'), 'true');
  }
  assert.equal(await ada.page.locator('.tile.self').getAttribute('data-speaking'), 'true', 'Ada sees herself speaking');

  // Ada mutes, Ben unmutes: Ben takes over.
  await ada.page.click('#mic-button');
  await ben.page.click('#mic-button');
  t.diagnostic(`Ben alone unmuted: every page told in ${await allSee(ben)} ms`);
  const tile = cy.page.locator(`.tile[data-participant="${ada.id}"]`);
  assert.equal(await tile.getAttribute('data-speaking'), 'false', 'Ada is no longer ringed');

  // Speaker view: Ben's tile takes the spotlight on Cy's page, large; back to the grid after.
  await cy.page.click('#layout-button');
  await until('Cy\'s spotlight to show Ben', () => cy.page.evaluate((id) => document.querySelector('#spotlight')?.querySelector(`.tile[data-participant="${id}"]`) !== null, ben.id), { timeout: 5000 });
  const big = await cy.page.locator(`.tile[data-participant="${ben.id}"]`).boundingBox();
  const small = await cy.page.locator(`.tile[data-participant="${ada.id}"]`).boundingBox();
  assert.ok(big && small && big.width > 2 * small.width, `speaker ${JSON.stringify(big)} vs others ${JSON.stringify(small)}`);
  assert.equal(await cy.page.getAttribute('#tiles', 'data-layout'), 'spotlight');
  await cy.screenshot('speakers-Cy-speaker-view');
  await cy.page.click('#layout-button');
  assert.equal(await cy.page.getAttribute('#tiles', 'data-layout'), 'grid');
  assert.equal(await cy.page.locator('#spotlight .tile').count(), 0);
  assert.equal(await cy.page.locator('.tile:not(.screen)').count(), 3, 'no tile lost or doubled on the way');

  const levels = await cy.page.evaluate(() => /** @type {any} */ (window).__speakers.map((/** @type {any} */ m) => m.speaking.map((/** @type {any} */ s) => s.level)).flat());
  t.diagnostic(`levels seen: ${[...new Set(levels)].slice(0, 12).join(', ')}`);
});

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name}: ${p.pageErrors.join(' | ')}`);
});
