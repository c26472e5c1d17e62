/**
 * T5 folders: save → load gives identical logits; a HF-style folder (no P5
 * whole-word table, `encoder.embed_tokens.weight` alias, config.json without
 * the newer fields) loads; damaged or mismatched files fail with one clear line.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { InputError, P5recError } from '../src/errors.js';
import { resolveT5Config, type T5Config } from '../src/models/t5/config.js';
import { loadT5, saveT5 } from '../src/models/t5/checkpoint.js';
import { collateSeq2Seq } from '../src/models/t5/collate.js';
import { T5Model } from '../src/models/t5/model.js';
import { T5Tokenizer } from '../src/tokenizer/tokenizer.js';
import { readSafetensors, writeSafetensors, type Tensor } from '../src/util/safetensors.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
});

const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'p5rec-t5ck-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const cfg = (over: Partial<T5Config> = {}): T5Config =>
  resolveT5Config({ preset: 'tiny', vocab_size: 30, d_model: 16, d_kv: 4, num_heads: 2, d_ff: 32, num_layers: 2, num_decoder_layers: 1, dropout_rate: 0, ...over });
const batch = (c: T5Config) => collateSeq2Seq([{ inputIds: [4, 5, 6, 1], wholeWordIds: [1, 1, 2, 0], labels: [7, 8, 1] }, { inputIds: [9, 1], wholeWordIds: [1, 0], labels: [10, 1] }], c);

function tokenizerJSON(): string {
  const pieces = ['▁', 'a', 'b', 'c', '▁ab', '▁c'];
  return JSON.stringify({
    version: '1.0',
    added_tokens: ['<pad>', '</s>', '<unk>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: null,
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 2, vocab: [['<pad>', 0], ['</s>', 0], ['<unk>', 0], ...pieces.map((p) => [p, -p.length])], byte_fallback: false },
  });
}

function errorLine(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(P5recError);
    return (e as P5recError).oneLine();
  }
  throw new Error('expected an error');
}

describe('T5 checkpoints', () => {
  it('save → load gives identical logits, config and tokenizer', () => {
    const c = cfg({ feed_forward_proj: 'gated-gelu', tie_word_embeddings: false });
    const m = T5Model.create(c, { seed: 11 });
    const dir = join(tmp(), 'model');
    const tok = T5Tokenizer.fromJSON(tokenizerJSON());
    saveT5(dir, m, { tokenizer: tok });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'))).toMatchObject({ tokenizer_class: 'PreTrainedTokenizerFast', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', model_max_length: 512 });
    const cj = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cj.model_type).toBe('t5');
    expect(cj.d_model).toBe(16);
    const st = readSafetensors(join(dir, 'model.safetensors'));
    expect(st.metadata.format).toBe('pt');
    expect(st.info('encoder.block.0.layer.0.SelfAttention.o.weight').shape).toEqual([16, 8]); // HF [out, in]
    expect(st.info('lm_head.weight').shape).toEqual([30, 16]);

    const loaded = loadT5(dir);
    expect(loaded.config).toEqual(c);
    expect(loaded.initialised).toEqual([]);
    expect(loaded.tokenizer?.vocabSize).toBe(tok.vocabSize);
    const a = m.forward(batch(c)).dataSync();
    const b = loaded.model.forward(batch(c)).dataSync();
    expect(Array.from(b)).toEqual(Array.from(a));
    m.dispose();
    loaded.model.dispose();
  });

  it('loads a HF-style t5 folder and initialises the P5 whole-word table', () => {
    const c = cfg();
    const m = T5Model.create(c, { seed: 12 });
    const dir = tmp();
    const tensors: Record<string, Tensor> = {};
    for (const [name, w] of m.exportWeights()) {
      if (name === 'encoder.whole_word_embeddings.weight') continue;
      tensors[name === 'shared.weight' ? 'encoder.embed_tokens.weight' : name] = { dtype: 'F32', shape: w.shape, data: w.data };
    }
    tensors['decoder.embed_tokens.weight'] = tensors['encoder.embed_tokens.weight'];
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    // an old-style HF config.json: no num_decoder_layers (= num_layers), no feed_forward_proj
    const hf = { architectures: ['T5ForConditionalGeneration'], model_type: 't5', d_model: 16, d_kv: 4, d_ff: 32, num_heads: 2, num_layers: 2, num_decoder_layers: 1, vocab_size: 30, relative_attention_num_buckets: 32, dropout_rate: 0.1, layer_norm_epsilon: 1e-6, initializer_factor: 1, eos_token_id: 1, pad_token_id: 0, decoder_start_token_id: 0, n_positions: 512 };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(hf));
    writeFileSync(join(dir, 'tokenizer.json'), tokenizerJSON());
    const loaded = loadT5(dir, { overrides: { dropout_rate: 0 } });
    expect(loaded.initialised).toEqual(['encoder.whole_word_embeddings.weight']);
    expect(loaded.config.feed_forward_proj).toBe('relu');
    expect(loaded.config.whole_word_embeddings).toBe(512);
    expect(loaded.tokenizer?.eosId).toBe(1);
    // without whole-word ids the two models agree exactly
    const b = { ...batch(c), wholeWordIds: undefined };
    expect(Array.from(loaded.model.forward(b).dataSync())).toEqual(Array.from(m.forward(b).dataSync()));
    m.dispose();
    loaded.model.dispose();
  });

  it('writes float fields as floats (transformers 5 rejects initializer_factor: 1) and reads them back', () => {
    const c = { ...cfg(), dropout_rate: 0, initializer_factor: 1 };
    const m = T5Model.create(c, { seed: 14 });
    const dir = tmp();
    saveT5(dir, m, { tokenizer: T5Tokenizer.fromJSON(tokenizerJSON()) });
    const text = readFileSync(join(dir, 'config.json'), 'utf8');
    expect(text).toMatch(/"initializer_factor": 1\.0,?\n/);
    expect(text).toMatch(/"dropout_rate": 0\.0,?\n/);
    expect(text).toMatch(/"layer_norm_epsilon": 0\.000001,?\n/);
    const loaded = loadT5(dir);
    expect(loaded.config).toEqual(m.config);
    m.dispose();
    loaded.model.dispose();
  });

  describe('clear errors', () => {
    const c = cfg();
    let good: string;
    beforeAll(() => {
      const m = T5Model.create(c, { seed: 13 });
      good = join(tmp(), 'good');
      saveT5(good, m, { tokenizer: T5Tokenizer.fromJSON(tokenizerJSON()) });
      m.dispose();
    });
    const variant = (edit: (dir: string) => void): string => {
      const dir = join(tmp(), 'v');
      mkdirSync(dir);
      for (const f of readdirSync(good)) copyFileSync(join(good, f), join(dir, f));
      edit(dir);
      return dir;
    };

    it('truncated safetensors', () => {
      const dir = variant((d) => truncateSync(join(d, 'model.safetensors'), 2000));
      expect(errorLine(() => loadT5(dir))).toMatch(/model\.safetensors: .*invalid safetensors: .*(truncated|past the end)/);
    });

    it('corrupt safetensors header', () => {
      const dir = variant((d) => {
        const buf = readFileSync(join(d, 'model.safetensors'));
        buf.write('#', 8);
        writeFileSync(join(d, 'model.safetensors'), buf);
      });
      expect(errorLine(() => loadT5(dir))).toMatch(/invalid safetensors: header is not JSON/);
      const dir2 = variant((d) => writeFileSync(join(d, 'model.safetensors'), Buffer.from([1, 2, 3])));
      expect(errorLine(() => loadT5(dir2))).toMatch(/too short/);
    });

    it('config.json that does not match the tensors', () => {
      const edit = (over: Record<string, unknown>) =>
        variant((d) => {
          const j = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
          writeFileSync(join(d, 'config.json'), JSON.stringify({ ...j, ...over }));
        });
      expect(errorLine(() => loadT5(edit({ num_layers: 3 })))).toMatch(/config.json does not match the weights: tensor 'encoder.block.2.layer.0.SelfAttention.q.weight' is missing \(config.json: num_layers 3\)/);
      expect(errorLine(() => loadT5(edit({ num_layers: 1 })))).toMatch(/the file has tensors the config does not describe: encoder.block.1/);
      expect(errorLine(() => loadT5(edit({ d_ff: 64 })))).toMatch(/field 'encoder.block.0.layer.1.DenseReluDense.wi.weight': config.json does not match the weights: shape \[32, 16\] in the file, \[64, 16\] from config.json/);
      expect(errorLine(() => loadT5(edit({ feed_forward_proj: 'gated-gelu' })))).toMatch(/wi_0.weight' is missing/);
      expect(errorLine(() => loadT5(edit({ vocab_size: 5 })))).toMatch(/tokenizer has 9 tokens but config.json says vocab_size 5/);
      expect(errorLine(() => loadT5(edit({ d_model: 'big' })))).toMatch(/config.json: field 'd_model': must be a positive integer/);
      expect(errorLine(() => loadT5(edit({ model_type: 'bert' })))).toMatch(/describes a 'bert' model/);
    });

    it('bad tokenizer.json, missing files', () => {
      const dir = variant((d) => writeFileSync(join(d, 'tokenizer.json'), '{"model": {"type": "Unigram", "vocab": [["a"'));
      expect(errorLine(() => loadT5(dir))).toMatch(/tokenizer.json: tokenizer file does not parse: not JSON/);
      const noModel = variant((d) => truncateSync(join(d, 'model.safetensors'), 0));
      expect(errorLine(() => loadT5(noModel))).toMatch(/too short for a header/);
      const empty = tmp();
      expect(errorLine(() => loadT5(join(empty, 'nope')))).toMatch(/model folder not found/);
      expect(errorLine(() => loadT5(empty))).toMatch(/no config.json/);
      writeFileSync(join(empty, 'config.json'), '{}');
      writeFileSync(join(empty, 'pytorch_model.bin'), '');
      expect(errorLine(() => loadT5(empty))).toMatch(/no model.safetensors .*PyTorch .bin weights are not supported/);
      expect(existsSync(join(empty, 'config.json'))).toBe(true);
    });

    it('errors are InputErrors', () => {
      const dir = variant((d) => truncateSync(join(d, 'model.safetensors'), 100));
      expect(() => loadT5(dir)).toThrow(InputError);
    });
  });
});
