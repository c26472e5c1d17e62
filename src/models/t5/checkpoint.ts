/**
 * T5 checkpoints in HF transformers' folder layout:
 *
 *   model.safetensors   float32 weights under HF names, Linear weights [out, in]
 *                       (+ P5's encoder.whole_word_embeddings.weight)
 *   config.json         HF T5Config fields (+ whole_word_embeddings)
 *   tokenizer.json      HF tokenizers file (optional)
 *
 * `loadT5` also reads a downloaded HF model folder (e.g. t5-small:
 * model.safetensors or a sharded model.safetensors.index.json, config.json,
 * tokenizer.json); tensors the folder lacks that P5 adds (the whole-word
 * table) are initialised fresh and listed in `initialised`.
 * Every file is written to a temp file and renamed into place.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { readSafetensors, writeSafetensors, type SafetensorsFile, type Tensor as StTensor } from '../../util/safetensors.js';
import { EOS, MAX_LENGTH, PAD, T5Tokenizer, UNK } from '../../tokenizer/tokenizer.js';
import { configFromJSON, configJSONText, type T5Config } from './config.js';
import { T5Model } from './model.js';

export const MODEL_FILE = 'model.safetensors';
export const MODEL_INDEX_FILE = 'model.safetensors.index.json';
export const CONFIG_FILE = 'config.json';
export const TOKENIZER_FILE = 'tokenizer.json';
/** transformers' AutoTokenizer reads tokenizer.json through this (PreTrainedTokenizerFast). */
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** Tensors in HF checkpoints that are copies of `shared.weight` or unused by HF itself. */
const IGNORABLE = new Set(['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight', 'decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight']);

export interface SaveT5Options {
  tokenizer?: T5Tokenizer | null;
  /** Extra string metadata in the safetensors header (format: 'pt' is always set). */
  metadata?: Record<string, string>;
}

/** Write model.safetensors, config.json and (given one) tokenizer.json + tokenizer_config.json into `dir`. */
export function saveT5(dir: string, model: T5Model, opts: SaveT5Options = {}): void {
  if (opts.tokenizer) {
    if (opts.tokenizer.vocabSize > model.config.vocab_size) {
      throw new InputError(`the tokenizer has ${opts.tokenizer.vocabSize} tokens, more than the model's vocab_size ${model.config.vocab_size}`);
    }
    opts.tokenizer.save(join(dir, TOKENIZER_FILE));
    writeFileAtomic(join(dir, TOKENIZER_CONFIG_FILE), tokenizerConfigText(opts.tokenizer));
  }
  writeFileAtomic(join(dir, CONFIG_FILE), configJSONText(model.config));
  const tensors: Record<string, StTensor> = {};
  for (const [name, w] of model.exportWeights()) tensors[name] = { dtype: 'F32', shape: w.shape, data: w.data };
  writeSafetensors(join(dir, MODEL_FILE), tensors, { format: 'pt', ...(opts.metadata ?? {}) });
}

/** The tokenizer_config.json that makes `AutoTokenizer.from_pretrained(dir)` load tokenizer.json as is. */
export function tokenizerConfigText(tok: T5Tokenizer): string {
  const cfg: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    eos_token: EOS,
    pad_token: PAD,
    ...(tok.unkId >= 0 ? { unk_token: UNK } : {}),
    model_max_length: MAX_LENGTH,
    padding_side: 'right',
    clean_up_tokenization_spaces: false,
  };
  return JSON.stringify(cfg, null, 2) + '\n';
}

export interface LoadT5Options {
  /** Seed for tensors the checkpoint lacks (P5's whole-word table in a HF folder). */
  seed?: number;
  /** Override config fields that do not change tensor shapes (e.g. dropout_rate). */
  overrides?: Partial<Pick<T5Config, 'dropout_rate' | 'layer_norm_epsilon'>>;
  /** Read tokenizer.json when present (default true). */
  tokenizer?: boolean;
}

export interface LoadedT5 {
  model: T5Model;
  config: T5Config;
  tokenizer: T5Tokenizer | null;
  /** Parameters not in the checkpoint, freshly initialised. */
  initialised: string[];
}

/** Load a T5 folder (ours or HF's). `initEngine()` first. */
export function loadT5(dir: string, opts: LoadT5Options = {}): LoadedT5 {
  const configPath = join(dir, CONFIG_FILE);
  if (!existsSync(dir)) throw new InputError('model folder not found', { file: dir });
  if (!existsSync(configPath)) throw new InputError(`no ${CONFIG_FILE} in the model folder`, { file: dir });
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (e) {
    throw new InputError(`config is not JSON (${(e as Error).message})`, { file: configPath });
  }
  const config = configFromJSON({ ...raw, ...(opts.overrides ?? {}) }, configPath);
  const files = openWeights(dir);
  const tokenizerPath = join(dir, TOKENIZER_FILE);
  const tokenizer = opts.tokenizer !== false && existsSync(tokenizerPath) ? T5Tokenizer.load(tokenizerPath) : null;
  if (tokenizer && tokenizer.vocabSize > config.vocab_size) {
    throw new InputError(`tokenizer has ${tokenizer.vocabSize} tokens but config.json says vocab_size ${config.vocab_size}`, { file: tokenizerPath });
  }
  const model = T5Model.create(config, { seed: opts.seed ?? 0, init: (name) => files.find(name) === null });
  const initialised: string[] = [];
  try {
    const expected = new Map(model.parameterShapes());
    for (const [name, shape] of expected) {
      const src = files.find(name);
      if (!src) {
        if (name === 'encoder.whole_word_embeddings.weight') {
          initialised.push(name);
          continue;
        }
        throw new InputError(`config.json does not match the weights: tensor '${name}' is missing${hintFor(name, config)}`, { file: files.label });
      }
      const info = src.file.info(src.name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new InputError(
          `config.json does not match the weights: shape [${info.shape.join(', ')}] in the file, [${shape.join(', ')}] from config.json${shapeHint(name, config)}`,
          { file: src.path, field: src.name },
        );
      }
      model.importWeight(name, { shape: info.shape, data: src.file.float32(src.name) });
    }
    const unexpected = files.names().filter((n) => !expected.has(n) && !IGNORABLE.has(n) && !(n === 'lm_head.weight' && config.tie_word_embeddings));
    if (unexpected.length > 0) {
      const list = unexpected.slice(0, 3).join(', ') + (unexpected.length > 3 ? `, … (${unexpected.length} in all)` : '');
      throw new InputError(`config.json does not match the weights: the file has tensors the config does not describe: ${list}`, { file: files.label });
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, config, tokenizer, initialised };
}

interface WeightFiles {
  label: string;
  find(name: string): { file: SafetensorsFile; name: string; path: string } | null;
  names(): string[];
}

function openWeights(dir: string): WeightFiles {
  const single = join(dir, MODEL_FILE);
  const index = join(dir, MODEL_INDEX_FILE);
  if (existsSync(single)) {
    const file = readSafetensors(single);
    return { label: single, find: (n) => (file.names.includes(n) ? { file, name: n, path: single } : alias(n, (m) => file.names.includes(m) ? { file, name: m, path: single } : null)), names: () => file.names };
  }
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
      if (!map || typeof map !== 'object') throw new Error('no weight_map');
    } catch (e) {
      throw new InputError(`invalid safetensors index (${(e as Error).message})`, { file: index });
    }
    const opened = new Map<string, SafetensorsFile>();
    const open = (shard: string): SafetensorsFile => {
      let f = opened.get(shard);
      if (!f) {
        f = readSafetensors(join(dir, shard));
        opened.set(shard, f);
      }
      return f;
    };
    const get = (n: string) => (map[n] ? { file: open(map[n]), name: n, path: join(dir, map[n]) } : null);
    return { label: index, find: (n) => get(n) ?? alias(n, get), names: () => Object.keys(map) };
  }
  const bin = existsSync(join(dir, 'pytorch_model.bin'));
  throw new InputError(
    `no ${MODEL_FILE} in the model folder` + (bin ? ' (PyTorch .bin weights are not supported: download the safetensors file or convert with transformers save_pretrained(safe_serialization=True))' : ''),
    { file: dir },
  );
}

/** `shared.weight` may be stored only as encoder/decoder.embed_tokens.weight. */
function alias<T>(name: string, get: (n: string) => T | null): T | null {
  if (name !== 'shared.weight') return null;
  return get('encoder.embed_tokens.weight') ?? get('decoder.embed_tokens.weight');
}

function hintFor(name: string, c: T5Config): string {
  const m = /^(encoder|decoder)\.block\.(\d+)\./.exec(name);
  if (m) return ` (config.json: ${m[1] === 'encoder' ? 'num_layers' : 'num_decoder_layers'} ${m[1] === 'encoder' ? c.num_layers : c.num_decoder_layers})`;
  if (name.includes('wi_0') || name.includes('wi.weight')) return ` (config.json: feed_forward_proj '${c.feed_forward_proj}')`;
  if (name === 'lm_head.weight') return ' (config.json: tie_word_embeddings false)';
  return '';
}

function shapeHint(name: string, c: T5Config): string {
  if (name === 'shared.weight' || name === 'lm_head.weight') return ` (vocab_size ${c.vocab_size}, d_model ${c.d_model})`;
  if (name.includes('relative_attention_bias')) return ` (relative_attention_num_buckets ${c.relative_attention_num_buckets}, num_heads ${c.num_heads})`;
  if (name.includes('DenseReluDense')) return ` (d_model ${c.d_model}, d_ff ${c.d_ff})`;
  if (name.includes('Attention')) return ` (d_model ${c.d_model}, num_heads ${c.num_heads}, d_kv ${c.d_kv})`;
  return ` (d_model ${c.d_model})`;
}
