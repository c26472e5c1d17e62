#!/usr/bin/env node
/**
 * Logits of a p5rec T5 folder on a few prompts, as computed by our engine, for
 * an outside implementation to check itself against (scripts/hf_train_p5.py
 * --reference compares PyTorch's T5 on the same weights before training).
 *
 *   node scripts/t5-reference.mjs MODEL_DIR --out ref.json [--source TEXT --target TEXT]...
 *
 * Needs `npm run build` (reads dist/). Dropout is off; the whole-word indices
 * are the tokenizer's (P5's rule), written beside the ids so the other side
 * needs no tokenizer to reproduce the inputs.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { initEngine } = await import(join(ROOT, 'dist/engine/backend.js'));
const { loadT5 } = await import(join(ROOT, 'dist/models/t5/checkpoint.js'));
const { collateSeq2Seq } = await import(join(ROOT, 'dist/models/t5/collate.js'));

const args = process.argv.slice(2);
const dir = args[0];
const outIdx = args.indexOf('--out');
if (!dir || outIdx < 0) {
  process.stderr.write('usage: node scripts/t5-reference.mjs MODEL_DIR --out ref.json [--source TEXT --target TEXT]...\n');
  process.exit(2);
}
const pairs = [];
for (let i = 1; i < args.length; i++) if (args[i] === '--source') pairs.push([args[i + 1], args[args.indexOf('--target', i) + 1]]);
if (!pairs.length) {
  pairs.push(['Given the following purchase history of user_12 : 3038 , 5560 , 77 predict next possible item to be purchased by the user ?', '8368']);
  pairs.push(['Will user_999 likely to interact with item_4645 ?', 'yes']);
}

await initEngine();
const { model, tokenizer, config } = loadT5(dir);
if (!tokenizer) throw new Error(`${dir}: no tokenizer.json`);
const cases = [];
for (const [source, target] of pairs) {
  const s = await tokenizer.encode(source);
  const t = await tokenizer.encode(target);
  const batch = collateSeq2Seq([{ inputIds: s.ids, wholeWordIds: s.wholeWordIds, labels: t.ids }], config);
  const logits = model.forward(batch);
  const flat = await logits.data();
  logits.dispose();
  const V = config.vocab_size;
  const rows = [];
  for (let r = 0; r < batch.tgtLen; r++) rows.push(Array.from(flat.subarray(r * V, (r + 1) * V), (x) => Math.round(x * 1e6) / 1e6));
  cases.push({ source, target, inputIds: s.ids, wholeWordIds: s.wholeWordIds, decoderInputIds: Array.from(batch.decoderInputIds), logits: rows });
}
const out = args[outIdx + 1];
writeFileSync(`${out}.tmp`, JSON.stringify({ model: dir, cases }));
renameSync(`${out}.tmp`, out);
process.stderr.write(`${out}: ${cases.length} cases, vocab ${config.vocab_size}\n`);
