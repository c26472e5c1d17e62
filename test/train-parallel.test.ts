/**
 * Data-parallel training over worker_threads equals single-worker training on
 * the same global batch. Worker threads run plain Node (no vitest transform),
 * so the sources they need are transpiled to JavaScript in a temp folder first
 * (typescript's transpileModule; node_modules and the engine's native build
 * folder linked next to them, so that workers load the same kernels).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { loadT5 } from '../src/models/t5/checkpoint.js';
import type { Seq2SeqExample } from '../src/models/t5/collate.js';
import { createTask, type T5TaskOptions } from '../src/train/t5-task.js';
import { train } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Transpile the modules a worker needs into `<tmp>/src` (ESM JavaScript). */
function transpileSources(): string {
  const root = mkdtempSync(join(tmpdir(), 'p5rec-js-'));
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'), 'dir');
  // the engine's optional native addon (build/Release/*.node) resolves relative to src/engine too
  if (existsSync(join(repo, 'build'))) symlinkSync(join(repo, 'build'), join(root, 'build'), 'dir');
  writeFileSync(join(root, 'package.json'), '{"type": "module"}\n');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) {
        const out = join(root, relative(repo, p)).replace(/\.ts$/, '.js');
        mkdirSync(dirname(out), { recursive: true });
        const js = ts.transpileModule(readFileSync(p, 'utf8'), { fileName: p, compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } });
        writeFileSync(out, js.outputText);
      }
    }
  };
  for (const d of ['src/engine', 'src/util', 'src/models/t5', 'src/tokenizer', 'src/train']) walk(join(repo, d));
  writeFileSync(join(root, 'src/errors.js'), ts.transpileModule(readFileSync(join(repo, 'src/errors.ts'), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText);
  return root;
}

function examples(n: number): Seq2SeqExample[] {
  const rng = new Rng(11);
  return Array.from({ length: n }, () => {
    const len = 2 + rng.int(6);
    const src = Array.from({ length: len }, () => 3 + rng.int(40));
    return { inputIds: [...src, 1], wholeWordIds: [...src.map((_, i) => 1 + i), 0], labels: [src[len - 1], src[0], 1] };
  });
}

let js: string;
const made: string[] = [];
beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  js = transpileSources();
  made.push(js);
});
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('data-parallel training (worker_threads)', () => {
  it('2 workers give the same losses and parameters as 1 worker on the same global batch', async () => {
    const options: T5TaskOptions = {
      config: { preset: 'tiny', vocab_size: 48, d_model: 32, d_kv: 8, num_heads: 4, d_ff: 48, num_layers: 2, num_decoder_layers: 2, whole_word_embeddings: 16, dropout_rate: 0.1 },
      seed: 5,
      examples: examples(24),
    };
    const common = { batchSize: 8, steps: 6, seed: 3, lr: 2e-3, quiet: true } as const;
    const task = await createTask(options);
    const single = await train({ ...common, task, microBatchSize: 4 });
    const out = mkdtempSync(join(tmpdir(), 'p5rec-dp-'));
    made.push(out);
    const dual = await train({
      ...common,
      workers: 2,
      backend: 'wasm',
      taskModule: { module: join(js, 'src/train/t5-task.js'), options },
      workerUrl: pathToFileURL(join(js, 'src/train/worker.js')),
      outDir: out,
      exportModel: true,
    });
    expect(dual.records.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < 6; i++) {
      expect(dual.records[i].loss).toBeCloseTo(single.records[i].loss, 6);
      expect(dual.records[i].tokens).toBe(single.records[i].tokens);
    }
    let worst = 0;
    for (let i = 0; i < single.params.length; i++) worst = Math.max(worst, Math.abs(single.params[i] - dual.params[i]));
    expect(worst).toBeLessThan(1e-6);
    // rank 0 exported the synchronised model
    const exported = loadT5(join(out, 'model'));
    const probe = { batchSize: 1, srcLen: 3, tgtLen: 2, inputIds: Int32Array.from([5, 6, 1]), attentionMask: Int32Array.from([1, 1, 1]), wholeWordIds: Int32Array.from([1, 2, 0]), labels: Int32Array.from([7, 1]), decoderInputIds: Int32Array.from([0, 7]) };
    const a = exported.model.forward(probe).dataSync();
    const b = task.model.forward(probe).dataSync();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 4);
    exported.model.dispose();
    task.dispose?.();
  });

  it('reports a task module without a factory', async () => {
    await expect(
      train({ batchSize: 2, steps: 1, workers: 2, quiet: true, taskModule: { module: join(js, 'src/errors.js') }, workerUrl: pathToFileURL(join(js, 'src/train/worker.js')) }),
    ).rejects.toThrow(/has no export 'createTask'/);
  });
});
