#!/usr/bin/env node
/**
 * The import graph of src/: every cycle, and every import that points up a
 * layer (a lower layer must not know the ones built on it). Prints one line
 * per finding; `--json` prints {cycles, upward}. Exit 1 when any is found.
 *
 *   node scripts/check-imports.mjs [--json]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
/** Layers, lowest first: a module may import its own layer and those below. */
export const LAYERS = [
  ['errors.ts', 'version.ts', 'defaults.ts', 'util', 'bundled.ts'],
  ['data', 'engine'],
  ['models', 'tokenizer', 'prompts'],
  ['recommend/recommender.ts', 'recommend/card.ts', 'baselines', 'train', 'eval/metrics.ts'],
  ['p5', 'llm', 'eval'],
  // The registry, store and fitModel sit above every model family (P5 included): they know all, none knows them.
  ['recommend'],
  ['serve', 'pipeline'],
  ['cli', 'index.ts'],
];

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

/** The layer of a src-relative path: the longest matching prefix wins (a file listed beats its folder). */
export function layerOf(rel) {
  let best = -1, len = -1;
  LAYERS.forEach((names, i) => {
    for (const n of names) if ((rel === n || rel.startsWith(`${n}/`)) && n.length > len) [best, len] = [i, n.length];
  });
  return best;
}

export function importGraph() {
  const graph = new Map();
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    const deps = [];
    // Static imports and re-exports that carry values (type-only ones vanish at run time but still couple modules, so they count).
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
      deps.push(relative(SRC, resolve(dirname(f), m[1].replace(/\.js$/, '.ts'))));
    }
    for (const m of text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)) deps.push(relative(SRC, resolve(dirname(f), m[1].replace(/\.js$/, '.ts'))));
    graph.set(relative(SRC, f), [...new Set(deps)]);
  }
  return graph;
}

export function findCycles(graph) {
  const cycles = [];
  const state = new Map();
  const stack = [];
  const visit = (n) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

export function findUpward(graph) {
  const out = [];
  for (const [from, deps] of graph) for (const to of deps) if (layerOf(to) > layerOf(from)) out.push({ from, to });
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const graph = importGraph();
  const cycles = findCycles(graph);
  const upward = findUpward(graph);
  if (process.argv.includes('--json')) console.log(JSON.stringify({ modules: graph.size, cycles, upward }));
  else {
    for (const c of cycles) console.log(`cycle: ${c.join(' → ')}`);
    for (const u of upward) console.log(`upward: ${u.from} → ${u.to}`);
    console.log(`${graph.size} modules, ${cycles.length} cycles, ${upward.length} upward imports`);
  }
  process.exit(cycles.length || upward.length ? 1 : 0);
}
