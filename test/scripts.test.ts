// The analysis scripts that docs/p5.md quotes: the synthetic rating file and the
// bias-only rating models.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT, tempDir } from './helpers/cli.js';

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
