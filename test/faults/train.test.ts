/**
 * Fault corpus: fit / eval / predict / generate / train / llm eval, driven
 * through the built CLI as a user would, with bad flags, edited model
 * folders, kills mid-run and a misbehaving OpenAI-compatible server. Every
 * case asserts the exit status, that the message names the file, field or
 * flag, and that nothing was left behind or lost.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cli, MI_REVIEWS, ROOT, tempDir } from '../helpers/cli.js';

let tmp: string;
let data: string;
let p5: string;
let pop: string;

/** The tiny P5 recipe: a few steps, short prompts, so each training run takes seconds. */
const TINY = ['--config', 'tiny', '--epochs', '1', '--tasks', 'sequential', '--negatives', '4', '--max-source', '64', '--batch-tokens', '2048'];

function sha(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Hash of every file of a folder (name → sha), to prove a folder was not touched. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = sha(join(d, e.name));
    }
  };
  walk(dir, '');
  return out;
}

/** Entries of the temp folder that p5rec may have left: hidden staging / temp folders. */
function leftovers(): string[] {
  return readdirSync(tmp).filter((n) => n.startsWith('.'));
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Seconds from the signal to the exit (when a signal was sent). */
  stopSeconds?: number;
}

/**
 * The CLI as a child process, without blocking this event loop (the fake LLM
 * server answers from it). With `signal`, send it once stderr matches `when`
 * (or, for `whenChild`, once the CLI has a child process: the tokenizer trainer).
 */
function run(args: string[], opts: { signal?: NodeJS.Signals; when?: RegExp; whenChild?: boolean; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    let sentAt = 0;
    const send = (): void => {
      if (sentAt || !opts.signal) return;
      sentAt = performance.now();
      child.kill(opts.signal);
    };
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (opts.when && opts.when.test(stderr)) send();
    });
    let poll: NodeJS.Timeout | undefined;
    if (opts.whenChild) {
      poll = setInterval(() => {
        try {
          // /proc/<pid>/task/<pid>/children lists the CLI's child processes (Linux).
          const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
          if (kids) send();
        } catch {
          /* exited */
        }
      }, 50);
    }
    child.on('exit', (status) => {
      if (poll) clearInterval(poll);
      resolve({ status, stdout, stderr, ...(sentAt ? { stopSeconds: (performance.now() - sentAt) / 1000 } : {}) });
    });
  });
}

/** The one `p5rec: error:` line of a failed run. */
function errorLine(r: { stderr: string }): string {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('p5rec: error:'));
  expect(lines.length, r.stderr).toBe(1);
  return lines[0];
}

beforeAll(() => {
  tmp = tempDir('p5rec-faults-train-');
  data = join(tmp, 'mi');
  const a = cli(['data', 'import', 'amazon', '--reviews', MI_REVIEWS, '--out', data, '--json', '--quiet']);
  expect(a.json?.ok, a.stderr).toBe(true);
  p5 = join(tmp, 'p5');
  const t = cli(['train', data, '--out', p5, ...TINY, '--steps', '3', '--json', '--quiet']);
  expect(t.json?.ok, t.stderr).toBe(true);
  pop = join(tmp, 'pop');
  const f = cli(['fit', data, '--model', 'pop', '--out', pop, '--json', '--quiet']);
  expect(f.json?.ok, f.stderr).toBe(true);
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('fit', () => {
  it('refuses --epochs 0 (it would save untrained weights) and writes nothing', () => {
    const out = join(tmp, 'fit-e0');
    const r = cli(['fit', data, '--model', 'bpr-mf', '--out', out, '--epochs', '0', '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/--epochs must be an integer >= 1, got '0'/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a fractional --epochs', () => {
    const r = cli(['fit', data, '--model', 'bpr-mf', '--out', join(tmp, 'fit-e15'), '--epochs', '1.5', '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/--epochs must be an integer >= 1, got '1.5'/);
    expect(existsSync(join(tmp, 'fit-e15'))).toBe(false);
  });

  it('refuses an unknown model kind, naming the known ones', () => {
    const r = cli(['fit', data, '--model', 'gpt5', '--out', join(tmp, 'fit-kind'), '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/field 'model': unknown model 'gpt5' \(known: pop, .*sasrec, p5\)/);
    expect(existsSync(join(tmp, 'fit-kind'))).toBe(false);
  });

  it('never writes into, or replaces with --force, a folder of files p5rec did not write', () => {
    const out = join(tmp, 'notes');
    mkdirSync(out);
    writeFileSync(join(out, 'thesis.txt'), 'do not lose me');
    for (const force of [[], ['--force']]) {
      const r = cli(['fit', data, '--model', 'pop', '--out', out, ...force, '--quiet']);
      expect(r.status).toBe(2);
      expect(errorLine(r)).toMatch(new RegExp(`${out}: the folder holds files that are not a p5rec model \\(thesis.txt\\)`));
    }
    expect(readdirSync(out)).toEqual(['thesis.txt']);
    expect(readFileSync(join(out, 'thesis.txt'), 'utf8')).toBe('do not lose me');
  });

  it('refuses to overwrite a model without --force, and a bad --force keeps the old model whole', () => {
    const before = snapshot(pop);
    const again = cli(['fit', data, '--model', 'pop', '--out', pop, '--quiet']);
    expect(again.status).toBe(2);
    expect(errorLine(again)).toMatch(/pop: model folder already holds a model \(pass --force/);
    const bad = cli(['fit', data, '--model', 'bpr-mf', '--out', pop, '--force', '--epochs', '0', '--quiet']);
    expect(bad.status).toBe(2);
    expect(errorLine(bad)).toMatch(/--epochs/);
    expect(snapshot(pop)).toEqual(before);
    expect(leftovers()).toEqual([]);
  });

  it('--force replaces a model by a swap: the new one complete, nothing hidden left beside it', () => {
    const out = join(tmp, 'fit-force');
    expect(cli(['fit', data, '--model', 'pop', '--out', out, '--quiet']).status).toBe(0);
    writeFileSync(join(out, 'evals-stale.json'), '{}');
    const r = cli(['fit', data, '--model', 'bpr-mf', '--out', out, '--force', '--epochs', '1', '--json', '--quiet']);
    expect(r.json?.ok, r.stderr).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).kind).toBe('bpr-mf');
    expect(existsSync(join(out, 'evals-stale.json'))).toBe(false); // the old model's files went with it
    expect(leftovers()).toEqual([]);
  });

  it('a partial fit is not restarted by accident: refused, then continued with --resume', () => {
    const out = join(tmp, 'fit-partial');
    expect(cli(['fit', data, '--model', 'bpr-mf', '--out', out, '--epochs', '1', '--quiet']).status).toBe(0);
    // What a kill between the last checkpoint and the model leaves: the checkpoint, no model.
    rmSync(join(out, 'model.json'));
    rmSync(join(out, 'weights.safetensors'));
    const ckpt = snapshot(join(out, 'checkpoint'));
    const again = cli(['fit', data, '--model', 'bpr-mf', '--out', out, '--epochs', '2', '--quiet']);
    expect(again.status).toBe(2);
    expect(errorLine(again)).toMatch(new RegExp(`a partial fit exists at ${join(out, 'checkpoint')} \\(after epoch 1\\); pass --resume to continue it or --force to start over`));
    expect(snapshot(join(out, 'checkpoint'))).toEqual(ckpt);
    const resumed = cli(['fit', data, '--model', 'bpr-mf', '--out', out, '--epochs', '2', '--resume', '--json']);
    expect(resumed.json?.ok, resumed.stderr).toBe(true);
    expect(resumed.stderr).toMatch(/resuming after epoch 1/);
    const meta = JSON.parse(readFileSync(join(out, 'checkpoint', 'checkpoint.json'), 'utf8'));
    expect(meta.epoch).toBe(2);
    // one weights file per checkpoint: the epoch-1 file was replaced, not kept beside
    expect(readdirSync(join(out, 'checkpoint')).sort()).toEqual(['checkpoint-e2.safetensors', 'checkpoint.json']);
  });
});

describe('eval / predict / generate', () => {
  it('bounds --beams with the limit named, before loading anything (no Aborted() / out-of-bounds)', () => {
    for (const beams of ['100000', '0', '2.5']) {
      const r = cli(['eval', data, '--model', p5, '--task', 'sequential', '--users', '2', '--beams', beams, '--quiet']);
      expect(r.status).toBe(2);
      expect(errorLine(r)).toBe(`p5rec: error: --beams must be an integer in [1, 256], got '${beams}'`);
      expect(r.stderr).not.toMatch(/Aborted|memory access/);
    }
    expect(existsSync(join(p5, 'evals'))).toBe(false);
  });

  it('an edited model.json kind is refused by file and field, not a TypeError', () => {
    const bad = join(tmp, 'p5-kind');
    cpSync(p5, bad, { recursive: true });
    const card = JSON.parse(readFileSync(join(bad, 'model.json'), 'utf8'));
    writeFileSync(join(bad, 'model.json'), JSON.stringify({ ...card, kind: 'x' }));
    for (const args of [['eval', data, '--model', bad, '--task', 'sequential'], ['predict', bad, '--dataset', data, '--task', 'sequential', '--user', '#1']]) {
      const r = cli([...args, '--quiet']);
      expect(r.status).toBe(2);
      expect(errorLine(r)).toBe(`p5rec: error: ${bad}/model.json: field 'kind': unknown model kind "x" (expected one of pop, mf, mlp, bpr-mf, bpr-mlp, simplex, sasrec, p5)`);
    }
    expect(existsSync(join(bad, 'evals'))).toBe(false);
  });

  it('a model.json without its dataset fingerprint is refused by field', () => {
    const bad = join(tmp, 'pop-nods');
    cpSync(pop, bad, { recursive: true });
    const card = JSON.parse(readFileSync(join(bad, 'model.json'), 'utf8'));
    delete card.dataset;
    writeFileSync(join(bad, 'model.json'), JSON.stringify(card));
    const r = cli(['eval', data, '--model', bad, '--task', 'sequential', '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(new RegExp(`${bad}/model.json: field 'dataset': must be an object`));
  });

  it('weights of another kind are named by file, not a bare tensor name', () => {
    const bad = join(tmp, 'pop-as-mf');
    cpSync(pop, bad, { recursive: true });
    const card = JSON.parse(readFileSync(join(bad, 'model.json'), 'utf8'));
    writeFileSync(join(bad, 'model.json'), JSON.stringify({ ...card, kind: 'bpr-mf' }));
    const r = cli(['eval', data, '--model', bad, '--task', 'sequential', '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(new RegExp(`${bad}/weights.safetensors: .*\\(model kind 'bpr-mf'\\)`));
  });

  it('P5-only flags on a baseline are refused by name', () => {
    const r = cli(['eval', data, '--model', pop, '--task', 'sequential', '--prompt', '2-1', '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/field 'prompt': prompt, beams and rating mode are for prompted \(P5\) models; .* is pop/);
    const e = cli(['predict', pop, '--dataset', data, '--task', 'explanation', '--user', '#1', '--item', '#1', '--quiet']);
    expect(e.status).toBe(2);
    expect(errorLine(e)).toMatch(/field 'task': .*explanation task are for P5 models; .* is pop/);
  });

  it('predict works for a baseline, as its help says', () => {
    expect(cli(['predict', '--help']).stdout).toMatch(/P5 or a baseline/);
    const r = cli(['predict', pop, '--dataset', data, '--task', 'sequential', '--user', '#1', '--k', '3', '--json', '--quiet']);
    expect(r.json?.ok, r.stderr).toBe(true);
    expect(r.json?.kind).toBe('pop');
    expect((r.json?.items as unknown[]).length).toBe(3);
  });

  it('predict --k beyond the catalogue is capped and said so (stderr and JSON); a fractional --k is refused', () => {
    const r = cli(['predict', pop, '--dataset', data, '--task', 'sequential', '--user', '#1', '--k', '1e9', '--json', '--quiet']);
    expect(r.json?.ok, r.stderr).toBe(true);
    expect(r.stderr).toMatch(/warning: --k 1000000000 is more than the 900 items in the catalogue; returning all 900/);
    expect((r.json?.items as unknown[]).length).toBe(900);
    expect(r.json?.kCapped).toEqual({ asked: 1e9, returned: 900 });
    const direct = cli(['predict', pop, '--dataset', data, '--task', 'direct', '--user', '#1', '--k', '500', '--json', '--quiet']);
    expect(direct.stderr).toMatch(/more than the 99 candidates/);
    const frac = cli(['predict', pop, '--dataset', data, '--task', 'sequential', '--user', '#1', '--k', '1.5', '--quiet']);
    expect(frac.status).toBe(2);
    expect(errorLine(frac)).toMatch(/--k must be an integer >= 1, got '1.5'/);
  });

  it('generate bounds --beams and --max-length', () => {
    const b = cli(['generate', p5, '--prompt', 'hello', '--beams', '100000', '--quiet']);
    expect(b.status).toBe(2);
    expect(errorLine(b)).toMatch(/--beams must be an integer in \[1, 256\]/);
    const l = cli(['generate', p5, '--prompt', 'hello', '--max-length', '99999', '--quiet']);
    expect(l.status).toBe(2);
    expect(errorLine(l)).toMatch(/--max-length must be an integer in \[1, 512\]/);
  });
});

describe('train', () => {
  it('--force with a bad config is refused before the old model is touched', () => {
    const before = snapshot(p5);
    const r = cli(['train', data, '--out', p5, '--force', '--config', '{"preset":"tiny","d_model":-5}', '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/field 'config.d_model': must be a positive integer, got -5/);
    expect(snapshot(p5)).toEqual(before);
    expect(leftovers()).toEqual([]);
  });

  it('--force with a bad flag or unparsable inline config keeps the old model', () => {
    const before = snapshot(p5);
    for (const [args, msg] of [
      [['--epochs', '0'], /--epochs must be an integer >= 1, got '0'/],
      [['--config', '{"preset":'], /--config: inline JSON does not parse/],
      [['--config', '{"preset":"huge"}'], /unknown T5 preset 'huge'/],
      [['--item-init', 'cooccurrence'], /field 'itemInit': itemInit 'cooccurrence' needs one token per item/],
    ] as const) {
      const r = cli(['train', data, '--out', p5, '--force', ...args, '--quiet']);
      expect(r.status, args.join(' ')).toBe(2);
      expect(errorLine(r)).toMatch(msg);
    }
    expect(snapshot(p5)).toEqual(before);
    expect(leftovers()).toEqual([]);
  });

  it('refuses to train into a folder of files p5rec did not write, with or without --force', () => {
    const out = join(tmp, 'mine');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.md'), '# notes');
    for (const force of [[], ['--force']]) {
      const r = cli(['train', data, '--out', out, ...TINY, '--steps', '1', ...force, '--quiet']);
      expect(r.status).toBe(2);
      expect(errorLine(r)).toMatch(new RegExp(`${out}: the folder holds files that are not a p5rec model \\(notes.md\\)`));
    }
    expect(readdirSync(out)).toEqual(['notes.md']);
  });

  it('without --force an existing model is refused in one line', () => {
    const r = cli(['train', data, '--out', p5, ...TINY, '--quiet']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/model folder already holds a model \(set force to replace it/);
  });

  describe('SIGTERM mid-run, the accidental restart, and --resume', () => {
    const out = (): string => join(tmp, 'p5-killed');
    const args = (): string[] => ['train', data, '--out', out(), ...TINY, '--steps', '12', '--checkpoint-every', '100'];
    let killed: Run;
    beforeAll(async () => {
      killed = await run(args(), { signal: 'SIGTERM', when: /train \| [1-9]/ });
    }, 180_000);

    it('stops within seconds, exits 143, and says where the resumable checkpoint is', () => {
      expect(killed.status, killed.stderr).toBe(143);
      expect(killed.stopSeconds).toBeLessThan(5);
      expect(errorLine(killed)).toMatch(new RegExp(`${out()}: interrupted by SIGTERM at step \\d+ of 12; checkpoint saved in ${out()}/train/checkpoint: run it again with resume set to continue`));
      const state = JSON.parse(readFileSync(join(out(), 'train', 'checkpoint', 'trainer.json'), 'utf8'));
      expect(state.step).toBeGreaterThan(0); // saved at the stop, not only every 100 steps
      expect(existsSync(join(out(), 'model.json'))).toBe(false);
    });

    it('refuses to silently restart the partial run, and leaves its checkpoint alone', async () => {
      const before = snapshot(join(out(), 'train'));
      const r = await run([...args(), '--quiet']);
      expect(r.status).toBe(2);
      expect(errorLine(r)).toMatch(new RegExp(`a partial run exists at ${out()}/train \\(step \\d+ of 12\\); set resume to continue it or force to start over`));
      expect(snapshot(join(out(), 'train'))).toEqual(before);
    }, 60_000);

    it('--resume finishes the run from the saved step, with a contiguous log', async () => {
      const saved = JSON.parse(readFileSync(join(out(), 'train', 'checkpoint', 'trainer.json'), 'utf8')).step as number;
      const r = await run([...args(), '--resume', '--json', '--quiet']);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!).steps).toBe(12);
      const log = readFileSync(join(out(), 'train', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step as number);
      expect(log).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(saved).toBeLessThan(12);
      expect(existsSync(join(out(), 'model.json'))).toBe(true);
    }, 180_000);
  });

  it('SIGINT while the corpus is built stops within ~2 s, exits 130 and leaves no folder', async () => {
    const out = join(tmp, 'p5-int-corpus');
    // all five task families: a corpus long enough to be caught mid-way
    const r = await run(['train', data, '--out', out, ...TINY.filter((a) => a !== '--tasks' && a !== 'sequential'), '--steps', '2'], { signal: 'SIGINT', when: /tokenize prompts/ });
    expect(r.status, r.stderr).toBe(130);
    expect(r.stopSeconds).toBeLessThan(3);
    expect(errorLine(r)).toMatch(new RegExp(`${out}: interrupted by SIGINT while tokenizing the training prompts; nothing was kept`));
    expect(existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('SIGTERM while the tokenizer trains kills the trainer at once, exits 143 and leaves no folder', async () => {
    const out = join(tmp, 'p5-term-tok');
    const r = await run(['train', data, '--out', out, ...TINY, '--steps', '2'], { signal: 'SIGTERM', whenChild: true });
    expect(r.status, r.stderr).toBe(143);
    expect(r.stopSeconds).toBeLessThan(3);
    expect(errorLine(r)).toMatch(/interrupted by SIGTERM while training the tokenizer; nothing was kept/);
    expect(existsSync(out)).toBe(false);
  }, 120_000);

  it('an interrupted --force run leaves the old model intact; --resume completes it and swaps it in', async () => {
    const out = join(tmp, 'p5-force');
    cpSync(p5, out, { recursive: true });
    const before = snapshot(out);
    const args = ['train', data, '--out', out, ...TINY, '--steps', '16', '--seed', '3', '--force'];
    const killed = await run(args, { signal: 'SIGTERM', when: /train \| [1-9]/ });
    expect(killed.status, killed.stderr).toBe(143);
    expect(errorLine(killed)).toMatch(new RegExp(`checkpoint saved in ${tmp}/.p5-force.next/train/checkpoint: .*; the model in ${out} is untouched`));
    expect(snapshot(out)).toEqual(before);
    const r = await run(['train', data, '--out', out, ...TINY, '--steps', '16', '--seed', '3', '--resume', '--json', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).fit.steps).toBe(16);
    expect(sha(join(out, 'model.safetensors'))).not.toBe(before['model.safetensors']);
    expect(leftovers()).toEqual([]);
  }, 240_000);
});

// ---------------------------------------------------------------------------
// llm eval against a local OpenAI-compatible server
// ---------------------------------------------------------------------------

describe('llm eval', () => {
  let server: Server;
  let url: string;
  let calls = 0;
  let reply: (n: number) => { status: number; body: unknown } = () => ({ status: 200, body: {} });
  const chat = (content: string, usage = { prompt_tokens: 50, completion_tokens: 5 }) => ({
    status: 200,
    body: { id: 'c', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { ...usage, total_tokens: 0 } },
  });
  const llm = (extra: string[]): string[] => ['llm', 'eval', data, '--provider', 'openai', '--model', 'fake', '--task', 'rating', '--users', '30', '--no-cache', '--base-url', url, ...extra];

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const r = reply(++calls);
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('usable answers: exit 0, and the share of unusable answers is printed', async () => {
    calls = 0;
    reply = () => chat('{"rating": 4}');
    const r = await run(llm([]));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/unusable answers: 0 of \d+ \(0\.0%\)/);
    expect(calls).toBeGreaterThan(0);
  }, 60_000);

  it('no usable answer at all: non-zero exit, the share named, --out not written', async () => {
    reply = () => chat('I cannot help with that.');
    const out = join(tmp, 'llm-unusable.json');
    const r = await run(llm(['--refine-retries', '1', '--out', out]));
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/field 'answers': no usable answer: (\d+) of \1 answers \(100%\) were unusable after 1 re-asks/);
    expect(r.stderr).toMatch(/unusable answers: (\d+) of \1 \(100\.0%\)/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('negative token usage from the provider is refused, naming the field, without retries', async () => {
    calls = 0;
    reply = () => chat('{"rating": 4}', { prompt_tokens: -40, completion_tokens: 5 });
    const r = await run(llm(['--concurrency', '1']));
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/field 'usage.promptTokens': openai reported an invalid token count promptTokens -40/);
    expect(r.stderr).not.toMatch(/retrying/);
    expect(calls).toBe(1);
  }, 60_000);

  it('a 4xx is not retried, and its status is reported', async () => {
    calls = 0;
    reply = () => ({ status: 401, body: { error: { message: 'bad key' } } });
    const r = await run(llm(['--concurrency', '1']));
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/HTTP 401/);
    expect(r.stderr).not.toMatch(/retrying/);
    expect(calls).toBe(1);
  }, 60_000);

  it('--shots beyond the limit is refused at once, naming the bound', async () => {
    const t = performance.now();
    const r = await run(llm(['--shots', '1e6']));
    expect(r.status).toBe(2);
    expect(errorLine(r)).toBe("p5rec: error: --shots must be an integer in [0, 20], got '1e6'");
    expect((performance.now() - t) / 1000).toBeLessThan(20);
  }, 60_000);

  it('a malformed --base-url is refused by flag before any request', async () => {
    const r = await run(['llm', 'eval', data, '--provider', 'openai', '--model', 'fake', '--task', 'rating', '--users', '30', '--no-cache', '--base-url', 'localhost:8000/v1']);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(/field 'base-url': --base-url must use http or https|field 'base-url': --base-url must be an absolute http\(s\) URL/);
  }, 60_000);

  it('a refused connection is reported with its cause and the URL, not retried as an "unreadable response"', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const dead = `http://127.0.0.1:${port}/v1`;
    const r = await run(['llm', 'eval', data, '--provider', 'openai', '--model', 'fake', '--task', 'rating', '--users', '30', '--no-cache', '--base-url', dead]);
    expect(r.status).toBe(2);
    expect(errorLine(r)).toMatch(new RegExp(`cannot reach the server \\(${dead.replace(/[.]/g, '\\.')}\\): ECONNREFUSED`));
    expect(r.stderr).not.toMatch(/retrying|unreadable response/);
  }, 60_000);
});
