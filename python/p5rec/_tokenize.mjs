// The tokenizer bridge of p5rec's Python side, for machines without the Python
// `tokenizers` package (Debian 12): the HF tokenizers Node binding that p5rec
// itself uses encodes, so the pieces are p5rec's by construction.
//   node _tokenize.mjs TOKENIZER_JSON MODULE_DIR...   (stdin: {"texts": [...]} per line)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const [file, ...dirs] = process.argv.slice(2);
let mod = null;
const tried = [];
for (const d of dirs) {
  try {
    mod = createRequire(join(resolve(d), 'index.js'))('tokenizers');
    break;
  } catch (e) {
    tried.push(`${d}: ${String(e.message).split('\n')[0]}`);
  }
}
if (!mod) {
  process.stderr.write(`the 'tokenizers' Node package was not found (install p5rec with npm, or set P5REC_ROOT):\n${tried.join('\n')}\n`);
  process.exit(3);
}
const tk = mod.Tokenizer.fromString(readFileSync(resolve(file), 'utf8'));
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    const { texts } = JSON.parse(line);
    const encs = texts.length ? await tk.encodeBatch(texts, { addSpecialTokens: false }) : [];
    process.stdout.write(JSON.stringify({ ids: encs.map((e) => e.getIds()), tokens: encs.map((e) => e.getTokens()) }) + '\n');
  });
});
