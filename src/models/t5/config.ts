/**
 * T5 configuration: the fields of HF transformers' `T5Config` (snake_case, as
 * in a model folder's `config.json`), presets, and resolution/validation.
 *
 *   resolveT5Config('small')                          // t5-small
 *   resolveT5Config({ preset: 'tiny', vocab_size: 500 })
 *   resolveT5Config('path/to/config.json')
 *
 * Defaults are HF's (T5Config.__init__), plus P5's whole-word embedding table
 * (`whole_word_embeddings` rows, 512; 0 = none), which HF T5 lacks.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../../errors.js';

export type FeedForwardProj = 'relu' | 'gated-gelu' | 'gated-relu';
const FF_PROJ: readonly FeedForwardProj[] = ['relu', 'gated-gelu', 'gated-relu'];

export interface T5Config {
  vocab_size: number;
  d_model: number;
  /** Size of one attention head. */
  d_kv: number;
  d_ff: number;
  /** Encoder blocks. */
  num_layers: number;
  /** Decoder blocks (HF: defaults to num_layers). */
  num_decoder_layers: number;
  num_heads: number;
  relative_attention_num_buckets: number;
  relative_attention_max_distance: number;
  dropout_rate: number;
  layer_norm_epsilon: number;
  /** 'relu' (T5 v1.0) or 'gated-gelu' (T5 v1.1, tanh-approximated GELU as HF's gelu_new). */
  feed_forward_proj: FeedForwardProj;
  /** Output layer = shared embedding (with the d_model^-0.5 rescale); else a separate lm_head. */
  tie_word_embeddings: boolean;
  initializer_factor: number;
  pad_token_id: number;
  eos_token_id: number;
  decoder_start_token_id: number;
  /** P5's whole-word embedding rows added to the encoder input (0 = none). */
  whole_word_embeddings: number;
}

export type T5Preset = 'tiny' | 'small' | 'base';

const DEFAULTS: T5Config = {
  vocab_size: 32128,
  d_model: 512,
  d_kv: 64,
  d_ff: 2048,
  num_layers: 6,
  num_decoder_layers: 6,
  num_heads: 8,
  relative_attention_num_buckets: 32,
  relative_attention_max_distance: 128,
  dropout_rate: 0.1,
  layer_norm_epsilon: 1e-6,
  feed_forward_proj: 'relu',
  tie_word_embeddings: true,
  initializer_factor: 1.0,
  pad_token_id: 0,
  eos_token_id: 1,
  decoder_start_token_id: 0,
  whole_word_embeddings: 512,
};

export const T5_PRESETS: Record<T5Preset, T5Config> = {
  /** A test / smoke model: ~0.6M parameters at vocab 1000. */
  tiny: {
    ...DEFAULTS,
    vocab_size: 1000,
    d_model: 64,
    d_kv: 16,
    d_ff: 128,
    num_layers: 2,
    num_decoder_layers: 2,
    num_heads: 4,
  },
  /** t5-small: ~60M parameters (P5-small). */
  small: { ...DEFAULTS },
  /** t5-base: ~223M parameters (P5-base). */
  base: { ...DEFAULTS, d_model: 768, d_ff: 3072, num_layers: 12, num_decoder_layers: 12, num_heads: 12 },
};

export type T5ConfigInput = T5Preset | string | (Partial<T5Config> & { preset?: T5Preset });

/**
 * A full, validated config from a preset name, a `config.json` path, or
 * fields over a preset (`{ preset: 'tiny', vocab_size: 8000 }`, default
 * preset 'small').
 */
export function resolveT5Config(input: T5ConfigInput): T5Config {
  if (typeof input === 'string') {
    if (input in T5_PRESETS) return { ...T5_PRESETS[input as T5Preset] };
    return readT5Config(input);
  }
  const { preset, ...fields } = input;
  if (preset !== undefined && !(preset in T5_PRESETS)) {
    throw new InputError(`unknown T5 preset '${preset}' (expected one of ${Object.keys(T5_PRESETS).join(', ')})`);
  }
  const base = T5_PRESETS[preset ?? 'small'];
  const merged = { ...base, ...stripUndefined(fields) };
  if (fields.num_layers !== undefined && fields.num_decoder_layers === undefined) merged.num_decoder_layers = fields.num_layers;
  return validateT5Config(merged);
}

/** Read a HF `config.json` (missing fields get HF's defaults). */
export function readT5Config(path: string): T5Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new InputError('config file not found (expected a preset name — tiny, small, base — or a config.json path)', { file: path });
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new InputError(`config is not JSON (${(e as Error).message})`, { file: path });
  }
  return configFromJSON(raw, path);
}

/** A config from a parsed HF `config.json` object. */
export function configFromJSON(raw: Record<string, unknown>, file?: string): T5Config {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError('config must be a JSON object', { file });
  if (raw.model_type !== undefined && raw.model_type !== 't5') {
    throw new InputError(`config.json describes a '${String(raw.model_type)}' model, not t5`, { file, field: 'model_type' });
  }
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof T5Config)[]) {
    if (raw[key] !== undefined && raw[key] !== null) out[key] = raw[key];
  }
  if (raw.num_decoder_layers === undefined || raw.num_decoder_layers === null) out.num_decoder_layers = out.num_layers;
  // HF files without the P5 field are plain T5: P5 still adds the table (initialised fresh).
  return validateT5Config(out as unknown as T5Config, file);
}

/** The `config.json` HF transformers reads (plus the P5 field). */
export function configToJSON(config: T5Config): Record<string, unknown> {
  return {
    architectures: ['T5ForConditionalGeneration'],
    model_type: 't5',
    is_encoder_decoder: true,
    ...config,
    dense_act_fn: config.feed_forward_proj === 'gated-gelu' ? 'gelu_new' : 'relu',
    is_gated_act: config.feed_forward_proj !== 'relu',
  };
}

/** Fields HF's T5Config types as float: its strict config classes (transformers ≥ 5) reject `1` for them. */
const FLOAT_FIELDS = ['dropout_rate', 'layer_norm_epsilon', 'initializer_factor'] as const;

/**
 * `config.json` text: configToJSON with float fields always written as
 * floats (`1.0`, not JSON.stringify's `1`), so transformers 5 loads it.
 */
export function configJSONText(config: T5Config): string {
  let text = JSON.stringify(configToJSON(config), null, 2);
  for (const k of FLOAT_FIELDS) {
    if (Number.isInteger(config[k])) text = text.replace(new RegExp(`("${k}": )(-?\\d+)(,?)$`, 'm'), '$1$2.0$3');
  }
  return text + '\n';
}

export function validateT5Config(c: T5Config, file?: string): T5Config {
  const bad = (field: string, msg: string): never => {
    throw new InputError(msg, { file, field });
  };
  const posInt = ['vocab_size', 'd_model', 'd_kv', 'd_ff', 'num_layers', 'num_decoder_layers', 'num_heads', 'relative_attention_num_buckets', 'relative_attention_max_distance'] as const;
  for (const k of posInt) if (!Number.isInteger(c[k]) || c[k] <= 0) bad(k, `must be a positive integer, got ${JSON.stringify(c[k])}`);
  const ids = ['pad_token_id', 'eos_token_id', 'decoder_start_token_id'] as const;
  for (const k of ids) if (!Number.isInteger(c[k]) || c[k] < 0 || c[k] >= c.vocab_size) bad(k, `must be a token id in [0, ${c.vocab_size}), got ${JSON.stringify(c[k])}`);
  if (!Number.isInteger(c.whole_word_embeddings) || c.whole_word_embeddings < 0) bad('whole_word_embeddings', `must be a non-negative integer, got ${JSON.stringify(c.whole_word_embeddings)}`);
  if (typeof c.dropout_rate !== 'number' || !(c.dropout_rate >= 0 && c.dropout_rate < 1)) bad('dropout_rate', `must be in [0, 1), got ${JSON.stringify(c.dropout_rate)}`);
  if (typeof c.layer_norm_epsilon !== 'number' || !(c.layer_norm_epsilon > 0)) bad('layer_norm_epsilon', `must be > 0, got ${JSON.stringify(c.layer_norm_epsilon)}`);
  if (typeof c.initializer_factor !== 'number' || !(c.initializer_factor > 0)) bad('initializer_factor', `must be > 0, got ${JSON.stringify(c.initializer_factor)}`);
  if (!FF_PROJ.includes(c.feed_forward_proj)) bad('feed_forward_proj', `must be one of ${FF_PROJ.join(', ')}, got ${JSON.stringify(c.feed_forward_proj)}`);
  if (typeof c.tie_word_embeddings !== 'boolean') bad('tie_word_embeddings', `must be true or false, got ${JSON.stringify(c.tie_word_embeddings)}`);
  if (c.relative_attention_num_buckets < 2) bad('relative_attention_num_buckets', 'must be at least 2');
  return { ...c };
}

/** Number of parameters of a model with this config. */
export function countT5Parameters(c: T5Config): number {
  const { d_model: d, d_kv, num_heads: h, d_ff } = c;
  const inner = h * d_kv;
  const attn = 4 * d * inner;
  const ff = (c.feed_forward_proj === 'relu' ? 2 : 3) * d * d_ff;
  const enc = c.num_layers * (attn + ff + 2 * d) + d;
  const dec = c.num_decoder_layers * (2 * attn + ff + 3 * d) + d;
  const rel = 2 * c.relative_attention_num_buckets * h;
  const emb = c.vocab_size * d * (c.tie_word_embeddings ? 1 : 2);
  return enc + dec + rel + emb + c.whole_word_embeddings * d;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
