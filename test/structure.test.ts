/** The shape of src/: no import cycle, no import that points up a layer (scripts/check-imports.mjs). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error a plain .mjs script without type declarations
import { findCycles, findUpward, importGraph, layerOf } from '../scripts/check-imports.mjs';

describe('module structure', () => {
  const graph = importGraph() as Map<string, string[]>;

  it('has every src module in a layer', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect([...graph.keys()].filter((m) => layerOf(m) < 0)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(findCycles(graph)).toEqual([]);
  });

  it('has no upward import', () => {
    expect(findUpward(graph)).toEqual([]);
  });

  it('finds a cycle and an upward import when there is one', () => {
    const g = new Map([['util/a.ts', ['data/b.ts']], ['data/b.ts', ['util/a.ts']]]);
    expect(findCycles(g)).toEqual([['data/b.ts', 'util/a.ts', 'data/b.ts']]);
    expect(findUpward(g)).toEqual([{ from: 'util/a.ts', to: 'data/b.ts' }]);
  });

  it('has benchmarks that import the library only through its public entries (p5rec, p5rec/engine, p5rec/llm)', () => {
    const bench = join(import.meta.dirname, '..', 'bench');
    const PUBLIC = new Set(['../dist/index.js', '../dist/engine/backend.js', '../dist/llm/index.js']);
    const deep: string[] = [];
    for (const f of readdirSync(bench).filter((x) => x.endsWith('.mjs'))) {
      for (const m of readFileSync(join(bench, f), 'utf8').matchAll(/from '(\.\.\/dist\/[^']+)'/g)) if (!PUBLIC.has(m[1])) deep.push(`${f}: ${m[1]}`);
    }
    expect(deep).toEqual([]);
  });
});
