/**
 * p5rec as a library, end to end, importing only 'p5rec': the bundled Musical
 * Instruments reviews → BPR-MF and a tiny P5 (a few steps) → both evaluated on
 * the same users → the HTTP API serving both. Run after `npm install p5rec`:
 *
 *   npx tsc examples/library.ts --module nodenext --target es2022 --outDir out && node out/library.js
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bundledData, evaluate, fitModel, importDataset, initEngine, loadModel, loadPromptCollection, setProgressListener, startServe, trainP5,
  type ProgressEvent,
} from 'p5rec';

const work = mkdtempSync(join(tmpdir(), 'p5rec-example-'));
const progress: ProgressEvent[] = [];
setProgressListener((e) => progress.push(e)); // the caller owns progress: nothing is written to stderr

// 1. Data: the reviews that ship with the package, imported into a dataset folder.
const { dataset: ds } = await importDataset({ kind: 'amazon', reviews: bundledData.musicalInstrumentsReviews }, { out: join(work, 'mi') });
console.log(`dataset: ${ds.numUsers} users, ${ds.numItems} items`);

// 2. A baseline, fitted and saved as a model folder.
const bpr = await fitModel(ds, 'bpr-mf', { split: 'sequential', hyper: { epochs: 5 }, out: join(work, 'bpr-mf') });

// 3. A tiny P5, trained for a few steps on the sequential prompts.
await initEngine();
const p5Dir = join(work, 'p5');
await trainP5(ds, loadPromptCollection(), { out: p5Dir, config: 'tiny', tasks: ['sequential'], steps: 4, epochs: 1, tokensPerBatch: 2048, quiet: true });
const { rec: p5 } = loadModel(p5Dir, ds);

// 4. Both evaluated with the shared protocol on the same 30 users.
for (const [name, rec] of [['bpr-mf', bpr.rec], ['p5', p5]] as const) {
  const r = await evaluate(ds, rec, 'sequential', { maxUsers: 30, quiet: true });
  console.log(`${name}: HR@10 ${r.metrics['HR@10'].toFixed(4)} ± ${r.stderr?.['HR@10'].toFixed(4)} over ${r.count} users`);
}

// 5. The HTTP API over both models.
const served = await startServe({ dataset: join(work, 'mi'), models: [`bpr-mf=${join(work, 'bpr-mf')}`, `p5=${p5Dir}`], host: '127.0.0.1', port: 0, logLevel: 'silent' });
const user = ds.users.token[0];
const res = await fetch(`${served.url}/v1/recommend`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, model: 'bpr-mf', k: 5 }) });
const body = (await res.json()) as { items: { item: string }[] };
console.log(`served ${served.models.map((m) => m.name).join(', ')} at ${served.url}; top-5 for user ${user}: ${body.items.map((i) => i.item).join(' ')}`);
await served.app.close();
console.log(`progress events received: ${progress.length}`);
