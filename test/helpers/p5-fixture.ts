import { join } from 'node:path';
import { expect } from 'vitest';
import { cli, MI_REVIEWS, tempDir } from './cli.js';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { popularity } from '../../src/baselines/pop.js';
import { saveModel } from '../../src/recommend/store.js';

/**
 * Musical Instruments imported into a temp folder, a tiny P5 trained a few
 * steps (`models/p5`) and popularity (`models/pop`): what the serving and
 * web tests serve.
 */
export async function tinyP5Fixture(prefix: string): Promise<{ tmp: string; data: string; models: string; ds: Dataset }> {
  const tmp = tempDir(prefix);
  const data = join(tmp, 'mi');
  const models = join(tmp, 'models');
  const a = cli(['data', 'import', 'amazon', '--reviews', MI_REVIEWS, '--out', data, '--json', '--quiet']);
  expect(a.json?.ok, a.stderr).toBe(true);
  const t = cli(['train', data, '--out', join(models, 'p5'), '--config', 'tiny', '--epochs', '1', '--steps', '4', '--negatives', '4', '--max-source', '64', '--batch-tokens', '2048', '--quiet', '--json']);
  expect(t.json?.ok, t.stderr).toBe(true);
  const ds = await loadDataset(data);
  saveModel(join(models, 'pop'), await popularity.fit(ds, {}, 'sequential', { log: () => {}, quiet: true, seed: 1 }), ds, { seconds: 0, peakRssMB: 0, seed: 1 });
  return { tmp, data, models, ds };
}
