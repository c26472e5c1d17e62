/**
 * The demo page's layout promises, in headless Chromium on the titled Amazon
 * Beauty fixture: names, newest history first, the held-out item in view,
 * labelled scores, an explanation that covers no result, a phone layout, and
 * no server paths.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { popularity } from '../src/baselines/pop.js';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { TEST } from '../src/data/splits.js';
import { saveModel } from '../src/recommend/store.js';
import { buildApp } from '../src/serve/app.js';
import { loadServedModels } from '../src/serve/models.js';
import { BEAUTY, cli, tempDir } from './helpers/cli.js';
import { haveChromium, launchChromium } from './helpers/browser.js';


describe.skipIf(!haveChromium)('web page layout (Beauty, titled)', () => {
  let tmp: string;
  let ds: Dataset;
  let app: FastifyInstance;
  let url: string;
  let browser: Browser;
  let user: number;

  beforeAll(async () => {
    tmp = tempDir('p5rec-web-page-');
    const data = join(tmp, 'beauty');
    const r = cli(['data', 'import', 'p5', '--sequences', join(BEAUTY, 'sequential.txt'), '--datamaps', join(BEAUTY, 'datamaps.json'), '--meta', join(BEAUTY, 'meta.jsonl'), '--out', data, '--quiet', '--json']);
    expect(r.status, r.stderr).toBe(0);
    ds = await loadDataset(data);
    const root = join(tmp, 'models');
    saveModel(join(root, 'pop'), await popularity.fit(ds, {}, 'sequential', { log: () => {}, quiet: true, seed: 1 }), ds, { seconds: 0, peakRssMB: 0, seed: 1 });
    app = buildApp({ dataset: ds, models: loadServedModels(ds, ['pop'], { modelRoot: root }), modelRoot: root });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium();
    // A user with a long history (so order matters) whose test item has a title.
    user = 0;
    while (ds.userLength[user] < 12 || !ds.items.title[ds.sequenceSplit(user, TEST)[0]]) user++;
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function open(width: number, height: number): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${url}/#user=${ds.users.token[user]}`);
    await page.locator('#user-title').filter({ hasText: `user_${ds.users.token[user]}` }).waitFor();
    await page.locator('#recs .model[data-model="pop"] ol li').nth(9).waitFor();
    return page;
  }

  it('desktop: titles, newest history first, held-out item shown, scores labelled, explanation beside not over the results', async () => {
    const page = await open(1280, 900);
    try {
      const seq = ds.sequence(user);
      const titleOf = (i: number) => ds.items.title[i]!;
      const items = page.locator('#history li');
      expect(await items.count()).toBe(seq.length);
      expect(await items.first().textContent()).toContain(titleOf(seq[seq.length - 1]));
      expect(await items.last().textContent()).toContain(titleOf(seq[0]));
      expect(await page.locator('#history').getAttribute('reversed')).not.toBeNull();

      const target = ds.sequenceSplit(user, TEST)[0];
      expect(await page.locator('#held-out').isVisible()).toBe(true);
      expect(await page.locator('#held-out-item').textContent()).toBe(titleOf(target));
      const heldBox = (await page.locator('#held-out').boundingBox())!;
      expect(heldBox.y + heldBox.height).toBeLessThan(900);

      const scores = await page.locator('#recs .model[data-model="pop"] .score').allTextContents();
      expect(scores).toHaveLength(10);
      for (const s of scores) expect(s).toMatch(/^score (\d{1,3}(,\d{3})*|-?\d\.\d\de[+-]\d+|-?[\d.]{1,6})$/);
      const raw = await page.locator('#recs .model[data-model="pop"] .score').first().getAttribute('title');
      expect(raw).toMatch(/^score -?[\d.e+-]+$/);
      // Every recommended item is shown by its product title, not an id.
      const names = await page.locator('#recs .model[data-model="pop"] li .item').allTextContents();
      expect(names.filter((n) => /^item_\d+$/.test(n))).toEqual([]);

      await page.locator('#recs .model[data-model="pop"] li .item').first().click();
      await page.locator('#explain-text.unavailable').waitFor();
      const ex = (await page.locator('#explain').boundingBox())!;
      for (const col of await page.locator('#recs .model').all()) {
        const b = (await col.boundingBox())!;
        const overlap = ex.x < b.x + b.width && b.x < ex.x + ex.width && ex.y < b.y + b.height && b.y < ex.y + ex.height;
        expect(overlap).toBe(false);
      }
    } finally {
      await page.close();
    }
  });

  it('phone: no sideways scrolling, a short user list, the chosen user in view', async () => {
    const page = await open(390, 844);
    try {
      const { scroll, client } = await page.evaluate<{ scroll: number; client: number }>('({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })');
      expect(scroll).toBeLessThanOrEqual(client);
      const list = (await page.locator('#user-list').boundingBox())!;
      expect(list.height).toBeLessThanOrEqual(844 * 0.3);
      // The user card starts within the first screen of the page, not below a long list.
      const card = await page.evaluate<number>("document.getElementById('user-card').getBoundingClientRect().top + window.scrollY");
      expect(card).toBeLessThan(844);
      const cols = await page.locator('#recs .model').all();
      for (const c of cols) expect((await c.boundingBox())!.width).toBeLessThanOrEqual(390);
    } finally {
      await page.close();
    }
  });

  it('shows no server paths', async () => {
    const res = await fetch(`${url}/v1/models`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain(tmp);
    expect(text).not.toMatch(/"\/(tmp|home|work|root|usr)\//);
  });
});
