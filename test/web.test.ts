import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { popularity } from '../src/baselines/pop.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { TEST } from '../src/data/splits.js';
import { saveModel } from '../src/recommend/store.js';
import { buildApp } from '../src/serve/app.js';
import { loadServedModels } from '../src/serve/models.js';
import { startServe } from '../src/cli/serve.js';
import { cli, MOVIELENS, tempDir } from './helpers/cli.js';
import { CHROMIUM, haveChromium, launchChromium } from './helpers/browser.js';
import { tinyP5Fixture } from './helpers/p5-fixture.js';

if (!haveChromium) console.warn(`web.test.ts: skipping the browser test: ${CHROMIUM} is missing (install it with: apt-get install chromium)`);

describe.skipIf(!haveChromium)('web page in headless Chromium', () => {
  let tmp: string;
  let ds: Dataset;
  let app: FastifyInstance;
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    tmp = tempDir('p5rec-web-');
    const data = join(tmp, 'ml');
    const r = cli(['data', 'import', 'movielens', '--dir', MOVIELENS, '--out', data, '--quiet', '--json']);
    expect(r.status, r.stderr).toBe(0);
    ds = await loadDataset(data);
    const root = join(tmp, 'models');
    for (const [name, split] of [['pop', 'sequential'], ['pop-rating', 'rating']] as const) {
      saveModel(join(root, name), await popularity.fit(ds, {}, split, { log: () => {}, quiet: true, seed: 1 }), ds, { seconds: 0, peakRssMB: 0, seed: 1 });
    }
    app = buildApp({ dataset: ds, models: loadServedModels(ds, ['pop', 'pop-rating'], { modelRoot: root }), modelRoot: root });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    // P5REC_KEEP_SCREENSHOT=1 keeps the folder (and serve-page.png) for a look.
    if (tmp && !process.env.P5REC_KEEP_SCREENSHOT) rmSync(tmp, { recursive: true, force: true });
    else if (tmp) console.log(`web.test.ts: screenshot kept at ${join(tmp, 'serve-page.png')}`);
  });

  it('picks a user, shows history and each model\'s top-10 with hits, explains gracefully without P5, and screenshots', async () => {
    // A user whose held-out item pop ranks in its top-10 (so a hit is visible).
    const counts = (await popularity.fit(ds, {}, 'sequential', { log: () => {}, quiet: true, seed: 1 })).score(0, new Int32Array()) as Float32Array;
    let user = -1;
    for (let u = 0; u < ds.numUsers && user < 0; u++) {
      const target = ds.sequenceSplit(u, TEST)[0];
      if (target === undefined) continue;
      const seen = new Set(ds.historyBefore(u, TEST));
      const above = Array.from(counts.keys()).filter((i) => !seen.has(i) && (counts[i] > counts[target] || (counts[i] === counts[target] && i < target))).length;
      if (above < 10) user = u;
    }
    expect(user).toBeGreaterThanOrEqual(0);
    const token = ds.users.token[user];

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/501/.test(m.text())) errors.push(m.text());
    });
    await page.goto(`${url}/`);
    await page.locator('#dataset').filter({ hasText: 'movielens:u' }).waitFor();
    await page.locator('#user-list button').first().waitFor();

    // Search for the user by raw id and pick them from the list.
    await page.fill('#user-search', String(ds.users.rawId[user]));
    const button = page.locator(`#user-list button[data-user="${token}"]`);
    await button.waitFor();
    await button.click();

    await page.locator('#user-title').filter({ hasText: `user_${token}` }).waitFor();
    expect(await page.locator('#history li').count()).toBe(ds.userLength[user]);
    const firstTitle = ds.items.title[ds.sequence(user)[0]]!;
    expect(await page.locator('#history li').last().textContent()).toContain(firstTitle); // newest first

    const columns = page.locator('#recs .model');
    expect(await columns.count()).toBe(2);
    for (const name of ['pop', 'pop-rating']) {
      await page.locator(`#recs .model[data-model="${name}"] ol li`).nth(9).waitFor();
      expect(await page.locator(`#recs .model[data-model="${name}"] ol li`).count()).toBe(10);
    }
    const hit = page.locator('#recs .model[data-model="pop"] li.hit');
    expect(await hit.count()).toBe(1);
    const target = ds.sequenceSplit(user, TEST)[0];
    expect(await hit.textContent()).toContain(ds.items.title[target]!);
    expect(await page.locator('#recs .model[data-model="pop"] [data-role=result]').textContent()).toMatch(/hit at rank \d+/);
    expect(await page.locator('#recs .model[data-model="pop-rating"]').textContent()).toContain('rating split: may have seen the held-out item');

    // Clicking an item asks for P5's explanation; without a P5 model the 501 is shown as a message.
    await page.locator('#recs .model[data-model="pop"] li .item').first().click();
    await page.locator('#explain-text.unavailable').waitFor();
    expect(await page.locator('#explain-text').textContent()).toBe("No explanation: no generative (P5) model loaded; this route needs a P5 model as the server's generator");
    expect(await page.locator('#explain').isVisible()).toBe(true);
    expect(await page.locator('#auth').isVisible()).toBe(false);

    const shot = join(tmp, 'serve-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    expect(readFileSync(shot).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');

    // A deep link (#user=…) opens the same view directly.
    const deep = await browser.newPage();
    await deep.goto(`${url}/#user=${token}`);
    await deep.locator('#user-title').filter({ hasText: `user_${token}` }).waitFor();
    await deep.close();

    expect(errors).toEqual([]);
    await page.close();
  });

  it('asks for the API key when the server needs one, then works with it', async () => {
    const locked = buildApp({ dataset: ds, models: loadServedModels(ds, ['pop'], { modelRoot: join(tmp, 'models') }), apiKey: 'k3y' });
    const lockedUrl = await locked.listen({ host: '127.0.0.1', port: 0 });
    const page = await browser.newPage();
    try {
      await page.goto(`${lockedUrl}/`);
      await page.locator('#auth').waitFor({ state: 'visible' });
      expect(await page.locator('#user-list li').count()).toBe(0);
      await page.fill('#api-key', 'k3y');
      await page.click('#auth button');
      await page.locator('#user-list button').first().waitFor();
      expect(await page.locator('#auth').isVisible()).toBe(false);
      expect(await page.locator('#dataset').textContent()).toContain('models: pop');
    } finally {
      await page.close();
      await locked.close();
    }
  });
});

describe.skipIf(!haveChromium)('web page with a P5 model (tiny, trained here)', () => {
  let tmp: string;
  let ds: Dataset;
  let served: Awaited<ReturnType<typeof startServe>>;
  let browser: Browser;

  beforeAll(async () => {
    let data: string;
    ({ tmp, data, ds } = await tinyP5Fixture('p5rec-web-p5-'));
    served = await startServe({ dataset: data, models: ['p5', 'pop'], modelRoot: join(tmp, 'models'), host: '127.0.0.1', port: 0, logLevel: 'silent' });
    browser = await launchChromium();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await served?.app.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('shows P5\'s top-10 beside pop, and P5\'s explanation when an item is clicked', async () => {
    let user = 0;
    while (ds.userLength[user] < 5) user++;
    const token = ds.users.token[user];
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    try {
      await page.goto(`${served.url}/#user=${token}`);
      await page.locator('#user-title').filter({ hasText: `user_${token}` }).waitFor();
      expect(await page.locator('#recs .model').count()).toBe(2);
      const p5Items = page.locator('#recs .model[data-model="p5"] ol li .item');
      await p5Items.first().waitFor();
      expect(await page.locator('#recs .model[data-model="p5"] h3').textContent()).toContain('(p5)');
      const n = await p5Items.count();
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(10);

      // Click P5's first item: the page shows the explanation the API gives for the pair, and its template.
      const itemTitle = (await p5Items.first().getAttribute('title'))!;
      const api = (await (await fetch(`${served.url}/v1/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: token, item: itemTitle.replace(/^item_/, '') }) })).json()) as { output: string; template: string };
      expect(api.template).toBe('3-6');
      await p5Items.first().click();
      await page.locator('#explain-source').filter({ hasText: 'p5 · prompt 3-6' }).waitFor();
      expect(await page.locator('#explain-text').getAttribute('class')).not.toBe('unavailable');
      expect(await page.locator('#explain-text').textContent()).toBe(api.output || '(the model generated an empty text)');
      expect(await page.locator('#explain-source').getAttribute('title')).toContain(itemTitle);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
