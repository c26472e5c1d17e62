#!/usr/bin/env node
/**
 * Screenshots of what `p5rec quickstart` produces, for the docs:
 *
 *   docs/img/report.png         the top of QS/report/report.html (1280 wide)
 *   docs/img/page-desktop.png   the demo page on the titled Beauty slice (1280 × 900):
 *                               a user with a long history, each model's top-10 by
 *                               product name, an item clicked (its categories)
 *   docs/img/page-phone.png     the same page 390 wide (a phone)
 *
 *   npm run build && node scripts/screenshots.mjs QS_DIR [--out docs/img]
 *
 * QS_DIR is a folder `p5rec quickstart --dir QS_DIR` finished (a --fast run is
 * enough). The server is started in-process (dist's startServe) on the slice
 * dataset and its models, on a free port, and closed at the end. The browser
 * is Debian's /usr/bin/chromium (headless) through playwright-core; nothing is
 * downloaded.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.P5REC_CHROMIUM ?? '/usr/bin/chromium';
const { values: flags, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string', default: path.join(ROOT, 'docs/img') } } });
const die = (msg) => {
  process.stderr.write(`screenshots: error: ${msg}\n`);
  process.exit(2);
};
if (positionals.length !== 1) die('usage: node scripts/screenshots.mjs QUICKSTART_DIR [--out docs/img]');
const qs = path.resolve(positionals[0]);
const reportHtml = path.join(qs, 'report', 'report.html');
const sliceDataset = path.join(qs, 'beauty-slice', 'dataset');
const sliceModels = path.join(qs, 'beauty-slice', 'models');
for (const p of [reportHtml, path.join(sliceDataset, 'manifest.json')]) if (!existsSync(p)) die(`${p}: not found (run \`p5rec quickstart --dir ${positionals[0]}\` first)`);
if (!existsSync(CHROMIUM)) die(`${CHROMIUM}: no Chromium (apt-get install chromium, or set P5REC_CHROMIUM)`);
if (!existsSync(path.join(ROOT, 'dist/index.js'))) die('dist/ is missing: run `npm run build` first');

const { startServe, loadDataset } = await import(pathToFileURL(path.join(ROOT, 'dist/index.js')).href);
const { chromium } = await import('playwright-core');
const out = path.resolve(flags.out);
mkdirSync(out, { recursive: true });

const models = ['sasrec', 'bpr-mf', 'pop'].filter((m) => existsSync(path.join(sliceModels, m, 'model.json')));
if (!models.length) die(`no models in ${sliceModels}`);
const served = await startServe({ dataset: sliceDataset, models: models.map((m) => `${m}=${path.join(sliceModels, m)}`), host: '127.0.0.1', port: 0, logLevel: 'silent' });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const written = [];
try {
  // A user with a long history (a dozen items or more) whose held-out item has a title.
  const ds = await loadDataset(sliceDataset);
  let user = -1;
  for (let u = 0; u < ds.numUsers; u++) {
    const seq = ds.sequence(u);
    if (seq.length >= 12 && seq.length <= 20 && ds.items.title[seq[seq.length - 1]]) {
      user = u;
      break;
    }
  }
  if (user < 0) die('no user with 12-20 items in the slice');
  const token = ds.users.token[user];

  const shot = async (name, page, opts = {}) => {
    const file = path.join(out, name);
    await page.screenshot({ path: file, ...opts });
    written.push({ file: path.relative(ROOT, file), bytes: statSync(file).size });
  };

  // The report: its top (run header, the first tables and chart).
  {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    await page.goto(pathToFileURL(reportHtml).href);
    await page.waitForLoadState('load');
    await shot('report.png', page);
    await page.close();
  }

  const openPage = async (width, height) => {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${served.url}/#user=${token}`);
    await page.locator('#user-title').filter({ hasText: `user_${token}` }).waitFor();
    await page.locator(`#recs .model[data-model="${models[0]}"] ol li`).nth(9).waitFor();
    return page;
  };
  {
    const page = await openPage(1280, 900);
    await page.locator(`#recs .model[data-model="${models[0]}"] li .item`).first().click();
    await page.locator('#explain-text').waitFor();
    await page.waitForTimeout(300);
    await shot('page-desktop.png', page);
    await page.close();
  }
  {
    const page = await openPage(390, 844);
    await shot('page-phone.png', page);
    await page.close();
  }
  process.stdout.write(`${JSON.stringify({ ok: true, user: ds.users.rawId[user], token, history: ds.sequence(user).length, models, files: written })}\n`);
} finally {
  await browser.close();
  await served.app.close();
}
