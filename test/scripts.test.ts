// The analysis scripts that docs/p5.md quotes: the synthetic rating file and the
// bias-only rating models.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT, tempDir } from './helpers/cli.js';
import { recipeJson, resolveP5Options } from '../src/p5/config.js';

function script(name: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [join(ROOT, 'scripts', name), ...args], { encoding: 'utf8', cwd: ROOT });
}

describe('scripts/synthetic-ratings.mjs and scripts/rating-bias.mjs', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = tempDir('p5rec-scripts-');
  });

  it('writes the same item-determined ratings for the same seed', () => {
    const args = ['--users', '200', '--items', '20', '--per-user', '5', '--seed', '3', '--json'];
    const a = script('synthetic-ratings.mjs', [...args, '--out', join(tmp, 'a.csv')]);
    const b = script('synthetic-ratings.mjs', [...args, '--out', join(tmp, 'b.csv')]);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(JSON.parse(a.stdout).interactions).toBe(1000);
    const text = readFileSync(join(tmp, 'a.csv'), 'utf8');
    expect(readFileSync(join(tmp, 'b.csv'), 'utf8')).toBe(text);
    const rows = text.trim().split('\n').slice(1).map((l) => l.split(','));
    expect(rows.length).toBe(1000);
    const perUser = new Map<string, Set<string>>();
    for (const [u, i, r] of rows) {
      expect(r).toBe(Number(i.slice(1)) % 2 === 0 ? '5' : '2');
      perUser.set(u, (perUser.get(u) ?? new Set()).add(i));
    }
    expect([...perUser.values()].every((s) => s.size === 5)).toBe(true);
    const bad = script('synthetic-ratings.mjs', ['--out', join(tmp, 'c.csv'), '--per-user', '30', '--items', '20']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--per-user (30) must not exceed --items (20)');
  });

  it('finds the item signal the synthetic file holds, and none in the users', () => {
    const imp = cli(['data', 'import', 'csv', '--file', join(tmp, 'a.csv'), '--user', 'user', '--item', 'item', '--rating', 'rating', '--time', 'time', '--out', join(tmp, 'syn'), '--json', '--quiet']);
    expect(imp.json?.ok, imp.stderr).toBe(true);
    const r = script('rating-bias.mjs', [join(tmp, 'syn'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { models: { name: string; test: number; valid: number }[]; mean: number };
    const by = (name: string) => out.models.find((m) => m.name.startsWith(name))!;
    const mean = by('train mean');
    expect(out.mean).toBeGreaterThan(2);
    expect(out.mean).toBeLessThan(5);
    // ratings are a function of the item: item biases nearly explain them, user biases do not
    expect(by('item biases').test).toBeLessThan(0.3 * mean.test);
    expect(by('user biases').test).toBeGreaterThan(0.8 * mean.test);
  });
});

// The PyTorch trainer's arguments need no torch: --help, and a recipe.json as its defaults.
const python = spawnSync('python3', ['--version']).status === 0;
describe.skipIf(!python)('scripts/hf_train_p5.py --recipe', () => {
  const py = (args: string[]) => spawnSync('python3', args, { encoding: 'utf8', cwd: ROOT, env: { ...process.env, PYTHONPATH: join(ROOT, 'python') } });

  it('shows --help without torch, --recipe among the options', () => {
    const r = py([join(ROOT, 'scripts', 'hf_train_p5.py'), '--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('--recipe RECIPE');
  });

  it("takes the recipe's values as defaults, flags given still win, a bad recipe is an argument error", () => {
    const tmp = tempDir('p5rec-recipe-');
    const path = join(tmp, 'recipe.json');
    const cfg = resolveP5Options({ lr: 5e-4, adamEps: 1e-8, weightDecay: 0.02, warmupRatio: 0.1, embeddingLrScale: 4, itemIds: 'independent', itemLrScale: 0.05, emaDecay: 0.99, dropout: 0, epochs: 3, steps: 7, maxBatch: 32, batchesPerStep: 2, seed: 4 });
    writeFileSync(path, JSON.stringify(recipeJson(cfg)));
    const code = 'import json, sys\nfrom p5rec.train_args import parse_args\nprint(json.dumps(vars(parse_args(sys.argv[1:]))))';
    const parsed = (args: string[]) => JSON.parse(py(['-c', code, '--model', 'M', ...args]).stdout) as Record<string, unknown>;
    expect(parsed(['--recipe', path])).toMatchObject({ lr: 5e-4, adam_eps: 1e-8, weight_decay: 0.02, warmup: 0.1, embedding_lr_scale: 4, item_lr_scale: 0.05, ema_decay: 0.99, clip: 1, dropout: 0, epochs: 3, steps: 7, seed: 4, max_source: 512, batch_size: 64 });
    expect(parsed(['--recipe', path, '--lr', '0.01', '--batch-size', '256'])).toMatchObject({ lr: 0.01, batch_size: 256, adam_eps: 1e-8 });
    expect(parsed([])).toMatchObject({ lr: 1e-3, adam_eps: 1e-6, batch_size: 256, dropout: null, item_lr_scale: null, ema_decay: null });
    writeFileSync(path, '{"format":"other"}');
    const bad = py([join(ROOT, 'scripts', 'hf_train_p5.py'), '--model', 'M', '--recipe', path]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--recipe: .*not a p5rec recipe/);
  });
});
