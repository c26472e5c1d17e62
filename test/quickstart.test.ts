import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM_SMOKE_LABEL, QUICKSTART_BASELINES, QUICKSTART_P5, QUICKSTART_P5_PROMPTS, QUICKSTART_SLICE_BASELINES } from '../src/cli/quickstart.js';
import { loadDataset } from '../src/data/dataset.js';
import { BEAUTY_SLICE, BIN, cli, ROOT, STORIES_GGUF, tempDir, type CliResult } from './helpers/cli.js';

const script = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'scripts/readme-results.mjs'), ...args], { encoding: 'utf8' });

/**
 * The main job end to end with cheap settings (--fast: 2 epochs, a 4-step
 * P5, the first 40 users/rows evaluated, 2 LLM users), on the bundled
 * datasets: Musical Instruments, then the titled Beauty slice.
 */
describe('p5rec quickstart --fast', () => {
  let tmp: string;
  let dir: string;
  let first: CliResult;

  beforeAll(() => {
    tmp = tempDir('p5rec-quickstart-');
    dir = join(tmp, 'qs');
    first = cli(['quickstart', '--dir', dir, '--fast', '--p5-steps', '4', '--json']);
  }, 480_000); // about 2.5 min on 2 idle cores; slower on a shared machine
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('runs every stage, reports progress on stderr and one JSON object on stdout', () => {
    expect(first.status, first.stderr.slice(-2000)).toBe(0);
    expect(first.stdout.trim().split('\n')).toHaveLength(1);
    const r = first.json as Record<string, unknown> & { stages: { stage: string; seconds: number; reused: boolean }[] };
    expect(r.ok).toBe(true);
    const names = r.stages.map((s) => s.stage);
    for (const b of QUICKSTART_BASELINES) expect(names).toContain(`fit ${b.name}`);
    expect(names).toContain('fit p5');
    for (const { task, prompt } of QUICKSTART_P5_PROMPTS) expect(names).toContain(`eval p5 ${task} ${prompt}`);
    for (const b of QUICKSTART_SLICE_BASELINES) {
      expect(names).toContain(`fit slice ${b.name}`);
      for (const task of b.tasks) expect(names).toContain(`eval slice ${b.name} ${task}`);
    }
    // Musical Instruments first, then the names part, then the report.
    expect(names.indexOf('import slice')).toBeGreaterThan(names.indexOf('most-frequent answer'));
    expect(names.slice(-2)).toEqual(['llm smoke (stories260K)', 'report']);
    for (const s of r.stages) {
      expect(s.reused).toBe(false);
      expect(s.seconds).toBeGreaterThanOrEqual(0);
    }
    expect(first.stderr).toMatch(/\[quickstart\] fit p5 \.\.\./);
    expect(first.stderr).toMatch(/\[quickstart\] report done in/);
    expect(r.p5).toMatchObject({ recipe: { config: 'tiny', steps: 4 } });
    // The recipe's init rank reaches training (the model folder records what it was trained with).
    expect(JSON.parse(readFileSync(join(dir, 'models', 'p5', 'recipe.json'), 'utf8')).model).toMatchObject({ itemInit: 'cooccurrence+popularity', itemInitDims: 16 });
    expect(r.serve).toMatch(/^p5rec serve --dataset \S+ --model p5=\S+ --model bpr-mf=/);
    // serve takes one dataset: the slice is a second server, on another port.
    const slice = r.slice as { serve: string; page: string; stats: { users: number; items: number; titled: number }; llm: { count: number; label: string } };
    expect(slice.serve).toMatch(/^p5rec serve --dataset \S+beauty-slice\S+ --model pop=\S+ --model bpr-mf=\S+ --model sasrec=\S+ --port 8081$/);
    expect(slice.stats).toMatchObject({ users: 1906, items: 891, titled: 891 });
    expect(slice.llm).toMatchObject({ count: 2, label: LLM_SMOKE_LABEL });
    expect(first.stderr).toMatch(/serve the Beauty slice \(product names\)/);
    // The run's record is kept for scripts/readme-results.mjs.
    expect(JSON.parse(readFileSync(join(dir, 'quickstart.json'), 'utf8')).stages).toEqual(r.stages);
  });

  it('writes a report with a row for every model on every task it does, P5 on seen and unseen prompts, and the trivial text baseline', () => {
    for (const f of ['report.md', 'report.json', 'report.html']) expect(statSync(join(dir, 'report', f)).size).toBeGreaterThan(500);
    const report = JSON.parse(readFileSync(join(dir, 'report', 'report.json'), 'utf8')) as { tables: { dataset: string; task: string; rows: { model: string; values: (number | null)[]; count?: number; notes?: string }[] }[] };
    const MI = 'amazon:reviews_Musical_Instruments_5';
    const table = (task: string) => report.tables.find((t) => t.dataset === MI && t.task === task)!;
    expect(report.tables.filter((t) => t.dataset === MI).map((t) => t.task).sort()).toEqual(['direct', 'explanation', 'rating', 'review', 'sequential']);
    const models = (task: string) => table(task).rows.map((r) => r.model);
    expect(models('rating')).toEqual(['pop (random ids)', 'mf (random ids)', 'mlp (random ids)', 'P5 (1-1)', 'P5 (1-1, expected star)', 'P5 (1-6)']);
    for (const task of ['sequential', 'direct']) {
      expect(models(task).slice(0, 5)).toEqual(['pop', 'bpr-mf', 'bpr-mlp', 'simplex', 'sasrec'].map((k) => `${k} (random ids)`));
    }
    expect(models('sequential').slice(5)).toEqual(['P5 (2-1)', 'P5 (2-13, unseen)']);
    expect(models('direct').slice(5)).toEqual(['P5 (2-1)', 'P5 (2-7)', 'P5 (5-1)', 'P5 (5-8, unseen)']);
    expect(models('explanation')).toEqual(['P5 (3-11)', 'P5 (3-12, unseen)', 'most frequent training answer (3-11 rows)', 'most frequent training answer (3-12 rows)']);
    expect(models('review')).toEqual(['P5 (4-1)', 'most frequent training answer (4-1 rows)']);
    for (const t of report.tables) for (const r of t.rows) expect(r.values.every((v) => v === null || Number.isFinite(v)), `${t.task} ${r.model}`).toBe(true);
    const html = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('P5 (2-13, unseen)');
  });

  it('the names part: the titled Beauty slice gets sequential and direct tables, with the LLM smoke row labelled as the toy model', async () => {
    const report = JSON.parse(readFileSync(join(dir, 'report', 'report.json'), 'utf8')) as { tables: { dataset: string; task: string; rows: { model: string; kind?: string; values: (number | null)[]; count?: number; notes?: string }[] }[] };
    const slice = report.tables.filter((t) => t.dataset === 'beauty-slice');
    expect(slice.map((t) => t.task).sort()).toEqual(['direct', 'sequential']);
    const rows = (task: string) => slice.find((t) => t.task === task)!.rows;
    expect(rows('sequential').map((r) => r.model)).toEqual(['pop (random ids)', 'bpr-mf (random ids)', 'sasrec (random ids)']);
    expect(rows('direct').map((r) => r.model)).toEqual(['pop (random ids)', 'bpr-mf (random ids)', 'sasrec (random ids)', LLM_SMOKE_LABEL]);
    for (const r of rows('sequential')) expect(r.count).toBe(40);
    const llm = rows('direct')[3];
    expect(llm.kind).toBe('llm');
    expect(llm.count).toBe(2);
    expect(LLM_SMOKE_LABEL).toMatch(/^LLM smoke: stories260K \(260K toy model\)$/);
    // The usable share leads the notes, whatever it is, then what the model is.
    expect(llm.notes).toMatch(/^usable answers [0-2]\/2 \(.*\); the bundled 260K-parameter stories model: proves the embedded LLM path runs .*not a recommender \| refinement: /);
    expect(llm.values.every((v) => v === null || (v >= 0 && v <= 1))).toBe(true);
    const html = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
    expect(html).toContain('beauty-slice');
    expect(html).toContain('LLM smoke: stories260K (260K toy model)');
    // The imported slice has a title for every item (what the page and the LLM show).
    const ds = await loadDataset(join(dir, 'beauty-slice', 'dataset'));
    expect(ds.numItems).toBe(891);
    expect(ds.items.title.filter((t) => typeof t === 'string' && t.trim().length > 0)).toHaveLength(ds.numItems);
    expect(ds.items.title).toContain('Hawaiian Tropic Silk Hydration SPF 30 Sunscreen Lotion, 6 Fluid Ounce');
  });

  it('the bundled slice is scripts/make-beauty-slice.mjs\'s output, small, and the bundled GGUF is the one copy', () => {
    const check = spawnSync(process.execPath, [join(ROOT, 'scripts/make-beauty-slice.mjs'), '--check'], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ users: 1906, items: 891, interactions: 20067 });
    const bytes = ['sequential.txt', 'datamaps.json', 'meta.jsonl', 'README.md'].reduce((n, f) => n + statSync(join(BEAUTY_SLICE, f)).size, 0);
    expect(bytes).toBeLessThan(1_500_000);
    expect(statSync(STORIES_GGUF).size).toBe(1_185_376);
    expect(existsSync(join(ROOT, 'test/fixtures/models/stories260K.gguf'))).toBe(false);
  });

  it('scripts/readme-results.mjs puts the report into a marked README section', () => {
    const readme = join(tmp, 'README.md');
    writeFileSync(readme, '# x\n\nbefore\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\nafter\n');
    const r = script([join(dir, 'report', 'report.json'), '--readme', readme]);
    expect(r.status, r.stderr).toBe(0);
    const text = readFileSync(readme, 'utf8');
    expect(text).toMatch(/^# x\n\nbefore\n\n<!-- results:start -->\n/);
    expect(text).toMatch(/<!-- results:end -->\n\nafter\n$/);
    expect(text).not.toContain('\nold\n');
    expect(text).toContain('| P5 (2-13, unseen) |');
    expect(text).toContain('A `--fast` smoke run');
    const check = script([join(dir, 'report', 'report.json'), '--readme', readme, '--check']);
    expect(check.status).toBe(0);
    const missing = script([join(tmp, 'nope.json'), '--readme', readme]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^readme-results: error: .*nope\.json: not found/);
  });

  it('re-running reuses every finished stage; a changed recipe refits only that model', () => {
    const again = cli(['quickstart', '--dir', dir, '--fast', '--p5-steps', '4', '--json', '--quiet']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toBe('');
    const stages = (again.json as { stages: { stage: string; reused: boolean }[] }).stages;
    for (const s of stages) if (s.stage.startsWith('fit') || s.stage.startsWith('eval') || s.stage === 'import') expect(s.reused, s.stage).toBe(true);
    // A different P5 step count is a different recipe: P5 is retrained and re-evaluated, nothing else.
    const p5Recipe = JSON.parse(readFileSync(join(dir, 'models', 'p5.recipe.json'), 'utf8'));
    expect(p5Recipe.steps).toBe(4);
    writeFileSync(join(dir, 'models', 'mf.recipe.json'), '{"changed":true}\n');
    const third = cli(['quickstart', '--dir', dir, '--fast', '--p5-steps', '4', '--skip-p5', '--json', '--quiet']);
    expect(third.status, third.stderr).toBe(0);
    const s3 = (third.json as { stages: { stage: string; reused: boolean }[] }).stages;
    expect(s3.filter((s) => !s.reused && (s.stage.startsWith('fit') || s.stage.startsWith('eval'))).map((s) => s.stage)).toEqual(['fit mf', 'eval mf rating']);
    expect(s3.some((s) => s.stage.includes('p5'))).toBe(false);
  });

  it('a P5 run killed before its first checkpoint is trained afresh, not "resumed"', () => {
    // What a SIGKILL early in training leaves: the tokenizer, no checkpoint, no model.
    const p5 = join(dir, 'models', 'p5');
    expect(existsSync(join(p5, 'train', 'tokenizer.json'))).toBe(true);
    for (const f of ['model.json', 'train/checkpoint', 'train/checkpoint.old']) rmSync(join(p5, f), { recursive: true, force: true });
    const r = cli(['quickstart', '--dir', dir, '--fast', '--p5-steps', '4', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const stages = (r.json as { stages: { stage: string; reused: boolean }[] }).stages;
    expect(stages.find((s) => s.stage === 'fit p5')?.reused).toBe(false);
    expect(existsSync(join(p5, 'model.json'))).toBe(true);
  });

  it('SIGINT during a baseline fit ends the process at once; the rerun refits just that model', async () => {
    // The fit is synchronous compute in-process, so no handler could run: the signal's default action ends it, as it ended the child process each stage once ran in.
    writeFileSync(join(dir, 'models', 'sasrec.recipe.json'), '{"changed":true}\n');
    const child = spawn(process.execPath, [BIN, 'quickstart', '--dir', dir, '--fast', '--p5-steps', '4', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let sentAt = 0;
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      // The fit's own first line: the stage has replaced the old model and is training.
      if (!sentAt && err.includes('[quickstart] sasrec: ')) {
        sentAt = Date.now();
        child.kill('SIGINT');
      }
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('close', (c, s) => res([c, s])));
    expect(sentAt, err.slice(-2000)).toBeGreaterThan(0);
    expect(signal === 'SIGINT' || code === 130).toBe(true);
    expect(Date.now() - sentAt).toBeLessThan(5000);
    expect(existsSync(join(dir, 'models', 'sasrec', 'model.json'))).toBe(false);
    const r = cli(['quickstart', '--dir', dir, '--fast', '--p5-steps', '4', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const stages = (r.json as { stages: { stage: string; reused: boolean }[] }).stages;
    expect(stages.filter((s) => !s.reused && (s.stage.startsWith('fit') || s.stage.startsWith('eval'))).map((s) => s.stage)).toEqual(['fit sasrec', 'eval sasrec sequential', 'eval sasrec direct']);
  }, 240_000);

  it('the training recipe is one exported object', () => {
    expect(QUICKSTART_P5).toMatchObject({ config: 'tiny' });
    expect(Object.keys(QUICKSTART_P5).sort()).toEqual(['adamEps', 'config', 'dropout', 'embeddingLrScale', 'epochs', 'itemIds', 'itemInit', 'itemInitDims', 'itemLrScale', 'lr', 'maxBatch', 'maxSourceLength', 'negatives', 'ratingNoise', 'tokensPerBatch', 'userPieces', 'weights']);
    expect(existsSync(join(ROOT, 'data/musical-instruments/reviews_Musical_Instruments_5.json.gz'))).toBe(true);
  });
});
