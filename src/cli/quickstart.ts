import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildDataset } from '../data/build.js';
import { readAmazon } from '../data/import-amazon.js';
import { loadDataset } from '../data/dataset.js';
import { datasetStats } from '../data/stats.js';
import { auditLeak } from '../data/audit.js';
import { logger, runCommand, type CommonFlags } from './output.js';

/** The dataset that ships inside the package, so the main job runs offline. */
export const BUNDLED_REVIEWS = resolve(dirname(fileURLToPath(import.meta.url)), '../../data/musical-instruments/reviews_Musical_Instruments_5.json.gz');

interface QuickstartFlags extends CommonFlags {
  dir: string;
}

/**
 * The main job, offline: import the bundled Musical Instruments reviews and
 * inspect them. Later stages (baselines, P5, report) hook in here as they land.
 */
export function registerQuickstartCommand(program: Command): void {
  program.command('quickstart').description('run the main pipeline offline on the bundled Musical Instruments dataset')
    .option('--dir <dir>', 'working folder', 'p5rec-quickstart')
    .option('--json', 'print one JSON result object on stdout')
    .option('--quiet', 'no progress on stderr')
    .action((f: QuickstartFlags) => runCommand(f, async () => {
      const log = logger(f);
      const datasetDir = join(f.dir, 'dataset');
      const stages: { stage: string; seconds: number }[] = [];
      const stage = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        log(`[quickstart] ${name} ...`);
        const r = await body();
        stages.push({ stage: name, seconds: (Date.now() - t0) / 1000 });
        log(`[quickstart] ${name} done in ${stages[stages.length - 1].seconds.toFixed(2)}s`);
        return r;
      };
      if (!existsSync(datasetDir)) {
        await stage('import', async () => buildDataset(await readAmazon(BUNDLED_REVIEWS), { out: datasetDir, name: 'musical-instruments', log }));
      } else log(`[quickstart] reusing ${datasetDir}`);
      const ds = await loadDataset(datasetDir);
      const stats = await stage('stats', async () => datasetStats(ds));
      const audit = await stage('audit', async () => auditLeak(ds));
      return { dir: f.dir, dataset: datasetDir, stages, stats, audit };
    }, (r) => [
      `dataset: ${r.dataset} — ${r.stats.users} users, ${r.stats.items} items, ${r.stats.interactions} interactions`,
      `fields: ${Object.entries(r.stats.fields).filter(([, v]) => v).map(([k]) => k).join(', ')}`,
      `leak audit (${r.audit.itemIndex} ids): successor HR@1 ${r.audit.successorHR1.toFixed(4)} — ${r.audit.verdict}`,
      `next: p5rec data stats ${r.dataset}`,
    ].join('\n')));
}
